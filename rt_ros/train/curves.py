"""Training logs as CSV and their curves as a PNG: loss, and token accuracy per dimension."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


class CsvLog:
    """Appends rows to a CSV file with a fixed header (written once, kept on resume)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        if not self.path.is_file() or self.path.stat().st_size == 0:
            with open(self.path, "w", newline="") as file:
                csv.writer(file).writerow(self.columns)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as file:
            csv.writer(file).writerow([_cell(row.get(column, "")) for column in self.columns])

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after `step` (a resumed run repeats those steps)."""
        rows = self.read()
        with open(self.path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(self.columns)
            for row in rows:
                if int(row["step"]) <= step:
                    writer.writerow([row[column] for column in self.columns])

    def read(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as file:
            return list(csv.DictReader(file))


def _cell(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value


def plot_curves(
    train_rows: list[dict[str, str]],
    val_rows: list[dict[str, str]],
    dimension_names: Sequence[str],
    out_path: Path,
) -> None:
    """Loss (train and validation) and validation token accuracy per dimension, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(13, 4.8))
    if train_rows:
        steps = [int(row["step"]) for row in train_rows]
        loss_axis.plot(steps, [float(row["loss"]) for row in train_rows], label="train", lw=0.8)
    if val_rows:
        steps = [int(row["step"]) for row in val_rows]
        loss_axis.plot(steps, [float(row["val_loss"]) for row in val_rows], "o-", label="val")
        for name in dimension_names:
            accuracy_axis.plot(
                steps, [float(row[f"val_acc_{name}"]) for row in val_rows], label=name, lw=1
            )
        accuracy_axis.plot(
            steps, [float(row["val_acc"]) for row in val_rows], "k-", lw=2.5, label="mean"
        )
    loss_axis.set(xlabel="step", ylabel="cross-entropy per action token", yscale="log")
    loss_axis.set_title("loss")
    loss_axis.legend()
    accuracy_axis.set(xlabel="step", ylabel="token accuracy (validation)", ylim=(0, 1))
    accuracy_axis.set_title("token accuracy per action dimension")
    accuracy_axis.legend(fontsize=7, ncol=2, loc="lower right")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_path, dpi=110)
    plt.close(figure)
