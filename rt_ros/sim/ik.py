"""Differential inverse kinematics: end-effector twists to arm joint velocities.

Damped least squares on MuJoCo's body Jacobian, expressed in the robot base frame, with a
nullspace pull towards a rest posture, joints locked at their limits, and uniform scaling to the
URDF velocity limits. Twists are [vx, vy, vz, wx, wy, wz] (m/s, rad/s) in the base frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

# Singular values below this fraction of the largest count as zero for the nullspace.
_RANK_TOLERANCE = 1e-4


def damped_least_squares(
    jacobian: np.ndarray, twist: np.ndarray, damping: float, posture: np.ndarray | None = None
) -> np.ndarray:
    """Joint velocities [n] for a twist [6] through the Jacobian [6, n]:
    J^T (J J^T + damping^2 I)^-1 twist, well behaved near singularities (the twist error it
    allows grows with the damping there), plus `posture` [n] projected onto the exact nullspace
    of J, so that a secondary pull never disturbs the end effector. One SVD gives both."""
    u, singular, vt = np.linalg.svd(jacobian, full_matrices=False)
    qdot = vt.T @ (singular / (singular**2 + damping**2) * (u.T @ twist))
    if posture is not None:
        rows = vt[singular > _RANK_TOLERANCE * singular[0]]
        qdot += posture - rows.T @ (rows @ posture)
    return qdot


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (rad) that turns `current` into `target`, both 3x3, in their common frame:
    log(target @ current.T)."""
    quat_target = np.empty(4)
    quat_current = np.empty(4)
    mujoco.mju_mat2Quat(quat_target, np.ascontiguousarray(target).reshape(9))
    mujoco.mju_mat2Quat(quat_current, np.ascontiguousarray(current).reshape(9))
    local = np.empty(3)
    # mju_subQuat: current * exp(local) = target, with `local` in the current frame.
    mujoco.mju_subQuat(local, quat_target, quat_current)
    return current @ local


def rotate_by_vector(rotation: np.ndarray, rotation_vector: np.ndarray) -> np.ndarray:
    """exp([rotation_vector]) @ rotation: turn a 3x3 rotation by a rotation vector given in the
    frame the rotation is expressed in."""
    angle = float(np.linalg.norm(rotation_vector))
    if angle < 1e-12:
        return rotation.copy()
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, rotation_vector / angle, angle)
    delta = np.empty(9)
    mujoco.mju_quat2Mat(delta, quat)
    return delta.reshape(3, 3) @ rotation


@dataclass(frozen=True)
class IKConfig:
    """Gains and limits of the differential IK."""

    damping: float = 0.03
    # Pose-error feedback added to the commanded twist when tracking a target pose (1/s).
    position_gain_per_s: float = 8.0
    orientation_gain_per_s: float = 8.0
    # Pull towards the rest posture inside the Jacobian's nullspace (1/s).
    nullspace_gain_per_s: float = 1.0
    # A joint this close to a limit may not move further towards it (rad).
    limit_margin_rad: float = 0.02
    # Fraction of each joint's URDF velocity limit the IK may use.
    velocity_limit_fraction: float = 1.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"IKConfig.{name} ({value!r}) must be a number >= 0")
        if not 0 < self.velocity_limit_fraction <= 1:
            raise ValueError(
                f"IKConfig.velocity_limit_fraction ({self.velocity_limit_fraction!r}) "
                "must be in (0, 1]"
            )


class ArmIK:
    """Differential IK of one arm of a MuJoCo model, on its own MjData (the kinematic state of
    the commanded joint positions, never the simulation's).

    `lower`, `upper`, `max_velocity` are per arm joint (rad, rad/s); `rest` is the nullspace
    posture.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        arm_joints: Sequence[str],
        end_effector_body: str,
        base_body: str,
        rest: Sequence[float],
        max_velocity: Sequence[float],
        config: IKConfig | None = None,
    ) -> None:
        self.model = model
        self.config = config or IKConfig()
        self._data = mujoco.MjData(model)
        joints = [model.joint(name) for name in arm_joints]
        self._qpos = np.array([joint.qposadr[0] for joint in joints])
        self._dofs = np.array([joint.dofadr[0] for joint in joints])
        self.lower = np.array([joint.range[0] for joint in joints])
        self.upper = np.array([joint.range[1] for joint in joints])
        self.rest = np.asarray(rest, dtype=float)
        self.max_velocity = np.asarray(max_velocity, dtype=float)
        if self.rest.shape != self.lower.shape or self.max_velocity.shape != self.lower.shape:
            raise ValueError(
                f"ArmIK: rest {self.rest.shape} and max_velocity {self.max_velocity.shape} "
                f"need one value per arm joint ({len(joints)})"
            )
        self._ee = model.body(end_effector_body).id
        self._base = model.body(base_body).id
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    @property
    def num_joints(self) -> int:
        return len(self._qpos)

    def _update(self, q: np.ndarray) -> None:
        self._data.qpos[self._qpos] = q
        mujoco.mj_kinematics(self.model, self._data)
        mujoco.mj_comPos(self.model, self._data)

    def _base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self._data.xpos[self._base], self._data.xmat[self._base].reshape(3, 3)

    def forward(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position [3] and rotation [3, 3] in the base frame at joint positions q."""
        self._update(np.asarray(q, dtype=float))
        return self._ee_pose()

    def _ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        base_pos, base_rot = self._base_pose()
        position = base_rot.T @ (self._data.xpos[self._ee] - base_pos)
        rotation = base_rot.T @ self._data.xmat[self._ee].reshape(3, 3)
        return position, rotation

    def jacobian(self, q: Sequence[float]) -> np.ndarray:
        """The [6, n] Jacobian (linear rows first) of the end effector in the base frame."""
        self._update(np.asarray(q, dtype=float))
        return self._jacobian()

    def _jacobian(self) -> np.ndarray:
        mujoco.mj_jacBody(self.model, self._data, self._jacp, self._jacr, self._ee)
        _, base_rot = self._base_pose()
        return np.vstack(
            (base_rot.T @ self._jacp[:, self._dofs], base_rot.T @ self._jacr[:, self._dofs])
        )

    def joint_velocities(self, q: Sequence[float], twist: Sequence[float]) -> np.ndarray:
        """Arm joint velocities (rad/s) that best produce `twist` at joint positions q."""
        q = np.asarray(q, dtype=float)
        self._update(q)
        return self.solve(q, np.asarray(twist, dtype=float), self._jacobian())

    def pose_and_jacobian(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """End-effector position [3], rotation [3, 3] and Jacobian [6, n] (base frame) at q."""
        self._update(np.asarray(q, dtype=float))
        position, rotation = self._ee_pose()
        return position, rotation, self._jacobian()

    def track(
        self,
        q: Sequence[float],
        target_position: np.ndarray,
        target_rotation: np.ndarray,
        twist: Sequence[float] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ) -> np.ndarray:
        """Joint velocities for the feed-forward `twist` plus feedback towards a target pose
        (position [3], rotation [3, 3], base frame)."""
        q = np.asarray(q, dtype=float)
        position, rotation, jacobian = self.pose_and_jacobian(q)
        command = self.feedback_twist(position, rotation, target_position, target_rotation, twist)
        return self.solve(q, command, jacobian)

    def feedback_twist(
        self,
        position: np.ndarray,
        rotation: np.ndarray,
        target_position: np.ndarray,
        target_rotation: np.ndarray,
        twist: Sequence[float],
    ) -> np.ndarray:
        """The feed-forward twist plus the pose error times the feedback gains."""
        command = np.asarray(twist, dtype=float).copy()
        command[:3] += self.config.position_gain_per_s * (target_position - position)
        command[3:] += self.config.orientation_gain_per_s * rotation_error(
            target_rotation, rotation
        )
        return command

    def body_positions(self, q: Sequence[float], bodies: Sequence[int]) -> np.ndarray:
        """Positions [len(bodies), 3] of bodies (by id) in the base frame at joint positions q."""
        self._update(np.asarray(q, dtype=float))
        base_pos, base_rot = self._base_pose()
        return (self._data.xpos[list(bodies)] - base_pos) @ base_rot

    def solve_pose(
        self,
        q: Sequence[float],
        target_position: np.ndarray,
        target_rotation: np.ndarray,
        iterations: int = 200,
        step_s: float = 0.05,
    ) -> tuple[np.ndarray, float, float]:
        """Iterate `track` from q towards a pose (base frame); returns the joint positions and
        the remaining position (m) and rotation (rad) errors. For planning and tests."""
        q = np.asarray(q, dtype=float).copy()
        for _ in range(iterations):
            q = np.clip(
                q + step_s * self.track(q, target_position, target_rotation),
                self.lower,
                self.upper,
            )
        position, rotation = self.forward(q)
        return (
            q,
            float(np.linalg.norm(target_position - position)),
            float(np.linalg.norm(rotation_error(target_rotation, rotation))),
        )

    def solve(self, q: np.ndarray, twist: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
        """Joint velocities for a twist given the Jacobian at q: damped least squares, the rest
        posture in the nullspace, joints at a limit locked, scaled to the velocity limits."""
        config = self.config
        free = np.ones(self.num_joints, dtype=bool)
        posture = config.nullspace_gain_per_s * (self.rest - q)
        qdot = np.zeros(self.num_joints)
        # Lock each joint that would push into its limit and solve again with the others.
        for _ in range(self.num_joints):
            qdot[:] = 0.0
            qdot[free] = damped_least_squares(
                jacobian[:, free], twist, config.damping, posture[free]
            )
            blocked = free & (
                ((q <= self.lower + config.limit_margin_rad) & (qdot < 0))
                | ((q >= self.upper - config.limit_margin_rad) & (qdot > 0))
            )
            if not blocked.any():
                break
            free &= ~blocked
            if not free.any():
                return np.zeros(self.num_joints)
        limit = config.velocity_limit_fraction * self.max_velocity
        scale = np.max(np.abs(qdot) / limit)
        return qdot / scale if scale > 1.0 else qdot
