"""A sweep's results: each setting's final records aggregated over its seeds (`seeds.aggregate`: mean, std, min,
max), the setting chosen by the selector, the oracle (target accuracy, measured with the target labels) shown in a
column of its own and never chosen by unless asked (`--select-by target_accuracy`); as a table, `results.json`,
`results.csv` and `results.png`.

>>> plan = {"settings": [{"lr": 0.1}, {"lr": 0.01}, {"lr": 1e9}],
...         "trials": [{"setting": 0, "seed": 0}, {"setting": 1, "seed": 0}, {"setting": 2, "seed": 0}]}
>>> ended = {0: {"status": "completed", "final": {"val_source_accuracy": 0.9, "target_accuracy": 0.7}},
...          1: {"status": "completed", "final": {"val_source_accuracy": 0.8, "target_accuracy": 0.75}},
...          2: {"status": "failed", "error": "specc: error[E805]: training diverged"}}
>>> print(summarise(plan, ended, [selector("source_accuracy")]).table(), end="")
  setting  lr     seeds       val_source_accuracy (selected by)  target_accuracy (oracle)
* 0        0.1    1           0.9                                0.7
  1        0.01   1           0.8                                0.75
  2        1e+09  0 (1 fail)  -                                  -
selected source_accuracy (higher is better): setting 0 (lr=0.1), 0.9; oracle 0.7, 0.05 below the oracle's best
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spec_lang.diagnostics import did_you_mean, file_error
from spec_lang.experiments.seeds import STATISTICS, aggregate
from spec_lang.files import write_atomic

ORACLE = "target_accuracy"  # measured with the target labels: shown, never selected by unless asked
RECORD_KEYS = ("objective", "proxy_a_distance")  # selectable keys of the epoch record besides the loss terms


@dataclass(frozen=True)
class Selector:
    """What a sweep selects by: the key of the epoch record and whether higher is better."""

    name: str
    key: str
    higher_is_better: bool

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


def selector(name: str, losses: list[str] | tuple[str, ...] = ()) -> Selector:
    """The one place a selector's name is resolved to its record key and direction: a validator of the registry
    (`spec_lang.library.validators`: its `record_key`, `val_NAME`, and its direction; `target_accuracy` is the
    oracle), else a key of the epoch record: `objective`, `proxy_a_distance`, the spec's loss terms (`losses`), all
    lower is better, or an accuracy (`source_INPUT_accuracy`, higher is better). Anything else is an error (E820).

    >>> selector("snd"), selector("label_loss", ["label_loss"]).direction
    (Selector(name='snd', key='val_snd', higher_is_better=True), 'lower is better')
    """
    from spec_lang.library.validators import VALIDATORS, record_key

    if name in VALIDATORS:
        return Selector(name, record_key(name), VALIDATORS[name].higher_is_better)
    if name in RECORD_KEYS or name in losses:
        return Selector(name, name, False)
    if name.startswith(("source_", "target_")) and name.endswith("_accuracy"):
        return Selector(name, name, True)
    known = [*VALIDATORS, *RECORD_KEYS, *losses]
    raise file_error(
        None,
        "E820",
        f"cannot select by '{name}': not a validator nor a metric of the training record",
        did_you_mean(name, known) or f"select by one of: {', '.join(known)}",
    )


@dataclass(frozen=True)
class Setting:
    """One setting of the swept parameters: its values, the seeds that completed, failed or were stopped early,
    and the aggregate of the completed seeds' final records."""

    index: int
    values: dict[str, Any]
    completed: list[int]
    failed: list[dict[str, Any]]
    stopped: list[int]
    summary: dict[str, dict[str, float]]

    def seeds_cell(self) -> str:
        notes = [
            f"{len(self.failed)} fail" if self.failed else "",
            f"{len(self.stopped)} stopped" if self.stopped else "",
        ]
        shown = ", ".join(n for n in notes if n)
        return f"{len(self.completed)}" + (f" ({shown})" if shown else "")


@dataclass(frozen=True)
class Results:
    """The settings with their aggregates, the selectors (the first chooses; the others' choices are reported
    beside it), the setting chosen (None when no setting completed), every trial's outcome, and how many trials of
    the sweep have ended."""

    settings: list[Setting]
    selectors: list[Selector]
    trials: list[dict[str, Any]]
    ended: int

    @property
    def selector(self) -> Selector:
        return self.selectors[0]

    @property
    def selected(self) -> int | None:
        return self.pick(self.selector)

    def pick(self, by: Selector) -> int | None:
        """The setting with the best mean of `by` over its completed seeds (the first of equals), or None."""
        return _best(self.settings, by.key, by.higher_is_better)

    def table(self) -> str:
        """An aligned table, a setting a line, the selected one marked `*`: its values, seeds, the selected metric
        and the oracle (mean ± std over seeds, min–max), then a line per selector saying what it chose."""
        key = self.selector.key
        names = list(self.settings[0].values) if self.settings else []
        header = [
            "setting",
            *names,
            "seeds",
            f"{key} (selected by)",
            f"{ORACLE} (oracle)",
        ]  # marked as `specc train` marks it
        rows = [
            [
                str(s.index),
                *(_value(s.values[n]) for n in names),
                s.seeds_cell(),
                _cell(s.summary.get(key)),
                _cell(s.summary.get(ORACLE)),
            ]
            for s in self.settings
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            ("* " if i == self.selected else "  ") + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
            for i, r in [(-1, header), *enumerate(rows)]
        ]
        choices = [self.choice(by) for by in self.selectors]
        return "\n".join([line.rstrip() for line in lines] + choices) + "\n"

    def choice(self, by: Selector) -> str:
        """The line that says which setting `by` selects, with its oracle and how far that is from the oracle's best."""
        picked = self.pick(by)
        verb = "selected" if by == self.selector else "by the validator"
        if picked is None:
            return f"{verb} {by.name}: no setting completed a trial with {by.key}"
        chosen = self.settings[picked]
        line = f"{verb} {by.name} ({by.direction}): setting {picked} ({_described(chosen.values)}), "
        line += _cell(chosen.summary[by.key], spread=False)
        gap = self.oracle_gap(by)
        if gap is not None and by.key != ORACLE:
            below = f"{gap:.4g} below the oracle's best" if gap else "the oracle's best"
            line += f"; oracle {chosen.summary[ORACLE]['mean']:.4g}, {below}"
        return line

    def oracle_gap(self, by: Selector) -> float | None:
        """How far the oracle of the setting `by` selects is below the best oracle of any setting (0: it chose the
        oracle's best), or None without the oracle."""
        picked, best = self.pick(by), _best(self.settings, ORACLE, True)
        if picked is None or best is None or ORACLE not in self.settings[picked].summary:
            return None
        return self.settings[best].summary[ORACLE]["mean"] - self.settings[picked].summary[ORACLE]["mean"]

    def document(self) -> dict[str, Any]:
        """What `results.json` holds."""
        return {
            "select_by": asdict(self.selector),
            "selected": self.selected,
            "oracle_best": _best(self.settings, ORACLE, True),
            "by_validator": {
                by.name: {**asdict(by), "setting": self.pick(by), "oracle_gap": self.oracle_gap(by)}
                for by in self.selectors
            },
            "trials_ended": self.ended,
            "trials_total": len(self.trials),
            "settings": [asdict(s) for s in self.settings],
            "trials": self.trials,
        }

    def csv(self) -> str:
        """A row per setting: its values, seeds completed, failed and stopped, the selected metric and the oracle's
        statistics, and whether it was selected."""
        keys = [self.selector.key] + ([ORACLE] if self.selector.key != ORACLE else [])
        names = list(self.settings[0].values) if self.settings else []
        stream = io.StringIO()
        writer = csv.writer(stream, lineterminator="\n")
        columns = [f"{'oracle_' if k == ORACLE else ''}{k}_{s}" for k in keys for s in STATISTICS]
        writer.writerow(["setting", *names, "seeds", "failed", "stopped", *columns, "selected"])
        for s in self.settings:
            stats = [s.summary.get(k, {}).get(statistic, "") for k in keys for statistic in STATISTICS]
            values = [json.dumps(s.values[n]) if not isinstance(s.values[n], str) else s.values[n] for n in names]
            row = [
                s.index,
                *values,
                len(s.completed),
                len(s.failed),
                len(s.stopped),
                *stats,
                int(s.index == self.selected),
            ]
            writer.writerow(row)
        return stream.getvalue()

    def write(self, folder: Path) -> list[Path]:
        """Write `results.json`, `results.csv` and, when matplotlib is installed, `results.png` into `folder`
        (replacing the files of an earlier, partial run of the sweep)."""
        written = [
            write_atomic(folder / "results.json", json.dumps(self.document(), indent=2) + "\n"),
            write_atomic(folder / "results.csv", self.csv()),
        ]
        from spec_lang.experiments.sweep_plot import plot_results
        from spec_lang.reports.plots import require_matplotlib

        try:
            require_matplotlib()
        except ImportError:
            return written
        return written + [plot_results(self, folder / "results.png")]


def summarise(
    plan: Mapping[str, Any], outcomes: Mapping[int, dict[str, Any] | None], selectors: list[Selector]
) -> Results:
    """The results of the trials that have ended (`outcomes` by trial index; None for one that has not), chosen by
    the first of `selectors`."""
    trials: list[dict[str, Any]] = []
    by_setting: dict[int, dict[str, list]] = {
        s: {"finals": [], "failed": [], "stopped": []} for s in range(len(plan["settings"]))
    }
    for index, trial in enumerate(plan["trials"]):
        outcome = outcomes.get(index)
        status = "pending" if outcome is None else outcome["status"]
        trials.append({"trial": index, **trial, "status": status, **(outcome or {})})
        group = by_setting[trial["setting"]]
        if status == "completed":
            group["finals"].append((trial["seed"], outcome["final"]))  # type: ignore[index]
        elif status == "failed":
            group["failed"].append({"seed": trial["seed"], "error": outcome["error"]})  # type: ignore[index]
        elif status == "stopped":
            group["stopped"].append(trial["seed"])
    settings = [
        Setting(
            s,
            dict(values),
            [seed for seed, _ in by_setting[s]["finals"]],
            by_setting[s]["failed"],
            by_setting[s]["stopped"],
            aggregate(dict(by_setting[s]["finals"])) if by_setting[s]["finals"] else {},
        )
        for s, values in enumerate(plan["settings"])
    ]
    ended = sum(1 for t in trials if t["status"] != "pending")
    return Results(settings, selectors, trials, ended)


def _best(settings: list[Setting], key: str, higher: bool) -> int | None:
    """The index of the setting with the best mean of `key` (the first of equals), or None when none has it."""
    scored = [(s.summary[key]["mean"], s.index) for s in settings if key in s.summary]
    if not scored:
        return None
    best = max(scored, key=lambda p: p[0]) if higher else min(scored, key=lambda p: p[0])
    return best[1]


def _cell(stats: Mapping[str, float] | None, spread: bool = True) -> str:
    """`mean ± std (min–max)`, or the value alone for one seed (or equal values), or `-` without one."""
    if stats is None:
        return "-"
    if stats["min"] == stats["max"]:
        return f"{stats['mean']:.4g}"
    text = f"{stats['mean']:.4g} ± {stats['std']:.2g}"
    return f"{text} ({stats['min']:.4g}–{stats['max']:.4g})" if spread else text


def _value(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return json.dumps(value)


def _described(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={_value(value)}" for name, value in values.items())
