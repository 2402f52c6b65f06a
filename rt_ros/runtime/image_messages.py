"""sensor_msgs/Image and CompressedImage messages -> HxWx3 uint8 RGB arrays, without ROS.

The messages are duck-typed (fields `encoding`, `width`, `height`, `step`, `data`, `format`), so
the policy node's rclpy messages and messages decoded from a recorded bag go through the same
checks. Checks run on the header alone so a callback can count a bad message without touching
its pixels: for a raw Image the fields, for a JPEG/PNG CompressedImage the size its own header
declares, so a tiny file claiming 30000x30000 px is refused before a decoder allocates for it.
Conversion is a zero-copy `np.frombuffer` view plus one OpenCV call.
"""

from __future__ import annotations

import zlib

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
# Bytes per pixel of the widest accepted encoding: raw data beyond max_pixels x this is refused.
MAX_BYTES_PER_PIXEL = max(channels for channels, _ in ENCODINGS.values())
# The default frame-size limit: 4K UHD, above any robot camera's mode (8.3 Mpx, 25 MB as rgb8).
DEFAULT_MAX_FRAME_PIXELS = 3840 * 2160

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
# JPEG frame headers (SOF0-SOF15 but DHT, JPG and DAC): they carry the image size.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers without a length field: TEM and the restart markers RST0-RST7.
_JPEG_BARE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SCAN, _JPEG_EOI = 0xDA, 0xD9
# A JPEG's frame header follows its metadata segments (EXIF, ICC profile, tables), a few segments
# of at most 64 KiB each: the header search reads no further than this.
_HEADER_SEARCH_BYTES = 1 << 20
# Zero padding a camera may leave after the end marker (a fixed-size buffer): up to this much.
_END_SEARCH_BYTES = 4096


class OversizedFrameError(FrameError):
    """A frame larger than the configured limit: refused from its header, never converted."""


def check_frame_size(width_px: int, height_px: int, max_pixels: int) -> None:
    """Raise OversizedFrameError if a width x height frame exceeds `max_pixels` or a side limit."""
    if width_px * height_px > max_pixels or max(width_px, height_px) > MAX_FRAME_SIDE_PX:
        raise OversizedFrameError(
            f"image of {width_px}x{height_px} px exceeds the limit of {max_pixels} px "
            f"(max_frame_pixels) and {MAX_FRAME_SIDE_PX} px per side"
        )


def check_image_msg(msg, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS) -> None:
    """Raise FrameError if the header cannot describe a frame rt_ros can use
    (OversizedFrameError when only its size is to blame)."""
    if msg.encoding not in ENCODINGS:
        raise FrameError(
            f"unsupported image encoding {msg.encoding!r} (accepted: {', '.join(ENCODINGS)})"
        )
    if msg.width == 0 or msg.height == 0:
        raise FrameError(f"empty image: {msg.width}x{msg.height} px")
    check_frame_size(msg.width, msg.height, max_pixels)
    channels, _ = ENCODINGS[msg.encoding]
    if msg.step < msg.width * channels:
        raise FrameError(
            f"image step {msg.step} is shorter than a row of {msg.width} px x {channels} bytes"
        )
    if msg.step * msg.height > max_pixels * MAX_BYTES_PER_PIXEL:
        raise OversizedFrameError(
            f"image rows of {msg.step} bytes x {msg.height} exceed the "
            f"{max_pixels * MAX_BYTES_PER_PIXEL} bytes a frame of max_frame_pixels may take"
        )
    if len(msg.data) != msg.step * msg.height:
        raise FrameError(
            f"image data holds {len(msg.data)} bytes but step x height = "
            f"{msg.step} x {msg.height} = {msg.step * msg.height}"
        )


def image_msg_to_rgb(msg, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS) -> np.ndarray:
    """A checked Image -> HxWx3 uint8 RGB (a view of the message's buffer when already rgb8)."""
    check_image_msg(msg, max_pixels)
    channels, conversion = ENCODINGS[msg.encoding]
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, : msg.width * channels].reshape(msg.height, msg.width, channels)
    if conversion is None:
        return pixels
    return cv2.cvtColor(pixels, conversion)


def compressed_image_size(data: bytes) -> tuple[int, int]:
    """(width, height) in px that a JPEG or PNG declares in its header, without decoding it.

    OpenCV can only decode a whole image and Pillow is not a dependency, so the two header
    fields are read here: PNG's IHDR chunk, which the format puts first, and the first JPEG
    frame header (SOFn) among the segments before the image data. FrameError for anything else.
    """
    data = bytes(data[:_HEADER_SEARCH_BYTES])
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise FrameError("PNG without an IHDR header chunk")
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(_JPEG_START):
        return _jpeg_frame_size(data)
    raise FrameError(f"compressed image is neither JPEG nor PNG (starts with {data[:4].hex()})")


def _jpeg_frame_size(data: bytes) -> tuple[int, int]:
    position = len(_JPEG_START)
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise FrameError(f"JPEG has no marker at byte {position} of its header")
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_BARE_MARKERS:
            position += 2
            continue
        if marker in (_JPEG_SCAN, _JPEG_EOI):
            break
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _JPEG_FRAME_MARKERS:
            if position + 9 > len(data) or length < 7:
                break
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            if height == 0:  # height given later by a DNL marker: not a camera frame
                raise FrameError("JPEG frame header declares no height")
            return width, height
        if length < 2:
            raise FrameError(f"JPEG segment at byte {position} has a bad length {length}")
        position += 2 + length
    raise FrameError("JPEG has no frame header (SOF) before its image data")


def check_compressed_msg(msg, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS) -> tuple[int, int]:
    """(width, height) of a complete JPEG/PNG within the size limit, from its header alone.

    A file must end with its format's end marker (EOI, IEND; up to 4 KiB of zero padding may
    follow): a truncated frame is refused here rather than by a decoder that prints to stderr.
    """
    if len(msg.data) == 0:
        raise FrameError("empty compressed image")
    width, height = compressed_image_size(msg.data)
    if width == 0 or height == 0:
        raise FrameError(f"compressed image declares an empty size: {width}x{height} px")
    check_frame_size(width, height, max_pixels)
    tail = bytes(msg.data[-_END_SEARCH_BYTES:]).rstrip(b"\x00")
    if not tail.endswith(_JPEG_END if bytes(msg.data[:2]) == _JPEG_START else _PNG_END):
        raise FrameError(
            f"compressed image ({msg.format or 'no format'}) is truncated: no end marker"
        )
    return width, height


def compressed_msg_to_rgb(msg, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS) -> np.ndarray:
    """A JPEG/PNG CompressedImage -> HxWx3 uint8 RGB; FrameError when it does not decode.

    The declared size is checked first, so decoding allocates at most max_pixels x 3 bytes. A
    PNG's chunk checksums are verified before libpng sees it: libpng prints every error to
    stderr, once per frame. (libjpeg does the same for a complete JPEG with corrupt data, which
    it repairs and decodes; OpenCV offers no way to silence either.)
    """
    width, height = check_compressed_msg(msg, max_pixels)
    if bytes(msg.data[:8]) == _PNG_SIGNATURE:
        _check_png_chunks(memoryview(msg.data).cast("B"))
    decoded = cv2.imdecode(
        np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    if decoded is None:
        raise FrameError(f"compressed image ({msg.format or 'no format'}) does not decode")
    if decoded.shape[:2] != (height, width):
        raise FrameError(
            f"compressed image decoded to {decoded.shape[1]}x{decoded.shape[0]} px but its "
            f"header declares {width}x{height}"
        )
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB, dst=decoded)


def _check_png_chunks(data: memoryview) -> None:
    """FrameError unless every chunk up to IEND fits in the file and matches its CRC-32."""
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 8 + length
        if end + 4 > len(data):
            break
        kind = bytes(data[position + 4 : position + 8])
        if zlib.crc32(data[position + 4 : end]) != int.from_bytes(data[end : end + 4], "big"):
            raise FrameError(f"PNG chunk {kind.decode('latin-1')!r} fails its CRC: corrupt data")
        if kind == b"IEND":
            return
        position = end + 4
    raise FrameError("PNG chunks run past the end of the file: truncated")
