"""Exported graphs reproduce PyTorch: ONNX Runtime vs PyTorch on random inputs, every preset."""

import dataclasses

import pytest

torch = pytest.importorskip("torch", reason="export needs the train extra (torch)")

from rt_ros.model.export import (  # noqa: E402
    MAX_LOGIT_DIFFERENCE,
    build_random_model,
    check_parity,
    export_bundle,
)
from rt_ros.model.rt1 import RT1  # noqa: E402
from rt_ros.runtime.manifest import BundleManifest  # noqa: E402


def _assert_parity(model: RT1, folder) -> None:
    # Fresh random inputs, independent of the check the exporter already ran.
    report = check_parity(model, folder / "frame_encoder.onnx", folder / "policy.onnx", seed=12345)
    assert report.max_logit_difference <= MAX_LOGIT_DIFFERENCE
    assert report.max_token_difference <= MAX_LOGIT_DIFFERENCE
    assert report.argmax_identical
    assert report.token_scale > 1e-2, "tokens near zero would make the parity check trivial"


def test_rt1_tiny_bundle_matches_pytorch(tiny_bundle):
    manifest = BundleManifest.load(tiny_bundle)
    model = build_random_model("rt1-tiny", seed=0)  # the seed the fixture exported with
    _assert_parity(model, tiny_bundle)
    assert manifest.provenance["parity"]["max_logit_difference"] <= MAX_LOGIT_DIFFERENCE
    assert manifest.provenance["weights"].startswith("random initialisation")
    assert any("UNTRAINED" in line for line in manifest.deviations)


def test_checkpoint_export_carries_its_weights_and_provenance(tmp_path):
    model = build_random_model("rt1-tiny", seed=7)
    checkpoint = tmp_path / "run.pt"
    torch.save(
        {
            "preset": dataclasses.asdict(model.preset),
            "model_state": model.state_dict(),
            "provenance": {"training_run": "unit-test", "data": "none"},
        },
        checkpoint,
    )
    manifest = export_bundle(tmp_path / "bundle", checkpoint=checkpoint)
    assert manifest.provenance["training_run"] == "unit-test"
    assert manifest.provenance["checkpoint_sha256"]
    assert not any("UNTRAINED" in line for line in manifest.deviations)
    _assert_parity(model, tmp_path / "bundle")


def test_output_stride_16_bundle_matches_pytorch(tmp_path):
    manifest = export_bundle(tmp_path, "rt1-tiny-os16", seed=3)
    assert manifest.preset == "rt1-tiny-os16"
    _assert_parity(build_random_model("rt1-tiny-os16", seed=3), tmp_path)


@pytest.mark.slow
def test_rt1_full_size_bundle_matches_pytorch(tmp_path):
    manifest = export_bundle(tmp_path, "rt1", seed=1)
    assert manifest.image.height_px == 300
    model = build_random_model("rt1", seed=1)
    _assert_parity(model, tmp_path)


def test_exported_policy_graph_equals_the_full_computation(tiny_bundle):
    """policy.onnx computes only the readout rows in its last layer: its logits are those rows of
    the full sequence (every row, every layer) in PyTorch."""
    import numpy as np

    from rt_ros.runtime.onnx_session import OnnxModel, SessionConfig

    model = build_random_model("rt1-tiny", seed=0)  # the seed the fixture exported with
    preset = model.preset
    graph = OnnxModel(tiny_bundle / "policy.onnx", SessionConfig(providers=("cpu",)))
    generator = np.random.default_rng(5)
    window = generator.standard_normal(
        (1, preset.history_length, preset.tokens_per_frame, preset.token_dim)
    ).astype(np.float32)
    with torch.no_grad():
        full = model.policy.sequence_logits(torch.from_numpy(window)).numpy()
    for step in range(preset.history_length):
        (logits,) = graph.run({"frame_tokens": window, "current_step": np.array(step, np.int64)})
        rows = model.policy.readout_positions[step].numpy()
        np.testing.assert_allclose(logits, full[:, rows], atol=MAX_LOGIT_DIFFERENCE, rtol=0)
