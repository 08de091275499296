"""`specc graph` (DOT text, PNG and SVG pictures, the reversal marked) and `specc schema` (the JSON door's schema)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from spec_lang.cli.main import main
from spec_lang.reports import graph as graph_module
from spec_lang.syntax import json_schema

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in messages are relative to the repository


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def reversal_red_pixels(path: Path) -> int:
    """Pixels in the colour of the reversal points and the edges carrying reversed gradients."""
    from matplotlib.image import imread

    rgb = np.round(imread(path)[..., :3] * 255).astype(int)
    return int(np.sum(np.all(np.abs(rgb - np.array([0xD6, 0x27, 0x28])) <= 8, axis=-1)))


def test_graph_prints_the_dot_text(capsys) -> None:
    code, out, err = run(capsys, "graph", "examples/seed_dann.dann")
    assert (code, err) == (0, "")
    assert out == (ROOT / "tests" / "golden" / "seed_dann.graph.dot").read_text(encoding="utf-8")


def test_graph_writes_a_png_that_marks_the_reversal(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    target = tmp_path / "g.png"
    code, out, err = run(capsys, "graph", "examples/seed_dann.dann", "-o", str(target))
    drawn_by = "Graphviz's dot" if shutil.which("dot") else "matplotlib"
    assert (code, err) == (0, "") and out.startswith(f"wrote {target} (drawn by {drawn_by}")
    assert target.read_bytes()[:8] == PNG
    height, width = imread(target).shape[:2]
    assert width > 600 and height > 400
    assert reversal_red_pixels(target) > 200


def test_graph_with_matplotlib_even_where_dot_is_installed(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "g.png"
    code, out, _ = run(capsys, "graph", "examples/dann_reverse_layer.dann", "-o", str(target), "--renderer",
                       "matplotlib")
    assert code == 0
    assert out == f"wrote {target} (drawn by matplotlib; for Graphviz's layout: apt-get install graphviz)\n"
    assert target.read_bytes()[:8] == PNG and reversal_red_pixels(target) > 500


def test_graph_writes_svg_and_dot_files(tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)  # as on a machine without Graphviz
    assert run(capsys, "graph", "examples/seed_dann.dann", "-o", str(tmp_path / "g.svg"))[0] == 0
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")
    code, out, _ = run(capsys, "graph", "examples/seed_dann.dann", "-o", str(tmp_path / "g.dot"))
    assert (code, out) == (0, f"wrote {tmp_path / 'g.dot'}\n")
    assert 'label="reverse λ = hp_lambda (0.5)"' in (tmp_path / "g.dot").read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_graph_with_dot(tmp_path: Path, capsys) -> None:
    code, out, _ = run(capsys, "graph", "examples/seed_dann.dann", "-o", str(tmp_path / "g.svg"), "--renderer", "dot")
    assert (code, out) == (0, f"wrote {tmp_path / 'g.svg'} (drawn by Graphviz's dot)\n")
    assert "reverse λ = hp_lambda (0.5)" in (tmp_path / "g.svg").read_text(encoding="utf-8")


def test_graph_refuses_an_unknown_format_and_an_existing_file(tmp_path: Path, capsys) -> None:
    code, out, err = run(capsys, "graph", "examples/seed_dann.dann", "-o", str(tmp_path / "g.jpg"))
    assert (code, out) == (1, "")
    assert err.startswith(f"{tmp_path / 'g.jpg'}: error[E004]: unknown graph format '.jpg'")
    (tmp_path / "g.dot").write_text("precious")
    code, _, err = run(capsys, "graph", "examples/seed_dann.dann", "-o", str(tmp_path / "g.dot"))
    assert code == 1 and "error[E002]: the file already exists" in err
    assert (tmp_path / "g.dot").read_text() == "precious"
    assert run(capsys, "graph", "examples/seed_dann.dann", "-o", str(tmp_path / "g.dot"), "--force")[0] == 0


def test_graph_imports_no_pytensor() -> None:
    script = ("import contextlib, io, sys\n"
              "from spec_lang.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              "    code = main(['graph', 'examples/seed_dann.dann'])\n"
              "assert code == 0, code\n"
              "assert 'pytensor' not in sys.modules, 'pytensor was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_schema_prints_the_schema_the_json_door_checks_against(capsys) -> None:
    code, out, err = run(capsys, "schema")
    assert (code, err) == (0, "")
    packaged = (files("spec_lang.syntax") / "schema" / "dann.schema.json").read_text(encoding="utf-8")
    assert out == packaged
    assert json.loads(out) == json_schema.validator().schema
    assert json.loads(out)["$schema"].startswith("https://json-schema.org/")


def test_schema_writes_a_file_and_keeps_an_existing_one(tmp_path: Path, capsys) -> None:
    target = tmp_path / "dann.schema.json"
    assert run(capsys, "schema", "-o", str(target)) == (0, f"wrote {target}\n", "")
    assert json.loads(target.read_text(encoding="utf-8")) == json_schema.validator().schema
    code, _, err = run(capsys, "schema", "-o", str(target))
    assert code == 1 and f"{target}: error[E002]: the file already exists" in err
