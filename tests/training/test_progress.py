"""Progress output (issue 13, item 4): a bar with steps/s and the time left on a terminal, plain lines elsewhere,
the status line while compiling, and the data checked before compiling."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.training import display
from spec_lang.training.display import Compiling, Display, clock
from spec_lang.training.trainer import check_data


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """`time.monotonic` under the test's control."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock_ = Clock()
    monkeypatch.setattr(display.time, "monotonic", clock_)
    return clock_


def _schedule() -> dict[str, float]:
    return {"lambda": 0.5, "learning_rate": 0.01}


def test_a_terminal_gets_a_bar_with_steps_per_second_and_the_time_left(ticks: Clock) -> None:
    stream = Terminal()
    shown = Display(stream, total=101, per_epoch=50, losses=["label_loss"])
    shown.step(1, 1, {"objective": 2.0, "label_loss": 1.5}, _schedule)  # the first step starts the clock
    ticks.now += 2.0
    shown.step(1, 21, {"objective": 1.25, "label_loss": 0.75}, _schedule)  # 20 steps in 2 s: 10 steps/s
    last = stream.getvalue().split("\r")[-1]
    assert last == (
        "epoch 1/3 [####................] 21/101 10 steps/s ETA 0:08 objective 1.25 label_loss 0.75 λ 0.5 lr 0.01\x1b[K"
    )  # 80 steps left at 10 steps/s
    assert "\n" not in stream.getvalue()  # rewritten in place


def test_a_terminal_bar_is_redrawn_at_most_ten_times_a_second(ticks: Clock) -> None:
    stream = Terminal()
    shown = Display(stream, total=100, per_epoch=100, losses=[])
    for step in range(1, 6):
        ticks.now += 0.01
        shown.step(1, step, {"objective": 1.0}, _schedule)
    assert stream.getvalue().count("\r") == 1
    shown.step(1, 100, {"objective": 1.0}, _schedule)  # the last step is always drawn
    assert stream.getvalue().count("\r") == 2 and "100/100" in stream.getvalue()


def test_another_stream_gets_plain_progress_lines_now_and_then(ticks: Clock) -> None:
    stream = io.StringIO()
    shown = Display(stream, total=1000, per_epoch=1000, losses=[], interval=30.0)
    for step in range(1, 11):  # 10 steps/s
        ticks.now += 0.1
        shown.step(1, step, {"objective": 0.5}, _schedule)
    assert stream.getvalue() == ""  # the first line comes after an interval
    ticks.now += 30.0
    shown.step(1, 310, {"objective": 0.25}, _schedule)
    assert stream.getvalue() == "step 310/1000 (31%) 10 steps/s ETA 1:09 objective 0.25\n"
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_an_epoch_record_is_a_plain_line_off_a_terminal() -> None:
    stream = io.StringIO()
    Display(stream, total=20, per_epoch=10, losses=["label_loss"]).record(
        {"epoch": 1, "step": 10, "objective": 1.5, "label_loss": 1.0, "source_accuracy": 0.75, "learning_rate": 0.1}
    )
    assert stream.getvalue() == "epoch 1/2 step 10/20 objective 1.5 label_loss 1 source_acc 0.75 lr 0.1\n"


def test_without_a_stream_nothing_is_shown_or_measured() -> None:
    shown = Display(None, total=10, per_epoch=10, losses=[])
    shown.step(1, 1, {"objective": 1.0}, _schedule)
    assert shown.first is None


def test_clock_writes_minutes_and_hours() -> None:
    assert [clock(s) for s in (0, 59.6, 61, 3600, 86399)] == ["0:00", "1:00", "1:01", "1:00:00", "23:59:59"]


def test_compiling_off_a_terminal_says_when_it_starts_and_ends() -> None:
    stream = io.StringIO()
    with Compiling(stream):
        pass
    lines = stream.getvalue().splitlines()
    assert lines[0] == "compiling the update function…"
    assert lines[1].startswith("compiled the update function in ") and lines[1].endswith(" s") and len(lines) == 2


def test_compiling_on_a_terminal_ticks_the_elapsed_time() -> None:
    stream = Terminal()
    with Compiling(stream, tick=0.01):
        time.sleep(0.1)
    text = stream.getvalue()
    assert text.count("\rcompiling the update function… 0 s") >= 2  # the first line, then a tick every 0.01 s
    assert re.search(r"\rcompiled the update function in 0\.\d s\x1b\[K\n$", text)


def test_compiling_that_fails_says_so_and_lets_the_error_through() -> None:
    stream = io.StringIO()
    with pytest.raises(RuntimeError), Compiling(stream):
        raise RuntimeError("no compiler")
    assert stream.getvalue().splitlines()[-1] == "compiling stopped"


def test_compiling_without_a_stream_writes_nothing() -> None:
    with Compiling(None) as status:
        pass
    assert status.thread is None


def test_data_is_checked_against_the_program_before_compiling() -> None:
    spec = spec_lang.load(Path(__file__).resolve().parents[2] / "examples" / "multi_target_dann.dann")
    rng = np.random.default_rng(0)
    data = {"xs": rng.normal(size=(9, 4)), "ys": rng.integers(0, 5, 9), "xt1": rng.normal(size=(7, 4))}
    with pytest.raises(spec_lang.SpecError, match=r"E801\].*'xt2'"):  # every input the training step reads
        check_data(spec.program, data)
    with pytest.raises(spec_lang.SpecError, match=r"E801\].*'xt2' expects shape \[n, 4\]"):
        check_data(spec.program, {**data, "xt2": np.zeros((7, 3))})
    assert check_data(spec.program, {**data, "xt2": np.zeros((7, 4))}).fingerprint()
