"""Stopping a training run: SIGINT/SIGTERM ask the loop to stop after the current step; a second signal stops it at
once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from spec_lang.training.history import History


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT/SIGTERM (or a KeyboardInterrupt from a callback) between two steps; a checkpoint
    of that step was written when a checkpoint path was given. Carries the history so far."""

    def __init__(self, history: History, step: int, total: int, signal_number: int | None):
        self.history, self.step, self.total, self.signal_number = history, step, total, signal_number
        where = f"; checkpoint written to {history.checkpoint}" if history.checkpoint else ""
        super().__init__(f"training interrupted after step {step} of {total}{where}")


class Abort(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: stop at once, possibly inside a step, so write no checkpoint."""


class StopRequest:
    """The signal that asked training to stop, if one did."""

    def __init__(self) -> None:
        self.signal: int | None = None


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """While training, SIGINT and SIGTERM ask the loop to stop after the current step (a second one raises `Abort`).
    Only in the main thread, where Python handles signals."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request.signal is not None:
            raise Abort
        request.signal = signum

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
