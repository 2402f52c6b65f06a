"""The head camera: offscreen RGB frames and pinhole intrinsics in CameraInfo form.

Rendering needs an OpenGL backend chosen before mujoco is first imported: MUJOCO_GL=egl on a
GPU machine, MUJOCO_GL=osmesa (Debian: libosmesa6) on a machine without a display.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from rt_ros.sim.robot_description import HEAD_CAMERA_OPTICAL_FRAME
from rt_ros.sim.scene import HEAD_CAMERA


@dataclass(frozen=True)
class CameraConfig:
    """Image size of the head camera (pixels), whether it renders shadows (OSMesa draws frames
    about twice as fast without them) and whether it multisamples (anti-aliased edges; without,
    a 320x256 frame took 35 ms here instead of 59 ms, and its pixels differ by 0.65 grey levels
    on average once resized to 128 px)."""

    width_px: int = 320
    height_px: int = 256
    shadows: bool = True
    multisample: bool = True

    def __post_init__(self) -> None:
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 16 <= value <= 4096):
                raise ValueError(f"CameraConfig.{name} ({value!r}) must be an int in [16, 4096]")


def intrinsic_matrix(width_px: int, height_px: int, fovy_deg: float) -> np.ndarray:
    """The 3x3 pinhole matrix K of a MuJoCo camera (square pixels, centred principal point).

    Pixel coordinates follow OpenCV / sensor_msgs/CameraInfo: (0, 0) is the centre of the
    top-left pixel, so the principal point is ((W - 1) / 2, (H - 1) / 2).
    """
    focal = (height_px / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array(
        [
            [focal, 0.0, (width_px - 1) / 2.0],
            [0.0, focal, (height_px - 1) / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )


class HeadCamera:
    """Renders the head camera of a compiled kitchen model into uint8 RGB frames."""

    def __init__(self, model: mujoco.MjModel, config: CameraConfig | None = None) -> None:
        self.config = config or CameraConfig()
        self.model = model
        self._camera = model.camera(HEAD_CAMERA).id
        self._renderer: mujoco.Renderer | None = None
        self._release: weakref.finalize | None = None

    @property
    def camera_id(self) -> int:
        """The head camera's MuJoCo camera id."""
        return self._camera

    @property
    def fovy_deg(self) -> float:
        return float(self.model.cam_fovy[self._camera])

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """The current view, [height, width, 3] uint8 RGB."""
        if self._renderer is None:
            if not self.config.multisample:
                # Read when the renderer makes its offscreen buffer.
                self.model.vis.quality.offsamples = 0
            self._renderer = mujoco.Renderer(
                self.model, height=self.config.height_px, width=self.config.width_px
            )
            # Freed with this camera, or at exit while the interpreter still works: a renderer
            # left to its own __del__ at shutdown fails there (OpenGL's modules already gone).
            self._release = weakref.finalize(self, self._renderer.close)
        self._renderer.update_scene(data, camera=self._camera)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self.config.shadows
        return self._renderer.render()

    def close(self) -> None:
        """Free the OpenGL context."""
        if self._release is not None:
            self._release()
        self._renderer = self._release = None

    def intrinsics(self) -> np.ndarray:
        """The 3x3 matrix K for this camera's size and field of view."""
        return intrinsic_matrix(self.config.width_px, self.config.height_px, self.fovy_deg)

    def project(self, data: mujoco.MjData, points_world: np.ndarray) -> np.ndarray:
        """Pixel coordinates [N, 2] (u right, v down; the CameraInfo convention of
        `intrinsics`) of world points [N, 3] in the current view; a point behind the camera
        raises ValueError."""
        points = np.atleast_2d(np.asarray(points_world, dtype=float))
        position = data.cam_xpos[self._camera]
        rotation = data.cam_xmat[self._camera].reshape(3, 3)
        # MuJoCo's camera frame looks down its -z with y up; the optical frame, down z, y down.
        in_camera = (points - position) @ rotation
        optical = in_camera * np.array([1.0, -1.0, -1.0])
        if np.any(optical[:, 2] <= 0):
            raise ValueError("a point to project lies behind the head camera")
        pixels = optical @ self.intrinsics().T
        return pixels[:, :2] / pixels[:, 2:3]

    def camera_info(self) -> dict[str, Any]:
        """Fields of a sensor_msgs/CameraInfo for this camera, as plain numbers (no ROS)."""
        k = self.intrinsics()
        projection = np.hstack((k, np.zeros((3, 1))))
        return {
            "frame_id": HEAD_CAMERA_OPTICAL_FRAME,
            "width": self.config.width_px,
            "height": self.config.height_px,
            "distortion_model": "plumb_bob",
            "d": [0.0] * 5,
            "k": k.reshape(9).tolist(),
            "r": np.eye(3).reshape(9).tolist(),
            "p": projection.reshape(12).tolist(),
        }

    def __enter__(self) -> HeadCamera:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
