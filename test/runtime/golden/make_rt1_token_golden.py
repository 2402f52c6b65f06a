"""Writes rt1_token_golden.json: RT-1's reference tokenizer evaluated in float32, case by case.

An implementation independent of rt_ros and of numpy: every value and intermediate is rounded to
float32 with `struct` after each operation, as TensorFlow's float32 kernels compute the
reference's `int((clip(a) - lo) / (hi - lo) * (bins - 1))` and `t / (bins - 1) * (hi - lo) + lo`
(reference/RT1.md). One IEEE operation on float32 inputs computed in float64 and then rounded to
float32 gives the float32 result exactly, so no float32 library is needed.

Cases per bound range: every bin's detokenized value (the bin edge), the float32 numbers just
below and above it, the middle of each bin, the bounds and values outside them.
Run: python test/runtime/golden/make_rt1_token_golden.py
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

BINS = 256
# (low, high) of every continuous dimension of the shipped RT-1 profiles.
RANGES = ((-1.0, 1.0), (-2.0, 2.0), (-math.pi / 2, math.pi / 2), (-math.pi, math.pi))


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bits(x: float) -> str:
    return struct.pack(">f", x).hex()


def next_f32(x: float, up: bool) -> float:
    """The neighbouring float32 of a float32 x."""
    (raw,) = struct.unpack("<i", struct.pack("<f", x))
    if x == 0.0:
        return f32(1e-45) if up else -f32(1e-45)
    raw += 1 if (x > 0) == up else -1
    return struct.unpack("<f", struct.pack("<i", raw))[0]


def tokenize(value: float, low: float, high: float) -> int:
    low, high, value = f32(low), f32(high), f32(value)
    value = min(max(value, low), high)
    scaled = f32(f32(f32(value - low) / f32(high - low)) * f32(BINS - 1))
    return int(scaled)


def detokenize(token: int, low: float, high: float) -> float:
    low, high = f32(low), f32(high)
    return f32(f32(f32(f32(token) / f32(BINS - 1)) * f32(high - low)) + low)


def main() -> None:
    ranges = []
    for low, high in RANGES:
        values = [f32(low), f32(high), f32(low) * 3, f32(high) * 3, f32(0.0)]
        for token in range(BINS):
            edge = detokenize(token, low, high)
            values += [edge, next_f32(edge, up=False), next_f32(edge, up=True)]
            if token + 1 < BINS:
                values.append(f32((edge + detokenize(token + 1, low, high)) / 2))
        cases = sorted({bits(v): tokenize(v, low, high) for v in values}.items())
        edges = [bits(detokenize(token, low, high)) for token in range(BINS)]
        round_trip_misses = sum(
            tokenize(detokenize(t, low, high), low, high) != t for t in range(BINS)
        )
        ranges.append(
            {
                "low": low,
                "high": high,
                "detokenized_float32_bits": edges,
                "round_trip_misses": round_trip_misses,
                "cases_float32_bits_to_token": cases,
            }
        )
    out = Path(__file__).with_name("rt1_token_golden.json")
    out.write_text(json.dumps({"num_bins": BINS, "ranges": ranges}, indent=0) + "\n")
    print(
        f"wrote {out}: "
        + ", ".join(
            f"[{r['low']:.4f}, {r['high']:.4f}]: "
            f"{len(r['cases_float32_bits_to_token'])} cases, {r['round_trip_misses']} "
            "bins do not round-trip"
            for r in ranges
        )
    )


if __name__ == "__main__":
    main()
