"""SimWorld: the kitchen simulation driven by end-effector, base and gripper commands.

Commands follow the policy's contract: the arm twist is the end effector's linear (m/s) and
angular (rad/s) velocity in the robot base frame, the base twist (vx, vy m/s, wz rad/s) is in the
base frame, and the gripper is closedness in [-1, 1] (+1 closed), an absolute target. A twist
moves a target pose; differential IK turns the target into arm joint targets for position servos
every `control_substep_s`, so a twist held for T seconds displaces the target by twist * T exactly.
Physics runs at a fixed timestep; a reset with the same seed and task replays identically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from rt_ros.sim import robot_description as rd
from rt_ros.sim.camera import CameraConfig, HeadCamera
from rt_ros.sim.ik import ArmIK, IKConfig, rotate_by_vector, rotation_error
from rt_ros.sim.objects import OBJECTS
from rt_ros.sim.scene import (
    DRAWER_BODY,
    DRAWER_CABINET_BODY,
    DRAWER_HANDLE_SITE,
    DRAWER_JOINT,
    SceneConfig,
    build_model,
    counter_top_height_m,
)

if TYPE_CHECKING:
    from rt_ros.sim.tasks.base import Task

# Arm posture at reset: gripper pointing down above the near edge of the counter.
ARM_HOME_Q = (0.084, -0.127, 0.108, 2.004, 0.014, 1.264, 0.187)
# Where objects a layout does not use wait: on the floor behind the robot, out of view.
PARKING_X_M = -2.5
PARKING_SPACING_M = 0.3
# Layouts drawn at most per reset to find one inside the asked split.
MAX_SPLIT_DRAWS = 200


@dataclass(frozen=True)
class WorldConfig:
    """How the world is built and controlled."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    ik: IKConfig = field(default_factory=IKConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    # Period of the IK / servo-target update inside `step` (a multiple of the physics timestep).
    control_substep_s: float = 0.01
    arm_home_q: tuple[float, ...] = ARM_HOME_Q
    # The commanded target may run ahead of the IK solution by at most this much; beyond it (a
    # joint limit, an obstacle) the target is held back so that nothing winds up.
    max_target_lead_m: float = 0.03
    max_target_lead_rad: float = 0.25
    # Commanded arm joint positions may lead the measured ones by at most this (rad), which
    # bounds the force the servos press into an obstacle with.
    max_servo_lead_rad: float = 0.15
    # Physics time run after a reset so that placed objects come to rest.
    settle_s: float = 0.4

    def __post_init__(self) -> None:
        timestep = self.scene.timestep_s
        ratio = self.control_substep_s / timestep
        if self.control_substep_s <= 0 or abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(
                f"WorldConfig.control_substep_s ({self.control_substep_s!r}) must be a positive "
                f"multiple of the physics timestep ({timestep})"
            )
        if len(self.arm_home_q) != len(rd.ARM_JOINTS):
            raise ValueError(
                f"WorldConfig.arm_home_q has {len(self.arm_home_q)} values; the arm has "
                f"{len(rd.ARM_JOINTS)} joints"
            )
        for name in ("max_target_lead_m", "max_target_lead_rad", "max_servo_lead_rad"):
            if not getattr(self, name) > 0:
                raise ValueError(f"WorldConfig.{name} ({getattr(self, name)!r}) must be > 0")
        if self.settle_s < 0:
            raise ValueError(f"WorldConfig.settle_s ({self.settle_s!r}) must be >= 0")


@dataclass(frozen=True)
class WorldState:
    """What a robot reports: joints, end effector in the base frame, base pose in odom."""

    time_s: float
    joint_names: tuple[str, ...]
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    ee_position_m: np.ndarray
    # Unit quaternion (w, x, y, z) of the end effector in the base frame.
    ee_quaternion_wxyz: np.ndarray
    # Base pose in odom: x (m), y (m), yaw (rad).
    base_pose: np.ndarray
    # Distance between the finger pads (m).
    gripper_opening_m: float


def _yaw_rotation(yaw: float) -> np.ndarray:
    cos, sin = math.cos(yaw), math.sin(yaw)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


class SimWorld:
    """The robot in the kitchen: reset to a task layout, command, step, observe."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.model = build_model(self.config.scene)
        self.data = mujoco.MjData(self.model)
        model = self.model
        limits = rd.joint_limits()
        self._arm_qpos = self._qpos_indices(rd.ARM_JOINTS)
        self._arm_dofs = self._dof_indices(rd.ARM_JOINTS)
        self._base_qpos = self._qpos_indices(rd.BASE_JOINTS)
        self._base_dofs = self._dof_indices(rd.BASE_JOINTS)
        self._finger_qpos = self._qpos_indices(rd.GRIPPER_JOINTS)
        self._robot_qpos = self._qpos_indices(rd.ROBOT_JOINTS)
        self._robot_dofs = self._dof_indices(rd.ROBOT_JOINTS)
        self._arm_act = self._actuator_indices(rd.ARM_JOINTS)
        self._base_act = self._actuator_indices(rd.BASE_JOINTS)
        self._finger_act = self._actuator_indices(rd.GRIPPER_JOINTS)
        self.finger_stroke_m = limits[rd.GRIPPER_JOINTS[0]].upper
        self.ik = ArmIK(
            model,
            rd.ARM_JOINTS,
            rd.END_EFFECTOR_FRAME,
            rd.BASE_LINK,
            rest=self.config.arm_home_q,
            max_velocity=[limits[name].velocity for name in rd.ARM_JOINTS],
            config=self.config.ik,
        )
        self._base_max_velocity = np.array([limits[name].velocity for name in rd.BASE_JOINTS])
        self._ee_body = model.body(rd.END_EFFECTOR_FRAME).id
        self._base_body = model.body(rd.BASE_LINK).id
        self._drawer_qpos = model.joint(DRAWER_JOINT).qposadr[0]
        self._cabinet_body = model.body(DRAWER_CABINET_BODY).id
        self._cabinet_home = model.body_pos[self._cabinet_body].copy()
        self._drawer_body = model.body(DRAWER_BODY).id
        self._handle_site = model.site(DRAWER_HANDLE_SITE).id
        self._finger_bodies = {model.body(name).id for name in rd.FINGER_LINKS}
        self._robot_bodies = self._subtree(model.body(rd.ROOT_LINK).id)
        self._object_bodies = {name: model.body(name).id for name in OBJECTS}
        self._object_geoms = {
            name: np.flatnonzero(model.geom_bodyid == body)
            for name, body in self._object_bodies.items()
        }
        self._parked: set[str] = set()
        self._geom_contype = model.geom_contype.copy()
        self._geom_conaffinity = model.geom_conaffinity.copy()
        self.counter_height_m = counter_top_height_m(model)
        self._substeps = round(self.config.control_substep_s / model.opt.timestep)
        self._camera: HeadCamera | None = None
        self.task: Task | None = None
        self._reset_robot()

    # ----------------------------------------------------------------------------- indices
    def _qpos_indices(self, joints: Iterable[str]) -> np.ndarray:
        return np.array([self.model.joint(name).qposadr[0] for name in joints])

    def _dof_indices(self, joints: Iterable[str]) -> np.ndarray:
        return np.array([self.model.joint(name).dofadr[0] for name in joints])

    def _actuator_indices(self, joints: Iterable[str]) -> np.ndarray:
        return np.array([self.model.actuator(name).id for name in joints])

    def _subtree(self, root: int) -> frozenset[int]:
        bodies = {root}
        for body in range(root + 1, self.model.nbody):
            if self.model.body_parentid[body] in bodies:
                bodies.add(body)
        return frozenset(bodies)

    # ----------------------------------------------------------------------------- episode
    def reset(
        self, seed: int, task: str | type[Task] | None = None, split: str = "any"
    ) -> Task | None:
        """Reset physics and the robot, lay out `task` (a family name or Task class) from `seed`
        in `split` (any, seen, unseen_paraphrase, unseen_combination: see rt_ros.sim.tasks.base),
        let objects settle, and return the sampled task (also kept as `self.task`).

        A layout outside the split, or one too crowded to place every object, is drawn again
        from the same random stream, so a seed and a split always give the same episode, and
        split `any` the layouts it always gave (where they could be placed)."""
        from rt_ros.sim.tasks import check_split, get_task
        from rt_ros.sim.tasks.layout import LayoutError

        check_split(split)
        self.task = None
        rng = np.random.default_rng(seed)
        for _ in range(MAX_SPLIT_DRAWS):
            self._clear()
            if task is None:
                break
            task_class = get_task(task) if isinstance(task, str) else task
            try:
                sampled = task_class.sample(rng, self, task_class.templates_for(split))
            except LayoutError:
                continue
            mujoco.mj_kinematics(self.model, self.data)  # poses for in_split to read
            if sampled.in_split(self, split):
                self.task = sampled
                break
        else:
            raise RuntimeError(
                f"no {split} layout of {task} from seed {seed} in {MAX_SPLIT_DRAWS} draws"
            )
        mujoco.mj_forward(self.model, self.data)
        self.step(self.config.settle_s)
        self.data.time = 0.0
        self._pending_s = 0.0
        return self.task

    def _clear(self) -> None:
        """Physics reset, robot home, cabinet home, every object parked."""
        mujoco.mj_resetData(self.model, self.data)
        self.model.body_pos[self._cabinet_body] = self._cabinet_home
        self._reset_robot()
        for index, name in enumerate(OBJECTS):
            self.park_object(name, index)

    def _reset_robot(self) -> None:
        data = self.data
        home = np.asarray(self.config.arm_home_q, dtype=float)
        data.qpos[self._robot_qpos] = 0.0
        data.qvel[self._robot_dofs] = 0.0
        data.qpos[self._arm_qpos] = home
        data.qpos[self._finger_qpos] = self.finger_stroke_m
        self._arm_q_cmd = home.copy()
        self._base_cmd = np.zeros(3)
        self._target_pos, self._target_rot = self.ik.forward(home)
        self._arm_twist = np.zeros(6)
        self._base_twist = np.zeros(3)
        self._gripper = -1.0
        self._pending_s = 0.0
        self._write_controls()
        mujoco.mj_forward(self.model, data)

    # ----------------------------------------------------------------------------- commands
    def apply(
        self, arm_twist: Sequence[float], base_twist: Sequence[float], gripper: float
    ) -> None:
        """Set the command held until the next `apply`: end-effector twist [6] and base twist
        [3] in the base frame, gripper closedness in [-1, 1] (+1 closes)."""
        arm = np.asarray(arm_twist, dtype=float)
        base = np.asarray(base_twist, dtype=float)
        if arm.shape != (6,) or base.shape != (3,):
            raise ValueError(
                f"apply: arm_twist must have 6 values and base_twist 3, got {arm.shape} and "
                f"{base.shape}"
            )
        if not (np.isfinite(arm).all() and np.isfinite(base).all() and math.isfinite(gripper)):
            raise ValueError("apply: commands must be finite")
        self._arm_twist = arm
        self._base_twist = base
        self._gripper = float(np.clip(gripper, -1.0, 1.0))

    def stop(self) -> None:
        """Zero both twists (the gripper keeps its target)."""
        self._arm_twist = np.zeros(6)
        self._base_twist = np.zeros(3)

    def step(self, duration_s: float) -> None:
        """Advance physics by `duration_s` under the held command (whole physics steps)."""
        if not duration_s >= 0:
            raise ValueError(f"step: duration_s ({duration_s!r}) must be >= 0")
        timestep = self.model.opt.timestep
        # Whole physics steps; the remainder carries over, so many short calls (a real-time
        # loop) add up to the time they asked for.
        self._pending_s += duration_s
        remaining = math.floor(self._pending_s / timestep + 1e-9)
        self._pending_s = max(0.0, self._pending_s - remaining * timestep)
        while remaining > 0:
            count = min(self._substeps, remaining)
            self._control(count * timestep)
            mujoco.mj_step(self.model, self.data, nstep=count)
            remaining -= count

    def _control(self, dt: float) -> None:
        config = self.config
        # Arm: move the target by the twist, hold it near the reachable pose, then follow it.
        self._target_pos = self._target_pos + self._arm_twist[:3] * dt
        self._target_rot = rotate_by_vector(self._target_rot, self._arm_twist[3:] * dt)
        position, rotation, jacobian = self.ik.pose_and_jacobian(self._arm_q_cmd)
        lead = self._target_pos - position
        distance = float(np.linalg.norm(lead))
        if distance > config.max_target_lead_m:
            self._target_pos = position + lead * (config.max_target_lead_m / distance)
        turn = rotation_error(self._target_rot, rotation)
        angle = float(np.linalg.norm(turn))
        if angle > config.max_target_lead_rad:
            self._target_rot = rotate_by_vector(
                rotation, turn * (config.max_target_lead_rad / angle)
            )
        command = self.ik.feedback_twist(
            position, rotation, self._target_pos, self._target_rot, self._arm_twist
        )
        qdot = self.ik.solve(self._arm_q_cmd, command, jacobian)
        measured = self.data.qpos[self._arm_qpos]
        self._arm_q_cmd = np.clip(
            self._arm_q_cmd + qdot * dt,
            np.maximum(self.ik.lower, measured - config.max_servo_lead_rad),
            np.minimum(self.ik.upper, measured + config.max_servo_lead_rad),
        )
        # Base: integrate the base-frame twist in odom.
        velocity = np.clip(self._base_twist, -self._base_max_velocity, self._base_max_velocity)
        yaw = self._base_cmd[2]
        self._base_cmd = self._base_cmd + dt * np.array(
            [
                math.cos(yaw) * velocity[0] - math.sin(yaw) * velocity[1],
                math.sin(yaw) * velocity[0] + math.cos(yaw) * velocity[1],
                velocity[2],
            ]
        )
        self._write_controls()

    def _write_controls(self) -> None:
        ctrl = self.data.ctrl
        ctrl[self._arm_act] = self._arm_q_cmd
        ctrl[self._base_act] = self._base_cmd
        # Closedness +1 -> fingers at 0 (closed), -1 -> fully open.
        ctrl[self._finger_act] = self.finger_stroke_m * (1.0 - self._gripper) / 2.0

    # ----------------------------------------------------------------------------- observing
    def render(self) -> np.ndarray:
        """The head camera's RGB frame, [H, W, 3] uint8 (MUJOCO_GL must name a backend)."""
        return self.camera.render(self.data)

    @property
    def camera(self) -> HeadCamera:
        """The head camera (created on first use)."""
        if self._camera is None:
            self._camera = HeadCamera(self.model, self.config.camera)
        return self._camera

    def close(self) -> None:
        """Free the renderer, if one was made."""
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    def state(self) -> WorldState:
        """Joint states, end-effector pose in the base frame, base pose in odom, time."""
        data = self.data
        position, rotation = self.ee_pose()
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, rotation.reshape(9))
        return WorldState(
            time_s=float(data.time),
            joint_names=rd.ROBOT_JOINTS,
            joint_positions=data.qpos[self._robot_qpos].copy(),
            joint_velocities=data.qvel[self._robot_dofs].copy(),
            ee_position_m=position,
            ee_quaternion_wxyz=quat,
            base_pose=data.qpos[self._base_qpos].copy(),
            gripper_opening_m=self.gripper_opening_m(),
        )

    def base_pose_world(self) -> tuple[np.ndarray, np.ndarray]:
        """Position [3] and rotation [3, 3] of base_link in the world (odom) frame."""
        return (
            self.data.xpos[self._base_body].copy(),
            self.data.xmat[self._base_body].reshape(3, 3).copy(),
        )

    def to_base(self, point_world: Sequence[float]) -> np.ndarray:
        """A world point in the base frame."""
        position, rotation = self.base_pose_world()
        return rotation.T @ (np.asarray(point_world, dtype=float) - position)

    def to_world(self, point_base: Sequence[float]) -> np.ndarray:
        """A base-frame point in the world frame."""
        position, rotation = self.base_pose_world()
        return position + rotation @ np.asarray(point_base, dtype=float)

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured end-effector position [3] and rotation [3, 3] in the base frame."""
        position, rotation = self.base_pose_world()
        ee_pos = self.data.xpos[self._ee_body]
        ee_rot = self.data.xmat[self._ee_body].reshape(3, 3)
        return rotation.T @ (ee_pos - position), rotation.T @ ee_rot

    def set_robot_configuration(
        self, arm_q: Sequence[float] | None = None, finger_m: float | None = None
    ) -> None:
        """Put the arm (rad) and both fingers (m of travel each) at rest at a configuration and
        hold it there: for constructing states (tests, scripted starts)."""
        if arm_q is not None:
            q = np.asarray(arm_q, dtype=float)
            if q.shape != (len(rd.ARM_JOINTS),):
                raise ValueError(f"arm_q must have {len(rd.ARM_JOINTS)} values, got {q.shape}")
            self.data.qpos[self._arm_qpos] = q
            self.data.qvel[self._arm_dofs] = 0.0
            self._arm_q_cmd = q.copy()
            self._target_pos, self._target_rot = self.ik.forward(q)
        if finger_m is not None:
            self.data.qpos[self._finger_qpos] = finger_m
            self._gripper = float(np.clip(1.0 - 2.0 * finger_m / self.finger_stroke_m, -1, 1))
        self._write_controls()
        self.forward()

    def forward(self) -> None:
        """Recompute positions and contacts after the state was set by hand (no time passes)."""
        mujoco.mj_forward(self.model, self.data)

    def arm_command(self) -> np.ndarray:
        """The arm joint positions the servos are commanded to (rad)."""
        return self._arm_q_cmd.copy()

    def gripper_opening_m(self) -> float:
        """Distance between the two finger pads."""
        return float(self.data.qpos[self._finger_qpos].sum())

    # ----------------------------------------------------------------------------- scene state
    def object_position(self, name: str) -> np.ndarray:
        """World position of an object's body origin."""
        return self.data.xpos[self._object_bodies[name]].copy()

    def object_rotation(self, name: str) -> np.ndarray:
        """World rotation [3, 3] of an object."""
        return self.data.xmat[self._object_bodies[name]].reshape(3, 3).copy()

    def object_velocity(self, name: str) -> np.ndarray:
        """Linear velocity [3] of an object's free joint (world frame)."""
        dof = self.model.joint(OBJECTS[name].free_joint).dofadr[0]
        return self.data.qvel[dof : dof + 3].copy()

    def object_height_m(self, name: str) -> float:
        """Height of an object's origin above the counter top."""
        return float(self.object_position(name)[2] - self.counter_height_m)

    def object_tilt_rad(self, name: str) -> float:
        """Angle between an object's z axis and the world's vertical."""
        return float(math.acos(np.clip(self.object_rotation(name)[2, 2], -1.0, 1.0)))

    def set_object_pose(
        self, name: str, position: Sequence[float], quaternion_wxyz: Sequence[float]
    ) -> None:
        """Place an object (world frame) at rest; call before stepping."""
        self._set_parked(name, parked=False)
        joint = self.model.joint(OBJECTS[name].free_joint)
        qpos, dof = joint.qposadr[0], joint.dofadr[0]
        self.data.qpos[qpos : qpos + 3] = position
        quat = np.asarray(quaternion_wxyz, dtype=float)
        self.data.qpos[qpos + 3 : qpos + 7] = quat / np.linalg.norm(quat)
        self.data.qvel[dof : dof + 6] = 0.0

    def place_on_counter(self, name: str, xy_base: Sequence[float], yaw: float = 0.0) -> None:
        """Stand an object on the counter at a base-frame (x, y) with a yaw about vertical."""
        obj = OBJECTS[name]
        world = self.to_world([xy_base[0], xy_base[1], 0.0])
        height = self.counter_height_m + obj.rest_height_m + 0.001
        quat = np.empty(4)
        mujoco.mju_axisAngle2Quat(quat, np.array([0.0, 0.0, 1.0]), yaw)
        self.set_object_pose(name, [world[0], world[1], height], quat)

    def park_object(self, name: str, index: int) -> None:
        """Put an object the layout does not use behind the robot, out of view, where it floats
        without contacts (so that it costs no collision work) until it is placed again."""
        obj = OBJECTS[name]
        position = [PARKING_X_M, PARKING_SPACING_M * index, obj.rest_height_m + 0.001]
        self.set_object_pose(name, position, [1.0, 0.0, 0.0, 0.0])
        self._set_parked(name, parked=True)

    def is_parked(self, name: str) -> bool:
        """Whether an object waits out of the scene (not part of the current layout)."""
        return name in self._parked

    def _set_parked(self, name: str, parked: bool) -> None:
        if parked:
            self._parked.add(name)
        else:
            self._parked.discard(name)
        geoms = self._object_geoms[name]
        self.model.geom_contype[geoms] = 0 if parked else self._geom_contype[geoms]
        self.model.geom_conaffinity[geoms] = 0 if parked else self._geom_conaffinity[geoms]
        self.model.body_gravcomp[self._object_bodies[name]] = 1.0 if parked else 0.0

    def drawer_opening_m(self) -> float:
        """How far the drawer is pulled out (0 = closed)."""
        return float(self.data.qpos[self._drawer_qpos])

    def set_drawer_opening(self, opening_m: float) -> None:
        """Set the drawer's opening (m) at rest."""
        self.data.qpos[self._drawer_qpos] = opening_m
        self.data.qvel[self.model.joint(DRAWER_JOINT).dofadr[0]] = 0.0

    def drawer_range_m(self) -> tuple[float, float]:
        """The drawer slide's range (m)."""
        low, high = self.model.joint(DRAWER_JOINT).range
        return float(low), float(high)

    def set_cabinet_position(self, xy_base: Sequence[float]) -> None:
        """Move the drawer cabinet (its centre) to a base-frame (x, y) on the counter."""
        world = self.to_world([xy_base[0], xy_base[1], 0.0])
        self.model.body_pos[self._cabinet_body] = [world[0], world[1], self.counter_height_m]

    def cabinet_position(self) -> np.ndarray:
        """World position of the drawer cabinet's origin (centre of its base)."""
        return self.data.xpos[self._cabinet_body].copy()

    def handle_position(self) -> np.ndarray:
        """World position of the middle of the drawer handle bar."""
        return self.data.site_xpos[self._handle_site].copy()

    # ----------------------------------------------------------------------------- contacts
    def _contact_bodies(self) -> tuple[np.ndarray, np.ndarray]:
        contact = self.data.contact
        count = self.data.ncon
        bodies = self.model.geom_bodyid
        return bodies[contact.geom1[:count]], bodies[contact.geom2[:count]]

    def touching(self, name: str, bodies: Iterable[int]) -> bool:
        """Whether an object touches any of the given bodies (by id)."""
        target = self._object_bodies[name]
        others = np.fromiter(bodies, dtype=int)
        first, second = self._contact_bodies()
        return bool(
            np.any((first == target) & np.isin(second, others))
            or np.any((second == target) & np.isin(first, others))
        )

    def fingers_touching(self, name: str) -> int:
        """How many fingers (0, 1, 2) touch an object."""
        return sum(self.touching(name, [finger]) for finger in self._finger_bodies)

    def robot_touching(self, name: str) -> bool:
        """Whether any robot link touches an object."""
        return self.touching(name, self._robot_bodies)
