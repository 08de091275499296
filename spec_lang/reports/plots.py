"""PNG plots of training runs and of 2-D problems, drawn with matplotlib's Agg renderer.

matplotlib is optional (`pip install 'spec-lang[plots]'`) and imported only when a plot is drawn, so the rest
of specc works without it. Every plot is written atomically (a crash never leaves half a file) and never
replaces an existing file unless `force` is true.

>>> records = [{"epoch": e, "objective": 1 / e, "label_loss": 0.5 / e, "source_accuracy": 1 - 0.5 / e,
...             "learning_rate": 0.05, "hp_lambda": 0.1 * e} for e in range(1, 4)]
>>> history_panels(records, hyperparameters=["hp_lambda"])
{'losses': ['objective', 'label_loss'], 'accuracies': ['source_accuracy'], 'hyperparameters': ['hp_lambda']}
>>> constants(records, hyperparameters=["hp_lambda"])  # not drawn: named in the figure's title
{'learning_rate': 0.05}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from spec_lang.files import refuse_existing, write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.typing import LineStyleType

# Keys of a training record that are neither loss terms nor run-time values.
BOOKKEEPING = frozenset({"epoch", "step", "progress"})
LAMBDA = "lambda"  # fit's record of the first reversal point's λ
LEARNING_RATE = "learning_rate"
PANEL_TITLES = {
    "losses": "loss terms",
    "accuracies": "accuracy",
    "proxy_a_distance": "proxy A-distance",
    "learning_rate": "learning rate",
    "hyperparameters": "run-time values",
}


class Predictor(Protocol):
    """Anything with a `predict(head, x)`, such as a `CompiledModel`."""

    def predict(self, head: str, x: np.ndarray) -> np.ndarray: ...


def load_log(path: str | os.PathLike) -> list[dict]:
    """The per-epoch records of a JSON-lines training log (`fit(log=…)`): one object per line, leaving out the
    final records (`"final": true`), which repeat the last epoch's or report how training stopped."""
    with open(path, encoding="utf-8") as stream:
        records = [json.loads(line) for line in stream if line.strip()]
    return [record for record in records if not record.get("final")]


def require_matplotlib() -> None:
    """Raise `ImportError` with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'spec-lang[plots]' (or matplotlib>=3.7)") from None


def _figure(columns: int, rows: int = 1, size: tuple[float, float] = (4.5, 3.6)) -> Figure:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike, force: bool) -> Path:
    refuse_existing(path, force)
    return write_atomic(path, lambda stream: figure.savefig(stream, format="png", dpi=100))


def _numeric_keys(records: list[dict]) -> list[str]:
    """The keys of the records with numbers for values, in order of first appearance."""
    keys: list[str] = []
    for record in records:
        keys += [
            k for k, v in record.items() if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
    return keys


def constants(records: list[dict], hyperparameters: Collection[str] = ()) -> dict[str, float]:
    """The run-time values (`learning_rate`, `lambda` and the names given) that keep one value over the records,
    with that value, in order of first appearance: `plot_history` names them in its title instead of drawing
    flat lines."""
    runtime = {LEARNING_RATE, LAMBDA, *hyperparameters}
    found: dict[str, float] = {}
    for key in _numeric_keys(records):
        values = {record[key] for record in records if key in record}
        if key in runtime and len(values) == 1:
            found[key] = values.pop()
    return found


def history_panels(records: list[dict], hyperparameters: Collection[str] = ()) -> dict[str, list[str]]:
    """Which record keys go into which panel of `plot_history`, in order of first appearance: `losses`
    (`objective` and every other numeric key not named below), `accuracies` (keys ending in `_accuracy`),
    `proxy_a_distance`, `learning_rate`, and `hyperparameters` (`lambda` and the names given). Run-time values
    that never change (`constants`) are left out, and so are panels with no key."""
    panels: dict[str, list[str]] = {name: [] for name in PANEL_TITLES}
    fixed = constants(records, hyperparameters)
    for key in _numeric_keys(records):
        if key in BOOKKEEPING or key in fixed:
            continue
        if key.endswith("_accuracy"):
            panels["accuracies"].append(key)
        elif key in ("proxy_a_distance", LEARNING_RATE):
            panels[key].append(key)
        elif key == LAMBDA or key in hyperparameters:
            panels["hyperparameters"].append(key)
        else:
            panels["losses"].append(key)
    return {name: ks for name, ks in panels.items() if ks}


def plot_history(
    records: list[dict],
    path: str | os.PathLike,
    *,
    hyperparameters: Collection[str] = (),
    title: str | None = None,
    force: bool = False,
) -> Path:
    """Plot per-epoch training records (from `History.records` or `load_log`) against the epoch (or the step when
    records have no epoch): loss terms, accuracies, the proxy A-distance, the learning rate, and the run-time
    values: fit's `lambda` and those named in `hyperparameters` (give `model.hyperparameters` or
    `spec.program.hypers`, else they are taken for loss terms). The learning rate and run-time values are drawn
    only where they vary; the constant ones are named with their values under the title. A key missing from some
    records leaves a gap there. Returns the path of the PNG."""
    if not records:
        raise ValueError("no training records to plot")
    target = Path(path)
    refuse_existing(target, force)
    panels = history_panels(records, hyperparameters)
    x_key = next((k for k in ("epoch", "step") if all(k in r for r in records)), "record")
    x = np.array([r.get(x_key, i) for i, r in enumerate(records)], dtype=float)
    columns = len(panels) if len(panels) <= 3 else math.ceil(len(panels) / 2)
    rows = math.ceil(len(panels) / columns)
    figure = _figure(columns, rows)
    for index, (panel, keys) in enumerate(panels.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        for key in keys:
            values = np.array([r.get(key, np.nan) for r in records], dtype=float)
            axes.plot(
                x, values, label=key, linewidth=2 if key == "objective" else 1.2, marker="." if len(x) < 30 else None
            )
        if panel == "losses" and all(v > 0 for k in keys for r in records if (v := r.get(k)) is not None):
            axes.set_yscale("log")
        if panel == "accuracies":
            axes.set_ylim(-0.02, 1.02)
        axes.set_title(PANEL_TITLES[panel])
        axes.set_xlabel(x_key)
        axes.grid(alpha=0.3)
        if len(keys) > 1 or panel in ("losses", "hyperparameters"):
            axes.legend(fontsize="small")
    caption = constant_caption(constants(records, hyperparameters))
    if title or caption:
        figure.suptitle("\n".join(line for line in (title, caption) if line))
    return _save(figure, target, force)


def constant_caption(values: Mapping[str, float]) -> str:
    """The line naming the run-time values that did not change, for a plot's title; empty when there are none.

    >>> constant_caption({"learning_rate": 0.01, "hp_lambda": 0.5})
    'constant: learning_rate = 0.01, hp_lambda = 0.5'
    """
    return "constant: " + ", ".join(f"{k} = {v:.4g}" for k, v in values.items()) if values else ""


def _grid(points: Iterable[np.ndarray], resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """A `resolution × resolution` grid over the bounding box of the points, 10% larger on every side."""
    stacked = np.vstack(list(points))
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    margin = 0.1 * (high - low)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    return np.meshgrid(xs, ys)


def positive_probability(probabilities: np.ndarray) -> np.ndarray:
    """The probability of class 1 from a binary head: its one column (sigmoid) or its second of two (softmax)."""
    if probabilities.ndim != 2 or probabilities.shape[1] not in (1, 2):
        raise ValueError(f"expected a binary head, [n, 1] or [n, 2]; got shape {list(probabilities.shape)}")
    return probabilities[:, -1]


def accuracy(model: Predictor, head: str, x: np.ndarray, y: np.ndarray) -> float:
    """The fraction of rows of `x` whose most probable class under `head` is `y` (for a one-column sigmoid head,
    class 1 when its output exceeds 0.5).

    >>> class Constant:
    ...     def predict(self, head, x):
    ...         return np.tile([0.2, 0.8], (len(x), 1))
    >>> accuracy(Constant(), "label", np.zeros((4, 2)), np.array([1, 1, 0, 1]))
    0.75
    """
    probabilities = np.asarray(model.predict(head, x))
    predicted = (probabilities[:, 0] > 0.5) if probabilities.shape[1] == 1 else probabilities.argmax(axis=1)
    return float(np.mean(predicted == np.asarray(y)))


def _boundary(
    axes: Axes,
    xx: np.ndarray,
    yy: np.ndarray,
    probability: np.ndarray,
    name: str,
    color: str,
    linestyle: LineStyleType = "-",
) -> Line2D:
    """Draw where `probability` crosses 0.5, if it does on the grid; returns the legend entry."""
    from matplotlib.lines import Line2D

    crosses = probability.min() < 0.5 < probability.max()
    if crosses:
        axes.contour(xx, yy, probability, levels=[0.5], colors=color, linewidths=2, linestyles=linestyle)
    return Line2D(
        [], [], color=color, linewidth=2, linestyle=linestyle, label=name if crosses else f"{name}: none in view"
    )


def _draw_moons(
    axes: Axes,
    model: Predictor,
    name: str,
    data: Mapping[str, np.ndarray],
    label_head: str,
    domain_head: str | None,
    resolution: int,
) -> None:
    from matplotlib.colors import ListedColormap

    xx, yy = _grid([data["xs"], data["xt"]], resolution)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    label = positive_probability(np.asarray(model.predict(label_head, grid))).reshape(xx.shape)
    axes.contourf(xx, yy, label, levels=[0, 0.5, 1], cmap=ListedColormap(["#f4b6b6", "#b6e3b6"]), alpha=0.6)
    legend = [_boundary(axes, xx, yy, label, "label boundary", "black")]
    try:
        domain = positive_probability(np.asarray(model.predict(domain_head, grid))) if domain_head else None
    except KeyError:  # a model without a domain head
        domain = None
    if domain is not None:
        legend.append(_boundary(axes, xx, yy, domain.reshape(xx.shape), "domain boundary", "#1f4fd1", "--"))
    for cls, (colour, marker) in enumerate([("#c0392b", "+"), ("#1e8449", "x")]):
        points = data["xs"][data["ys"] == cls]
        axes.scatter(
            points[:, 0], points[:, 1], c=colour, marker=marker, s=30, linewidths=1.5, label=f"source, class {cls}"
        )
    axes.scatter(data["xt"][:, 0], data["xt"][:, 1], c="black", s=8, label="target (unlabelled)")
    handles, _ = axes.get_legend_handles_labels()
    axes.legend(handles=handles + legend, fontsize="small", loc="upper left")
    caption = f"source accuracy {accuracy(model, label_head, data['xs'], data['ys']):.1%}"
    if "yt" in data:
        caption += f", target {accuracy(model, label_head, data['xt'], data['yt']):.1%}"
    axes.set_title(f"{name}\n{caption}")
    axes.set_aspect("equal")
    axes.set_xlim(xx.min(), xx.max())
    axes.set_ylim(yy.min(), yy.max())


def plot_moons(
    models: Mapping[str, Predictor],
    data: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    label_head: str = "label",
    domain_head: str | None = "domain",
    resolution: int = 200,
    force: bool = False,
) -> Path:
    """The DANN paper's picture of a 2-D problem, one panel per model, side by side (e.g. {"NN": nn, "DANN":
    dann}): source points coloured by label, target points in black, the label classifier's decision boundary
    (where the probability of class 1 under `label_head` is 0.5, the two sides shaded) and, for models with
    `domain_head`, the domain classifier's boundary (dashed). `data` holds xs, ys, xt and optionally yt (then
    each title gives the target accuracy); heads are binary, [n, 1] sigmoid or [n, 2] softmax. Returns the
    path of the PNG."""
    if not models:
        raise ValueError("no models to plot")
    target = Path(path)
    refuse_existing(target, force)
    figure = _figure(len(models), size=(5.5, 5.0))
    for index, (name, model) in enumerate(models.items()):
        _draw_moons(
            figure.add_subplot(1, len(models), index + 1), model, name, data, label_head, domain_head, resolution
        )
    return _save(figure, target, force)
