"""Scripted expert with privileged state, and the episode runner for any policy.

The expert reads object poses from the simulator and plans waypoints for the task family, then
emits one RT-1 action per control tick by dimension role: the end-effector displacement and
rotation increment towards the current waypoint (base frame), the gripper closedness and the
mode. Every action goes through the action codec (encode, then decode the tokens) before it is
applied, so the expert is held to the same 256-bin resolution as a trained policy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rt_ros.nodes.safety import SafetyLimits
from rt_ros.runtime.action import Action
from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_motion import (
    ARM_ANGULAR_ROLES,
    ARM_LINEAR_ROLES,
    action_to_motion,
    rotation_vector_to_rpy,
)
from rt_ros.runtime.action_space import DEFAULT_ACTION_SPACE, ActionSpace, load_action_space
from rt_ros.sim import robot_description as rd
from rt_ros.sim.ik import rotation_error
from rt_ros.sim.objects import APPLE, CAN, OBJECTS, SPONGE
from rt_ros.sim.safety_limited_world import SafetyLimitedWorld
from rt_ros.sim.tasks import Task, get_task
from rt_ros.sim.tasks.drawer import DrawerTask
from rt_ros.sim.tasks.knock_over import KnockOverTask
from rt_ros.sim.tasks.layout import (
    CABINET_HALF_X_M,
    CABINET_HALF_Y_M,
    CABINET_HEIGHT_M,
    DRAWER_CLEARANCE_X_M,
    LayoutConfig,
)
from rt_ros.sim.tasks.move_near import MoveNearTask
from rt_ros.sim.tasks.pick import PickTask
from rt_ros.sim.tasks.place_upright import PlaceUprightTask
from rt_ros.sim.world import SimWorld

# RT-1 runs its policy at about 3 Hz (reference/RT1.md, "RT-1 speed").
RT1_CONTROL_PERIOD_S = 1.0 / 3.0
OPEN = -1.0
CLOSED = 1.0
# Links whose clearance a plan checks, from the elbow to the tool centre point.
_CHECKED_LINKS = (
    "arm_link_4",
    "arm_link_5",
    "arm_link_6",
    rd.GRIPPER_BASE_LINK,
    rd.END_EFFECTOR_FRAME,
)
# A link's radius and the height it keeps above what it passes over, for clearance checks (m).
_LINK_RADIUS_M = 0.045
# How far the drawer's handle stands out of the cabinet's front (m).
_HANDLE_DEPTH_M = 0.065
_VERTICAL_CLEARANCE_M = 0.03
# How far beyond the layouts' object area the expert may set an object down (m).
_WORKSPACE_MARGIN_M = 0.04
# Place upright: the height (tool centre point above the counter) at which the can is turned,
# and how many spots are tried for it.
_UPRIGHT_TURN_HEIGHT_M = 0.18
_UPRIGHT_SPOTS = 10
# Gripper pointing straight down, fingers moving along the base y axis.
POINTING_DOWN = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class ExpertConfig:
    """Speeds, tolerances and clearances of the scripted expert (base frame, SI units)."""

    control_period_s: float = RT1_CONTROL_PERIOD_S
    max_step_m: float = 0.04
    # Fraction of the distance left that a motion translates in one tick (then clipped to the
    # step limit): 1 is deadbeat (the last step is whatever is left), 0.5 approaches
    # geometrically (half the distance left each tick, once within twice the step limit).
    approach_gain: float = 1.0
    max_turn_rad: float = 0.3
    position_tolerance_m: float = 0.007
    angle_tolerance_rad: float = 0.08
    # Ticks a single motion may take before the attempt is abandoned.
    max_ticks_per_motion: int = 30
    gripper_ticks: int = 3
    attempts: int = 3
    # Heights of the tool centre point above the counter top.
    approach_height_m: float = 0.14
    carry_height_m: float = 0.22
    # Tool centre point above the bottom of an object grasped from above.
    grasp_heights_m: tuple[tuple[str, float], ...] = (
        (CAN, 0.075),
        (APPLE, 0.035),
        (SPONGE, 0.028),
    )
    lift_m: float = 0.12
    # Free space between a placed object's footprint and its anchor's.
    place_gap_m: float = 0.025

    def __post_init__(self) -> None:
        if not (math.isfinite(self.control_period_s) and self.control_period_s > 0):
            raise ValueError(
                f"ExpertConfig.control_period_s ({self.control_period_s!r}) must be > 0"
            )
        for name in ("max_step_m", "max_turn_rad", "position_tolerance_m", "angle_tolerance_rad"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExpertConfig.{name} ({getattr(self, name)!r}) must be > 0")
        if not 0.0 < self.approach_gain <= 1.0:
            raise ValueError(
                f"ExpertConfig.approach_gain ({self.approach_gain!r}) must be in (0, 1]"
            )

    def grasp_height_m(self, kind: str) -> float:
        return dict(self.grasp_heights_m)[kind]


@dataclass(frozen=True)
class Intent:
    """One tick of the expert before quantisation (base frame)."""

    displacement_m: np.ndarray
    rotation_vector_rad: np.ndarray
    gripper: float
    mode: str = "arm"


def pointing_down(yaw_rad: float) -> np.ndarray:
    """End-effector rotation pointing down with the fingers turned by `yaw_rad` about vertical."""
    cos, sin = math.cos(yaw_rad), math.sin(yaw_rad)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]]) @ POINTING_DOWN


def wrap_half_turn(angle_rad: float) -> float:
    """An angle modulo pi, in [-pi/2, pi/2) (a parallel gripper is symmetric under a half turn)."""
    return (angle_rad + math.pi / 2) % math.pi - math.pi / 2


def _clip_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


class _Script:
    """Motion primitives shared by the family scripts; each yields one Intent per tick."""

    def __init__(self, world: SimWorld, config: ExpertConfig) -> None:
        self.world = world
        self.config = config
        self.counter = world.counter_height_m
        # The shoulder's position (base frame), for choosing comfortable hand directions.
        self.shoulder_xy = world.to_base(world.data.xpos[world.model.body("arm_link_2").id])[:2]
        # Elbow to tool centre point: the links that can hit the counter and what stands on it.
        self.arm_bodies = [world.model.body(name).id for name in _CHECKED_LINKS]

    # ---------------------------------------------------------------- state (base frame)
    def ee(self) -> tuple[np.ndarray, np.ndarray]:
        return self.world.ee_pose()

    def object_xyz(self, name: str) -> np.ndarray:
        """Object origin in the base frame, z above the counter top."""
        position = self.world.to_base(self.world.object_position(name))
        position[2] = self.world.object_height_m(name)
        return position

    def object_axes(self, name: str) -> np.ndarray:
        """Object rotation in the base frame."""
        _, base_rot = self.world.base_pose_world()
        return base_rot.T @ self.world.object_rotation(name)

    def point(self, xy: np.ndarray, height_m: float) -> np.ndarray:
        """A base-frame point at (x, y) and `height_m` above the counter top."""
        return np.array([xy[0], xy[1], self.counter + height_m])

    def reachable(
        self, position: np.ndarray, rotation: np.ndarray, ignore: tuple[str, ...] = ()
    ) -> bool:
        """Whether the arm's kinematics reach a pose from the current command with every link
        clear of the counter, the cabinet and the objects (but `ignore`) - a plan check."""
        q, position_error, angle_error = self.world.ik.solve_pose(
            self.world.arm_command(), position, rotation
        )
        if position_error > 0.005 or angle_error > 0.05:
            return False
        links = self.world.ik.body_positions(q, self.arm_bodies)
        for start, end in itertools.pairwise(links):
            for fraction in np.linspace(0.0, 1.0, 5):
                point = start + fraction * (end - start)
                height = point[2] - self.counter
                if height < _VERTICAL_CLEARANCE_M:
                    return False
                if not _free_around(self, point[:2], _LINK_RADIUS_M, ignore, 0.0, height):
                    return False
        return True

    # ---------------------------------------------------------------- primitives
    def move(
        self,
        goal: Callable[[], np.ndarray] | np.ndarray,
        rotation: np.ndarray,
        gripper: float,
        tolerance_m: float | None = None,
        max_step_m: float | None = None,
    ) -> Iterator[Intent]:
        """Go to a position (fixed or re-read every tick) and rotation; returns whether reached."""
        config = self.config
        tolerance = tolerance_m or config.position_tolerance_m
        step = max_step_m or config.max_step_m
        for _ in range(config.max_ticks_per_motion):
            target = goal() if callable(goal) else goal
            position, current = self.ee()
            error = target - position
            turn = rotation_error(rotation, current)
            if (
                float(np.linalg.norm(error)) <= tolerance
                and float(np.linalg.norm(turn)) <= config.angle_tolerance_rad
            ):
                return True
            yield Intent(
                _clip_norm(config.approach_gain * error, step),
                _clip_norm(turn, config.max_turn_rad),
                gripper,
            )
        return False

    def hold(self, position: np.ndarray, rotation: np.ndarray, gripper: float) -> Iterator[Intent]:
        """Stay at a pose (closing the loop against quantisation) while the gripper moves."""
        for _ in range(self.config.gripper_ticks):
            current_position, current = self.ee()
            yield Intent(
                _clip_norm(position - current_position, self.config.max_step_m),
                _clip_norm(rotation_error(rotation, current), self.config.max_turn_rad),
                gripper,
            )

    def terminate(self) -> Iterator[Intent]:
        while True:
            yield Intent(np.zeros(3), np.zeros(3), OPEN, mode="terminate")

    # ---------------------------------------------------------------- grasping
    def grasp_yaw(self, name: str) -> float:
        """Gripper yaw that closes the fingers across the object's narrow side."""
        obj = OBJECTS[name]
        if obj.kind == SPONGE:
            axes = self.object_axes(name)
            return wrap_half_turn(math.atan2(-axes[0, 1], axes[1, 1]))
        _, current = self.ee()
        # Round objects: keep the current finger direction (the least wrist motion).
        return wrap_half_turn(math.atan2(-current[0, 1], current[1, 1]))

    def pick_up(self, name: str, lift_to_m: float) -> Iterator[Intent]:
        """Top-down grasp of a standing object, lifted to `lift_to_m` above the counter."""
        config = self.config
        obj = OBJECTS[name]
        rotation = pointing_down(self.grasp_yaw(name))
        grasp_height = config.grasp_height_m(obj.kind)
        reached = yield from self.move(
            lambda: self.point(self.object_xyz(name)[:2], config.approach_height_m),
            rotation,
            OPEN,
        )
        if not reached:
            return False
        grasp = self.point(self.object_xyz(name)[:2], grasp_height)
        reached = yield from self.move(grasp, rotation, OPEN, tolerance_m=0.005)
        if not reached:
            return False
        yield from self.hold(grasp, rotation, CLOSED)
        lifted = self.point(grasp[:2], lift_to_m)
        yield from self.move(lifted, rotation, CLOSED)
        return self.world.fingers_touching(name) > 0

    def release_and_rise(self, rotation: np.ndarray) -> Iterator[Intent]:
        position, _ = self.ee()
        yield from self.hold(position, rotation, OPEN)
        yield from self.move(
            self.point(position[:2], self.config.approach_height_m), rotation, OPEN
        )


def _pick_script(script: _Script, task: PickTask) -> Iterator[Intent]:
    config = script.config
    for _ in range(config.attempts):
        grasp_height = config.grasp_height_m(OBJECTS[task.target].kind)
        yield from script.pick_up(task.target, grasp_height + config.lift_m)
        if task.success(script.world):
            break
        _, rotation = script.ee()
        yield from script.release_and_rise(rotation)


def _free_around(
    script: _Script,
    xy: np.ndarray,
    radius: float,
    ignore: tuple[str, ...],
    gap: float,
    height_m: float | None = None,
) -> bool:
    """Whether a footprint at `xy` keeps `gap` to every object on the counter and the cabinet
    (with the strip in front of it that the drawer needs); with `height_m` (a point of the arm
    above the counter), only to what reaches up to that height, and to the cabinet as it is:
    its box, its handle and the drawer as far as it is out."""
    for name, obj in OBJECTS.items():
        if name in ignore:
            continue
        if script.world.is_parked(name):
            continue
        other = script.object_xyz(name)
        top = other[2] + obj.top_height_m - obj.rest_height_m
        if height_m is not None and height_m > top + _VERTICAL_CLEARANCE_M:
            continue
        if float(np.linalg.norm(other[:2] - xy)) < radius + obj.footprint_radius_m + gap:
            return False
    if height_m is not None and height_m > CABINET_HEIGHT_M + _VERTICAL_CLEARANCE_M:
        return True
    cabinet = script.world.to_base(script.world.cabinet_position())[:2]
    if height_m is None:
        front = cabinet[0] - CABINET_HALF_X_M - DRAWER_CLEARANCE_X_M
    else:
        front = cabinet[0] - CABINET_HALF_X_M - _HANDLE_DEPTH_M - script.world.drawer_opening_m()
    inside_x = front - radius - gap < xy[0] < cabinet[0] + CABINET_HALF_X_M + radius + gap
    inside_y = abs(xy[1] - cabinet[1]) < CABINET_HALF_Y_M + radius + gap
    return not (inside_x and inside_y)


def _in_workspace(xy: np.ndarray) -> bool:
    """Whether a spot lies in the layouts' object area, widened by a margin."""
    area = LayoutConfig()
    low_x, high_x = area.x_range_m
    low_y, high_y = area.y_range_m
    margin = _WORKSPACE_MARGIN_M
    return (
        low_x - margin <= xy[0] <= high_x + margin and low_y - margin <= xy[1] <= high_y + margin
    )


def _placement(script: _Script, task: MoveNearTask) -> np.ndarray | None:
    """Where to set the target down: beside the anchor, on a free side, nearest the target."""
    config = script.config
    anchor = script.object_xyz(task.anchor)[:2]
    start = script.object_xyz(task.target)[:2]
    distance = (
        OBJECTS[task.target].footprint_radius_m
        + OBJECTS[task.anchor].footprint_radius_m
        + config.place_gap_m
    )
    candidates = []
    for angle in np.linspace(-math.pi, math.pi, 24, endpoint=False):
        xy = anchor + distance * np.array([math.cos(angle), math.sin(angle)])
        if not _in_workspace(xy):
            continue
        radius = OBJECTS[task.target].footprint_radius_m
        if not _free_around(script, xy, radius, (task.target, task.anchor), 0.02):
            continue
        candidates.append((float(np.linalg.norm(xy - start)), xy))
    return min(candidates, key=lambda item: item[0])[1] if candidates else None


def _move_near_script(script: _Script, task: MoveNearTask) -> Iterator[Intent]:
    config = script.config
    kind = OBJECTS[task.target].kind
    for _ in range(config.attempts):
        place = _placement(script, task)
        if place is None:
            return
        held = yield from script.pick_up(task.target, config.carry_height_m)
        if held:
            _, rotation = script.ee()
            # Turn the fingers tangent to the anchor so that they open clear of it.
            away = place - script.object_xyz(task.anchor)[:2]
            yaw = wrap_half_turn(math.atan2(away[1], away[0]))
            if OBJECTS[task.target].kind == SPONGE:
                yaw = wrap_half_turn(math.atan2(-rotation[0, 1], rotation[1, 1]))
            rotation = pointing_down(yaw)
            yield from script.move(script.point(place, config.carry_height_m), rotation, CLOSED)
            down = script.point(place, config.grasp_height_m(kind) + 0.008)
            yield from script.move(down, rotation, CLOSED)
        _, rotation = script.ee()
        yield from script.release_and_rise(rotation)
        if task.success(script.world):
            break


def _knock_over_script(script: _Script, task: KnockOverTask) -> Iterator[Intent]:
    config = script.config
    radius = OBJECTS[task.target].footprint_radius_m
    height = 2 * OBJECTS[task.target].rest_height_m
    rotation = pointing_down(0.0)
    for _ in range(config.attempts):
        can = script.object_xyz(task.target)[:2]
        spot = None
        # Push away from the robot if the space in front of the can is free, else sideways.
        for angle in (0.0, 0.6, -0.6, 1.2, -1.2, math.pi / 2, -math.pi / 2):
            direction = np.array([math.cos(angle), math.sin(angle)])
            candidate = can - direction * (radius + 0.035)
            if _free_around(script, candidate, 0.02, (task.target,), 0.01):
                spot = candidate
                break
        if spot is None:
            return
        # The tool centre point at the can's top puts the finger tips 2 cm below it.
        push_height = height - 0.02
        yield from script.move(script.point(spot, height + 0.06), rotation, CLOSED)
        reached = yield from script.move(script.point(spot, push_height), rotation, CLOSED)
        if reached:
            through = can + direction * 0.08
            yield from script.move(script.point(through, push_height), rotation, CLOSED)
        position, _ = script.ee()
        yield from script.move(script.point(position[:2], height + 0.08), rotation, CLOSED)
        if task.success(script.world):
            break


def _upright_plan(
    script: _Script, task: PlaceUprightTask, held: np.ndarray, top_sign: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Where and how to stand a held can up: a spot (the can's own first, then free ones
    nearest to it) and a hand rotation that holds the can's top (the gripper's x axis times
    `top_sign`) up, the hand horizontal. The first spot and heading that the arm reaches with
    every link clear, both where it turns the can and where it sets it down, is the plan."""
    obj = OBJECTS[task.target]
    start = script.object_xyz(task.target)[:2]
    spots = [start]
    area = LayoutConfig()
    for x in np.linspace(*area.x_range_m, 5):
        for y in np.linspace(*area.y_range_m, 7):
            spot = np.array([x, y])
            if _free_around(script, spot, obj.footprint_radius_m, (task.target,), 0.04):
                spots.append(spot)
    spots.sort(key=lambda spot: float(np.linalg.norm(spot - start)))
    for spot in spots[:_UPRIGHT_SPOTS]:
        turn_at = script.point(spot, _UPRIGHT_TURN_HEIGHT_M)
        set_at = script.point(spot, obj.rest_height_m + 0.006)
        options = []
        for angle in np.linspace(-math.pi, math.pi, 8, endpoint=False):
            z_axis = np.array([math.cos(angle), math.sin(angle), 0.0])
            x_axis = np.array([0.0, 0.0, top_sign])
            rotation = np.column_stack((x_axis, np.cross(z_axis, x_axis), z_axis))
            options.append((float(np.linalg.norm(rotation_error(rotation, held))), rotation))
        options.sort(key=lambda option: option[0])
        for _, rotation in options:
            ignore = (task.target,)
            if script.reachable(turn_at, rotation, ignore) and script.reachable(
                set_at, rotation, ignore
            ):
                return spot, rotation
    return None


def _place_upright_script(script: _Script, task: PlaceUprightTask) -> Iterator[Intent]:
    config = script.config
    obj = OBJECTS[task.target]
    for _ in range(config.attempts):
        axes = script.object_axes(task.target)
        if axes[2, 2] ** 2 < 0.5:
            # Lying: close the fingers across the can's middle, the fingers' y across its axis.
            axis_yaw = math.atan2(axes[1, 2], axes[0, 2])
            rotation = pointing_down(wrap_half_turn(axis_yaw))
            centre = script.object_xyz(task.target)
            reached = yield from script.move(
                script.point(centre[:2], config.approach_height_m), rotation, OPEN
            )
            if not reached:
                continue
            grasp = script.point(script.object_xyz(task.target)[:2], obj.lying_height_m + 0.002)
            reached = yield from script.move(grasp, rotation, OPEN, tolerance_m=0.005)
            if not reached:
                continue
            yield from script.hold(grasp, rotation, CLOSED)
            yield from script.move(
                script.point(grasp[:2], _UPRIGHT_TURN_HEIGHT_M), rotation, CLOSED
            )
            _, held = script.ee()
            top = script.object_axes(task.target)[:, 2]
            top_sign = 1.0 if float(held[:, 0] @ top) >= 0 else -1.0
            plan = _upright_plan(script, task, held, top_sign)
            if plan is None:
                yield from script.release_and_rise(held)
                continue
            spot, upright = plan
            turn_at = script.point(spot, _UPRIGHT_TURN_HEIGHT_M)
            yield from script.move(turn_at, held, CLOSED)
            yield from script.move(turn_at, upright, CLOSED)
            down = script.point(spot, obj.rest_height_m + 0.006)
            yield from script.move(down, upright, CLOSED)
            yield from script.hold(down, upright, OPEN)
            # The open fingers lie either side of the can: straight up frees them.
            yield from script.move(down + np.array([0.0, 0.0, 0.12]), upright, OPEN)
        if task.success(script.world):
            break


def _drawer_script(script: _Script, task: DrawerTask) -> Iterator[Intent]:
    config = script.config
    world = script.world
    rotation = pointing_down(0.0)
    for _ in range(config.attempts):
        handle = world.to_base(world.handle_position())
        if task.open:
            # Hook the closed fingers between the handle bar and the drawer front, then pull.
            spot = handle + np.array([0.0315, 0.0, 0.0])
            target_travel = 0.15 - world.drawer_opening_m()
            pull = np.array([-target_travel, 0.0, 0.0])
        else:
            spot = handle - np.array([0.035, 0.0, 0.0])
            pull = np.array([world.drawer_opening_m() + 0.01, 0.0, 0.0])
        above = spot + np.array([0.0, 0.0, 0.08])
        yield from script.move(above, rotation, CLOSED)
        reached = yield from script.move(spot, rotation, CLOSED, tolerance_m=0.005)
        if reached:
            yield from script.move(spot + pull, rotation, CLOSED, max_step_m=0.03)
        position, _ = script.ee()
        retreat = np.array([0.0, 0.0, 0.0]) if task.open else np.array([-0.04, 0.0, 0.0])
        yield from script.move(position + retreat + np.array([0.0, 0.0, 0.1]), rotation, CLOSED)
        if task.success(world):
            break


_SCRIPTS: dict[type[Task], Callable[[_Script, Task], Iterator[Intent]]] = {
    PickTask: _pick_script,
    MoveNearTask: _move_near_script,
    KnockOverTask: _knock_over_script,
    PlaceUprightTask: _place_upright_script,
    DrawerTask: _drawer_script,
}


class EpisodePolicy(Protocol):
    """Anything the episode runner can drive: reset per episode, one action per tick."""

    space: ActionSpace

    def reset(self, task: Task) -> None: ...

    def __call__(self, world: SimWorld) -> Action: ...


class ScriptedExpert:
    """Privileged scripted expert emitting quantised actions of an action space by role."""

    def __init__(
        self,
        space: ActionSpace | str = DEFAULT_ACTION_SPACE,
        config: ExpertConfig | None = None,
    ) -> None:
        self.space = load_action_space(space) if isinstance(space, str) else space
        self.config = config or ExpertConfig()
        self.codec = ActionTokenCodec(self.space)
        self._names = {dim.role: dim.name for dim in self.space.dimensions}
        mode = self.space.mode_dimension
        self._mode_values = dict(zip(mode.labels, mode.values, strict=True)) if mode else {}
        self._plan: Iterator[Intent] | None = None
        self._world: SimWorld | None = None
        self._task: Task | None = None

    def reset(self, task: Task) -> None:
        """Forget the previous episode; the plan starts on the next call."""
        self._task = task
        self._plan = None
        self._world = None

    def __call__(self, world: SimWorld) -> Action:
        if self._task is None:
            raise RuntimeError("ScriptedExpert: call reset(task) before the first action")
        if self._plan is None or self._world is not world:
            self._world = world
            script = _Script(world, self.config)
            body = _SCRIPTS[type(self._task)](script, self._task)
            self._plan = _then(body, script.terminate())
        return self.encode(next(self._plan))

    def encode(self, intent: Intent) -> Action:
        """Quantise an intent through the codec: values by role -> tokens -> decoded action."""
        values = {name: 0.0 for name in self.space.names}
        linear = intent.displacement_m
        angular = intent.rotation_vector_rad
        if self.space.rotation == "rpy_delta":
            angular = rotation_vector_to_rpy(angular)
        for roles, vector in ((ARM_LINEAR_ROLES, linear), (ARM_ANGULAR_ROLES, angular)):
            for role, value in zip(roles, vector, strict=True):
                if role in self._names:
                    values[self._names[role]] = float(value)
        if "gripper" in self._names:
            values[self._names["gripper"]] = self.space.gripper_close_sign * intent.gripper
        if self._mode_values:
            values[self._names["mode"]] = float(self._mode_values[intent.mode])
        # Nearest bins: the expert picks the representable action closest to its intent.
        return self.codec.decode_tokens(self.codec.encode(values, rounding="nearest"))


def _then(first: Iterator[Intent], second: Iterator[Intent]) -> Iterator[Intent]:
    yield from first
    yield from second


@dataclass(frozen=True)
class EpisodeResult:
    """How one episode ended."""

    family: str
    seed: int
    instruction: str
    success: bool
    steps: int
    terminated: bool


def run_episode(
    world: SimWorld,
    family: str | type[Task],
    seed: int,
    policy: EpisodePolicy,
    control_period_s: float = RT1_CONTROL_PERIOD_S,
    max_steps: int | None = None,
    on_step: Callable[[SimWorld, Action], None] | None = None,
    split: str = "any",
    action_delay_s: tuple[float, float] = (0.0, 0.0),
    driver_limits: SafetyLimits | None = None,
) -> EpisodeResult:
    """Reset `world` to (family, seed) in `split`, run `policy` one action per control tick until
    it terminates or `max_steps` (default: the family's budget) pass; success is judged at the
    end. `on_step(world, action)` sees every action before it is applied (recording, rendering).

    `action_delay_s` (low, high): each action takes effect a uniformly drawn delay after the
    state it was computed from, the previous command running meanwhile, as through the nodes
    (camera frame age plus inference and DDS: about 0.05-0.15 s). The draws are seeded by `seed`.

    `driver_limits`: each action reaches the world through the driver's safety layer under these
    limits (clamped, acceleration-limited at the driver's update rate), as through the nodes;
    None applies it at once.
    """
    low_delay, high_delay = action_delay_s
    if not 0.0 <= low_delay <= high_delay < control_period_s:
        raise ValueError(
            f"action_delay_s ({action_delay_s!r}) must be 0 <= low <= high < the control period"
        )
    delays = np.random.default_rng([seed, 7])
    task_class = get_task(family) if isinstance(family, str) else family
    task = world.reset(seed, task_class, split)
    policy.reset(task)
    limited = None if driver_limits is None else SafetyLimitedWorld(world, driver_limits)
    budget = task_class.max_steps if max_steps is None else max_steps
    steps = 0
    terminated = False
    while steps < budget:
        action = policy(world)
        if on_step is not None:
            on_step(world, action)
        motion = action_to_motion(action, policy.space, control_period_s)
        steps += 1
        if motion.terminate:
            terminated = True
            break
        delay_s = float(delays.uniform(low_delay, high_delay)) if high_delay > 0 else 0.0
        if limited is None:
            world.step(delay_s)
            world.apply(motion.arm_twist, motion.base_twist, motion.gripper_closedness)
            world.step(control_period_s - delay_s)
        else:
            limited.step(delay_s)
            limited.apply(motion)
            limited.step(control_period_s - delay_s)
    world.stop()
    return EpisodeResult(
        family=task_class.family,
        seed=seed,
        instruction=task.instruction,
        success=task.success(world),
        steps=steps,
        terminated=terminated,
    )


__all__ = [
    "RT1_CONTROL_PERIOD_S",
    "EpisodePolicy",
    "EpisodeResult",
    "ExpertConfig",
    "ScriptedExpert",
    "run_episode",
]
