"""PNG plots: training histories and the two-moons picture are written atomically, are real images, and never
replace an existing file unless forced."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

import spec_lang  # noqa: E402
from spec_lang.data import two_moons  # noqa: E402
from spec_lang.reports import plots  # noqa: E402
from spec_lang.reports.plots import (  # noqa: E402
    constants,
    history_panels,
    load_log,
    plot_history,
    plot_moons,
    require_matplotlib,
)


def records(epochs: int = 12, target: bool = True) -> list[dict]:
    """Records shaped like `fit`'s: loss terms with names of the spec's choosing, run-time values, accuracies."""
    result = []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, "step": 10 * epoch, "progress": epoch / epochs, "objective": 2 / epoch,
                  "xent": 1 / epoch, "adversary": 1.4 - 0.01 * epoch, "hp_lambda": 0.3, "lambda": epoch / epochs,
                  "learning_rate": 0.01 / epoch, "source_accuracy": 1 - 0.5 / epoch, "domain_accuracy": 0.5,
                  "proxy_a_distance": 0.1}
        if target:
            record["target_accuracy"] = 0.8 - 0.3 / epoch
        result.append(record)
    return result


def assert_image(path: Path, width: int, height: int) -> None:
    """A PNG of the given size in pixels, with more than a handful of colours."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    pixels = imread(path)
    assert pixels.shape[:2] == (height, width)
    rgb = (pixels[..., :3] * 255).astype(np.uint32)
    assert len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])) > 20  # colours
    assert not list(path.parent.glob(".*.tmp"))  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as `open` would create it, not mkstemp's 0600


def test_history_panels_find_loss_terms_by_elimination() -> None:
    panels = history_panels(records(), hyperparameters=["hp_lambda"])
    assert panels == {"losses": ["objective", "xent", "adversary"],
                      "accuracies": ["source_accuracy", "domain_accuracy", "target_accuracy"],
                      "proxy_a_distance": ["proxy_a_distance"], "learning_rate": ["learning_rate"],
                      "hyperparameters": ["lambda"]}  # hp_lambda stays 0.3: named in the title, not drawn
    assert constants(records(), hyperparameters=["hp_lambda"]) == {"hp_lambda": 0.3}
    assert "hp_lambda" in history_panels(records())["losses"]  # unnamed run-time values look like loss terms


@pytest.mark.parametrize("target", [True, False], ids=["with_target_accuracy", "without"])
def test_plot_history_writes_a_png(tmp_path: Path, target: bool) -> None:
    path = plot_history(records(target=target), tmp_path / "history.png", hyperparameters=["hp_lambda"],
                        title="a run")
    assert path == tmp_path / "history.png"
    assert_image(path, 1350, 720)  # five panels: 3 × 2 of 4.5 × 3.6 inches at 100 dpi


def captured_titles(monkeypatch) -> list[str]:
    """The titles of the figures `plot_history` saves from now on."""
    titles: list[str] = []
    save = plots._save

    def capture(figure, path, force):
        titles.append("\n".join(text.get_text() for text in figure.texts))  # the suptitle, if any
        return save(figure, path, force)

    monkeypatch.setattr(plots, "_save", capture)
    return titles


def test_constant_run_time_values_are_named_in_the_title_not_drawn(tmp_path: Path, monkeypatch) -> None:
    # the observed case: a constant `lr0` (and a constant learning rate and λ) drawn as flat curves
    run = [{"epoch": e, "objective": 1 / e, "source_accuracy": 1 - 0.5 / e, "learning_rate": 0.01, "lambda": 0.5,
            "lr0": 0.01, "hp_mu": 0.1 * e} for e in range(1, 6)]
    assert constants(run, hyperparameters=["lr0", "hp_mu"]) == {"learning_rate": 0.01, "lambda": 0.5, "lr0": 0.01}
    assert history_panels(run, hyperparameters=["lr0", "hp_mu"]) == {
        "losses": ["objective"], "accuracies": ["source_accuracy"], "hyperparameters": ["hp_mu"]}
    titles = captured_titles(monkeypatch)
    path = plot_history(run, tmp_path / "run.png", hyperparameters=["lr0", "hp_mu"], title="a run")
    assert_image(path, 1350, 360)  # three panels in a row: no learning-rate panel
    assert titles == ["a run\nconstant: learning_rate = 0.01, lambda = 0.5, lr0 = 0.01"]


def test_a_varying_learning_rate_and_lambda_are_drawn(tmp_path: Path, monkeypatch) -> None:
    titles = captured_titles(monkeypatch)
    run = [{"step": s, "objective": 1 / s, "learning_rate": 0.01 / s, "lambda": s / 4} for s in range(1, 5)]
    assert history_panels(run) == {"losses": ["objective"], "learning_rate": ["learning_rate"],
                                   "hyperparameters": ["lambda"]}
    assert_image(plot_history(run, tmp_path / "run.png"), 1350, 360)
    assert titles == [""]  # no title given, nothing constant


def test_load_log_reads_the_epoch_records_of_a_json_lines_log(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    lines = [*records(4), {**records(4)[-1], "final": True, "status": "completed"}]
    log.write_text("".join(json.dumps(r) + "\n" for r in lines) + "\n")
    assert load_log(log) == records(4)


def test_plot_history_with_a_few_keys_uses_one_row(tmp_path: Path) -> None:
    few = [{"step": s, "objective": 1 / s, "source_accuracy": 0.5} for s in range(1, 5)]
    assert_image(plot_history(few, tmp_path / "few.png"), 900, 360)


def test_plots_never_replace_a_file_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "history.png"
    path.write_bytes(b"precious")
    with pytest.raises(spec_lang.SpecError, match="already exists"):
        plot_history(records(), path)
    with pytest.raises(spec_lang.SpecError):
        plot_moons({"model": Linear()}, two_moons(), path)
    assert path.read_bytes() == b"precious"
    plot_history(records(), path, force=True)
    assert_image(path, 1350, 720)


def test_plot_history_needs_records(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training records"):
        plot_history([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


class Linear:
    """A fixed logistic label classifier, and a domain classifier unless `domain` is false."""

    def __init__(self, domain: bool = True):
        self.domain = domain

    def predict(self, head: str, x: np.ndarray) -> np.ndarray:
        if head == "label":
            p = 1 / (1 + np.exp(-3 * (x[:, 0] - x[:, 1])))
            return np.column_stack([1 - p, p])  # softmax-style, two columns
        if head == "domain" and self.domain:
            return (1 / (1 + np.exp(-2 * x[:, 1])))[:, None]  # sigmoid-style, one column
        raise KeyError(f"no head '{head}'")


def test_plot_moons_draws_models_side_by_side(tmp_path: Path) -> None:
    path = plot_moons({"NN": Linear(domain=False), "DANN": Linear()}, two_moons(), tmp_path / "moons.png",
                      resolution=60)
    assert_image(path, 1100, 500)


def test_plot_moons_without_target_labels(tmp_path: Path) -> None:
    data = {k: v for k, v in two_moons().items() if k != "yt"}
    assert_image(plot_moons({"DANN": Linear()}, data, tmp_path / "one.png", resolution=40), 550, 500)


def test_plot_moons_wants_a_binary_label_head(tmp_path: Path) -> None:
    class ThreeClasses:
        def predict(self, head: str, x: np.ndarray) -> np.ndarray:
            return np.full((len(x), 3), 1 / 3)

    with pytest.raises(ValueError, match="binary head"):
        plot_moons({"m": ThreeClasses()}, two_moons(), tmp_path / "three.png", resolution=10)
    assert not list(tmp_path.iterdir())


def test_a_missing_matplotlib_is_named_with_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'spec-lang\[plots\]'"):
        require_matplotlib()
