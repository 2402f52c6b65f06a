"""RT-1 action tokens: uniform bins between each dimension's bounds, and constrained decoding.

Continuous dimensions use RT-1's formulas (reference/RT1.md, "Action tokenization"):
    token = int((clip(a, lo, hi) - lo) / (hi - lo) * (bins - 1))
    a     = token / (bins - 1) * (hi - lo) + lo
How they are evaluated is the profile's `arithmetic` convention:
- "float32" (the RT-1 profiles): as the reference tokenizer does, with float32 bounds and float32
  intermediates, truncated. value -> token equals the reference bit for bit for every float32
  value (a float64 value is rounded to float32 first, as the reference's float32 specs do), and
  token -> value equals its detokenizer. The reference does NOT round-trip every bin: for about
  one token in five, detokenize then tokenize gives the token below (float32 rounding puts the
  bin value just under its edge): 63 of 256 bins on [-1, 1], 39 on [-pi/2, pi/2]. Exactness, not
  round trip, is the promise.
- "float64": exact-arithmetic floor, the largest token whose decoded value is <= the value, so
  token -> value -> token is the identity.
`rounding="nearest"` picks the closest bin instead (error at most half a bin, no bias; token ->
value -> token is the identity in both arithmetics): the scripted expert uses it. A discrete
dimension's token is its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import ActionDecodeError, ConfigError

Rounding = Literal["floor", "nearest"]
ROUNDINGS = ("floor", "nearest")


def rt1_tokenize_float32(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, num_bins: int
) -> np.ndarray:
    """RT-1's reference tokenizer, operation for operation in float32: values, bounds and every
    intermediate are float32 and the scaled value is truncated to int. Returns int64 tokens."""
    low32 = np.asarray(low, dtype=np.float32)
    high32 = np.asarray(high, dtype=np.float32)
    clipped = np.clip(np.asarray(values, dtype=np.float32), low32, high32)
    scaled = (clipped - low32) / (high32 - low32) * np.float32(num_bins - 1)
    return scaled.astype(np.int32).astype(np.int64)


def rt1_detokenize_float32(
    tokens: np.ndarray, low: np.ndarray, high: np.ndarray, num_bins: int
) -> np.ndarray:
    """RT-1's reference detokenizer in float32: token / (bins - 1) * (hi - lo) + lo."""
    low32 = np.asarray(low, dtype=np.float32)
    high32 = np.asarray(high, dtype=np.float32)
    fraction = np.asarray(tokens).astype(np.float32) / np.float32(num_bins - 1)
    return fraction * (high32 - low32) + low32


class UniformBinCodec:
    """Values <-> tokens of one action space, any encoding: the core shared by the token and
    RT-2 text codecs. Every error is an ActionDecodeError naming the profile and the dimension.
    """

    def __init__(self, space: ActionSpace) -> None:
        self.space = space
        bins = space.num_bins
        dims = space.dimensions
        self._discrete = np.array([dim.is_discrete for dim in dims])
        self._float32 = space.arithmetic == "float32"
        # Discrete rows get placeholder bounds [0, bins - 1]; their grid row is then the token.
        low = np.array([0.0 if dim.is_discrete else dim.low for dim in dims])
        high = np.array([bins - 1.0 if dim.is_discrete else dim.high for dim in dims])
        if self._float32:
            # The bounds the reference works with (pi/2 becomes 1.5707964), held as float64.
            low = low.astype(np.float32).astype(np.float64)
            high = high.astype(np.float32).astype(np.float64)
        self._low, self._high = low, high
        low, high = low[:, None], high[:, None]
        # grid[d, t]: the value of token t of dimension d, RT-1's formula evaluated once. The clip
        # only removes a last-ulp overshoot of hi, so every decoded value lies in [lo, hi].
        if self._float32:
            grid = rt1_detokenize_float32(np.arange(bins)[None, :], low, high, bins)
            grid = grid.astype(np.float64)
        else:
            grid = np.arange(bins) / (bins - 1) * (high - low) + low
        grid = np.clip(grid, low, high)
        valid = np.repeat(~self._discrete[:, None], bins, axis=1)  # continuous: every bin
        for d, dim in enumerate(dims):
            valid[d, list(dim.values)] = True
        self._grid = grid
        self._valid = valid
        self._valid.flags.writeable = False
        self._columns = np.arange(len(dims))

    @property
    def valid_tokens(self) -> np.ndarray:
        """Read-only bool mask [A, bins]: the tokens each dimension may take (for constraints)."""
        return self._valid

    def _fail(self, d: int, message: str) -> ActionDecodeError:
        return ActionDecodeError(
            f"{self.space.name}: dimension {self.space.names[d]!r}: {message}"
        )

    def _dim_index(self, dim: str | int) -> int:
        if isinstance(dim, str):
            try:
                return self.space.index_of(dim)
            except ConfigError as error:
                raise ActionDecodeError(str(error)) from None
        if not isinstance(dim, (int, np.integer)) or not 0 <= dim < len(self.space):
            raise ActionDecodeError(
                f"{self.space.name}: dimension index {dim!r} is out of range "
                f"0..{len(self.space) - 1}"
            )
        return int(dim)

    def _check_tokens(self, tokens: np.ndarray) -> None:
        """Raise for the first dimension holding a token outside 0..bins-1 or an invalid value."""
        bins = self.space.num_bins
        in_range = (tokens >= 0) & (tokens < bins)
        if not in_range.all():
            d = int(np.flatnonzero(~in_range.reshape(-1, len(self.space)).all(axis=0))[0])
            bad = tokens[..., d][~in_range[..., d]].flat[0]
            raise self._fail(d, f"{bad} is out of range 0..{bins - 1}")
        valid = self._valid[self._columns, tokens]
        if not valid.all():
            d = int(np.flatnonzero(~valid.reshape(-1, len(self.space)).all(axis=0))[0])
            bad = tokens[..., d][~valid[..., d]].flat[0]
            dim = self.space.dimensions[d]
            raise self._fail(
                d, f"{bad} is not one of its values {list(dim.values)} {list(dim.labels)}"
            )

    def tokens_to_values(self, tokens: np.ndarray | Sequence[int]) -> np.ndarray:
        """Integer tokens [..., A] -> float64 values [..., A] in profile units (RT-1's formula)."""
        array = np.asarray(tokens)
        if array.ndim == 0 or array.shape[-1] != len(self.space):
            raise ActionDecodeError(
                f"{self.space.name}: tokens shape {array.shape} must end in {len(self.space)} "
                f"(one token per dimension: {', '.join(self.space.names)})"
            )
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
            raise ActionDecodeError(
                f"{self.space.name}: tokens must be integers, got dtype {array.dtype}"
            )
        self._check_tokens(array)
        return self._grid[self._columns, array.astype(np.int64)]

    def values_to_tokens(
        self, values: np.ndarray | Sequence[float], rounding: Rounding = "floor"
    ) -> np.ndarray:
        """Values [..., A] in profile units -> int64 tokens [..., A].

        Continuous values are clipped to [lo, hi] (RT-1); NaN is refused. "floor" is RT-1's
        `int(...)`: in float32 arithmetic exactly the reference's token, in float64 the largest
        token whose decoded value is <= the clipped value (float rounding in the formula never
        shifts a value that sits exactly on a bin). "nearest" is the token whose decoded value is
        closest (ties go down). Discrete values must be one of `values`.
        """
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding ({rounding!r}) must be one of {', '.join(ROUNDINGS)}")
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ActionDecodeError(
                f"{self.space.name}: values must be numbers: {error}"
            ) from None
        if array.ndim == 0 or array.shape[-1] != len(self.space):
            raise ActionDecodeError(
                f"{self.space.name}: values shape {array.shape} must end in {len(self.space)} "
                f"(one value per dimension: {', '.join(self.space.names)})"
            )
        nan = np.isnan(array).reshape(-1, len(self.space)).any(axis=0)
        if nan.any():
            raise self._fail(int(np.flatnonzero(nan)[0]), "value is NaN")
        last = self.space.num_bins - 1
        clipped = np.clip(array, self._low, self._high)
        if self._float32:
            tokens = rt1_tokenize_float32(clipped, self._low, self._high, self.space.num_bins)
            tokens = np.clip(tokens, 0, last)
        else:
            scaled = (clipped - self._low) / (self._high - self._low) * last
            tokens = np.clip(np.floor(scaled), 0, last).astype(np.int64)
            # One step of correction each way undoes the few-ulp error of `scaled`.
            tokens -= (tokens > 0) & (self._grid[self._columns, tokens] > clipped)
            above = np.minimum(tokens + 1, last)
            tokens += (tokens < last) & (self._grid[self._columns, above] <= clipped)
        if rounding == "nearest":
            tokens = self._nearest(clipped, tokens)
        return self._discrete_tokens(array, tokens)

    def _nearest(self, clipped: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """The token among floor - 1, floor, floor + 1 whose value is closest (ties go down)."""
        last = self.space.num_bins - 1
        best = np.clip(floor - 1, 0, last)
        best_error = np.abs(self._grid[self._columns, best] - clipped)
        for offset in (0, 1):
            candidate = np.clip(floor + offset, 0, last)
            error = np.abs(self._grid[self._columns, candidate] - clipped)
            closer = error < best_error
            best = np.where(closer, candidate, best)
            best_error = np.where(closer, error, best_error)
        return best

    def _discrete_tokens(self, array: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Use each discrete value as its token; it must be one of its dimension's values."""
        if not self._discrete.any():
            return tokens
        bins = self.space.num_bins
        whole = np.isfinite(array) & (array == np.round(array)) & (array >= 0) & (array < bins)
        candidate = np.where(whole, array, 0).astype(np.int64)
        ok = ~self._discrete | (whole & self._valid[self._columns, candidate])
        if not ok.all():
            d = int(np.flatnonzero(~ok.reshape(-1, len(self.space)).all(axis=0))[0])
            bad = array[..., d][~ok[..., d]].flat[0]
            dim = self.space.dimensions[d]
            raise self._fail(d, f"{float(bad)} is not one of its values {list(dim.values)}")
        return np.where(self._discrete, candidate, tokens)

    def token_to_value(self, dim: str | int, token: int) -> float:
        """The value of one token of one dimension (by name or index)."""
        d = self._dim_index(dim)
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise self._fail(d, f"token ({token!r}) must be an integer")
        if not 0 <= token < self.space.num_bins:
            raise self._fail(d, f"{token} is out of range 0..{self.space.num_bins - 1}")
        if not self._valid[d, token]:
            dim = self.space.dimensions[d]
            raise self._fail(d, f"{token} is not one of its values {list(dim.values)}")
        return float(self._grid[d, token])

    def value_to_token(self, dim: str | int, value: float, rounding: Rounding = "floor") -> int:
        """The token of one value of one dimension (by name or index); see values_to_tokens."""
        d = self._dim_index(dim)
        # A full row of valid placeholder values (each dimension's first valid token) around it.
        row = self._grid[self._columns, self._valid.argmax(axis=1)]
        row[d] = value
        return int(self.values_to_tokens(row, rounding)[d])

    def decode_tokens(self, tokens: np.ndarray | Sequence[int]) -> Action:
        """One token per dimension [A], in profile order -> Action."""
        array = np.asarray(tokens)
        if array.ndim != 1:
            raise ActionDecodeError(
                f"{self.space.name}: decode_tokens takes one token per dimension, shape "
                f"({len(self.space)},), got {array.shape}"
            )
        values = self.tokens_to_values(array)
        return self._action(array.astype(np.int64), values)

    def _action(self, tokens: np.ndarray, values: np.ndarray) -> Action:
        dims = self.space.dimensions
        labels = {
            dim.name: dim.label_for(int(tokens[d]))
            for d, dim in enumerate(dims)
            if dim.is_discrete
        }
        return Action.from_space(
            self.space,
            values=dict(zip(self.space.names, values.tolist(), strict=True)),
            tokens=tuple(tokens.tolist()),
            labels=labels,
        )

    def encode(self, values: Mapping[str, float], rounding: Rounding = "floor") -> np.ndarray:
        """Values by dimension name (all, no others) -> int64 tokens [A] in profile order."""
        missing = [name for name in self.space.names if name not in values]
        unknown = sorted(str(name) for name in values if name not in self.space.names)
        if missing or unknown:
            raise ActionDecodeError(
                f"{self.space.name}: encode needs exactly the profile's dimensions; "
                f"missing: {missing}, unknown: {unknown}"
            )
        row = []
        for name in self.space.names:
            value = values[name]
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.number)
            ):
                raise self._fail(self.space.index_of(name), f"value ({value!r}) must be a number")
            row.append(value)
        return self.values_to_tokens(np.array(row, dtype=np.float64), rounding)


class ActionTokenCodec(UniformBinCodec):
    """RT-1: decode [A, bins] logits to an Action, the discrete dimensions constrained to their
    valid values. Needs a profile with `encoding: tokens`.
    """

    def __init__(self, space: ActionSpace) -> None:
        if space.encoding != "tokens":
            raise ConfigError(
                f"{space.name}: ActionTokenCodec needs encoding 'tokens', got "
                f"{space.encoding!r} (use Rt2TextCodec for 'text')"
            )
        super().__init__(space)
        self._invalid_fill = np.where(self._valid, 0.0, -np.inf)

    def decode_logits(self, logits: np.ndarray) -> Action:
        """Logits [A, bins] -> Action: argmax per dimension over its valid tokens only."""
        array = np.asarray(logits)
        expected = (len(self.space), self.space.num_bins)
        if array.shape != expected:
            raise ActionDecodeError(
                f"{self.space.name}: logits shape {array.shape} must be {expected} "
                "(dimensions x bins)"
            )
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ActionDecodeError(
                f"{self.space.name}: logits must be real numbers, got dtype {array.dtype}"
            )
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            bad = [self.space.names[d] for d in np.flatnonzero(~finite)]
            raise ActionDecodeError(
                f"{self.space.name}: non-finite logits (NaN or inf) for dimension(s) {bad}"
            )
        # Constrained decoding: invalid tokens of a discrete dimension get -inf, never the argmax.
        tokens = (array + self._invalid_fill).argmax(axis=1)
        return self._action(tokens, self._grid[self._columns, tokens])
