"""`rt-ros sim-bench`: how fast the kitchen simulates and renders on this machine.

Only argparse and rich are imported at module level; MuJoCo is loaded when the command runs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class SimBenchmark:
    """Measured rates: bare physics, physics with the arm controller, head-camera frames."""

    physics_steps_per_s: float
    physics_real_time_factor: float
    controlled_real_time_factor: float
    camera_frames_per_s: float | None
    camera_size_px: tuple[int, int]
    shadows: bool
    timestep_s: float


def measure(
    seconds_simulated: float = 10.0,
    frames: int = 60,
    width_px: int = 320,
    height_px: int = 256,
    render: bool = True,
    shadows: bool = True,
) -> SimBenchmark:
    """Time a pick layout (seed 0): bare mj_step, SimWorld.step under a moving arm command,
    and `frames` head-camera renders at the given size."""
    import mujoco
    import numpy as np

    from rt_ros.sim.camera import CameraConfig
    from rt_ros.sim.world import SimWorld, WorldConfig

    camera = CameraConfig(width_px=width_px, height_px=height_px, shadows=shadows)
    world = SimWorld(WorldConfig(camera=camera))
    world.reset(0, "pick")
    timestep = world.model.opt.timestep
    steps = round(seconds_simulated / timestep)
    start = time.perf_counter()
    mujoco.mj_step(world.model, world.data, nstep=steps)
    physics_s = time.perf_counter() - start

    world.reset(0, "pick")
    start = time.perf_counter()
    period_s = 1.0 / 3.0
    ticks = round(seconds_simulated / period_s)
    for tick in range(ticks):
        # A slow circle above the counter keeps the IK and the servos busy.
        phase = 2.0 * np.pi * tick / 12.0
        world.apply([0.05 * np.cos(phase), 0.05 * np.sin(phase), 0.0, 0.0, 0.0, 0.1], [0] * 3, 0)
        world.step(period_s)
    controlled_s = time.perf_counter() - start

    camera_fps = None
    if render:
        world.render()  # the first frame creates the OpenGL context
        start = time.perf_counter()
        for _ in range(frames):
            world.render()
        camera_fps = frames / (time.perf_counter() - start)
        world.close()
    return SimBenchmark(
        physics_steps_per_s=steps / physics_s,
        physics_real_time_factor=steps * timestep / physics_s,
        controlled_real_time_factor=ticks * period_s / controlled_s,
        camera_frames_per_s=camera_fps,
        camera_size_px=(width_px, height_px),
        shadows=shadows,
        timestep_s=timestep,
    )


def _cmd_sim_bench(args: argparse.Namespace) -> int:
    result = measure(
        args.seconds, args.frames, args.width, args.height, not args.no_render, not args.no_shadows
    )
    table = Table(title="MuJoCo kitchen on this machine")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("physics timestep", f"{1000 * result.timestep_s:g} ms")
    table.add_row("physics steps/s (bare mj_step)", f"{result.physics_steps_per_s:,.0f}")
    table.add_row("real-time factor, bare physics", f"{result.physics_real_time_factor:.1f}x")
    table.add_row(
        "real-time factor, with IK + servos", f"{result.controlled_real_time_factor:.1f}x"
    )
    if result.camera_frames_per_s is not None:
        width, height = result.camera_size_px
        shadows = "with" if result.shadows else "without"
        table.add_row(
            f"head camera {width}x{height} frames/s ({shadows} shadows)",
            f"{result.camera_frames_per_s:.1f}",
        )
    Console(width=140).print(table)
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add `sim-bench` to the `rt-ros` command's subparsers."""
    parser = subparsers.add_parser(
        "sim-bench", help="physics steps/s, real-time factor and camera frames/s of the sim"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="simulated seconds timed")
    parser.add_argument("--frames", type=int, default=60, help="camera frames timed")
    parser.add_argument("--width", type=int, default=320, help="camera width (px)")
    parser.add_argument("--height", type=int, default=256, help="camera height (px)")
    parser.add_argument("--no-render", action="store_true", help="skip the camera")
    parser.add_argument("--no-shadows", action="store_true", help="render without shadows")
    parser.set_defaults(func=_cmd_sim_bench)
