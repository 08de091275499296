"""The plot of a sweep's results: the selected metric (mean over the seeds, bars one standard deviation) against
each swept parameter, a panel per parameter, the selected setting marked. Needs matplotlib (the `plots` extra)."""

from __future__ import annotations

import json
from pathlib import Path

from spec_lang.experiments.sweep_results import Results
from spec_lang.files import write_atomic


def plot_results(results: Results, path: Path) -> Path:
    """Draw `results` into the PNG file `path` (replaced if it exists): numeric parameters on their own axis
    (logarithmic where positive values span a factor of 100 or more), others as categories."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    key = results.selector.key
    names = list(results.settings[0].values) if results.settings else []
    figure = Figure(figsize=(4.5 * max(1, len(names)), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    scored = [s for s in results.settings if key in s.summary]
    for column, name in enumerate(names):
        axes = figure.add_subplot(1, max(1, len(names)), column + 1)
        values = [s.values[name] for s in scored]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        labels = sorted({json.dumps(v) for v in values})
        xs = [v if numeric else labels.index(json.dumps(v)) for v in values]
        means = [s.summary[key]["mean"] for s in scored]
        spread = [s.summary[key]["std"] for s in scored]
        axes.errorbar(xs, means, yerr=spread, fmt="o", color="tab:blue", capsize=3, label="settings")
        chosen = [i for i, s in enumerate(scored) if s.index == results.selected]
        for i in chosen:
            axes.plot([xs[i]], [means[i]], "*", color="tab:red", markersize=14, label="selected")
        positive = numeric and values and min(values) > 0
        if positive and max(values) >= 100 * min(values):
            axes.set_xscale("log")
        if not numeric:
            axes.set_xticks(range(len(labels)), labels)
        axes.set_xlabel(name)
        axes.set_ylabel(f"{key} ({results.selector.direction})")
        if column == 0:
            axes.legend(fontsize="small")
    figure.suptitle(f"{key} by swept parameter (mean over seeds ± std)")
    return write_atomic(path, lambda stream: figure.savefig(stream, format="png", dpi=100))
