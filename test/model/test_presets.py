"""Model presets: the named sizes validate, and bad values fail naming the field."""

import dataclasses

import pytest

from rt_ros.model.presets import PRESETS, ModelPreset, get_preset
from rt_ros.runtime.errors import ConfigError


def test_rt1_preset_matches_the_paper():
    preset = get_preset("rt1")
    assert (preset.image_height_px, preset.image_width_px) == (300, 300)
    assert (preset.backbone_width_multiplier, preset.backbone_depth_multiplier) == (1.2, 1.4)
    assert preset.tokens_per_frame == 8
    assert preset.history_length == 6
    assert preset.sequence_length == 114
    assert (preset.num_layers, preset.num_heads, preset.head_dim) == (8, 8, 128)
    assert (preset.token_dim, preset.model_dim, preset.feed_forward_dim) == (512, 512, 512)
    assert (preset.num_action_dims, preset.num_action_bins) == (11, 256)
    assert preset.embedding_dim == 384


def test_tiny_preset_keeps_the_sequence_and_action_layout():
    tiny = get_preset("rt1-tiny")
    assert max(tiny.image_height_px, tiny.image_width_px) <= 128
    assert (tiny.tokens_per_frame, tiny.history_length) == (8, 6)
    assert (tiny.num_action_dims, tiny.num_action_bins) == (11, 256)
    assert 2 <= tiny.num_layers <= 4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_height_px", 16),
        ("image_width_px", 0),
        ("embedding_dim", 0),
        ("token_dim", -1),
        ("tokens_per_frame", 2.5),
        ("history_length", True),
        ("num_heads", 0),
        ("head_dim", 0),
        ("num_action_bins", 1),
        ("backbone_width_multiplier", 0.0),
        ("backbone_depth_multiplier", float("nan")),
        ("dropout", 1.0),
        ("stochastic_depth_rate", -0.1),
        ("image_mean", (0.5, 0.5)),
        ("image_std", (0.2, 0.0, 0.2)),
        ("backbone_output_stride", 8),
        ("backbone_output_stride", True),
    ],
)
def test_bad_value_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        get_preset("rt1-tiny").replace(**{field: value})


def test_empty_name_is_rejected():
    with pytest.raises(ConfigError, match="name"):
        ModelPreset(name="", image_height_px=64, image_width_px=64)


def test_replace_returns_a_validated_copy():
    base = get_preset("rt1")
    wide = base.replace(embedding_dim=512)
    assert wide.embedding_dim == 512
    assert base.embedding_dim == 384


def test_preset_round_trips_through_a_plain_dict():
    preset = get_preset("rt1-tiny")
    fields = {**dataclasses.asdict(preset), "image_mean": list(preset.image_mean)}
    assert ModelPreset(**fields) == preset


def test_unknown_preset_lists_known_names():
    with pytest.raises(ConfigError, match="rt1-huge") as error:
        get_preset("rt1-huge")
    for name in PRESETS:
        assert name in str(error.value)


def test_output_stride_16_doubles_the_feature_map_with_the_same_weights():
    from rt_ros.model.rt1 import count_parameters

    torch = pytest.importorskip("torch")
    from rt_ros.model.frame_encoder import FrameEncoder

    coarse, fine = get_preset("rt1-tiny"), get_preset("rt1-tiny-os16")
    assert dataclasses.replace(fine, name=coarse.name, backbone_output_stride=32) == coarse
    maps = {}
    for preset in (coarse, fine):
        encoder = FrameEncoder(preset).eval()
        image = torch.zeros(1, 3, preset.image_height_px, preset.image_width_px)
        with torch.no_grad():
            maps[preset.backbone_output_stride] = encoder.trunk(image, torch.zeros(1, 384)).shape
        maps[f"params{preset.backbone_output_stride}"] = count_parameters(encoder)
    assert maps[32][2:] == (4, 4)
    assert maps[16][2:] == (8, 8)
    assert maps["params16"] == maps["params32"]
