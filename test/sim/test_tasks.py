"""Task families: layouts from seeds, instructions from templates, success detectors on
constructed states (true and false cases)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("mujoco")

from rt_ros.sim.objects import OBJECTS
from rt_ros.sim.tasks import FAMILIES, SPLITS, TASKS, get_task
from rt_ros.sim.tasks.drawer import DrawerTask
from rt_ros.sim.tasks.knock_over import KnockOverTask
from rt_ros.sim.tasks.move_near import MoveNearTask
from rt_ros.sim.tasks.pick import PickTask
from rt_ros.sim.tasks.place_upright import PlaceUprightTask, lying_quaternion

UPRIGHT = (1.0, 0.0, 0.0, 0.0)


def test_registry_has_the_five_families():
    assert FAMILIES == ("pick", "move_near", "knock_over", "place_upright", "drawer")
    assert get_task("drawer") is DrawerTask
    with pytest.raises(KeyError, match="pick"):
        get_task("juggle")


@pytest.mark.parametrize("family", FAMILIES)
def test_layouts_are_seeded_spaced_and_not_already_solved(world, family):
    instructions = set()
    for seed in range(8):
        task = world.reset(seed, family)
        instructions.add(task.instruction)
        on_counter = [name for name in OBJECTS if abs(world.object_height_m(name)) < 0.2]
        assert on_counter, "a layout puts objects on the counter"
        for first, second in itertools.combinations(on_counter, 2):
            gap = np.linalg.norm(
                world.object_position(first)[:2] - world.object_position(second)[:2]
            )
            radii = OBJECTS[first].footprint_radius_m + OBJECTS[second].footprint_radius_m
            assert gap > radii, (seed, first, second)
        assert not task.success(world), (family, seed)
        # The same seed gives the same episode.
        positions = {name: world.object_position(name) for name in OBJECTS}
        again = world.reset(seed, family)
        assert again == task
        for name in OBJECTS:
            np.testing.assert_array_equal(world.object_position(name), positions[name])
    assert len(instructions) >= 4, "templates and object words paraphrase the instruction"


def _template_of(task_class, instruction: str) -> int:
    """Index of the template an instruction was worded with (its words filled in)."""
    import re

    for index, template in enumerate(task_class.templates):
        pattern = re.escape(template)
        for field in ("object", "target", "anchor", "verb"):
            pattern = pattern.replace(re.escape("{" + field + "}"), ".+")
        if re.fullmatch(pattern, instruction):
            return index
    raise AssertionError(f"{instruction!r} matches no template of {task_class.family}")


@pytest.mark.parametrize("family", FAMILIES)
def test_templates_split_into_seen_and_held_out(family):
    task_class = TASKS[family]
    seen = task_class.templates_for("seen")
    unseen = task_class.templates_for("unseen_paraphrase")
    assert seen
    assert unseen
    assert set(seen).isdisjoint(unseen)
    assert set(seen) | set(unseen) == set(task_class.templates)
    assert task_class.templates_for("unseen_combination") == seen
    assert task_class.templates_for("any") == task_class.templates
    with pytest.raises(ValueError, match="unknown split 'test'"):
        task_class.templates_for("test")


@pytest.mark.parametrize("family", FAMILIES)
def test_splits_keep_held_out_wording_and_combinations_apart(world, family):
    task_class = TASKS[family]
    held_out_templates = set(task_class.held_out_templates)
    found = {split: set() for split in SPLITS}
    for split in SPLITS:
        for seed in range(12):
            task = world.reset(seed, family, split)
            combination = task.combination(world)
            template = _template_of(task_class, task.instruction)
            found[split].add(combination)
            held_out = combination in task_class.held_out_combinations
            if split in ("seen", "unseen_paraphrase"):
                assert not held_out, (split, seed, combination)
            if split == "unseen_combination":
                assert held_out, (seed, combination)
            if split == "unseen_paraphrase":
                assert template in held_out_templates, (seed, task.instruction)
            if split in ("seen", "unseen_combination"):
                assert template not in held_out_templates, (split, seed, task.instruction)
            # A seed and a split always give the same episode.
            assert world.reset(seed, family, split) == task
    assert found["unseen_combination"] <= task_class.held_out_combinations


def test_split_any_keeps_the_layouts_seeds_always_gave(world):
    """`any` draws once, as reset always did: the seed-7 pick layout of the README's figures."""
    task = world.reset(7, "pick", "any")
    assert task == world.reset(7, "pick")
    with pytest.raises(ValueError, match="unknown split"):
        world.reset(0, "pick", "train")


def test_instructions_name_the_target(world):
    for seed in range(10):
        task = world.reset(seed, "pick")
        assert any(word in task.instruction for word in OBJECTS[task.target].words)
        assert TASKS["pick"].templates[0] == "pick {object}"  # RT-1's wording first


def _clear(world) -> None:
    world.reset(0)  # every object parked, robot home, drawer closed


def _hold_in_gripper(world, name: str, above_counter_m: float) -> None:
    """Construct a state with `name` between the closed fingers, lifted."""
    position, _ = world.ee_pose()
    lifted = world.to_world([position[0], position[1], 0.0])
    lifted[2] = world.counter_height_m + above_counter_m
    arm_q, _, _ = world.ik.solve_pose(
        world.arm_command(),
        np.array([position[0], position[1], lifted[2] + 0.014]),
        np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]),
    )
    # Fingers 2 mm inside the object's surface: in contact, as a closed grasp is.
    world.set_robot_configuration(arm_q, finger_m=OBJECTS[name].grasp_half_width_m - 0.003)
    world.set_object_pose(name, lifted, UPRIGHT)
    world.forward()


def test_pick_success(world):
    task = PickTask(instruction="pick red can", target="red_can")
    _clear(world)
    world.place_on_counter("red_can", [0.6, 0.0])
    world.forward()
    assert not task.success(world)  # on the counter
    _hold_in_gripper(world, "red_can", OBJECTS["red_can"].rest_height_m + 0.1)
    assert world.fingers_touching("red_can") == 2
    assert task.success(world)
    # Lifted but not held (falling, thrown): no success.
    world.set_robot_configuration(finger_m=0.05)
    world.set_object_pose(
        "red_can", world.to_world([0.6, 0.2, 0.0]) + np.array([0.0, 0.0, 1.1]), UPRIGHT
    )
    world.forward()
    assert not task.success(world)


def test_move_near_success(world):
    task = MoveNearTask(instruction="move apple near bowl", target="apple", anchor="bowl")
    _clear(world)
    world.place_on_counter("bowl", [0.6, 0.0])
    world.place_on_counter("apple", [0.6, 0.25])
    world.forward()
    assert not task.success(world)  # far apart
    near = OBJECTS["apple"].footprint_radius_m + OBJECTS["bowl"].footprint_radius_m + 0.03
    world.place_on_counter("apple", [0.6, near])
    world.forward()
    assert task.success(world)
    # Near in x and y, but up in the air (carried, not set down).
    world.set_object_pose(
        "apple",
        world.to_world([0.6, near, 0.0]) + np.array([0.0, 0.0, world.counter_height_m + 0.15]),
        UPRIGHT,
    )
    world.forward()
    assert not task.success(world)
    # Set down near it, but the gripper still touches it.
    _hold_in_gripper(world, "apple", OBJECTS["apple"].rest_height_m)
    held_at = world.to_base(world.object_position("apple"))[:2]
    world.place_on_counter("bowl", held_at + np.array([0.0, near]))
    world.forward()
    assert world.robot_touching("apple")
    assert not task.success(world)


def test_knock_over_success(world):
    task = KnockOverTask(instruction="knock blue can over", target="blue_can")
    _clear(world)
    world.place_on_counter("blue_can", [0.6, 0.0])
    world.forward()
    assert not task.success(world)
    xy = world.to_world([0.6, 0.0, 0.0])
    lying = [xy[0], xy[1], world.counter_height_m + OBJECTS["blue_can"].lying_height_m]
    world.set_object_pose("blue_can", lying, lying_quaternion(0.3))
    world.forward()
    assert task.success(world)


def test_place_upright_success(world):
    task = PlaceUprightTask(instruction="place green can upright", target="green_can")
    obj = OBJECTS["green_can"]
    _clear(world)
    xy = world.to_world([0.6, 0.1, 0.0])
    world.set_object_pose(
        "green_can",
        [xy[0], xy[1], world.counter_height_m + obj.lying_height_m],
        lying_quaternion(0.0),
    )
    world.forward()
    assert not task.success(world)  # lying
    world.place_on_counter("green_can", [0.6, 0.1])
    world.forward()
    assert task.success(world)
    # Upside down is not upright.
    upside_down = (0.0, 1.0, 0.0, 0.0)
    world.set_object_pose("green_can", world.object_position("green_can"), upside_down)
    world.forward()
    assert not task.success(world)
    # Upright but still held above the counter.
    _hold_in_gripper(world, "green_can", obj.rest_height_m + 0.05)
    assert not task.success(world)


@pytest.mark.parametrize(
    ("opening_task", "opening_m", "expected"),
    [(True, 0.15, True), (True, 0.05, False), (False, 0.01, True), (False, 0.05, False)],
)
def test_drawer_success(world, opening_task, opening_m, expected):
    task = DrawerTask(instruction="drawer", open=opening_task)
    _clear(world)
    world.set_drawer_opening(opening_m)
    world.forward()
    assert world.drawer_opening_m() == pytest.approx(opening_m)
    assert task.success(world) is expected
