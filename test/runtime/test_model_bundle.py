"""Loading a bundle refuses missing, truncated or corrupt files and manifests that disagree with
the graphs, with an error naming the file or the manifest field."""

import shutil

import pytest
import yaml

from rt_ros.runtime.errors import BundleError
from rt_ros.runtime.manifest import MANIFEST_FILE, BundleManifest
from rt_ros.runtime.model_bundle import ModelBundle


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    return folder


def edit_manifest(folder, change) -> None:
    path = folder / MANIFEST_FILE
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_exported_bundle_loads_and_says_what_runs(tiny_bundle):
    bundle = ModelBundle.load(tiny_bundle)
    assert bundle.manifest.preset == "rt1-tiny"
    assert set(bundle.providers) == {"frame_encoder", "policy"}
    assert bundle.instruction_encoder.embedding_dim == bundle.manifest.embedding_dim
    assert bundle.manifest.provenance["parity"]["argmax_identical"] is True


def test_manifest_round_trips(tiny_bundle):
    manifest = BundleManifest.load(tiny_bundle)
    assert BundleManifest.from_dict(manifest.to_dict()) == manifest


def test_missing_folder_and_missing_manifest(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        ModelBundle.load(tmp_path / "nowhere")
    with pytest.raises(BundleError, match="manifest is missing"):
        ModelBundle.load(tmp_path)


@pytest.mark.parametrize("name", ["policy.onnx", "frame_encoder.onnx", "tokenizer.json"])
def test_missing_file_is_named(bundle_copy, name):
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=name.replace(".", r"\.")):
        ModelBundle.load(bundle_copy)


def test_truncated_graph_fails_its_checksum(bundle_copy):
    path = bundle_copy / "policy.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BundleError, match=r"policy\.onnx.*truncated, corrupt or replaced"):
        ModelBundle.load(bundle_copy)


def test_corrupt_graph_is_named_even_without_checksums(bundle_copy):
    path = bundle_copy / "frame_encoder.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BundleError, match=r"frame_encoder\.onnx.*not a loadable ONNX graph"):
        ModelBundle.load(bundle_copy, verify_checksums=False)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["image"].update(height_px=d["image"]["height_px"] + 8), "image.height_px"),
        (lambda d: d["image"].update(width_px=d["image"]["width_px"] - 8), "image.width_px"),
        (lambda d: d.update(history_length=4), "history_length"),
        (lambda d: d.update(tokens_per_frame=16), "tokens_per_frame"),
        (lambda d: d.update(token_dim=d["token_dim"] * 2), "token_dim"),
        (lambda d: d["action_space"].update(num_bins=128), "action_space.num_bins"),
        (
            lambda d: d["instruction_encoder"].update(embedding_dim=512),
            "instruction_encoder.embedding_dim",
        ),
    ],
)
def test_manifest_that_disagrees_with_graphs_names_the_field(bundle_copy, change, field):
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=field.replace(".", r"\.")):
        ModelBundle.load(bundle_copy)


def test_dropped_action_dimension_names_action_space(bundle_copy):
    def drop_last_dimension(data):
        data["action_space"]["dimensions"] = data["action_space"]["dimensions"][:-1]

    edit_manifest(bundle_copy, drop_last_dimension)
    with pytest.raises(BundleError, match=r"action_space\.dimensions"):
        ModelBundle.load(bundle_copy)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("history_length"), "history_length is missing"),
        (lambda d: d.update(format_version=99), "format_version 99"),
        (lambda d: d["image"].update(mean=[0.5, 0.5]), "image.mean"),
        (lambda d: d["image"].update(color="bgr"), "image.color"),
        (lambda d: d["graphs"].pop("policy"), "graphs.policy"),
    ],
)
def test_malformed_manifest_names_the_field(bundle_copy, change, field):
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=field.replace(".", r"\.")):
        ModelBundle.load(bundle_copy)


def test_manifest_that_is_not_yaml(bundle_copy):
    (bundle_copy / MANIFEST_FILE).write_text("graphs: [unclosed\n")
    with pytest.raises(BundleError, match="not valid YAML"):
        ModelBundle.load(bundle_copy)
