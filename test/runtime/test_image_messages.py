"""Image and CompressedImage checks without ROS: sizes read from JPEG/PNG headers (so a
decompression bomb is refused before decoding), truncation, the frame-size limit, raw headers."""

from __future__ import annotations

import struct
import time
import zlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from rt_ros.runtime.errors import FrameError
from rt_ros.runtime.image_messages import (
    DEFAULT_MAX_FRAME_PIXELS,
    OversizedFrameError,
    check_compressed_msg,
    check_image_msg,
    compressed_image_size,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
)

BOMB_SIDE_PX = 30_000


def frame(height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)


def encoded(extension: str, image: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(extension, image, list(params))
    assert ok
    return data.tobytes()


def compressed(data: bytes, fmt: str = "jpeg") -> SimpleNamespace:
    return SimpleNamespace(data=data, format=fmt)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side_px: int = BOMB_SIDE_PX) -> bytes:
    """A valid PNG header declaring side x side rgb8 px, with a few rows of zeros as data."""
    header = struct.pack(">IIBBBBB", side_px, side_px, 8, 2, 0, 0, 0)
    rows = zlib.compress(bytes((side_px * 3 + 1) * 4))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def jpeg_bomb(side_px: int = BOMB_SIDE_PX) -> bytes:
    """A small real JPEG whose frame header is rewritten to declare side x side px."""
    data = bytearray(encoded(".jpg", frame(8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side_px, side_px)
    return bytes(data)


@pytest.mark.parametrize(
    ("extension", "params"),
    [
        (".jpg", ()),
        (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        (".png", ()),
    ],
)
def test_sizes_come_from_the_header_and_decoding_gives_rgb(extension, params):
    image = frame(48, 64)
    data = encoded(extension, image, *params)
    assert compressed_image_size(data) == (64, 48)
    rgb = compressed_msg_to_rgb(compressed(data))
    assert rgb.shape == (48, 64, 3)
    if extension == ".png":  # lossless: OpenCV encoded BGR, the message decodes to RGB
        np.testing.assert_array_equal(rgb, image[..., ::-1])


def test_jpeg_with_metadata_segments_before_the_frame_header():
    data = encoded(".jpg", frame())
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 1000) + bytes(1000)
    with_comment = data[:2] + comment + data[2:]
    assert compressed_image_size(with_comment) == (64, 48)
    assert compressed_msg_to_rgb(compressed(with_comment)).shape == (48, 64, 3)


@pytest.mark.parametrize("bomb", [jpeg_bomb, png_bomb], ids=["jpeg", "png"])
def test_decompression_bombs_are_refused_from_the_header_without_decoding(bomb):
    data = bomb()
    assert len(data) < 1_000_000
    assert compressed_image_size(data) == (BOMB_SIDE_PX, BOMB_SIDE_PX)
    started = time.monotonic()
    with pytest.raises(OversizedFrameError, match="30000x30000"):
        compressed_msg_to_rgb(compressed(data))
    # Decoding would take seconds and gigabytes; refusing reads a few header bytes (generous).
    assert time.monotonic() - started < 1.0


def test_the_limit_is_a_parameter():
    data = encoded(".png", frame(48, 64))
    assert check_compressed_msg(compressed(data), max_pixels=48 * 64) == (64, 48)
    with pytest.raises(OversizedFrameError, match="limit of 3071 px"):
        check_compressed_msg(compressed(data), max_pixels=48 * 64 - 1)


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_truncated_files_are_refused_before_decoding(extension):
    data = encoded(extension, frame())
    for length in (len(data) // 2, len(data) - 3):
        with pytest.raises(FrameError, match="truncated"):
            compressed_msg_to_rgb(compressed(data[:length]))


def test_zero_padding_after_the_end_marker_is_accepted():
    data = encoded(".jpg", frame()) + bytes(100)
    assert compressed_msg_to_rgb(compressed(data)).shape == (48, 64, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a" + bytes(100), "neither JPEG nor PNG"),
        (bytes(range(256)), "neither JPEG nor PNG"),
        (b"\xff\xd8\xff\xda" + bytes(60) + b"\xff\xd9", "no frame header"),
        (b"\xff\xd8\x12\x34" + bytes(60) + b"\xff\xd9", "no marker"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "IHDR"),
    ],
)
def test_garbage_is_refused_with_a_reason(data, message):
    with pytest.raises(FrameError, match=message):
        compressed_msg_to_rgb(compressed(data))


def test_a_png_with_broken_data_fails_its_checksum_before_decoding(capfd):
    data = bytearray(encoded(".png", frame()))
    idat = data.index(b"IDAT")
    data[idat + 4 : idat + 40] = bytes(36)  # the compressed rows broken, their CRC kept
    with pytest.raises(FrameError, match="'IDAT' fails its CRC"):
        compressed_msg_to_rgb(compressed(bytes(data), "png"))
    assert "libpng" not in capfd.readouterr().err  # libpng never saw it


def test_a_png_whose_data_is_garbage_with_valid_checksums_does_not_decode():
    image = encoded(".png", frame())
    idat = image.index(b"IDAT") - 4
    length = int.from_bytes(image[idat : idat + 4], "big")
    garbage = png_chunk(b"IDAT", bytes(range(256)) * (length // 256 + 1))
    data = image[:idat] + garbage + image[idat + 12 + length :]
    with pytest.raises(FrameError, match="does not decode"):
        compressed_msg_to_rgb(compressed(data, "png"))


def raw(encoding="rgb8", width=8, height=4, step=None, data_len=None) -> SimpleNamespace:
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "mono8": 1}.get(encoding, 3)
    step = step if step is not None else width * channels
    return SimpleNamespace(
        encoding=encoding,
        width=width,
        height=height,
        step=step,
        data=bytes(data_len if data_len is not None else step * height),
    )


def test_raw_frames_larger_than_the_limit_are_oversized():
    assert DEFAULT_MAX_FRAME_PIXELS == 3840 * 2160
    check_image_msg(raw(width=3840, height=2160))
    with pytest.raises(OversizedFrameError, match="7680x4320"):
        check_image_msg(raw(width=7680, height=4320, data_len=10))  # refused before its data
    with pytest.raises(OversizedFrameError):
        check_image_msg(raw(width=64, height=48), max_pixels=64 * 48 - 1)
    # Rows padded far beyond their pixels would make a small frame take any memory.
    with pytest.raises(OversizedFrameError, match="bytes a frame"):
        check_image_msg(raw(width=4, height=4, step=100), max_pixels=16)


@pytest.mark.parametrize(
    ("msg", "message"),
    [
        (raw(encoding="yuv422_custom"), "unsupported image encoding"),
        (raw(width=0, height=0, data_len=0), "empty image"),
        (raw(step=4), "step 4 is shorter"),
        (raw(data_len=10), "data holds 10 bytes"),
    ],
)
def test_bad_raw_headers_are_frame_errors_but_not_oversized(msg, message):
    with pytest.raises(FrameError, match=message) as raised:
        check_image_msg(msg)
    assert not isinstance(raised.value, OversizedFrameError)


def test_raw_conversion_views_rgb8_and_converts_the_others():
    image = frame(4, 8)
    msg = raw()
    msg.data = image.tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(msg), image)
    msg.encoding, msg.data = "bgr8", image[..., ::-1].tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(msg), image)
