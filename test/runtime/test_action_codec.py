"""RT-1 token codec: the reference tokenizer bit for bit, bin round trips, constrained decoding,
and refusal of bad logits/values.

The RT-1 profiles (arithmetic float32) must give the reference's tokens for every float32 value:
golden cases from an independent float32 evaluation of RT-1's formula (golden/, bin edges and
their float32 neighbours included). The reference does not round-trip every bin, and neither do
they. The float64 profile (rt2_text) keeps the exact-arithmetic floor: token -> value -> token is
the identity, and value -> token -> value loses between 0 and ONE bin width, always downwards.
`rounding="nearest"` loses at most half a bin either way and round-trips in both arithmetics.
"""

import dataclasses
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_codec import (
    ActionTokenCodec,
    UniformBinCodec,
    rt1_detokenize_float32,
    rt1_tokenize_float32,
)
from rt_ros.runtime.action_space import ActionDimension, ActionSpace, load_action_space
from rt_ros.runtime.errors import ActionDecodeError, ConfigError

PROFILES = ("rt1_everyday_robots", "rt1x_google_robot", "rt2_text")
FLOAT32_PROFILES = ("rt1_everyday_robots", "rt1x_google_robot")
SPACES = {name: load_action_space(name) for name in PROFILES}
CODECS = {name: UniformBinCodec(space) for name, space in SPACES.items()}
RT1 = ActionTokenCodec(SPACES["rt1_everyday_robots"])
BINS = 256
# Slack for float rounding when comparing an error against a bin width.
ULPS = 1e-6
GOLDEN = json.loads((Path(__file__).parent / "golden" / "rt1_token_golden.json").read_text())


def _f32(hex_bits: str) -> float:
    return struct.unpack(">f", bytes.fromhex(hex_bits))[0]


def _continuous(codec: UniformBinCodec) -> list[ActionDimension]:
    return [dim for dim in codec.space.dimensions if not dim.is_discrete]


def _width(dim: ActionDimension) -> float:
    return (dim.high - dim.low) / (BINS - 1)


@st.composite
def dim_and_value(
    draw: st.DrawFn, profiles: tuple[str, ...] = PROFILES
) -> tuple[UniformBinCodec, ActionDimension, float]:
    """A continuous dimension of a shipped profile and a value inside its bounds."""
    codec = CODECS[draw(st.sampled_from(profiles))]
    dim = draw(st.sampled_from(_continuous(codec)))
    value = draw(st.floats(dim.low, dim.high, allow_nan=False))
    return codec, dim, value


def _valid_tokens(dim: ActionDimension) -> list[int]:
    return list(dim.values) if dim.is_discrete else list(range(BINS))


def _every_token(space: ActionSpace) -> np.ndarray:
    # Row t holds token t of each dimension; a discrete one cycles through its values.
    return np.stack([np.resize(_valid_tokens(dim), BINS) for dim in space.dimensions], axis=1)


def test_rt1_profiles_use_the_reference_float32_arithmetic() -> None:
    assert [SPACES[name].arithmetic for name in PROFILES] == ["float32", "float32", "float64"]


@pytest.mark.parametrize("case", GOLDEN["ranges"], ids=lambda r: f"{r['high']:.3f}")
def test_float32_tokens_equal_the_reference_golden_cases(case: dict) -> None:
    """Every golden value (bin edges, their float32 neighbours, bin middles, out of range)."""
    values = np.array([_f32(bits) for bits, _ in case["cases_float32_bits_to_token"]])
    expected = np.array([token for _, token in case["cases_float32_bits_to_token"]])
    tokens = rt1_tokenize_float32(values, case["low"], case["high"], BINS)
    assert np.array_equal(tokens, expected)
    edges = rt1_detokenize_float32(np.arange(BINS), case["low"], case["high"], BINS)
    assert [struct.pack(">f", v).hex() for v in edges] == case["detokenized_float32_bits"]


@pytest.mark.parametrize("profile", FLOAT32_PROFILES)
def test_rt1_codec_matches_the_golden_cases_for_its_bounds(profile: str) -> None:
    codec = CODECS[profile]
    goldens = {(round(r["low"], 6), round(r["high"], 6)): r for r in GOLDEN["ranges"]}
    for dim in _continuous(codec):
        case = goldens[(round(dim.low, 6), round(dim.high, 6))]
        for bits, token in case["cases_float32_bits_to_token"]:
            assert codec.value_to_token(dim.name, _f32(bits)) == token, (dim.name, bits)
        edges = [_f32(bits) for bits in case["detokenized_float32_bits"]]
        assert [codec.token_to_value(dim.name, t) for t in range(BINS)] == edges


@pytest.mark.parametrize("profile", FLOAT32_PROFILES)
def test_reference_floor_does_not_round_trip_every_bin(profile: str) -> None:
    """As the reference: detokenize then tokenize returns the token, or the one below it."""
    codec = CODECS[profile]
    tokens = _every_token(codec.space)
    again = codec.values_to_tokens(codec.tokens_to_values(tokens))
    assert set(np.unique(tokens - again)) == {0, 1}
    misses = {(r["low"], r["high"]): r["round_trip_misses"] for r in GOLDEN["ranges"]}
    assert misses[(-1.0, 1.0)] == 63
    assert misses[(-math.pi / 2, math.pi / 2)] == 39


@pytest.mark.parametrize("profile", PROFILES)
def test_nearest_round_trips_every_token_of_every_dim(profile: str) -> None:
    codec = CODECS[profile]
    tokens = _every_token(codec.space)
    values = codec.tokens_to_values(tokens)
    assert np.array_equal(codec.values_to_tokens(values, rounding="nearest"), tokens)


def test_float64_floor_round_trips_every_token() -> None:
    codec = CODECS["rt2_text"]
    tokens = _every_token(codec.space)
    values = codec.tokens_to_values(tokens)
    assert np.array_equal(codec.values_to_tokens(values), tokens)
    """Why the float64 encoder corrects RT-1's formula: in floats it puts ~11% of exact bin values
    one bin low (e.g. 5/255*2-1 scales back to 4.999...). The correction keeps the
    exact-arithmetic meaning of the formula, so the identity above holds.
    """
    lo, hi = -1.0, 1.0
    naive = [int(((t / 255 * (hi - lo) + lo) - lo) / (hi - lo) * 255) for t in range(BINS)]
    assert sum(n != t for t, n in enumerate(naive)) > 0


@pytest.mark.parametrize("profile", PROFILES)
def test_every_token_round_trips_through_its_value_and_nearest(profile: str) -> None:
    codec = CODECS[profile]
    for dim in _continuous(codec):
        for token in (0, 1, 127, 128, 254, 255):
            value = codec.token_to_value(dim.name, token)
            assert codec.value_to_token(dim.name, value, rounding="nearest") == token


@given(dim_and_value(profiles=("rt2_text",)))
def test_float64_floor_matches_rt1_formula_up_to_float_rounding(
    case: tuple[UniformBinCodec, ActionDimension, float],
) -> None:
    codec, dim, value = case
    scaled = (value - dim.low) / (dim.high - dim.low) * (BINS - 1)
    token = codec.value_to_token(dim.name, value)
    if token != int(scaled):
        # Only where the float formula sits within rounding error of a bin boundary.
        assert abs(scaled - round(scaled)) < 1e-9
        assert abs(token - int(scaled)) == 1


@given(dim_and_value(profiles=FLOAT32_PROFILES))
def test_float32_floor_is_the_reference_formula_on_the_float32_value(
    case: tuple[UniformBinCodec, ActionDimension, float],
) -> None:
    codec, dim, value = case
    low, high = np.float32(dim.low), np.float32(dim.high)
    value32 = np.clip(np.float32(value), low, high)
    expected = int((value32 - low) / (high - low) * np.float32(BINS - 1))
    assert codec.value_to_token(dim.name, value) == expected


@given(dim_and_value())
def test_floor_loses_less_than_one_bin_and_never_rounds_up(
    case: tuple[UniformBinCodec, ActionDimension, float],
) -> None:
    codec, dim, value = case
    decoded = codec.token_to_value(dim.name, codec.value_to_token(dim.name, value))
    error = value - decoded
    # float32 profiles: the value is rounded to float32 before it is binned.
    slack = 1e-7 * max(1.0, abs(value)) if codec.space.arithmetic == "float32" else 0.0
    assert error >= -slack
    assert error < _width(dim) * (1 + ULPS) + slack


@given(dim_and_value())
def test_nearest_loses_at_most_half_a_bin(
    case: tuple[UniformBinCodec, ActionDimension, float],
) -> None:
    codec, dim, value = case
    decoded = codec.token_to_value(dim.name, codec.value_to_token(dim.name, value, "nearest"))
    # float32 profiles: bin values carry float32 rounding (a few 1e-7 of the bound).
    slack = 1e-6 * abs(dim.high) if codec.space.arithmetic == "float32" else 0.0
    assert abs(value - decoded) <= _width(dim) / 2 * (1 + ULPS) + slack


@pytest.mark.parametrize(
    ("value", "token"), [(5.0, 255), (math.inf, 255), (-5.0, 0), (-math.inf, 0), (1.0, 255)]
)
def test_values_outside_the_bounds_clip_to_the_end_bins(value: float, token: int) -> None:
    assert RT1.value_to_token("world_vector_x", value) == token
    assert RT1.token_to_value("world_vector_x", token) == math.copysign(1.0, token - 1)


def test_end_bins_decode_to_the_exact_bounds() -> None:
    """The bounds as the arithmetic holds them: pi/2 is 1.5707964 in float32 profiles."""
    for codec in CODECS.values():
        for dim in _continuous(codec):
            cast = np.float32 if codec.space.arithmetic == "float32" else float
            assert codec.token_to_value(dim.name, 0) == float(cast(dim.low))
            assert codec.token_to_value(dim.name, BINS - 1) == float(cast(dim.high))


def test_nan_value_is_refused_naming_the_dimension() -> None:
    with pytest.raises(ActionDecodeError, match=r"dimension 'rotation_delta_yaw': value is NaN"):
        RT1.value_to_token("rotation_delta_yaw", math.nan)
    values = dict(RT1.decode_tokens([0] * 11).values) | {"world_vector_z": math.nan}
    with pytest.raises(ActionDecodeError, match=r"dimension 'world_vector_z': value is NaN"):
        RT1.encode(values)


@given(hnp.arrays(np.float32, (11, BINS), elements=st.floats(-50, 50, width=32)))
def test_decode_logits_is_argmax_with_discrete_dims_constrained(logits: np.ndarray) -> None:
    action = RT1.decode_logits(logits)
    for d, dim in enumerate(RT1.space.dimensions):
        if dim.is_discrete:
            best = max(dim.values, key=lambda value: (logits[d, value], -value))
            assert action.tokens[d] == best
            assert action.labels[dim.name] == dim.label_for(best)
        else:
            assert action.tokens[d] == int(np.argmax(logits[d]))
        assert action.values[dim.name] == RT1.token_to_value(d, action.tokens[d])


def test_constrained_decoding_skips_a_higher_invalid_bin() -> None:
    logits = np.zeros((11, BINS), np.float32)
    mode = RT1.space.index_of("terminate_episode")
    logits[mode, 200] = 10.0  # the highest logit sits on a value terminate_episode cannot take
    logits[mode, 2] = 3.0
    logits[mode, 1] = 2.0
    action = RT1.decode_logits(logits)
    assert action.tokens[mode] == 2
    assert action.mode == "base"
    assert action.values["terminate_episode"] == 2.0


def test_decode_logits_builds_the_whole_action() -> None:
    logits = np.full((11, BINS), -1.0)
    logits[RT1.space.index_of("world_vector_x"), 255] = 1.0
    logits[RT1.space.index_of("terminate_episode"), 1] = 1.0
    action = RT1.decode_logits(logits)
    assert tuple(action.values) == RT1.space.names
    assert action.role("arm.linear.x") == 1.0
    assert action.role("arm.linear.y") == -1.0
    assert action.mode == "arm"
    assert action == RT1.decode_tokens(action.tokens)
    assert np.array_equal(RT1.encode(action.values), action.tokens)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_logits_are_refused_naming_the_dimension(bad: float) -> None:
    logits = np.zeros((11, BINS), np.float32)
    logits[RT1.space.index_of("gripper_closedness_action"), 17] = bad
    with pytest.raises(ActionDecodeError, match=r"non-finite .*\['gripper_closedness_action'\]"):
        RT1.decode_logits(logits)


@pytest.mark.parametrize("shape", [(11, 255), (10, BINS), (1, 11, BINS), (11 * BINS,)])
def test_wrong_logits_shape_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ActionDecodeError, match=r"logits shape .* must be \(11, 256\)"):
        RT1.decode_logits(np.zeros(shape, np.float32))


def test_non_numeric_logits_are_refused() -> None:
    with pytest.raises(ActionDecodeError, match="logits must be real numbers"):
        RT1.decode_logits(np.full((11, BINS), "x"))


def test_decode_tokens_refuses_out_of_range_and_invalid_tokens() -> None:
    tokens = [0] * 11
    with pytest.raises(
        ActionDecodeError, match=r"dimension 'world_vector_y': 256 is out of range"
    ):
        RT1.decode_tokens([*tokens[:9], 256, 0])
    with pytest.raises(ActionDecodeError, match=r"dimension 'base_displacement_vector_x': -1 is"):
        RT1.decode_tokens([-1, *tokens[1:]])
    with pytest.raises(ActionDecodeError, match=r"dimension 'terminate_episode': 3 is not one of"):
        RT1.decode_tokens([*tokens[:7], 3, 0, 0, 0])
    with pytest.raises(ActionDecodeError, match=r"tokens shape \(10,\) must end in 11"):
        RT1.decode_tokens(tokens[:10])
    with pytest.raises(ActionDecodeError, match=r"one token per dimension, shape \(11,\), got"):
        RT1.decode_tokens([tokens, tokens])
    with pytest.raises(ActionDecodeError, match="tokens must be integers, got dtype float64"):
        RT1.decode_tokens(np.zeros(11))


def test_token_to_value_refuses_bad_tokens_naming_the_dimension() -> None:
    with pytest.raises(ActionDecodeError, match=r"'world_vector_x': 256 is out of range 0\.\.255"):
        RT1.token_to_value("world_vector_x", 256)
    with pytest.raises(ActionDecodeError, match=r"'terminate_episode': 5 is not one of its"):
        RT1.token_to_value("terminate_episode", 5)
    with pytest.raises(ActionDecodeError, match=r"no dimension 'world_vector_w'"):
        RT1.token_to_value("world_vector_w", 0)
    with pytest.raises(ActionDecodeError, match=r"dimension index 11 is out of range"):
        RT1.token_to_value(11, 0)


def test_encode_names_missing_and_unknown_dimensions() -> None:
    values = dict(RT1.decode_tokens([0] * 11).values)
    del values["world_vector_x"]
    values["world_vector_w"] = 0.0
    with pytest.raises(
        ActionDecodeError, match=r"missing: \['world_vector_x'\], unknown: \['world_vector_w'\]"
    ):
        RT1.encode(values)


@pytest.mark.parametrize("mode", [1.5, 3.0, -1.0, math.inf])
def test_encode_refuses_a_discrete_value_the_dimension_cannot_take(mode: float) -> None:
    values = dict(RT1.decode_tokens([0] * 11).values) | {"terminate_episode": mode}
    with pytest.raises(ActionDecodeError, match=r"'terminate_episode': .* is not one of its val"):
        RT1.encode(values)


def test_encode_refuses_a_value_that_is_not_a_number() -> None:
    values = dict(RT1.decode_tokens([0] * 11).values) | {"world_vector_x": "0.5"}
    with pytest.raises(ActionDecodeError, match=r"'world_vector_x': value \('0\.5'\) must be a"):
        RT1.encode(values)


def test_batched_values_and_tokens() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, BINS, (4, 6, 11))
    tokens[..., RT1.space.index_of("terminate_episode")] = rng.integers(0, 3, (4, 6))
    values = RT1.tokens_to_values(tokens)
    assert values.shape == (4, 6, 11)
    assert values.dtype == np.float64
    encoded = RT1.values_to_tokens(values, rounding="nearest")
    assert encoded.dtype == np.int64
    assert np.array_equal(encoded, tokens)


def test_valid_tokens_mask_is_read_only() -> None:
    mask = RT1.valid_tokens
    mode = RT1.space.index_of("terminate_episode")
    assert mask.shape == (11, BINS)
    assert np.flatnonzero(mask[mode]).tolist() == [0, 1, 2]
    assert mask[RT1.space.index_of("world_vector_x")].all()
    with pytest.raises(ValueError, match="read-only"):
        mask[0, 0] = False


def test_unknown_rounding_is_refused() -> None:
    with pytest.raises(ValueError, match=r"rounding \('ceil'\) must be one of floor, nearest"):
        RT1.value_to_token("world_vector_x", 0.0, rounding="ceil")  # type: ignore[arg-type]


def test_token_codec_needs_a_tokens_profile() -> None:
    with pytest.raises(ConfigError, match=r"rt2_text: ActionTokenCodec needs encoding 'tokens'"):
        ActionTokenCodec(SPACES["rt2_text"])


def test_action_is_immutable_and_reads_roles() -> None:
    action = RT1.decode_tokens([128] * 7 + [0] + [255] * 3)
    assert action.mode == "terminate"
    assert action.role("arm.linear.z") == 1.0
    assert action.role("gripper") == RT1.token_to_value("gripper_closedness_action", 128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        action.tokens = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        action.values["world_vector_x"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        action.labels["terminate_episode"] = "arm"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"unknown role 'arm\.linear\.w'"):
        action.role("arm.linear.w")


def test_action_role_default_when_the_profile_lacks_it() -> None:
    space: ActionSpace = SPACES["rt2_text"]
    action = CODECS["rt2_text"].decode_tokens([1, 0, 0, 0, 0, 0, 0, 0])
    assert space.dimension_for_role("base.linear.x") is None
    assert action.role("base.linear.x") == 0.0
    assert action.role("base.angular.z", default=-7.0) == -7.0
    assert action.mode == "terminate"


def test_action_without_a_mode_dimension() -> None:
    action = Action(values={"x": 0.5}, tokens=(3,), labels={}, roles={"gripper": "x"})
    assert action.mode is None
    assert action.role("gripper") == 0.5
