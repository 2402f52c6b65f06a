"""Named head-camera rigs of the simulated robot: where the camera sits, its image and its lens.

A policy learns the camera it was trained on; fed another view it fails without saying so. So a
rig is chosen by name, recorded in every episode `rt-ros collect` writes, carried from the
training data into the model's manifest, and `rt-ros eval` / `rt-ros demo` put the simulated
driver on the model's rig unless told otherwise.

`head_v1` is the rig the shipped model learnt from: in its 320x256 frame the objects fill only
the rows from 32% to 55% of the height; the rest is wall, the counter's front and the floor. A
frame is resized to the model's square input whatever its shape, so `head_v2`, the same camera
pitched up a little with a view as wide (63 degrees across) but less tall, spends those rows on
the counter. Raising the camera instead, for a steeper line of sight, put the
arm's upper link between it and the counter. Measured on the expert's episodes (`image_motion`
at the targets, at the model's 128x128 input; 8 layouts of each family from seed 100100):

| rig | forward / sideways / up, px per cm | gripper in view within 15 cm of an object | render |
| --- | --- | --- | --- |
| head_v1 | 1.05 / 1.23 / 1.19 | 90% | 60 ms |
| head_v2 | 1.51 / 1.25 / 1.68 | 90% | 33 ms (no multisampling) |

Every object and drawer handle of those layouts is in both rigs' frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: training reads rig names without MuJoCo
    from rt_ros.sim.camera import CameraConfig
    from rt_ros.sim.scene import SceneConfig


@dataclass(frozen=True)
class CameraRig:
    """One head-camera setup of the simulated robot."""

    name: str
    mast_height_m: float
    pitch_rad: float
    width_px: int
    height_px: int
    fovy_deg: float
    multisample: bool
    summary: str

    def scene_config(self) -> SceneConfig:
        from rt_ros.sim.robot_description import HeadMount
        from rt_ros.sim.scene import SceneConfig

        return SceneConfig(
            camera_fovy_deg=self.fovy_deg, head=HeadMount(self.mast_height_m, self.pitch_rad)
        )

    def camera_config(self, width_px: int = 0, height_px: int = 0) -> CameraConfig:
        """The rig's camera, its image size overridden where `width_px` / `height_px` are set
        (the field of view stays vertical, so a wider frame sees more to the sides)."""
        from rt_ros.sim.camera import CameraConfig

        return CameraConfig(
            width_px=width_px or self.width_px,
            height_px=height_px or self.height_px,
            multisample=self.multisample,
        )


CAMERA_RIGS: dict[str, CameraRig] = {
    rig.name: rig
    for rig in (
        CameraRig(
            name="head_v1",
            mast_height_m=0.50,
            pitch_rad=0.8,
            width_px=320,
            height_px=256,
            fovy_deg=53.0,
            multisample=True,
            summary="camera 1.5 m up, 44 degrees down, 320x256 (the shipped model's)",
        ),
        CameraRig(
            name="head_v2",
            mast_height_m=0.50,
            pitch_rad=0.68,
            width_px=340,
            height_px=190,
            fovy_deg=38.0,
            multisample=False,
            summary="the same camera framed on the counter, 340x190 (1.4x the pixels per cm deep)",
        ),
    )
}
DEFAULT_CAMERA_RIG = "head_v1"
# Episodes rt-ros collect recorded before rigs were named were all seen through this one.
UNNAMED_SIM_RIG = "head_v1"


def camera_rig(name: str) -> CameraRig:
    """The rig called `name`; ValueError naming the rigs there are."""
    try:
        return CAMERA_RIGS[name]
    except KeyError:
        raise ValueError(
            f"unknown camera rig {name!r}; the rigs are {', '.join(CAMERA_RIGS)}"
        ) from None


def world_config(name: str = DEFAULT_CAMERA_RIG, width_px: int = 0, height_px: int = 0):
    """A SimWorld's WorldConfig with the head camera of rig `name`."""
    from rt_ros.sim.world import WorldConfig

    rig = camera_rig(name)
    return WorldConfig(scene=rig.scene_config(), camera=rig.camera_config(width_px, height_px))


def recorded_rig(provenance: dict | None) -> str | None:
    """The camera rig a model's training data was recorded with (its manifest's provenance), or
    None where the data did not say (recordings from before rigs were named, a real robot)."""
    data = (provenance or {}).get("data") or {}
    rig = data.get("camera_rig")
    return rig if isinstance(rig, str) and rig in CAMERA_RIGS else None


def rig_for_model(asked: str | None, bundle_dir) -> str:
    """The rig to run a model on: `asked` where given (checked), else the rig its training data
    was recorded with (its manifest's provenance), else the default rig (models from before rigs
    were recorded learnt it)."""
    if asked is not None:
        return camera_rig(asked).name
    if bundle_dir is None:
        return DEFAULT_CAMERA_RIG
    from pathlib import Path

    from rt_ros.runtime.manifest import BundleManifest

    provenance = BundleManifest.load(Path(bundle_dir)).provenance
    return recorded_rig(provenance) or DEFAULT_CAMERA_RIG
