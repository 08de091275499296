"""Every method of the library on a digits domain shift: `specc reproduce digits`.

The data is scikit-learn's bundled digits (1,797 grey 8×8 images, no download), split at random (seed 0) into two
halves: the source is the first half, the target the second half **rotated by 30°** (bilinear, about the centre,
`scipy.ndimage.rotate`), each image flattened to 64 features in [0, 1]. The shift is the one a small dense network
can be asked to close: a logistic regression trained on the source reaches 98% on the source and 32% on the
rotated target, and one trained on the target's own labels 98% (checked with scikit-learn). `specc data digits`'
MNIST-M-like colour shift was tried first: with the library's dense backbone every method, source-only included,
stayed at chance on it (docs/methods.md). Each method of `examples/methods/` (every `.dann` file there, read at run
time) is trained with `CompiledModel.fit` on the labelled source and the unlabelled target, once per seed: the seed
draws the initial weights (the program's `seed`, as `specc train --seed`) and the batch order; the data stays the
same. Source accuracy is measured on the source rows trained on; target accuracy on all target rows with their
held labels, which training never reads (the oracle).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spec_lang.data.digits import load_digits
from spec_lang.diagnostics import SpecError
from spec_lang.experiments.accuracies import ACCURACIES, Accuracies, example
from spec_lang.experiments.runs import load_spec
from spec_lang.files import prepare_folder, refuse_existing, write_atomic
from spec_lang.reports.plots import accuracy, require_matplotlib
from spec_lang.syntax.sources import parse_source, read_source

if TYPE_CHECKING:
    from spec_lang.model import CompiledModel  # imports PyTensor

DIGITS_EPOCHS = 35  # about 11 minutes for every method and 3 seeds on 2 shared cores
DIGITS_SEEDS = 3
DIGITS_BATCH = 32
BASELINE = "source_only"
LABEL_HEAD = "label_probabilities"  # every method's head; ADDA's reads the target encoder, MCD's the first classifier
ROTATION = 30.0  # degrees: the target domain's digits are the source's, turned
PRETRAIN_SHARE = 4  # a method with `pretrain_epochs` (ADDA) pre-trains for a quarter of the epochs


def digits_features(rows: int | None = None) -> dict[str, np.ndarray]:
    """The rotated-digits shift as flat features (see the module's description): xs, ys, xt, yt, the first `rows`
    of each domain when given.

    >>> data = digits_features(rows=5)
    >>> data["xs"].shape, data["xt"].shape, data["yt"].shape
    ((5, 64), (5, 64), (5,))
    """
    from scipy.ndimage import rotate  # scipy comes with scikit-learn (the digits extra)

    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    source, target = order[: len(images) // 2][:rows], order[len(images) // 2 :][:rows]
    turned = np.stack([rotate(image, ROTATION, reshape=False, order=1) for image in images[target]])
    return {
        "xs": (images[source] / 16).reshape(len(source), -1).astype("float32"),
        "ys": labels[source],
        "xt": (turned / 16).reshape(len(target), -1).astype("float32"),
        "yt": labels[target],
    }


def method_specs(names: Sequence[str] | None = None) -> dict[str, Path]:
    """The methods of `examples/methods/` by name (file stem), source-only first, then alphabetically; only
    `names` (in that order) when given, each one that is not there a `ValueError` naming those that are.

    >>> list(method_specs(["dann", "source_only"]))
    ['dann', 'source_only']
    """
    found = sorted(example("methods").glob("*.dann"), key=lambda p: (p.stem != BASELINE, p.stem))
    specs = {path.stem: path for path in found}
    if names is None:
        return specs
    missing = [name for name in names if name not in specs]
    if missing:
        raise ValueError(f"no method {', '.join(missing)} in examples/methods/; there are {', '.join(specs)}")
    return {name: specs[name] for name in names}


def _overrides(path: Path, features: int, epochs: int) -> dict[str, object]:
    """Ten classes of `features` inputs, and a part of the epochs for pre-training where the method has one."""
    names = {param.name for param in parse_source(read_source(path)).params}
    pretrain = {"pretrain_epochs": max(1, epochs // PRETRAIN_SHARE)} if "pretrain_epochs" in names else {}
    return {"classes": 10, "dim": features, **pretrain}


def reproduce_digits(
    seeds: int = DIGITS_SEEDS,
    out_dir: str | Path = "digits",
    *,
    epochs: int = DIGITS_EPOCHS,
    batch_size: int = DIGITS_BATCH,
    methods: Sequence[str] | None = None,
    rows: int | None = None,
    mode: str | None = "FAST_COMPILE",
    force: bool = False,
    report: Callable[[str], None] | None = None,
) -> Accuracies:
    """Train each method (`method_specs(methods)`) on `digits_features(rows)` once per seed 0, 1, …, `seeds` - 1,
    for `epochs` epochs of `batch_size` source and target rows, compiled in `mode`, and measure its label head's
    source and target accuracy. Writes to `out_dir`: `digits.json` (the set-up, every run and the summary),
    `digits.csv` (the table's numbers) and `digits.png` (target accuracy by method). Existing files are replaced
    only when `force`. `report` receives a line per finished run. Returns the accuracies, source-only the
    baseline when it ran; `result.table()` is the table."""
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    specs = method_specs(methods)
    kinds = ("json", "csv", "png")
    paths = dict(zip(kinds, prepare_folder(out_dir, [f"digits.{kind}" for kind in kinds], force), strict=True))
    require_matplotlib()  # before minutes of training, not after
    data = digits_features(rows)
    features = data["xs"].shape[1]
    runs: dict[str, list[dict]] = {name: [] for name in specs}
    for name, spec_path in specs.items():
        overrides = _overrides(spec_path, features, epochs)
        for seed in range(seeds):
            started = time.perf_counter()
            run = _train(load_spec(spec_path, overrides, seed).compile(mode), data, epochs, batch_size, seed)
            runs[name].append({"seed": seed, **run, "seconds": round(time.perf_counter() - started, 2)})
            if report:
                shown = run.get("diverged") or (
                    f"source {run['source_accuracy']:.1%}, target {run['target_accuracy']:.1%}"
                )
                report(f"{name} seed {seed}: {shown} ({runs[name][-1]['seconds']} s)")
    result = Accuracies(runs, baseline=BASELINE if BASELINE in runs else None)
    setup = {
        "data": f"scikit-learn's digits, {len(data['xs'])} source and {len(data['xt'])} target rows, the target "
        f"rotated by {ROTATION:g}°, {features} features",
        "target_accuracy": "on every target row, with the held target labels (never trained on)",
        "epochs": epochs,
        "batch_size": batch_size,
        "seeds": seeds,
        "mode": mode,
        "specs": {name: os.path.relpath(path) for name, path in specs.items()},
        "overrides": {name: _overrides(path, features, epochs) for name, path in specs.items()},
    }
    differences = result.differences()
    summary = {name: {**stats, "target_vs_baseline": differences.get(name)} for name, stats in result.summary().items()}
    document = {"setup": setup, "baseline": result.baseline, "summary": summary, "runs": runs}
    result.files.append(write_atomic(paths["json"], json.dumps(document, indent=2) + "\n"))
    result.files.append(write_atomic(paths["csv"], _csv(result)))
    result.files.append(plot_digits(result, paths["png"], force=force))
    return result


def _train(model: CompiledModel, data: dict[str, np.ndarray], epochs: int, batch_size: int, seed: int) -> dict:
    """Fit `model` and measure its label head's accuracies; a run whose loss stops being finite (E805) is kept as
    `{"diverged": message}` so that the other runs go on."""
    try:
        model.fit(data, epochs=epochs, batch_size=batch_size, seed=seed, label_head=LABEL_HEAD)
    except SpecError as error:
        if error.diagnostics[0].code != "E805":
            raise
        return {"diverged": error.diagnostics[0].message}
    return {
        "source_accuracy": accuracy(model, LABEL_HEAD, data["xs"], data["ys"]),
        "target_accuracy": accuracy(model, LABEL_HEAD, data["xt"], data["yt"]),
    }


def _csv(result: Accuracies) -> str:
    """One row per method with a completed run: the completed seeds, each accuracy's mean, min and max, and the
    difference from the baseline."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    stats = [f"{key}_{s}" for key in ACCURACIES for s in ("mean", "min", "max")]
    writer.writerow(["method", "seeds", *stats, "target_vs_baseline"])
    differences = result.differences()
    for name, summary in result.summary().items():
        values = [summary[key][s] for key in ACCURACIES for s in ("mean", "min", "max")]
        difference = differences.get(name)
        writer.writerow([name, len(result.completed(name)), *values, "" if difference is None else difference])
    return buffer.getvalue()


def plot_digits(result: Accuracies, path: str | os.PathLike, *, force: bool = False) -> Path:
    """A PNG of each method's mean target accuracy with its min–max over the completed seeds ("diverged" where none
    completed), the baseline's bar in grey and its mean as a dashed line, chance (one in ten) dotted; needs
    matplotlib."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(result.runs)
    summary = result.summary()
    stats = [
        summary[name]["target_accuracy"] if name in summary else {"mean": 0.0, "min": 0.0, "max": 0.0} for name in names
    ]
    means, lows, highs = (np.array([100 * s[key] for s in stats]) for key in ("mean", "min", "max"))
    figure = Figure(figsize=(max(6.0, 0.6 * len(names) + 2), 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = ["0.6" if name == result.baseline else "tab:blue" for name in names]
    axes.bar(names, means, yerr=np.stack([means - lows, highs - means]), color=colours, capsize=3)
    for x, name in enumerate(names):
        if name not in summary:
            axes.text(x, 0.5, "diverged", rotation=90, ha="center", va="bottom", fontsize=8)
    if result.baseline in summary:
        baseline = 100 * summary[result.baseline]["target_accuracy"]["mean"]
        axes.axhline(baseline, color="0.3", linestyle="--", label=result.baseline)
    axes.axhline(10.0, color="tab:red", linestyle=":", label="chance (10 classes)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    seeds = max(len(runs) for runs in result.runs.values())
    axes.set_ylabel("target accuracy (%), held labels")
    axes.set_title(f"digits → digits rotated by {ROTATION:g}°: mean and min–max over {seeds} seed(s)")
    axes.tick_params(axis="x", labelrotation=45)
    refuse_existing(path, force)
    return write_atomic(path, lambda stream: figure.savefig(stream, format="png", dpi=100))
