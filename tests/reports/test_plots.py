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
from spec_lang.reports.plots import history_panels, load_log, plot_history, plot_moons, require_matplotlib  # noqa: E402


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
                      "hyperparameters": ["hp_lambda", "lambda"]}
    assert "hp_lambda" in history_panels(records())["losses"]  # unnamed run-time values look like loss terms


@pytest.mark.parametrize("target", [True, False], ids=["with_target_accuracy", "without"])
def test_plot_history_writes_a_png(tmp_path: Path, target: bool) -> None:
    path = plot_history(records(target=target), tmp_path / "history.png", hyperparameters=["hp_lambda"],
                        title="a run")
    assert path == tmp_path / "history.png"
    assert_image(path, 1350, 720)  # five panels: 3 × 2 of 4.5 × 3.6 inches at 100 dpi


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
