"""End-effector twists to arm joint velocities from the robot's URDF, with pinocchio.

For arms on ros2_control velocity or position controllers without MoveIt Servo. Damped least
squares whose damping grows as the smallest singular value of the Jacobian falls (near a
singularity the output stays bounded), an optional nullspace pull towards a rest posture, joints
at a position limit locked when moving outwards, and uniform scaling so that no joint exceeds its
velocity limit or crosses a position limit within one tick (scaling keeps the twist's direction).
Twists are [vx, vy, vz, wx, wy, wz] (m/s, rad/s) of the end-effector origin, in the base frame.
No rclpy here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from rt_ros.runtime.errors import ConfigError

# Singular values below this fraction of the largest count as zero for the nullspace.
RANK_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ArmKinematicsConfig:
    """Solver settings; validated on construction."""

    # Damping (lambda) at a singularity; it falls to zero as the smallest singular value rises
    # to `singular_value_threshold` (Nakamura and Hanafusa's variable damping).
    max_damping: float = 0.05
    singular_value_threshold: float = 0.05
    # Nullspace pull towards `rest_q` (1/s: joint velocity per rad of posture error); 0: off.
    posture_gain_per_s: float = 0.0
    # A joint this close to a limit and moving outwards is stopped (rad or m).
    limit_margin: float = 0.01
    # Fraction of each URDF velocity limit used.
    velocity_limit_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_damping", "singular_value_threshold", "velocity_limit_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ConfigError(f"ArmKinematicsConfig.{name} must be > 0, got {value!r}")
        for name in ("posture_gain_per_s", "limit_margin"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"ArmKinematicsConfig.{name} must be >= 0, got {value!r}")


class ArmKinematics:
    """The arm chain base_frame -> ee_frame of a URDF; every other joint locked at zero."""

    def __init__(
        self,
        urdf: str,
        arm_joints: Sequence[str],
        base_frame: str,
        ee_frame: str,
        config: ArmKinematicsConfig | None = None,
        rest_q: Sequence[float] | None = None,
    ) -> None:
        self.config = config or ArmKinematicsConfig()
        full = pin.buildModelFromXML(urdf)
        missing = [name for name in arm_joints if not full.existJointName(name)]
        if missing:
            raise ConfigError(f"the URDF has no joints named {missing}")
        for frame in (base_frame, ee_frame):
            if not full.existFrame(frame):
                raise ConfigError(f"the URDF has no frame named {frame!r}")
        locked = [full.getJointId(name) for name in full.names[1:] if name not in arm_joints]
        self.model = pin.buildReducedModel(full, locked, pin.neutral(full))
        self.data = self.model.createData()
        self.joint_names = tuple(arm_joints)
        # Reduced-model joints keep the URDF order; index maps ours onto theirs.
        order = [self.model.getJointId(name) - 1 for name in self.joint_names]
        if any(self.model.joints[i + 1].nq != 1 for i in order):
            raise ConfigError("arm joints must be revolute or prismatic (one coordinate each)")
        self._order = np.array(order)
        self.lower = self.model.lowerPositionLimit[self._order].copy()
        self.upper = self.model.upperPositionLimit[self._order].copy()
        self.velocity_limit = (
            self.model.velocityLimit[self._order].copy() * self.config.velocity_limit_scale
        )
        self._base_id = self.model.getFrameId(base_frame)
        self._ee_id = self.model.getFrameId(ee_frame)
        self.rest_q = (
            np.clip(np.zeros(len(arm_joints)), self.lower, self.upper)
            if rest_q is None
            else np.asarray(rest_q, dtype=float)
        )
        if self.rest_q.shape != (len(arm_joints),):
            raise ConfigError(f"rest_q must have {len(arm_joints)} values, got {self.rest_q}")

    def _model_q(self, q: Sequence[float]) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if q.shape != (len(self.joint_names),):
            raise ValueError(f"q must have {len(self.joint_names)} values, got shape {q.shape}")
        model_q = np.empty(self.model.nq)
        model_q[self._order] = q
        return model_q

    def forward(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position [3] and rotation [3, 3] in the base frame."""
        pin.framesForwardKinematics(self.model, self.data, self._model_q(q))
        base = self.data.oMf[self._base_id]
        ee = self.data.oMf[self._ee_id]
        relative = base.actInv(ee)
        return relative.translation.copy(), relative.rotation.copy()

    def jacobian(self, q: Sequence[float]) -> np.ndarray:
        """[6, n]: joint velocities -> end-effector twist (origin velocity, base-frame axes)."""
        model_q = self._model_q(q)
        pin.computeJointJacobians(self.model, self.data, model_q)
        pin.updateFramePlacements(self.model, self.data)
        world = pin.getFrameJacobian(
            self.model, self.data, self._ee_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED
        )
        # The base frame is fixed in the reduced model: only the axes change.
        rotation_t = self.data.oMf[self._base_id].rotation.T
        jacobian = np.vstack((rotation_t @ world[:3], rotation_t @ world[3:]))
        return jacobian[:, self._order]

    def damping(self, smallest_singular_value: float) -> float:
        """Lambda for DLS: max_damping at a singularity, 0 beyond the threshold."""
        ratio = smallest_singular_value / self.config.singular_value_threshold
        if ratio >= 1.0:
            return 0.0
        return self.config.max_damping * math.sqrt(1.0 - ratio * ratio)

    def twist_to_joint_velocities(
        self, q: Sequence[float], twist: Sequence[float], dt_s: float
    ) -> np.ndarray:
        """Joint velocities [n] (rad/s or m/s) for a base-frame twist [6] over a tick of dt_s.

        Never exceeds a velocity limit, never moves a joint past a position limit within dt_s,
        never moves a joint at a limit further outwards.
        """
        if not (math.isfinite(dt_s) and dt_s > 0.0):
            raise ValueError(f"dt_s must be > 0, got {dt_s!r}")
        q = np.asarray(q, dtype=float)
        twist = np.asarray(twist, dtype=float)
        if twist.shape != (6,) or not np.all(np.isfinite(twist)):
            raise ValueError(f"twist must be 6 finite values, got {twist}")
        jacobian = self.jacobian(q)
        posture = self.config.posture_gain_per_s * (self.rest_q - q)
        free = np.ones(len(q), dtype=bool)
        margin = self.config.limit_margin
        for _ in range(len(q)):
            qdot = np.zeros(len(q))
            qdot[free] = self._solve(jacobian[:, free], twist, posture[free])
            outward = ((q >= self.upper - margin) & (qdot > 0.0)) | (
                (q <= self.lower + margin) & (qdot < 0.0)
            )
            if not outward.any():
                break
            free &= ~outward
        high = np.maximum(0.0, np.minimum(self.velocity_limit, (self.upper - q) / dt_s))
        low = np.minimum(0.0, np.maximum(-self.velocity_limit, (self.lower - q) / dt_s))
        scale = 1.0
        for value, lo, hi in zip(qdot, low, high, strict=True):
            if value > hi:
                scale = min(scale, hi / value)
            elif value < lo:
                scale = min(scale, lo / value)
        # The clip only removes rounding: the scale already keeps every joint inside.
        return np.clip(qdot * scale, low, high)

    def _solve(self, jacobian: np.ndarray, twist: np.ndarray, posture: np.ndarray) -> np.ndarray:
        if jacobian.shape[1] == 0:
            return np.zeros(0)
        u, singular, vt = np.linalg.svd(jacobian, full_matrices=False)
        damping = self.damping(float(singular[-1]) if len(singular) == 6 else 0.0)
        qdot = vt.T @ (singular / (singular**2 + damping**2) * (u.T @ twist))
        if self.config.posture_gain_per_s > 0.0:
            rows = vt[singular > RANK_TOLERANCE * singular[0]]
            qdot += posture - rows.T @ (rows @ posture)
        return qdot

    def manipulability(self, q: Sequence[float]) -> float:
        """Yoshikawa's manipulability sqrt(det(J J^T)): 0 at a singularity."""
        jacobian = self.jacobian(q)
        return float(math.sqrt(max(0.0, np.linalg.det(jacobian @ jacobian.T))))
