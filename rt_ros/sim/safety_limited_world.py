"""The driver's safety layer between an episode's actions and the simulated world, without ROS.

Through the nodes, every command passes the driver's `SafetyLayer` (speed clamps, acceleration
limits, workspace box, command timeout) at the driver's update rate before the simulator sees it.
`run_episode` applies each tick's motion to the world at once; given the driver's limits it runs
them through this instead, on simulated time, so a direct evaluation moves as the robot does
behind the driver (`rt-ros eval --direct --driver-limits`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from rt_ros.nodes.commands import ArmCommand, BaseCommand
from rt_ros.nodes.safety import SafetyLayer, SafetyLimits
from rt_ros.runtime.action_motion import Motion
from rt_ros.runtime.errors import ConfigError
from rt_ros.sim.world import SimWorld

# config/driver.yaml's update_rate_hz: how often the driver runs its safety layer.
DRIVER_UPDATE_RATE_HZ = 50.0
DRIVER_NODE = "driver_node"


def driver_limits_from_params(paths: list[Path], node_name: str = DRIVER_NODE) -> SafetyLimits:
    """The safety limits a driver started with these `--params-file`s runs under (later files
    override earlier ones, as in rcl); parameters the files leave out keep the defaults."""
    names = {f"/**/{node_name}", f"/{node_name}", node_name}
    limit_fields = SafetyLimits.__dataclass_fields__
    values: dict = {}
    for path in paths:
        try:
            sections = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"driver parameter file {str(path)!r}: {error}") from error
        for key, section in sections.items() if isinstance(sections, dict) else ():
            if key in names and isinstance(section, dict):
                parameters = section.get("ros__parameters") or {}
                values.update({k: v for k, v in parameters.items() if k in limit_fields})
    return SafetyLimits(**values)


def sim_driver_limits() -> SafetyLimits:
    """The limits `rt-ros demo` and `sim.launch.py` give the simulated robot's driver."""
    from rt_ros.paths import config_dir

    return driver_limits_from_params([config_dir() / "driver.yaml", config_dir() / "sim.yaml"])


class SafetyLimitedWorld:
    """A `SimWorld` driven through a `SafetyLayer` updated every 1/`update_rate_hz` s of sim time.

    `apply(motion)` submits one tick's motion as the policy node's commands (stamped now);
    `step(duration_s)` advances physics in update ticks, each sending what the layer allows, as
    the driver node and its sim backend do in real time.
    """

    def __init__(
        self,
        world: SimWorld,
        limits: SafetyLimits,
        update_rate_hz: float = DRIVER_UPDATE_RATE_HZ,
    ) -> None:
        if not update_rate_hz > 0:
            raise ValueError(f"update_rate_hz ({update_rate_hz!r}) must be > 0")
        self.world = world
        self._update_period_s = 1.0 / update_rate_hz
        # The driver is active and ticking before the first command arrives, so that command's
        # first update is credited one update period of acceleration, as on the robot.
        self.layer = SafetyLayer(limits)
        before_s = world.state().time_s - self._update_period_s
        self.layer.enable(before_s)
        self.layer.update(before_s)
        self._arm = np.zeros(6)
        self._base = np.zeros(3)
        self._gripper = -1.0  # the sim's gripper starts open; the first command replaces it

    def apply(self, motion: Motion) -> None:
        now_s = self.world.state().time_s
        self.layer.set_mode(motion.mode)
        arm, base = motion.arm_twist, motion.base_twist
        self.layer.submit_arm(ArmCommand(tuple(arm[:3]), tuple(arm[3:]), now_s), now_s)
        base_command = BaseCommand((base[0], base[1], 0.0), (0.0, 0.0, base[2]), now_s)
        self.layer.submit_base(base_command, now_s)
        self.layer.submit_gripper(motion.gripper_closedness, now_s)

    def step(self, duration_s: float) -> None:
        """Advance `duration_s` of sim time in driver update ticks (the last one shorter)."""
        if not duration_s >= 0:
            raise ValueError(f"step: duration_s ({duration_s!r}) must be >= 0")
        remaining_s = duration_s
        while remaining_s > 1e-9:
            tick_s = min(self._update_period_s, remaining_s)
            self._update()
            self.world.step(tick_s)
            remaining_s -= tick_s

    def _update(self) -> None:
        state = self.world.state()
        output = self.layer.update(state.time_s, tuple(float(v) for v in state.ee_position_m))
        if output is None:
            return
        if output.is_stop:
            self._arm, self._base = np.zeros(6), np.zeros(3)
            self.world.stop()
            return
        if output.arm is not None:
            self._arm = np.array(output.arm.values())
        if output.base is not None:
            linear, angular = output.base.linear_mps, output.base.angular_rps
            self._base = np.array((linear[0], linear[1], angular[2]))
        if output.gripper is not None:
            self._gripper = output.gripper
        self.world.apply(self._arm, self._base, self._gripper)


__all__ = [
    "DRIVER_UPDATE_RATE_HZ",
    "SafetyLimitedWorld",
    "driver_limits_from_params",
    "sim_driver_limits",
]
