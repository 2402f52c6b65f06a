"""OpenVLA's `POST /act` wire format: JSON whose arrays are json_numpy objects.

OpenVLA's deploy.py takes {"image": array, "instruction": str, "unnorm_key": optional} (possibly
double-encoded under "encoded") and answers the 7-D action array; json_numpy writes an array as
{"__numpy__": base64 of its bytes, "dtype": numpy dtype string, "shape": [...]}. Plain nested
lists are accepted too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from rt_ros.runtime.errors import RtRosError

NUMPY_KEY = "__numpy__"
# What an image or action array may be sent as; anything else (objects, strings) is refused.
_ALLOWED_DTYPES = frozenset({"|u1", "<u1", "<f4", "<f8", "<f2", "<i8", "<i4"})


class ArrayFieldError(RtRosError, ValueError):
    """A JSON field meant to hold an array does not; the message names the field."""


def array_to_json(array: np.ndarray) -> dict[str, Any]:
    """An array as json_numpy writes it."""
    array = np.ascontiguousarray(array)
    return {
        NUMPY_KEY: base64.b64encode(array.tobytes()).decode("ascii"),
        "dtype": array.dtype.str,
        "shape": list(array.shape),
    }


def array_from_json(value: Any, field: str, max_elements: int) -> np.ndarray:
    """A json_numpy object or nested list -> array, at most `max_elements` values."""
    if isinstance(value, dict):
        if set(value) != {NUMPY_KEY, "dtype", "shape"}:
            raise ArrayFieldError(
                f"{field}: a json_numpy array has exactly the keys {NUMPY_KEY}, dtype, shape; "
                f"got {sorted(value)}"
            )
        dtype, shape = value["dtype"], value["shape"]
        if dtype not in _ALLOWED_DTYPES:
            raise ArrayFieldError(
                f"{field}: dtype {dtype!r} is not one of {sorted(_ALLOWED_DTYPES)}"
            )
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ArrayFieldError(f"{field}: shape must be a list of sizes, got {shape!r}")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count > max_elements:
            raise ArrayFieldError(f"{field}: {count} values exceed the limit of {max_elements}")
        if not isinstance(value[NUMPY_KEY], str):
            raise ArrayFieldError(f"{field}: {NUMPY_KEY} must be a base64 string")
        try:
            data = base64.b64decode(value[NUMPY_KEY], validate=True)
        except (binascii.Error, ValueError) as error:
            raise ArrayFieldError(f"{field}: {NUMPY_KEY} is not base64: {error}") from error
        if len(data) != count * np.dtype(dtype).itemsize:
            raise ArrayFieldError(
                f"{field}: {len(data)} bytes do not hold a {dtype} array of shape {shape}"
            )
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    if isinstance(value, list):
        try:
            array = np.asarray(value)
        except ValueError as error:
            raise ArrayFieldError(f"{field}: nested lists are ragged: {error}") from error
        if array.dtype.kind not in "iuf" or array.size > max_elements:
            raise ArrayFieldError(
                f"{field}: must hold at most {max_elements} numbers, got {array.size} of "
                f"kind {array.dtype}"
            )
        return array
    raise ArrayFieldError(
        f"{field}: must be a json_numpy array or nested lists, got {type(value).__name__}"
    )
