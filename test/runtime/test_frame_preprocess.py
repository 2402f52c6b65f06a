"""Frame checks and resizing to the model input."""

import numpy as np
import pytest

from rt_ros.runtime.errors import FrameError
from rt_ros.runtime.frame_preprocess import MAX_FRAME_SIDE_PX, resize_frame


def test_resizes_camera_frame_to_model_input():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 320:] = 200  # right half bright
    out = resize_frame(frame, 96, 128)
    assert out.shape == (1, 96, 128, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    assert out[0, :, :60].max() == 0
    assert out[0, :, 68:].min() == 200


def test_frame_of_model_size_passes_unchanged():
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    np.testing.assert_array_equal(resize_frame(frame, 4, 5)[0], frame)


def test_enlarges_small_frames():
    assert resize_frame(np.zeros((10, 10, 3), np.uint8), 64, 64).shape == (1, 64, 64, 3)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((48, 64, 3), np.float32), "dtype"),
        (np.zeros((48, 64), np.uint8), "shape"),
        (np.zeros((48, 64, 4), np.uint8), "3 channels"),
        (np.zeros((48, 64, 1), np.uint8), "3 channels"),
        (np.zeros((0, 64, 3), np.uint8), "empty"),
        (np.zeros((1, MAX_FRAME_SIDE_PX + 1, 3), np.uint8), "limit"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_frames_raise_frame_error_saying_what_is_wrong(frame, message):
    with pytest.raises(FrameError, match=message):
        resize_frame(frame, 32, 32)
