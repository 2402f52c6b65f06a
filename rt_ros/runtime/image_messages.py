"""sensor_msgs/Image and CompressedImage messages -> HxWx3 uint8 RGB arrays, without ROS.

The messages are duck-typed (fields `encoding`, `width`, `height`, `step`, `data`, `format`), so
the policy node's rclpy messages and messages decoded from a recorded bag go through the same
checks. Checks run on the header alone (O(1)) so a callback can count a bad message without
touching its pixels; conversion is a zero-copy `np.frombuffer` view plus one OpenCV call.
"""

from __future__ import annotations

import cv2
import numpy as np

from rt_ros.runtime.errors import FrameError
from rt_ros.runtime.frame_preprocess import MAX_FRAME_SIDE_PX

# encoding -> (channels, OpenCV conversion to RGB or None when already RGB)
ENCODINGS = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}


def check_image_msg(msg) -> None:
    """Raise FrameError if the header cannot describe a frame rt_ros can use."""
    if msg.encoding not in ENCODINGS:
        raise FrameError(
            f"unsupported image encoding {msg.encoding!r} (accepted: {', '.join(ENCODINGS)})"
        )
    if msg.width == 0 or msg.height == 0:
        raise FrameError(f"empty image: {msg.width}x{msg.height} px")
    if max(msg.width, msg.height) > MAX_FRAME_SIDE_PX:
        raise FrameError(
            f"image of {msg.width}x{msg.height} px exceeds the {MAX_FRAME_SIDE_PX} px limit "
            "per side"
        )
    channels, _ = ENCODINGS[msg.encoding]
    if msg.step < msg.width * channels:
        raise FrameError(
            f"image step {msg.step} is shorter than a row of {msg.width} px x {channels} bytes"
        )
    if len(msg.data) != msg.step * msg.height:
        raise FrameError(
            f"image data holds {len(msg.data)} bytes but step x height = "
            f"{msg.step} x {msg.height} = {msg.step * msg.height}"
        )


def image_msg_to_rgb(msg) -> np.ndarray:
    """A checked Image -> HxWx3 uint8 RGB (a view of the message's buffer when already rgb8)."""
    check_image_msg(msg)
    channels, conversion = ENCODINGS[msg.encoding]
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, : msg.width * channels].reshape(msg.height, msg.width, channels)
    if conversion is None:
        return pixels
    return cv2.cvtColor(pixels, conversion)


def compressed_msg_to_rgb(msg) -> np.ndarray:
    """A JPEG/PNG CompressedImage -> HxWx3 uint8 RGB; FrameError when it does not decode."""
    if len(msg.data) == 0:
        raise FrameError("empty compressed image")
    decoded = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise FrameError(f"compressed image ({msg.format or 'no format'}) does not decode")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
