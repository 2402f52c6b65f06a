"""RT-2 action text: strict parsing that names what is wrong, and exact text round trips."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rt_ros.runtime.action_space import load_action_space
from rt_ros.runtime.errors import ActionDecodeError, ConfigError
from rt_ros.runtime.rt2_text_codec import Rt2TextCodec

SPACE = load_action_space("rt2_text")
CODEC = Rt2TextCodec(SPACE)
CONTINUOUS = st.integers(0, 255)


@st.composite
def action_texts(draw: st.DrawFn) -> str:
    """Well-formed action text: integers separated by single ASCII spaces."""
    numbers = [draw(st.sampled_from([0, 1])), *(draw(CONTINUOUS) for _ in range(7))]
    return " ".join(str(number) for number in numbers)


@given(action_texts())
def test_text_decode_encode_round_trip(text: str) -> None:
    action = CODEC.decode(text)
    assert CODEC.encode(action.values) == text
    assert action.tokens == tuple(int(field) for field in text.split(" "))


# Every separator str.split() accepts besides one ASCII space, and space runs at either end.
OTHER_SEPARATORS = [
    "  ",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x85",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\u2009",
    "\t ",
]


@pytest.mark.parametrize("separator", OTHER_SEPARATORS)
def test_any_separator_but_one_ascii_space_is_refused(separator: str) -> None:
    text = separator.join(str(number) for number in range(8))
    with pytest.raises(ActionDecodeError, match=r"^rt2_text: separator at character 2 is not a "):
        CODEC.decode(text)


@pytest.mark.parametrize(
    ("text", "position"),
    [(" 0 1 2 3 4 5 6 7", 1), ("0 1 2 3 4 5 6 7 ", 16), ("0 1 2 3 4 5 6 7\n", 16)],
)
def test_leading_or_trailing_whitespace_is_refused(text: str, position: int) -> None:
    with pytest.raises(ActionDecodeError, match=rf"separator at character {position} is not a"):
        CODEC.decode(text)


@pytest.mark.parametrize("zero", ["-0", "-00"])
def test_negative_zero_is_refused(zero: str) -> None:
    with pytest.raises(ActionDecodeError, match=r"field 3 \(dimension 'dy'\) is a negative zero"):
        CODEC.decode(f"0 1 {zero} 3 4 5 6 7")
    with pytest.raises(
        ActionDecodeError, match=r"field 1 \(dimension 'terminate'\) is a negative"
    ):
        CODEC.decode(f"{zero} 1 2 3 4 5 6 7")


@given(st.data())
def test_values_encode_decode_round_trip_within_a_bin(data: st.DataObject) -> None:
    values = {"terminate": float(data.draw(st.sampled_from([0, 1])))}
    for dim in SPACE.dimensions[1:]:
        values[dim.name] = data.draw(st.floats(dim.low, dim.high, allow_nan=False))
    action = CODEC.decode(CODEC.encode(values))
    assert action.values["terminate"] == values["terminate"]
    for dim in SPACE.dimensions[1:]:
        width = (dim.high - dim.low) / 255
        error = values[dim.name] - action.values[dim.name]
        assert 0.0 <= error < width * (1 + 1e-12)
    nearest = CODEC.decode(CODEC.encode(values, rounding="nearest"))
    for dim in SPACE.dimensions[1:]:
        width = (dim.high - dim.low) / 255
        assert abs(values[dim.name] - nearest.values[dim.name]) <= width / 2 * (1 + 1e-12)


def test_decode_reads_the_rt2_layout() -> None:
    action = CODEC.decode("1 255 0 128 0 255 0 255")
    assert action.mode == "terminate"
    assert action.role("arm.linear.x") == 1.0
    assert action.role("arm.linear.y") == -1.0
    assert action.role("arm.angular.y") == pytest.approx(math.pi / 2)
    assert action.role("gripper") == 1.0
    assert action.role("base.linear.x") == 0.0
    assert CODEC.decode("0 0 0 0 0 0 0 0").mode == "arm"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"expected 8 integers \(terminate dx dy dz drx dry drz gripper\), got 0"),
        ("0 1 2 3 4 5 6", r"expected 8 integers .*, got 7 in '0 1 2 3 4 5 6'"),
        ("0 1 2 3 4 5 6 7 8", r"expected 8 integers .*, got 9"),
        ("0 1 2 3 4 5 6 1.5", r"field 8 \(dimension 'gripper'\) is not a base-10 integer: '1\.5'"),
        ("0 12 x 3 4 5 6 7", r"field 3 \(dimension 'dy'\) is not a base-10 integer: 'x'"),
        ("0 1 2 3 4 5 6 7a", r"field 8 \(dimension 'gripper'\) is not a base-10 integer: '7a'"),
        ("0 +-3 2 3 4 5 6 7", r"field 2 \(dimension 'dx'\) is not a base-10 integer: '\+-3'"),
        ("0 +3 2 3 4 5 6 7", r"field 2 \(dimension 'dx'\) is not a base-10 integer: '\+3'"),
        ("0 1e2 2 3 4 5 6 7", r"field 2 \(dimension 'dx'\) is not a base-10 integer: '1e2'"),
        ("0 0x1 2 3 4 5 6 7", r"field 2 \(dimension 'dx'\) is not a base-10 integer: '0x1'"),
        ("0 1_0 2 3 4 5 6 7", r"field 2 \(dimension 'dx'\) is not a base-10 integer: '1_0'"),
        ("0 ٣ 2 3 4 5 6 7", r"field 2 \(dimension 'dx'\) is not a base-10 integer: '٣'"),
        ("0 1 2 3 256 5 6 7", r"dimension 'drx': '256' is out of range 0\.\.255"),
        ("0 1 2 -3 4 5 6 7", r"dimension 'dz': '-3' is out of range 0\.\.255"),
        ("0 1 2 3 4 5 6 " + "9" * 80, r"dimension 'gripper': '9{24}'\.\.\. \(80 char.* out of"),
        ("2 1 2 3 4 5 6 7", r"dimension 'terminate': '2' is not one of its values \[0, 1\]"),
        ("-1 1 2 3 4 5 6 7", r"dimension 'terminate': '-1' is not one of its values \[0, 1\]"),
    ],
)
def test_malformed_text_is_refused_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ActionDecodeError, match=r"^rt2_text: " + message):
        CODEC.decode(text)


def test_runaway_text_is_cut_short_in_the_message() -> None:
    with pytest.raises(ActionDecodeError, match=r"got 2000 in '(0 ){60}'\.\.\. \(3999 char"):
        CODEC.decode("0 " * 1999 + "0")


def test_non_string_is_refused() -> None:
    with pytest.raises(ActionDecodeError, match=r"action text must be a str, got b'0'"):
        CODEC.decode(b"0")  # type: ignore[arg-type]


def test_encode_refuses_bad_values_naming_the_dimension() -> None:
    values = CODEC.decode("0 1 2 3 4 5 6 7").values
    with pytest.raises(ActionDecodeError, match=r"dimension 'dy': value is NaN"):
        CODEC.encode({**values, "dy": math.nan})
    with pytest.raises(ActionDecodeError, match=r"'terminate': 0\.5 is not one of its values"):
        CODEC.encode({**values, "terminate": 0.5})
    with pytest.raises(ActionDecodeError, match=r"missing: \['gripper'\]"):
        CODEC.encode({name: value for name, value in values.items() if name != "gripper"})


def test_text_codec_needs_a_text_profile() -> None:
    with pytest.raises(
        ConfigError, match=r"rt1_everyday_robots: Rt2TextCodec needs encoding 'text'"
    ):
        Rt2TextCodec(load_action_space("rt1_everyday_robots"))
