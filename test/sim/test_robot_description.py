"""The xacro expands with the `xacro` package and parses as the 7-DoF mobile manipulator."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("xacro", reason="expanding the robot description needs the `sim` extra")

from rt_ros.sim import robot_description as rd


def _joints(urdf: str) -> dict[str, ET.Element]:
    return {joint.get("name"): joint for joint in ET.fromstring(urdf).iter("joint")}


def test_xacro_expands_to_a_urdf_with_the_named_joints_and_frames():
    urdf = rd.robot_urdf()
    root = ET.fromstring(urdf)
    assert root.tag == "robot"
    assert root.get("name") == rd.ROBOT_NAME
    joints = _joints(urdf)
    links = {link.get("name") for link in root.iter("link")}
    assert [joints[name].get("type") for name in rd.BASE_JOINTS] == [
        "prismatic",
        "prismatic",
        "revolute",
    ]
    assert len(rd.ARM_JOINTS) == 7
    assert all(joints[name].get("type") == "revolute" for name in rd.ARM_JOINTS)
    assert all(joints[name].get("type") == "prismatic" for name in rd.GRIPPER_JOINTS)
    for frame in (
        rd.ROOT_LINK,
        rd.BASE_LINK,
        rd.END_EFFECTOR_FRAME,
        rd.HEAD_CAMERA_OPTICAL_FRAME,
        rd.HEAD_CAMERA_LINK,
        rd.GRIPPER_BASE_LINK,
        *rd.FINGER_LINKS,
    ):
        assert frame in links
    # Only the root and pure frames may go without inertia.
    massless = {link.get("name") for link in root.iter("link") if link.find("inertial") is None}
    assert massless == {rd.ROOT_LINK, rd.END_EFFECTOR_FRAME, rd.HEAD_CAMERA_OPTICAL_FRAME}
    # No mesh files: primitive geometry only.
    assert not list(root.iter("mesh"))


def test_every_moving_joint_has_position_velocity_and_effort_limits():
    limits = rd.joint_limits()
    assert set(limits) == set(rd.ROBOT_JOINTS)
    for name, limit in limits.items():
        assert limit.lower < limit.upper, name
        assert limit.velocity > 0, name
        assert limit.effort > 0, name


def test_fixed_to_world_adds_a_world_root_for_gazebo():
    urdf = rd.robot_urdf(fixed_to_world=True)
    joint = _joints(urdf)["world_joint"]
    assert joint.find("parent").get("link") == "world"
    assert joint.find("child").get("link") == rd.ROOT_LINK


def test_a_urdf_parser_loads_it():
    pin = pytest.importorskip("pinocchio")
    model = pin.buildModelFromXML(rd.robot_urdf())
    names = list(model.names)[1:]
    assert names == list(rd.ROBOT_JOINTS)
    assert model.nq == len(rd.ROBOT_JOINTS)
    for frame in (rd.END_EFFECTOR_FRAME, rd.HEAD_CAMERA_OPTICAL_FRAME, rd.BASE_LINK):
        assert model.existFrame(frame)


def test_optical_frame_follows_the_ros_convention():
    pin = pytest.importorskip("pinocchio")
    model = pin.buildModelFromXML(rd.robot_urdf())
    data = model.createData()
    pin.framesForwardKinematics(model, data, pin.neutral(model))
    body = data.oMf[model.getFrameId(rd.HEAD_CAMERA_LINK)].rotation
    optical = data.oMf[model.getFrameId(rd.HEAD_CAMERA_OPTICAL_FRAME)].rotation
    # Optical z (forward) is the camera body's x; optical x (right) is the body's -y.
    np.testing.assert_allclose(optical[:, 2], body[:, 0], atol=1e-12)
    np.testing.assert_allclose(optical[:, 0], -body[:, 1], atol=1e-12)
    # The camera looks forward and down at the counter.
    assert optical[0, 2] > 0.5
    assert optical[2, 2] < -0.5
