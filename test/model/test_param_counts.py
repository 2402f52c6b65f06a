"""Parameter counts against the RT-1 paper (built only, no forward passes, to stay fast)."""

import pytest

from rt_ros.model.efficientnet import MBConv
from rt_ros.model.presets import get_preset
from rt_ros.model.rt1 import RT1, count_parameters

# RT-1 paper: image tokenizer about 16M, transformer about 19M (with the 512-d USE embedding).
PAPER_FRAME_ENCODER_PARAMS = 16e6
PAPER_TRANSFORMER_PARAMS = 19e6
PAPER_EMBEDDING_DIM = 512
RELATIVE_TOLERANCE = 0.10
TINY_MAX_PARAMS = 3_000_000
B3_MBCONV_BLOCKS = 26


@pytest.fixture(scope="module")
def paper_rt1() -> RT1:
    return RT1.from_preset(get_preset("rt1").replace(embedding_dim=PAPER_EMBEDDING_DIM), seed=0)


def test_frame_encoder_is_about_16m(paper_rt1):
    count = count_parameters(paper_rt1.frame_encoder)
    print(f"rt1 frame encoder (512-d embedding): {count:,}")
    assert count == pytest.approx(PAPER_FRAME_ENCODER_PARAMS, rel=RELATIVE_TOLERANCE)


def test_transformer_is_about_19m(paper_rt1):
    count = count_parameters(paper_rt1.policy)
    print(f"rt1 transformer: {count:,}")
    assert count == pytest.approx(PAPER_TRANSFORMER_PARAMS, rel=RELATIVE_TOLERANCE)


def test_b3_has_26_mbconv_blocks_each_followed_by_film(paper_rt1):
    trunk = paper_rt1.frame_encoder.trunk
    assert len(trunk.blocks) == B3_MBCONV_BLOCKS
    assert sum(isinstance(m, MBConv) for m in trunk.modules()) == B3_MBCONV_BLOCKS
    assert len(trunk.films) == B3_MBCONV_BLOCKS
    for block, film in zip(trunk.blocks, trunk.films, strict=True):
        assert film.gamma.out_features == block.project[0].out_channels
        assert film.gamma.in_features == PAPER_EMBEDDING_DIM
    assert trunk.out_channels == 1536


def test_default_384_embedding_counts_are_reported():
    model = RT1.from_preset("rt1", seed=0)
    encoder, policy = count_parameters(model.frame_encoder), count_parameters(model.policy)
    print(f"rt1 (384-d embedding): encoder {encoder:,}, transformer {policy:,}")
    assert count_parameters(model) == encoder + policy
    assert model.frame_encoder.trunk.films[0].gamma.in_features == 384


def test_tiny_is_at_most_3m():
    model = RT1.from_preset("rt1-tiny", seed=0)
    count = count_parameters(model)
    print(f"rt1-tiny total: {count:,}")
    assert count <= TINY_MAX_PARAMS
