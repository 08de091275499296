"""What the reproductions (`moons`, `digits`) share: where the bundled examples are, and the source and target
accuracy of every run, by model then seed, summarised over the seeds as a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ACCURACIES = ("source_accuracy", "target_accuracy")


def example(name: str) -> Path:
    """The path of a bundled example (a file or a folder): a wheel carries the reproductions' examples as
    `spec_lang/examples/NAME` (pyproject's force-include); a source checkout and an editable install read the
    repository's `examples/`."""
    package = Path(__file__).resolve().parent.parent  # spec_lang/
    for candidate in (package / "examples" / name, package.parent / "examples" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"examples/{name} is missing from this installation of spec-lang")


@dataclass
class Accuracies:
    """The accuracies of every run, by model name then seed (each run a dict with `ACCURACIES`, or with `diverged`,
    the message of a run that stopped on a non-finite loss), the files written, and the model whose mean target
    accuracy the others are compared with (`baseline`, or none)."""

    runs: dict[str, list[dict]]
    files: list[Path] = field(default_factory=list)
    baseline: str | None = None

    def completed(self, name: str) -> list[dict]:
        """The runs of model `name` that did not diverge."""
        return [run for run in self.runs[name] if "diverged" not in run]

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Mean, min and max of the source and target accuracy over the completed runs, by model; a model whose
        every run diverged has none."""
        return {
            name: {
                key: {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}
                for key in ACCURACIES
                for values in [[run[key] for run in self.completed(name)]]
            }
            for name in self.runs
            if self.completed(name)
        }

    def differences(self) -> dict[str, float]:
        """Each model's mean target accuracy less the baseline's (none without a baseline)."""
        summary = self.summary()
        if self.baseline not in summary:
            return {}
        base = summary[self.baseline]["target_accuracy"]["mean"]
        return {name: stats["target_accuracy"]["mean"] - base for name, stats in summary.items()}

    def table(self) -> str:
        """The summary as a Markdown table, accuracies in percent; with a baseline, a last column of each model's
        mean target accuracy less the baseline's, in percentage points. Seeds reads "2 of 3" when a run diverged.

        >>> runs = {"NN": [{"source_accuracy": 1.0, "target_accuracy": 0.8},
        ...                {"source_accuracy": 0.98, "target_accuracy": 0.86}],
        ...         "DANN": [{"source_accuracy": 0.97, "target_accuracy": 0.9}]}
        >>> print(Accuracies(runs).table())
        | model | seeds | source accuracy: mean (min–max) | target accuracy: mean (min–max) |
        |---|---|---|---|
        | NN | 2 | 99.0% (98.0–100.0) | 83.0% (80.0–86.0) |
        | DANN | 1 | 97.0% (97.0–97.0) | 90.0% (90.0–90.0) |
        >>> runs["DANN"].append({"diverged": "training diverged at step 3"})
        >>> print(Accuracies(runs, baseline="NN").table().splitlines()[-1])
        | DANN | 1 of 2 | 97.0% (97.0–97.0) | 90.0% (90.0–90.0) | +7.0 |
        """
        extra = [f"target vs {self.baseline} (points)"] if self.baseline else []
        header = ["model", "seeds", "source accuracy: mean (min–max)", "target accuracy: mean (min–max)", *extra]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        summary, differences = self.summary(), self.differences()
        for name, runs in self.runs.items():
            done = len(self.completed(name))
            stats = summary.get(name)
            cells = [name, str(done) if done == len(runs) else f"{done} of {len(runs)}"]
            cells += [_percentages(stats[key]) if stats else "diverged" for key in ACCURACIES]
            if self.baseline:
                difference = differences.get(name)
                cells.append("—" if difference is None or name == self.baseline else f"{100 * difference:+.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _percentages(stats: dict[str, float]) -> str:
    """ "83.0% (80.0–86.0)": a mean and its range in percent."""
    return f"{100 * stats['mean']:.1f}% ({100 * stats['min']:.1f}–{100 * stats['max']:.1f})"
