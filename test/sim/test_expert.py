"""The scripted expert: quantised RT-1 actions by role, and success on a few seeds per family."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.sim.expert import ExpertConfig, ScriptedExpert, run_episode
from rt_ros.sim.tasks import FAMILIES

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def expert():
    return ScriptedExpert("rt1_everyday_robots")


def test_actions_are_quantised_tokens_of_the_profile(world, expert):
    codec = ActionTokenCodec(expert.space)
    actions = []
    result = run_episode(
        world, "pick", 3, expert, on_step=lambda _, action: actions.append(action)
    )
    assert result.terminated
    assert result.success
    assert len(actions) == result.steps
    for action in actions:
        # Every value is exactly what its token decodes to: nothing finer than the 256 bins.
        again = codec.decode_tokens(np.array(action.tokens))
        assert again.values == action.values
    assert actions[-1].mode == "terminate"
    assert {action.mode for action in actions[:-1]} == {"arm"}
    closed = [action.role("gripper") for action in actions]
    assert max(closed) == 1.0
    assert min(closed) == -1.0


def test_an_episode_replays_identically(world, expert):
    first = run_episode(world, "knock_over", 4, expert)
    second = run_episode(world, "knock_over", 4, expert)
    assert first == second


@pytest.mark.parametrize("family", FAMILIES)
def test_expert_succeeds_on_a_few_seeds(world, expert, family):
    for seed in SEEDS:
        result = run_episode(world, family, seed, expert)
        assert result.success, (family, seed, result)
        assert result.terminated, (family, seed, result)


def test_run_episode_budget_ends_a_policy_that_never_terminates(world):
    class Idle:
        space = ScriptedExpert().space

        def reset(self, task):
            self.codec = ActionTokenCodec(self.space)

        def __call__(self, world):
            values = {name: 0.0 for name in self.space.names}
            values["terminate_episode"] = 1.0  # "arm"
            return self.codec.decode_tokens(self.codec.encode(values, rounding="nearest"))

    result = run_episode(world, "drawer", 0, Idle(), max_steps=5)
    assert result.steps == 5
    assert not result.terminated
    assert not result.success


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_expert_success_rate_on_ten_more_seeds(world, expert, family):
    results = [run_episode(world, family, seed, expert) for seed in range(10, 20)]
    failed = [result.seed for result in results if not result.success]
    # The full figure (50 seeds per family) comes from `rt-ros expert-eval`.
    assert len(failed) <= 1, (family, failed)


def test_an_action_delay_keeps_episodes_reproducible(world):
    """Actions that take effect 0.1-0.15 s after their state (as through the nodes): the expert
    still succeeds, the same seed replays the same episode, and a delay of a whole period is
    refused."""
    first = run_episode(world, "pick", 5, ScriptedExpert(), action_delay_s=(0.1, 0.15))
    again = run_episode(world, "pick", 5, ScriptedExpert(), action_delay_s=(0.1, 0.15))
    assert first.success
    assert first == again
    with pytest.raises(ValueError, match="action_delay_s"):
        run_episode(world, "pick", 5, ScriptedExpert(), action_delay_s=(0.2, 0.5))


def _translation_cm(action) -> float:
    names = ("world_vector_x", "world_vector_y", "world_vector_z")
    return 100 * float(np.linalg.norm([action.values[name] for name in names]))


def test_a_geometric_approach_slows_down_before_the_grasp(world, expert):
    """approach_gain 0.5: each tick covers half the distance left (up to the step limit), so the
    steps shrink into the grasp instead of ending on one step of whatever is left; the expert
    still succeeds, in more ticks."""
    geometric = ScriptedExpert(config=ExpertConfig(approach_gain=0.5))
    runs = {}
    for name, driver in (("deadbeat", expert), ("geometric", geometric)):
        actions = []
        result = run_episode(
            world, "pick", 3, driver, on_step=lambda _, a, seen=actions: seen.append(a)
        )
        assert result.success, (name, result)
        runs[name] = (result, actions)
    assert runs["geometric"][0].steps > runs["deadbeat"][0].steps
    actions = runs["geometric"][1]
    first_close = next(i for i, a in enumerate(actions) if a.role("gripper") > 0)
    before = [_translation_cm(a) for a in actions[first_close - 3 : first_close]]
    assert before == sorted(before, reverse=True), before
    assert before[-1] < 1.0, before  # the last bin or two, not a leap


@pytest.mark.parametrize("gain", [0.0, -0.5, 1.5, float("nan")])
def test_an_approach_gain_outside_0_1_is_refused(gain):
    with pytest.raises(ValueError, match="approach_gain"):
        ExpertConfig(approach_gain=gain)
