"""Checks an RGB camera frame and resizes it to the model's input, with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

from rt_ros.runtime.errors import FrameError

# The largest frame accepted (a 8K camera); anything bigger is a corrupt message, not a camera.
MAX_FRAME_SIDE_PX = 8192


def check_rgb_frame(frame: object) -> np.ndarray:
    """Return the frame if it is HxWx3 uint8 RGB, else raise FrameError saying what is off."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype must be uint8 (RGB 0-255), got {frame.dtype}")
    if frame.ndim != 3:
        raise FrameError(f"frame must have shape (height, width, 3), got shape {frame.shape}")
    height_px, width_px, channels = frame.shape
    if channels != 3:
        raise FrameError(f"frame must have 3 channels (RGB), got {channels}")
    if height_px == 0 or width_px == 0:
        raise FrameError(f"frame is empty: shape {frame.shape}")
    if max(height_px, width_px) > MAX_FRAME_SIDE_PX:
        raise FrameError(
            f"frame of {width_px}x{height_px} px exceeds the {MAX_FRAME_SIDE_PX} px limit per side"
        )
    return frame


def resize_frame(frame: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """Checked frame -> [1, height_px, width_px, 3] uint8, the frame encoder's input.

    Area interpolation when shrinking (no aliasing), bilinear when enlarging.
    """
    frame = check_rgb_frame(frame)
    if frame.shape[:2] != (height_px, width_px):
        shrinking = frame.shape[0] * frame.shape[1] > height_px * width_px
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (width_px, height_px), interpolation=interpolation)
    return np.ascontiguousarray(frame)[np.newaxis]
