"""Whether an episode through the nodes kept its timing, or measured an overloaded machine.

Through the nodes everything runs in real time: the simulated camera renders at its rate, the
policy node ticks at the control rate and the driver refuses commands whose stamps are too old.
On a machine with too little CPU for all of it the executor falls behind: frames reach the
policy stale, ticks stop the robot instead of stepping the model, commands arrive too late for
the driver, and the episode fails for reasons that have nothing to do with the model (two
episodes side by side on two cores did, before the sim camera got a render budget; with it,
the camera gives way instead, and older frames still cost the model). An episode's counters
say whether that happened; `rt-ros eval` reports the episodes it affected.

A healthy episode still shows a few of these at its start (the first frame queued while the
model loaded; the first, slower, inference), hence the allowances.
"""

from __future__ import annotations

from dataclasses import dataclass

# Ticks lost to the machine (stopped for lack of a fresh frame, held on a repeated frame, or
# never run) allowed before the episode is called degraded: this many, plus a share of the steps.
LOST_TICKS_ALLOWED = 2
LOST_TICK_SHARE_ALLOWED = 0.05
# Commands the driver may refuse as stale (the first inference is slower than the rest).
STALE_COMMANDS_ALLOWED = 2
# Camera frames delivered, as a share of the configured rate, below which the episode is
# degraded too: the sim backend's render budget lets the camera give way on a busy machine, and
# older frames cost the model (110 episodes two side by side, camera at a median 3.5 Hz of 10:
# 32 successes against 41 one at a time on the same seeds).
CAMERA_SHARE_REQUIRED = 0.7
# Episodes shorter than this are not judged on their camera rate (too few frames to tell).
CAMERA_MIN_WALL_S = 3.0


@dataclass(frozen=True)
class EpisodeTiming:
    """Counters of one episode through the nodes (all from its own, fresh nodes)."""

    steps: int  # model steps the policy node published
    stale_ticks: int  # control ticks that published a stop: no fresh frame
    held_ticks: int  # control ticks with no new frame since the last step (nothing published)
    missed_ticks: int  # control ticks that never ran
    frames_rejected_stale: int  # frames the policy node refused as too old on arrival
    commands_rejected_stale: int  # arm/base commands the driver refused as too old
    camera_frames: int  # head camera frames the recorder received
    camera_rate_hz: float  # the simulated camera's configured rate
    wall_time_s: float  # from the instruction to the end of the episode

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "stale_ticks",
            "held_ticks",
            "missed_ticks",
            "frames_rejected_stale",
            "commands_rejected_stale",
            "camera_frames",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"EpisodeTiming.{name} ({getattr(self, name)}) must be >= 0")
        if not (self.camera_rate_hz > 0 and self.wall_time_s >= 0):
            raise ValueError("EpisodeTiming needs camera_rate_hz > 0 and wall_time_s >= 0")

    @property
    def lost_ticks(self) -> int:
        """Control ticks that did not step the model on a new frame, for the machine's sake."""
        return self.stale_ticks + self.held_ticks + self.missed_ticks

    @property
    def camera_rate_achieved_hz(self) -> float:
        """Camera frames received per second of the episode (NaN for an instant episode)."""
        if self.wall_time_s <= 0:
            return float("nan")
        return self.camera_frames / self.wall_time_s

    def problems(self) -> list[str]:
        """What went wrong with the timing, in words; empty for a healthy episode."""
        found = []
        allowed = LOST_TICKS_ALLOWED + LOST_TICK_SHARE_ALLOWED * (self.steps + self.lost_ticks)
        if self.lost_ticks > allowed:
            found.append(
                f"{self.lost_ticks} control ticks lost ({self.stale_ticks} stopped for a stale "
                f"frame, {self.held_ticks} held on a repeated frame, {self.missed_ticks} never "
                f"ran) beside {self.steps} steps"
            )
        if self.commands_rejected_stale > STALE_COMMANDS_ALLOWED:
            found.append(f"the driver refused {self.commands_rejected_stale} commands as stale")
        achieved = self.camera_rate_achieved_hz
        if (
            self.wall_time_s >= CAMERA_MIN_WALL_S
            and achieved < CAMERA_SHARE_REQUIRED * self.camera_rate_hz
        ):
            found.append(f"camera frames arrived at {achieved:.1f} Hz of {self.camera_rate_hz:g}")
        return found

    @property
    def degraded(self) -> bool:
        """True when the machine, not the model, may have decided the episode."""
        return bool(self.problems())


__all__ = ["EpisodeTiming"]
