"""Evaluation results as files a person reads: episodes.csv, summary.csv, summary.md (the
README's table) and success.png (success per family and split with 95% Wilson intervals, the
scripted expert beside it)."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rt_ros.eval.closed_loop import EpisodeResult
from rt_ros.eval.statistics import wilson_interval

SPLIT_LABELS = {
    "any": "any",
    "seen": "seen",
    "unseen_paraphrase": "unseen paraphrase",
    "unseen_combination": "unseen combination",
}


@dataclass(frozen=True)
class RowSummary:
    """Success of one (family, split)."""

    family: str
    split: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_steps: float
    mean_steps_successful: float | None
    expert_success_rate: float | None
    # Episodes through the nodes whose timing the machine did not keep (None: direct).
    degraded_episodes: int | None = None
    # Median rate at which the simulated camera's frames arrived (None: direct).
    camera_rate_hz_median: float | None = None

    @property
    def label(self) -> str:
        return f"{self.family} ({SPLIT_LABELS[self.split]})"


def summarise(results: list[EpisodeResult]) -> list[RowSummary]:
    """One row per (family, split), in the order the results first name them."""
    rows: dict[tuple[str, str], list[EpisodeResult]] = {}
    for result in results:
        rows.setdefault((result.family, result.split), []).append(result)
    summaries = []
    for (family, split), episodes in rows.items():
        successes = sum(e.success for e in episodes)
        low, high = wilson_interval(successes, len(episodes))
        good = [e.steps for e in episodes if e.success]
        experts = [e.expert_success for e in episodes if e.expert_success is not None]
        timed = [e.degraded for e in episodes if e.degraded is not None]
        cameras = [e.camera_rate_hz for e in episodes if e.camera_rate_hz is not None]
        summaries.append(
            RowSummary(
                family=family,
                split=split,
                episodes=len(episodes),
                successes=successes,
                success_rate=successes / len(episodes),
                ci_low=low,
                ci_high=high,
                mean_steps=sum(e.steps for e in episodes) / len(episodes),
                mean_steps_successful=sum(good) / len(good) if good else None,
                expert_success_rate=sum(experts) / len(experts) if experts else None,
                degraded_episodes=sum(timed) if timed else None,
                camera_rate_hz_median=float(np.median(cameras)) if cameras else None,
            )
        )
    return summaries


def markdown_table(rows: list[RowSummary]) -> str:
    """The summary as a markdown table."""
    lines = [
        "| family | split | episodes | success | 95% CI (Wilson) | mean steps (successful) "
        "| scripted expert |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        steps = f"{row.mean_steps:.1f}"
        if row.mean_steps_successful is not None:
            steps += f" ({row.mean_steps_successful:.1f})"
        expert = "-" if row.expert_success_rate is None else f"{row.expert_success_rate:.0%}"
        lines.append(
            f"| {row.family} | {SPLIT_LABELS[row.split]} | {row.episodes} | "
            f"**{row.success_rate:.0%}** | {row.ci_low:.0%}-{row.ci_high:.0%} | {steps} | "
            f"{expert} |"
        )
    return "\n".join(lines) + "\n"


def timing_note(rows: list[RowSummary]) -> str | None:
    """A sentence on the episodes whose timing the machine did not keep; None when none was
    affected (or none ran through the nodes)."""
    degraded = sum(row.degraded_episodes or 0 for row in rows)
    if not degraded:
        return None
    total = sum(row.episodes for row in rows if row.degraded_episodes is not None)
    return (
        f"Timing: {degraded} of {total} episodes ran on a machine that did not keep the "
        "nodes' timing (stale frames, lost control ticks or commands refused as stale; the "
        "`degraded` column of episodes.csv): their outcome says more about the load than the "
        "model. Run fewer episodes side by side (--jobs) or on a quieter machine."
    )


def plot_success(rows: list[RowSummary], out_path: Path, title: str) -> None:
    """Bars of success per row with Wilson intervals; the expert's rate as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {
        "seen": "#3b75af",
        "unseen_paraphrase": "#ef8636",
        "unseen_combination": "#519e3e",
        "any": "#888888",
    }
    figure, axis = plt.subplots(figsize=(max(6.0, 0.75 * len(rows) + 2), 4.5))
    positions = range(len(rows))
    rates = [row.success_rate for row in rows]
    # Clipped at 0: at 0% or 100% the interval's end equals the rate up to rounding.
    errors = [
        [max(0.0, row.success_rate - row.ci_low) for row in rows],
        [max(0.0, row.ci_high - row.success_rate) for row in rows],
    ]
    axis.bar(
        positions,
        rates,
        yerr=errors,
        capsize=3,
        color=[colours[row.split] for row in rows],
    )
    experts = [(i, row.expert_success_rate) for i, row in enumerate(rows)]
    experts = [(i, rate) for i, rate in experts if rate is not None]
    if experts:
        axis.plot(*zip(*experts, strict=True), "k_", markersize=18, label="scripted expert")
        axis.legend(loc="lower right")
    axis.set_xticks(list(positions), [row.label for row in rows], rotation=35, ha="right")
    axis.set(ylim=(0, 1.05), ylabel="success rate (95% Wilson interval)")
    axis.set_title(title)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_path, dpi=110)
    plt.close(figure)


def write_report(results: list[EpisodeResult], out_dir: Path, title: str) -> list[RowSummary]:
    """episodes.csv, summary.csv, summary.md and success.png in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "episodes.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(asdict(results[0])))
        writer.writeheader()
        writer.writerows(asdict(result) for result in results)
    rows = summarise(results)
    with open(out_dir / "summary.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    note = timing_note(rows)
    text = f"{title}\n\n{markdown_table(rows)}" + (f"\n{note}\n" if note else "")
    (out_dir / "summary.md").write_text(text, encoding="utf-8")
    plot_success(rows, out_dir / "success.png", title)
    return rows
