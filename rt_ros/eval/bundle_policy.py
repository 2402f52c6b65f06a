"""A model bundle as a simulator episode policy: the head camera frame -> one Policy step."""

from __future__ import annotations

from rt_ros.runtime.action import Action
from rt_ros.runtime.policy import Policy
from rt_ros.sim.tasks import Task
from rt_ros.sim.world import SimWorld


class BundlePolicy:
    """Drives `run_episode` with the same runtime the policy node runs (ONNX Runtime), without
    ROS: each tick renders the head camera and steps the policy on it, stamped with sim time."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.space = policy.action_space

    def reset(self, task: Task) -> None:
        self.policy.reset(task.instruction)

    def __call__(self, world: SimWorld) -> Action:
        return self.policy.step(world.render(), world.state().time_s)
