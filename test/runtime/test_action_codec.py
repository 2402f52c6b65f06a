"""RT-1 token codec: exact bin round trips, constrained decoding, and refusal of bad logits/values.

What is true of RT-1's floor formula `int((a - lo) / (hi - lo) * (bins - 1))` with its inverse
`t / (bins - 1) * (hi - lo) + lo`: token -> value -> token is the identity, and value -> token ->
value loses between 0 and ONE bin width, always downwards (not half a bin: the floor never rounds
up). The optional `rounding="nearest"` encoder loses at most half a bin, either way.
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_codec import ActionTokenCodec, UniformBinCodec
from rt_ros.runtime.action_space import ActionDimension, ActionSpace, load_action_space
from rt_ros.runtime.errors import ActionDecodeError, ConfigError

PROFILES = ("rt1_everyday_robots", "rt1x_google_robot", "rt2_text")
SPACES = {name: load_action_space(name) for name in PROFILES}
CODECS = {name: UniformBinCodec(space) for name, space in SPACES.items()}
RT1 = ActionTokenCodec(SPACES["rt1_everyday_robots"])
BINS = 256
# Slack for float rounding when comparing an error against a bin width.
ULPS = 1e-12


def _continuous(codec: UniformBinCodec) -> list[ActionDimension]:
    return [dim for dim in codec.space.dimensions if not dim.is_discrete]


def _width(dim: ActionDimension) -> float:
    return (dim.high - dim.low) / (BINS - 1)


@st.composite
def dim_and_value(draw: st.DrawFn) -> tuple[UniformBinCodec, ActionDimension, float]:
    """A continuous dimension of a shipped profile and a value inside its bounds."""
    codec = CODECS[draw(st.sampled_from(PROFILES))]
    dim = draw(st.sampled_from(_continuous(codec)))
    value = draw(st.floats(dim.low, dim.high, allow_nan=False))
    return codec, dim, value


def _valid_tokens(dim: ActionDimension) -> list[int]:
    return list(dim.values) if dim.is_discrete else list(range(BINS))


@pytest.mark.parametrize("profile", PROFILES)
def test_every_token_of_every_dim_round_trips(profile: str) -> None:
    codec = CODECS[profile]
    space = codec.space
    # Row t holds token t of each dimension; a discrete one cycles through its values.
    tokens = np.stack([np.resize(_valid_tokens(dim), BINS) for dim in space.dimensions], axis=1)
    values = codec.tokens_to_values(tokens)
    assert np.array_equal(codec.values_to_tokens(values), tokens)
    assert np.array_equal(codec.values_to_tokens(values, rounding="nearest"), tokens)


@given(
    profile=st.sampled_from(PROFILES),
    data=st.data(),
)
def test_token_value_token_is_the_identity(profile: str, data: st.DataObject) -> None:
    codec = CODECS[profile]
    dim = data.draw(st.sampled_from(codec.space.dimensions))
    token = data.draw(st.sampled_from(_valid_tokens(dim)))
    value = codec.token_to_value(dim.name, token)
    assert codec.value_to_token(dim.name, value) == token
    assert codec.value_to_token(dim.name, value, rounding="nearest") == token
    if not dim.is_discrete:
        assert dim.low <= value <= dim.high


def test_the_float_formula_alone_breaks_the_identity() -> None:
    """Why the encoder corrects RT-1's formula: in floats it puts ~11% of exact bin values one
    bin low (e.g. 5/255*2-1 scales back to 4.999...). The correction keeps the exact-arithmetic
    meaning of the formula, so the identity above holds.
    """
    lo, hi = -1.0, 1.0
    naive = [int(((t / 255 * (hi - lo) + lo) - lo) / (hi - lo) * 255) for t in range(BINS)]
    assert sum(n != t for t, n in enumerate(naive)) > 0


@given(dim_and_value())
def test_floor_encoding_matches_rt1_formula_up_to_float_rounding(
    case: tuple[UniformBinCodec, ActionDimension, float],
) -> None:
    codec, dim, value = case
    scaled = (value - dim.low) / (dim.high - dim.low) * (BINS - 1)
    token = codec.value_to_token(dim.name, value)
    if token != int(scaled):
        # Only where the float formula sits within rounding error of a bin boundary.
        assert abs(scaled - round(scaled)) < 1e-9
        assert abs(token - int(scaled)) == 1


@given(dim_and_value())
def test_floor_loses_less_than_one_bin_and_never_rounds_up(
    case: tuple[UniformBinCodec, ActionDimension, float],
) -> None:
    codec, dim, value = case
    decoded = codec.token_to_value(dim.name, codec.value_to_token(dim.name, value))
    error = value - decoded
    assert error >= 0.0
    assert error < _width(dim) * (1 + ULPS)


@given(dim_and_value())
def test_nearest_loses_at_most_half_a_bin(
    case: tuple[UniformBinCodec, ActionDimension, float],
) -> None:
    codec, dim, value = case
    decoded = codec.token_to_value(dim.name, codec.value_to_token(dim.name, value, "nearest"))
    assert abs(value - decoded) <= _width(dim) / 2 * (1 + ULPS)


@pytest.mark.parametrize(
    ("value", "token"), [(5.0, 255), (math.inf, 255), (-5.0, 0), (-math.inf, 0), (1.0, 255)]
)
def test_values_outside_the_bounds_clip_to_the_end_bins(value: float, token: int) -> None:
    assert RT1.value_to_token("world_vector_x", value) == token
    assert RT1.token_to_value("world_vector_x", token) == math.copysign(1.0, token - 1)


def test_end_bins_decode_to_the_exact_bounds() -> None:
    for codec in CODECS.values():
        for dim in _continuous(codec):
            assert codec.token_to_value(dim.name, 0) == dim.low
            assert codec.token_to_value(dim.name, BINS - 1) == dim.high


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
    encoded = RT1.values_to_tokens(values)
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
