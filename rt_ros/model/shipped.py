"""The model rt_ros ships: trained rt1-tiny weights in models/, exported to the default bundle.

The weights file (a few MB) is in the repository; the bundle (with its 87 MB sentence encoder)
is exported from it on the machine that runs it, and exported again whenever the weights change
(the manifest records their sha256). Without the weights file the default bundle has seeded
random weights and says so everywhere it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rt_ros.paths import share_dir
from rt_ros.runtime.errors import RtRosError
from rt_ros.runtime.manifest import BundleManifest, sha256_of

SHIPPED_WEIGHTS = Path("models") / "rt1-tiny.pt"
DEFAULT_BUNDLE = Path("models") / "rt1-tiny"
SHIPPED_PRESET = "rt1-tiny"


def shipped_weights() -> Path | None:
    """The trained weights shipped with the package, if present."""
    path = share_dir() / SHIPPED_WEIGHTS
    return path if path.is_file() else None


def bundle_is_current(folder: Path, weights: Path | None) -> bool:
    """Whether `folder` holds a bundle exported from `weights` (random ones when None)."""
    if not (Path(folder) / "manifest.yaml").is_file():
        return False
    try:
        manifest = BundleManifest.load(folder)
    except RtRosError:  # an unreadable manifest: export again
        return False
    if "batch_sizes" not in manifest.provenance.get("parity", {}):
        return False  # exported before the graphs took a batch axis
    if weights is None:
        return manifest.untrained
    return manifest.provenance.get("checkpoint_sha256") == sha256_of(weights)


def ensure_default_bundle(
    folder: Path | None = None, progress: Callable[[str], None] | None = None
) -> Path:
    """The default bundle, exported from the shipped weights if it is missing or stale."""
    from rt_ros.model.export import export_bundle

    folder = Path(folder) if folder is not None else share_dir() / DEFAULT_BUNDLE
    weights = shipped_weights()
    if not bundle_is_current(folder, weights):
        if progress is not None:
            source = weights or "seeded random weights: no trained weights are shipped"
            progress(f"exporting the default bundle {folder} from {source}")
        export_bundle(folder, SHIPPED_PRESET, checkpoint=weights, progress=progress)
    return folder
