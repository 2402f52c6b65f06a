"""Launch test of launch/sim.launch.py, end to end: one episode of a simulated task through both
nodes. The policy node runs the bundled model (models/rt1-tiny when exported there, else the same
export made here: the shipped rt1-tiny weights, or seeded random ones while none ship); the
driver node runs the embedded MuJoCo `sim` backend with config/sim.yaml's task, whose head camera
is the only camera. The test, as an operator, says the task's instruction and watches: the
policy's commands flow, each computed from a frame the simulator published; the driver passes
them on; the robot's joints move; the episode ends when the policy says `terminate` or after the
task family's step budget; both nodes exit 0 when the launch shuts down.

Runs with launch_testing and launch_ros and rt_ros in the ament index: `bash scripts/test.sh
test/launch` (the launch wheels), `colcon test --packages-select rt_ros` (a ROS install), or
`launch_test test/launch/test_sim_launch.py`. A bundle in RT_ROS_TEST_BUNDLE replaces the export.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import unittest
from pathlib import Path

import numpy as np
import pytest

REASON = (
    "launch tests need launch_testing and launch_ros: a ROS 2 install (colcon test) or the "
    "launch wheels that scripts/setup.sh installs from ../shared/wheels/ros2-launch"
)
pytest.importorskip("launch_testing", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description import LaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64, String  # noqa: E402

from rt_ros.nodes.qos import COMMAND_QOS, INSTRUCTION_QOS, SENSOR_QOS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # launch_test loads files by path
from launch_test_support import (  # noqa: E402
    SKIP_REASON,
    STARTUP_TIMEOUT_S,
    LaunchTestNodeMixin,
    domain_id,
    model_bundle,
    share_dir,
    twist_is_zero,
)

DOMAIN_ID = domain_id("sim")  # loopback only
# A mark, not a module-level importorskip: under launch_testing's pytest plugin, that would skip
# every file in the folder.
SIM_SKIP_REASON = SKIP_REASON or (
    None if importlib.util.find_spec("mujoco") else "the sim backend needs the sim extra (mujoco)"
)
CONTROL_RATE_HZ = 5.0
# Wall-clock allowance per policy step on a loaded machine (the budget is 90 steps, ~18 s).
STEP_ALLOWANCE_S = 2.0
# A joint that moved less than this (rad or m) over the episode did not move.
MOVED_TOLERANCE = 1e-3
# How long the messages of one step may arrive after one another.
COMMAND_WAIT_S = 10.0


def stamp_ns(msg) -> int:
    return Time.from_msg(msg.header.stamp).nanoseconds


def bundled_model_arguments() -> dict[str, str]:
    """No model_path (the launch's default, the package's models/rt1-tiny) when it is there."""
    if (share_dir() / "models" / "rt1-tiny" / "manifest.yaml").is_file():
        return {}
    return {"model_path": str(model_bundle())}


@pytest.mark.skipif(SIM_SKIP_REASON is not None, reason=str(SIM_SKIP_REASON))
@pytest.mark.rostest
def generate_test_description() -> LaunchDescription:
    if SIM_SKIP_REASON is not None:
        raise unittest.SkipTest(SIM_SKIP_REASON)
    os.environ.update(ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    arguments = {
        **bundled_model_arguments(),
        "control_rate_hz": str(CONTROL_RATE_HZ),
        "providers": "cpu",
    }
    return LaunchDescription(
        [
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(share_dir() / "launch" / "sim.launch.py")),
                launch_arguments=arguments.items(),
            ),
            launch_testing.actions.ReadyToTest(),
        ]
    )


class TestSimEpisode(LaunchTestNodeMixin, unittest.TestCase):
    """The test node plays the operator; the simulator plays camera and robot."""

    NODE_NAME = "test_sim_launch"
    DOMAIN_ID = DOMAIN_ID

    def test_both_nodes_come_up_on_the_sim_backend(self, proc_output) -> None:
        proc_output.assertWaitFor(
            "configured: backend sim", process="driver_node", timeout=STARTUP_TIMEOUT_S
        )
        proc_output.assertWaitFor("active: commands on", process="driver_node")
        proc_output.assertWaitFor(
            "ready: bundle", process="policy_node", timeout=STARTUP_TIMEOUT_S
        )
        proc_output.assertWaitFor("rt1-tiny", process="policy_node")

    def test_one_episode_runs_on_the_sims_own_camera(self, proc_output) -> None:
        proc_output.assertWaitFor("sim: task", process="driver_node", timeout=STARTUP_TIMEOUT_S)
        family, instruction = self.task_from_the_driver_log(proc_output)
        proc_output.assertWaitFor(
            "ready: bundle", process="policy_node", timeout=STARTUP_TIMEOUT_S
        )
        proc_output.assertWaitFor(
            "active: commands on", process="driver_node", timeout=STARTUP_TIMEOUT_S
        )
        frames: list[Image] = []
        joints: list[JointState] = []
        arm: list[TwistStamped] = []
        base: list[TwistStamped] = []
        gripper: list[Float64] = []
        modes: list[String] = []
        commanded: list[TwistStamped] = []
        node = self.node
        node.create_subscription(Image, "camera/image_raw", frames.append, SENSOR_QOS)
        node.create_subscription(JointState, "joint_states", joints.append, SENSOR_QOS)
        node.create_subscription(TwistStamped, "cmd/arm", arm.append, COMMAND_QOS)
        node.create_subscription(TwistStamped, "cmd/base", base.append, COMMAND_QOS)
        node.create_subscription(Float64, "cmd/gripper", gripper.append, COMMAND_QOS)
        node.create_subscription(String, "cmd/mode", modes.append, COMMAND_QOS)
        for topic in ("driver/commanded/arm", "driver/commanded/base"):
            node.create_subscription(TwistStamped, topic, commanded.append, COMMAND_QOS)
        say = node.create_publisher(String, "instruction", INSTRUCTION_QOS)
        self.spin_until(
            lambda: say.get_subscription_count() and frames and joints,
            STARTUP_TIMEOUT_S,
            "the policy on instruction, sim camera frames and joint states",
        )
        # The sim's head camera: nobody else publishes frames here.
        assert {(f.width, f.height, f.encoding) for f in frames} == {(320, 256, "rgb8")}
        assert {f.header.frame_id for f in frames} == {"head_camera_optical_frame"}
        # Without an instruction the policy idles and the robot rests: motion later is commanded.
        start = joints[-1]
        assert np.abs(np.subtract(start.position, joints[0].position)).max() < MOVED_TOLERANCE

        from rt_ros.sim.tasks import get_task  # here: it imports mujoco

        say.publish(String(data=instruction))
        budget = get_task(family).max_steps
        frame_stamps = {stamp_ns(f) for f in frames}

        def steps() -> list[TwistStamped]:
            """Arm commands computed from a camera frame: one per policy step (stops carry the
            time they were sent instead)."""
            frame_stamps.update(stamp_ns(f) for f in frames)
            return [m for m in arm if stamp_ns(m) in frame_stamps]

        self.spin_until(
            lambda: len(steps()) >= budget or any(m.data == "terminate" for m in modes),
            STARTUP_TIMEOUT_S + budget * STEP_ALLOWANCE_S,
            f"the end of the episode ({budget} steps or terminate)",
        )
        end = joints[-1]

        policy_steps = steps()
        assert policy_steps, "no command carried the stamp of a frame the simulator published"
        # Each step also sends a base twist with the same stamp, the gripper and the mode.
        step_stamps = {stamp_ns(m) for m in policy_steps}
        self.spin_until(
            lambda: step_stamps <= {stamp_ns(m) for m in base} and len(modes) >= len(step_stamps),
            COMMAND_WAIT_S,
            "the base command and the mode of every step",
        )
        assert gripper, "the policy sent no gripper command"
        assert {m.data for m in modes} <= {"arm", "base", "terminate"}
        assert any(not twist_is_zero(m) for m in commanded), "the driver passed no motion on"
        assert start.name == end.name
        moved = np.abs(np.subtract(end.position, start.position))
        assert moved.max() > MOVED_TOLERANCE, dict(zip(end.name, moved.round(4), strict=True))

    @staticmethod
    def task_from_the_driver_log(proc_output) -> tuple[str, str]:
        """The task family and instruction the sim backend laid out, from its start-up line."""
        pattern = re.compile(r"sim: task (\w+) [^:]*: ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
        for output in proc_output:
            if "driver_node" not in output.process_name:
                continue
            if match := pattern.search(output.text.decode(errors="replace")):
                return match[1], ast.literal_eval(match[2])
        raise AssertionError("the driver logged no `sim: task <family> ...: '<instruction>'`")


@launch_testing.post_shutdown_test()
class TestSimEpisodeShutdown(unittest.TestCase):
    def test_both_nodes_exit_cleanly_on_sigint(self, proc_info, proc_output) -> None:
        names = " ".join(proc_info.process_names())
        assert "policy_node" in names
        assert "driver_node" in names
        launch_testing.asserts.assertExitCodes(proc_info)
        for output in proc_output:
            assert b"Traceback" not in output.text, output.text.decode(errors="replace")
