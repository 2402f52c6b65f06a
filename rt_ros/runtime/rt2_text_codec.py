"""RT-2-style action text: integers separated by single ASCII spaces, one per dimension, strictly.

Each continuous integer is a bin index with RT-1's uniform-bin formulas; a discrete integer is its
value (reference/RT1.md, "RT-2"). Anything else the model writes is refused, never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_codec import Rounding, UniformBinCodec
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import ActionDecodeError, ConfigError

# Plain base-10: ASCII digits with an optional minus (so that "-3" reads as out of range, not as
# malformed). No "+", no decimal point, no exponent, no underscores, no non-ASCII digits.
_INTEGER = re.compile(r"-?[0-9]+")
# The only separator is one ASCII space: a leading, trailing or doubled space, or any other
# whitespace (tab, newline, \x0b, U+00A0, U+3000 ... which str.split() would take) is refused.
_BAD_SEPARATOR = re.compile(r"^ | $|  |[^\S ]")
_SHOWN_CHARS = 120
_FIELD_CHARS = 24
# Longer numbers are out of range anyway; int() refuses strings over 4300 digits.
_MAX_DIGITS = 64


def _shown(text: str, max_chars: int = _SHOWN_CHARS) -> str:
    """Text for an error message, cut short so that a runaway generation cannot flood the log."""
    if len(text) <= max_chars:
        return repr(text)
    return f"{text[:max_chars]!r}... ({len(text)} characters)"


class Rt2TextCodec:
    """Action text <-> Action for a profile with `encoding: text` (e.g. rt2_text)."""

    def __init__(self, space: ActionSpace) -> None:
        if space.encoding != "text":
            raise ConfigError(
                f"{space.name}: Rt2TextCodec needs encoding 'text', got {space.encoding!r} "
                "(use ActionTokenCodec for 'tokens')"
            )
        self.space = space
        self._bins = UniformBinCodec(space)

    def decode(self, text: str) -> Action:
        """Parse exactly one integer per dimension, in profile order; anything else raises."""
        if not isinstance(text, str):
            raise ActionDecodeError(f"{self.space.name}: action text must be a str, got {text!r}")
        bad = _BAD_SEPARATOR.search(text)
        if bad is not None:
            raise ActionDecodeError(
                f"{self.space.name}: separator at character {bad.start() + 1} is not a single "
                f"ASCII space: {bad.group()!r} in {_shown(text)}"
            )
        fields = text.split(" ") if text else []
        names = self.space.names
        if len(fields) != len(names):
            raise ActionDecodeError(
                f"{self.space.name}: expected {len(names)} integers ({' '.join(names)}), "
                f"got {len(fields)} in {_shown(text)}"
            )
        last = self.space.num_bins - 1
        tokens = []
        for index, (dim, field) in enumerate(zip(self.space.dimensions, fields, strict=True)):
            if not _INTEGER.fullmatch(field):
                raise ActionDecodeError(
                    f"{self.space.name}: field {index + 1} (dimension {dim.name!r}) is not a "
                    f"base-10 integer: {_shown(field, _FIELD_CHARS)} in {_shown(text)}"
                )
            # Range checks run on Python ints, so a 30-digit number cannot overflow int64 later;
            # one too long for int() at all is out of range just the same.
            number = int(field) if len(field) <= _MAX_DIGITS else None
            if number == 0 and field.startswith("-"):
                raise ActionDecodeError(
                    f"{self.space.name}: field {index + 1} (dimension {dim.name!r}) is a negative "
                    f"zero: {_shown(field, _FIELD_CHARS)} in {_shown(text)}"
                )
            what = f"{self.space.name}: dimension {dim.name!r}: {_shown(field, _FIELD_CHARS)}"
            if dim.is_discrete and number not in dim.values:
                raise ActionDecodeError(
                    f"{what} is not one of its values {list(dim.values)} {list(dim.labels)} "
                    f"in {_shown(text)}"
                )
            if number is None or not 0 <= number <= last:
                raise ActionDecodeError(f"{what} is out of range 0..{last} in {_shown(text)}")
            tokens.append(number)
        return self._bins.decode_tokens(np.array(tokens, dtype=np.int64))

    def encode(self, values: Mapping[str, float], rounding: Rounding = "floor") -> str:
        """Values by dimension name -> the action text, integers joined by single spaces."""
        return " ".join(str(token) for token in self._bins.encode(values, rounding).tolist())
