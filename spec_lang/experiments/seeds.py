"""Several seeds of one run: the seeds of `--seeds 0,1,2`, and the final metrics aggregated over them (mean,
standard deviation, min and max), as a table and as JSON.

>>> runs = {0: {"step": 10, "objective": 0.5, "target_accuracy": 0.8}, 1: {"step": 10, "objective": 0.3,
...         "target_accuracy": 0.9}}
>>> print(table(aggregate(runs), [0, 1]), end="")
metric                    mean        std         min         max   (2 seeds: 0, 1)
objective                 0.4         0.1         0.3         0.5
target_accuracy (oracle)  0.85        0.05        0.8         0.9
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spec_lang.files import write_atomic
from spec_lang.training.display import oracle_marked

MAX_SEED = 2**63 - 1  # numpy's generators take any whole number from 0; a seed past this is a slip, not a choice
MAX_SEEDS = 1000  # seeds of one command; more is a slip of the keyboard, not an experiment
STATISTICS = ("mean", "std", "min", "max")
COUNTERS = ("epoch", "step", "progress")  # the same in every run of one command: not aggregated


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2` (or a range `0-4`): distinct whole numbers from 0 to 2**63 - 1; anything else is a usage
    error (exit 2).

    >>> parse_seeds("0,1,2"), parse_seeds("3-5")
    ([0, 1, 2], [3, 4, 5])
    """
    seeds: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise argparse.ArgumentTypeError(f"write seeds as 0,1,2 or 0-4, got {text[:40]!r}")
        first, last = int(low), int(high) if dash else int(low)
        if last > MAX_SEED or last < first or len(seeds) + last - first >= MAX_SEEDS:
            raise argparse.ArgumentTypeError(
                f"seeds are whole numbers from 0 to 2**63 - 1, at most {MAX_SEEDS}, ranges low-high; got {text[:40]!r}"
            )
        seeds += range(first, last + 1)
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text[:40]!r}")
    return seeds


def aggregate(runs: Mapping[int, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """The mean, standard deviation (of the population: numpy's default), min and max of every numeric metric the
    runs share, by metric, in the first run's order, but the counters (`COUNTERS`); the runs are final records by
    seed."""
    records = list(runs.values())
    names = [
        name
        for name, value in records[0].items()
        if name not in COUNTERS and _is_number(value) and all(_is_number(r.get(name)) for r in records)
    ]
    result = {}
    for name in names:
        values = [float(r[name]) for r in records]
        low, high = min(values), max(values)
        if low == high:  # exactly: no rounding noise in the mean, a standard deviation of 0
            result[name] = {"mean": low, "std": 0.0, "min": low, "max": high}
            continue
        scale = max(abs(low), abs(high))  # computed on values scaled to [-1, 1]: no overflow near the float limit
        scaled = [v / scale for v in values]
        mean = math.fsum(scaled) / len(values)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in scaled) / len(values))
        result[name] = {"mean": mean * scale, "std": std * scale, "min": low, "max": high}
    return result


def table(summary: Mapping[str, Mapping[str, float]], seeds: list[int]) -> str:
    """The aggregate as an aligned table, a metric a line, numbers to 6 significant digits (at most 11
    characters, as -0.00123457)."""
    marked = oracle_marked(summary)  # target accuracies read target labels: the oracle, not a selection criterion
    width = max([len(name) for name in marked] + [len("metric")])
    header = (f"{'metric':<{width}}  " + "".join(f"{s:<12}" for s in STATISTICS)).rstrip()
    lines = [f"{header}   ({len(seeds)} seeds: {', '.join(map(str, seeds))})"]
    for name, values in marked.items():
        lines.append(f"{name:<{width}}  " + "".join(f"{values[s]:<12.6g}" for s in STATISTICS).rstrip())
    return "\n".join(lines) + "\n"


def write_summary(
    path: Path, runs: Mapping[int, Mapping[str, Any]], folders: Mapping[int, Path], setup: Mapping[str, Any]
) -> dict[str, Any]:
    """Write the aggregate of `runs` (final records by seed) as JSON: the setup, the seeds with their folders and
    final records, and the statistics by metric. Returns what was written."""
    document = {
        **setup,
        "seeds": list(runs),
        "summary": aggregate(runs),
        "runs": [{"seed": seed, "folder": str(folders[seed]), "final": dict(record)} for seed, record in runs.items()],
    }
    write_atomic(path, json.dumps(document, indent=2) + "\n")
    return document


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
