"""What a training run records as it goes: RUN/metrics.jsonl (one JSON line per epoch and split), TensorBoard
events in RUN/tensorboard, and RUN/curves.png drawn from the log after every epoch.

On resume the log forgets the lines of epochs that the checkpoint does not hold (a kill came first) and a line
that a kill cut short, so the log always matches the weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from behavior.pictures.plots import plot_training_curves

TRAIN_SCALARS = ("loss", "accuracy", "clips_per_s", "data_wait", "lr")
VAL_SCALARS = ("loss", "top1", "mean_class_accuracy")


class RunLog:
    """metrics.jsonl, TensorBoard and curves.png of the run in `folder`, starting after `epochs_done` epochs."""

    def __init__(self, folder: Path, epochs_done: int = 0):
        from torch.utils.tensorboard import (
            SummaryWriter,  # loads TensorFlow's protobufs: only when a run starts
        )

        self.folder = folder
        self.path = folder / "metrics.jsonl"
        self.drop_rows_after(epochs_done)
        self._writer = SummaryWriter(str(folder / "tensorboard"), purge_step=epochs_done)

    def drop_rows_after(self, epoch: int) -> None:
        """Forget log lines of epochs after `epoch` (a kill came before their checkpoint), and a torn line."""

        def kept(line: str) -> bool:
            try:
                return json.loads(line)["epoch"] <= epoch
            except (json.JSONDecodeError, KeyError, TypeError):
                return False

        if self.path.exists():
            temporary = self.path.with_name(
                f".{self.path.name}.tmp"
            )  # replaced in one step: a kill cannot empty it
            lines = self.path.read_text().splitlines()
            temporary.write_text("".join(line + "\n" for line in lines if kept(line)))
            os.replace(temporary, self.path)

    def write_epoch(self, epoch: int, train_row: dict, val_row: dict) -> None:
        """Append the epoch's rows (the validation row when there is one), add their scalars to TensorBoard and
        redraw curves.png."""
        with open(self.path, "a") as handle:
            handle.write(json.dumps(train_row) + "\n")
            if val_row:
                handle.write(json.dumps(val_row) + "\n")
        for key in TRAIN_SCALARS:
            self._writer.add_scalar(f"train/{key}", train_row[key], epoch)
        for key in VAL_SCALARS:
            if key in val_row:
                self._writer.add_scalar(f"val/{key}", val_row[key], epoch)
        self._writer.flush()
        plot_training_curves(self.path, self.folder / "curves.png")

    def close(self) -> None:
        self._writer.close()
