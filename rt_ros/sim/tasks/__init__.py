"""Task families from RT-1 skills by name: pick, move_near, knock_over, place_upright, drawer."""

from __future__ import annotations

from rt_ros.sim.tasks.base import SPLITS, Task, check_split
from rt_ros.sim.tasks.drawer import DrawerTask
from rt_ros.sim.tasks.knock_over import KnockOverTask
from rt_ros.sim.tasks.move_near import MoveNearTask
from rt_ros.sim.tasks.pick import PickTask
from rt_ros.sim.tasks.place_upright import PlaceUprightTask

TASKS: dict[str, type[Task]] = {
    task.family: task
    for task in (PickTask, MoveNearTask, KnockOverTask, PlaceUprightTask, DrawerTask)
}
FAMILIES = tuple(TASKS)


def get_task(family: str) -> type[Task]:
    """The Task class of a family; KeyError naming the families for an unknown one."""
    try:
        return TASKS[family]
    except KeyError:
        raise KeyError(
            f"unknown task family {family!r}; families: {', '.join(FAMILIES)}"
        ) from None


__all__ = ["FAMILIES", "SPLITS", "TASKS", "Task", "check_split", "get_task"]
