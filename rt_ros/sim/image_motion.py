"""How far a point's image moves, in the model's input pixels, per centimetre of motion.

A policy reads positions off the head camera's frames, resized to the model's input. Where a
centimetre of motion moves the image by about a pixel, or two directions of motion move it
along nearly the same image direction, the frame alone cannot tell them apart; this says how
much of either holds at a point (`rt-ros grasp-precision` reports it at the targets).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from rt_ros.sim.world import SimWorld

_CM = 0.01


@dataclass(frozen=True)
class ImageMotion:
    """Image motion per centimetre along the robot base's forward (x) and lateral (y) axes and
    straight up, at one point, in the model's input pixels."""

    forward_px_per_cm: float
    lateral_px_per_cm: float
    up_px_per_cm: float
    # The angle between the image directions of forward and upward motion: near zero, a point
    # further forward looks like one higher up.
    forward_up_angle_deg: float
    # How far below horizontal the line of sight to the point falls. Motion along it does not
    # move the image at all: further forward by 1 cm and lower by tan(this) cm look the same,
    # told apart only by the apparent size and the shadow.
    line_of_sight_elevation_deg: float

    def to_dict(self) -> dict[str, float]:
        return {name: round(value, 3) for name, value in asdict(self).items()}


def image_motion_per_cm(
    world: SimWorld, point_world: np.ndarray, input_size_px: tuple[int, int]
) -> ImageMotion:
    """Image motion of a world point seen by the head camera, in a frame resized to
    `input_size_px` (height, width) as the policy resizes it."""
    height_px, width_px = input_size_px
    if height_px < 1 or width_px < 1:
        raise ValueError(f"input_size_px ({input_size_px!r}) must be positive")
    camera = world.camera
    scale = np.array([width_px / camera.config.width_px, height_px / camera.config.height_px])
    _, base_rotation = world.base_pose_world()
    directions = {
        "forward": base_rotation[:, 0],
        "lateral": base_rotation[:, 1],
        "up": np.array([0.0, 0.0, 1.0]),
    }
    point = np.asarray(point_world, dtype=float)
    moved = np.stack([point] + [point + _CM * d for d in directions.values()])
    pixels = camera.project(world.data, moved) * scale
    shifts = dict(zip(directions, pixels[1:] - pixels[0], strict=True))
    forward, up = shifts["forward"], shifts["up"]
    cosine = float(forward @ up) / float(np.linalg.norm(forward) * np.linalg.norm(up))
    sight = base_rotation.T @ (point - world.data.cam_xpos[camera.camera_id])
    elevation = math.degrees(math.atan2(-sight[2], math.hypot(sight[0], sight[1])))
    return ImageMotion(
        forward_px_per_cm=float(np.linalg.norm(forward)),
        lateral_px_per_cm=float(np.linalg.norm(shifts["lateral"])),
        up_px_per_cm=float(np.linalg.norm(up)),
        forward_up_angle_deg=math.degrees(math.acos(min(1.0, abs(cosine)))),
        line_of_sight_elevation_deg=elevation,
    )


def median_image_motion(motions: list[ImageMotion]) -> ImageMotion:
    """Each figure's median over several points (layouts)."""
    if not motions:
        raise ValueError("no image motion to take the median of")
    return ImageMotion(
        **{
            name: float(np.median([getattr(motion, name) for motion in motions]))
            for name in asdict(motions[0])
        }
    )


__all__ = ["ImageMotion", "image_motion_per_cm", "median_image_motion"]
