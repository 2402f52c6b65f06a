"""The graspable objects of the kitchen scene: names, words for instructions, sizes for layouts.

The geometry lives in assets/kitchen.xml; the sizes here are what layouts and success detectors
need (a test checks that each object settles at the rest height given here).
"""

from __future__ import annotations

from dataclasses import dataclass

CAN = "can"
APPLE = "apple"
SPONGE = "sponge"
BOWL = "bowl"


@dataclass(frozen=True)
class SceneObject:
    """One free body of the scene (its MuJoCo body, free joint and main geom share `name`)."""

    name: str
    kind: str
    # Names an instruction may use for it; the first is the canonical one.
    words: tuple[str, ...]
    # Radius of the circle it covers on the counter, for spacing layouts and "near".
    footprint_radius_m: float
    # Height of the body origin above the counter top when it stands (or lies flat).
    rest_height_m: float
    # Height of its top above the counter top when it stands.
    top_height_m: float
    # Height of the body origin above the counter top when lying on its side (cans only).
    lying_height_m: float | None = None
    # Half of the width the gripper closes on (top-down grasp across the narrow side).
    grasp_half_width_m: float = 0.0

    @property
    def free_joint(self) -> str:
        return f"{self.name}_free"

    @property
    def word(self) -> str:
        return self.words[0]


CAN_RADIUS_M = 0.033
CAN_HALF_HEIGHT_M = 0.061


def _can(name: str, words: tuple[str, ...]) -> SceneObject:
    return SceneObject(
        name=name,
        kind=CAN,
        words=words,
        footprint_radius_m=CAN_RADIUS_M,
        rest_height_m=CAN_HALF_HEIGHT_M,
        top_height_m=2 * CAN_HALF_HEIGHT_M,
        lying_height_m=CAN_RADIUS_M,
        grasp_half_width_m=CAN_RADIUS_M,
    )


OBJECTS: dict[str, SceneObject] = {
    obj.name: obj
    for obj in (
        _can("red_can", ("red can", "red soda can", "coke can")),
        _can("blue_can", ("blue can", "blue soda can", "pepsi can")),
        _can("green_can", ("green can", "green soda can", "7up can")),
        SceneObject(
            name="apple",
            kind=APPLE,
            words=("apple", "green apple"),
            footprint_radius_m=0.037,
            rest_height_m=0.033,
            top_height_m=0.066,
            grasp_half_width_m=0.037,
        ),
        SceneObject(
            name="sponge",
            kind=SPONGE,
            words=("sponge", "yellow sponge"),
            footprint_radius_m=0.054,
            rest_height_m=0.02,
            top_height_m=0.04,
            grasp_half_width_m=0.03,
        ),
        SceneObject(
            name="bowl",
            kind=BOWL,
            words=("bowl", "blue bowl"),
            footprint_radius_m=0.075,
            rest_height_m=0.0,
            top_height_m=0.055,
        ),
    )
}

CANS = tuple(name for name, obj in OBJECTS.items() if obj.kind == CAN)
# Objects the expert can pick with a top-down grasp.
GRASPABLE = tuple(name for name, obj in OBJECTS.items() if obj.kind != BOWL)
