"""`rt-ros eval --direct`: the runtime drives the simulator without ROS; an untrained bundle
fails, its failure video is kept, and the expert beside it succeeds."""

from __future__ import annotations

import pytest

pytest.importorskip("mujoco", reason="evaluation needs the sim extra (mujoco)")
pytest.importorskip("imageio", reason="failure videos need imageio")

from rt_ros.eval.closed_loop import EvalSettings, evaluate
from rt_ros.eval.report import summarise


def test_direct_evaluation_of_an_untrained_bundle(tiny_bundle, tmp_path):
    settings = EvalSettings(
        model_path=tiny_bundle,
        out_dir=tmp_path,
        families=("drawer",),
        splits=("seen", "unseen_paraphrase"),
        episodes=2,
        through="direct",
        failure_videos=1,
    )
    results = evaluate(settings)
    assert [r.split for r in results] == ["seen", "seen", "unseen_paraphrase"] * 1 + [
        "unseen_paraphrase"
    ]
    (seen, unseen) = summarise(results)
    assert seen.expert_success_rate == unseen.expert_success_rate == 1.0
    for result in results:
        assert not result.success  # random weights never open or close the drawer
        assert result.steps == 90  # the family's budget: it never terminates by chance
    kept = [r.video for r in results if r.video]
    assert len(kept) == 2  # failure_videos=1: one per row
    for path in kept:
        assert path.endswith(".mp4")
    assert len(list((tmp_path / "failures").glob("*.mp4"))) == 2


def test_settings_are_checked(tiny_bundle, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'train'"):
        EvalSettings(model_path=tiny_bundle, out_dir=tmp_path, splits=("train",))
    with pytest.raises(ValueError, match=r"stay within 0\.\.101"):
        EvalSettings(model_path=tiny_bundle, out_dir=tmp_path, jobs=4, domain_base=100)
    with pytest.raises(ValueError, match="is not a folder"):
        EvalSettings(model_path=tmp_path / "none", out_dir=tmp_path)
    with pytest.raises(ValueError, match="driver_limits and action_delay_s"):
        EvalSettings(model_path=tiny_bundle, out_dir=tmp_path, driver_limits=True)


def test_direct_evaluation_behind_the_drivers_safety_layer(tiny_bundle, tmp_path):
    """`--direct --driver-limits`: the model and the expert beside it both drive through the sim
    driver's limits; the expert still opens the drawer."""
    settings = EvalSettings(
        model_path=tiny_bundle,
        out_dir=tmp_path,
        families=("drawer",),
        splits=("seen",),
        episodes=1,
        through="direct",
        driver_limits=True,
        failure_videos=0,
    )
    (result,) = evaluate(settings)
    assert not result.success
    assert result.expert_success
