"""Progress output of a training run: on a terminal, a bar rewritten in place with steps/s, the time left and the
batch's losses; on any other stream, plain lines: one per epoch and a progress line at most every `interval`
seconds. `Compiling` is the status line shown while a model compiles."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TextIO

# the metrics shown after the losses, with their short names
_SHORT = (
    ("source_acc", "source_accuracy"),
    ("oracle_target_acc", "target_accuracy"),
    ("domain_acc", "domain_accuracy"),
    ("PAD", "proxy_a_distance"),
)
PLAIN_INTERVAL = 30.0  # seconds between progress lines on a stream that is not a terminal


def is_terminal(stream: TextIO | None) -> bool:
    """Whether `stream` is a terminal (where a line may be rewritten in place)."""
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def clock(seconds: float) -> str:
    """A duration as m:ss, or h:mm:ss from an hour.

    >>> clock(75.4), clock(3725), clock(float("inf"))
    ('1:15', '1:02:05', '?')
    """
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Display:
    """A progress bar on a terminal (rewritten in place, at most ten times a second), or plain lines on any other
    stream (a line per epoch, and a progress line at most every `interval` seconds); nothing without a stream.
    Steps per second and the time left are measured from the first step this display sees."""

    def __init__(
        self,
        stream: TextIO | None,
        total: int,
        per_epoch: int,
        losses: list[str],
        interval: float = PLAIN_INTERVAL,
    ):
        self.stream, self.total, self.per_epoch, self.losses = stream, total, per_epoch, ["objective", *losses]
        self.tty = is_terminal(stream)
        self.epochs = math.ceil(total / per_epoch)
        self.interval = 0.1 if self.tty else interval
        self.shown = 0.0
        self.first: tuple[float, int] | None = None  # (time, step) of the first step seen

    def speed(self, step: int) -> tuple[float, float]:
        """Steps per second since the first step seen, and the seconds left at that pace (inf while unknown)."""
        now = time.monotonic()
        if self.first is None:
            self.first = (now, step)
        started, first = self.first
        rate = (step - first) / (now - started) if now > started and step > first else 0.0
        return rate, (self.total - step) / rate if rate else math.inf

    def step(self, epoch: int, step: int, losses: dict[str, float], schedule: Callable[[], dict[str, float]]) -> None:
        """After a step: the progress bar on a terminal, a plain progress line now and then elsewhere."""
        if self.stream is None:
            return
        rate, left = self.speed(step)
        if time.monotonic() - self.shown < self.interval and not (self.tty and step == self.total):
            return
        if self.shown == 0.0 and not self.tty:  # the first plain line comes after an interval, not at once
            self.shown = time.monotonic()
            return
        self.shown = time.monotonic()
        pace = f"{rate:.3g} steps/s ETA {clock(left)}" if rate else "… steps/s"
        if self.tty:
            width = 20
            done = int(width * step / self.total)
            text = (
                f"\repoch {epoch}/{self.epochs} [{'#' * done}{'.' * (width - done)}] {step}/{self.total} {pace} "
                + " ".join(f"{k} {v:.4g}" for k, v in losses.items())
                + _schedule_text(schedule())
                + "\x1b[K"
            )
        else:
            text = f"step {step}/{self.total} ({step / self.total:.0%}) {pace} objective {losses['objective']:.4g}\n"
        self.stream.write(text)
        self.stream.flush()

    def record(self, record: dict[str, Any]) -> None:
        """After an epoch: its record's losses, accuracies and schedule values."""
        if self.stream is None:
            return
        shown = [(k, k) for k in self.losses if k in record] + [(short, k) for short, k in _SHORT if k in record]
        shown += [(k, k) for k in record if k.startswith("val_")]
        text = (
            f"epoch {record['epoch']}/{self.epochs} step {record['step']}/{self.total} "
            + " ".join(f"{short} {record[k]:.4g}" for short, k in shown)
            + _schedule_text(record)
        )
        self.stream.write(("\r" if self.tty else "") + text + ("\x1b[K" if self.tty else "") + "\n")
        self.stream.flush()


def oracle_marked(values: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics for a printed table, the target accuracies (read from target labels, which unsupervised adaptation
    does not have) marked as the oracle.

    >>> oracle_marked({"source_accuracy": 1.0, "target_accuracy": 0.5})
    {'source_accuracy': 1.0, 'target_accuracy (oracle)': 0.5}
    """
    return {f"{k} (oracle)" if k.startswith("target_") and k.endswith("_accuracy") else k: v for k, v in values.items()}


def _schedule_text(values: Mapping[str, Any]) -> str:
    parts = [f"λ {values['lambda']:.4g}"] if "lambda" in values else []
    return "".join(f" {p}" for p in parts + [f"lr {values['learning_rate']:.4g}"])


class Compiling:
    """The status line while a model compiles, as a context manager: on a terminal "compiling … 12 s", rewritten
    every second by a thread, then "compiled in 12.3 s"; on another stream a line when it starts and one when it
    ends; nothing without a stream. `what` names what is compiled."""

    def __init__(self, stream: TextIO | None, what: str = "the update function", tick: float = 1.0):
        self.stream, self.what, self.tick = stream, what, tick
        self.started = 0.0
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Compiling:
        self.started = time.monotonic()
        if self.stream is None:
            return self
        if is_terminal(self.stream):
            self._show()
            self.thread = threading.Thread(target=self._ticking, daemon=True)
            self.thread.start()
        else:
            self.stream.write(f"compiling {self.what}…\n")
            self.stream.flush()
        return self

    def _show(self) -> None:
        assert self.stream is not None
        self.stream.write(f"\rcompiling {self.what}… {time.monotonic() - self.started:.0f} s\x1b[K")
        self.stream.flush()

    def _ticking(self) -> None:
        while not self.done.wait(self.tick):
            self._show()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()
        if self.stream is None:
            return
        tty = is_terminal(self.stream)
        seconds = time.monotonic() - self.started
        ending = f"compiled {self.what} in {seconds:.1f} s" if error is None else "compiling stopped"
        self.stream.write(("\r" if tty else "") + ending + ("\x1b[K" if tty else "") + "\n")
        self.stream.flush()
