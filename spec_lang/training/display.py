"""Progress output of a training run: a line rewritten in place on a terminal, a line per epoch on other streams."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

# the metrics shown after the losses, with their short names
_SHORT = (
    ("source_acc", "source_accuracy"),
    ("target_acc", "target_accuracy"),
    ("domain_acc", "domain_accuracy"),
    ("PAD", "proxy_a_distance"),
)


class Display:
    """A progress line on a terminal (rewritten in place, at most ten times a second), or a plain line per epoch
    on any other stream; nothing without a stream."""

    def __init__(self, stream: TextIO | None, total: int, per_epoch: int, losses: list[str]):
        self.stream, self.total, self.per_epoch, self.losses = stream, total, per_epoch, ["objective", *losses]
        self.tty = stream is not None and hasattr(stream, "isatty") and stream.isatty()
        self.epochs = math.ceil(total / per_epoch)
        self.shown = 0.0

    def step(self, epoch: int, step: int, losses: dict[str, float], schedule: Callable[[], dict[str, float]]) -> None:
        """After a step: the progress bar and the step's losses, on a terminal."""
        if self.stream is None or not self.tty or (time.monotonic() - self.shown < 0.1 and step != self.total):
            return
        self.shown = time.monotonic()
        values = schedule()
        width = 20
        done = int(width * step / self.total)
        text = (
            f"\repoch {epoch}/{self.epochs} [{'#' * done}{'.' * (width - done)}] step {step}/{self.total} "
            + " ".join(f"{k} {v:.4g}" for k, v in losses.items())
            + _schedule_text(values)
        )
        self.stream.write(text + "\x1b[K")
        self.stream.flush()

    def record(self, record: dict[str, Any]) -> None:
        """After an epoch: its record's losses, accuracies and schedule values."""
        if self.stream is None:
            return
        shown = [(k, k) for k in self.losses if k in record] + [(short, k) for short, k in _SHORT if k in record]
        text = (
            f"epoch {record['epoch']}/{self.epochs} step {record['step']}/{self.total} "
            + " ".join(f"{short} {record[k]:.4g}" for short, k in shown)
            + _schedule_text(record)
        )
        self.stream.write(("\r" if self.tty else "") + text + ("\x1b[K" if self.tty else "") + "\n")
        self.stream.flush()


def _schedule_text(values: Mapping[str, Any]) -> str:
    parts = [f"λ {values['lambda']:.4g}"] if "lambda" in values else []
    return "".join(f" {p}" for p in parts + [f"lr {values['learning_rate']:.4g}"])
