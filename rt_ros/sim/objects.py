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

OBJECTS: dict[str, SceneObject] = {
    obj.name: obj
    for obj in (
        SceneObject(
            "red_can",
            CAN,
            ("red can", "red soda can", "coke can"),
            CAN_RADIUS_M,
            CAN_HALF_HEIGHT_M,
            CAN_RADIUS_M,
            CAN_RADIUS_M,
        ),
        SceneObject(
            "blue_can",
            CAN,
            ("blue can", "blue soda can", "pepsi can"),
            CAN_RADIUS_M,
            CAN_HALF_HEIGHT_M,
            CAN_RADIUS_M,
            CAN_RADIUS_M,
        ),
        SceneObject(
            "green_can",
            CAN,
            ("green can", "green soda can", "7up can"),
            CAN_RADIUS_M,
            CAN_HALF_HEIGHT_M,
            CAN_RADIUS_M,
            CAN_RADIUS_M,
        ),
        SceneObject("apple", APPLE, ("apple", "green apple"), 0.037, 0.033, None, 0.037),
        SceneObject("sponge", SPONGE, ("sponge", "yellow sponge"), 0.054, 0.02, None, 0.03),
        SceneObject("bowl", BOWL, ("bowl", "blue bowl"), 0.075, 0.0, None, 0.0),
    )
}

CANS = tuple(name for name, obj in OBJECTS.items() if obj.kind == CAN)
# Objects the expert can pick with a top-down grasp.
GRASPABLE = tuple(name for name, obj in OBJECTS.items() if obj.kind != BOWL)
