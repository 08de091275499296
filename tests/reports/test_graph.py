"""The picture of a program (`specc graph`): its DOT text (golden), the reversal points and the edges carrying
reversed gradients, and real PNG and SVG files drawn by matplotlib and, where installed, Graphviz's dot."""

from __future__ import annotations

import os
import shutil
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.reports import graph as graph_module
from spec_lang.reports.graph import Graph, build_graph, to_dot, write_graph

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"
PNG = b"\x89PNG\r\n\x1a\n"
RED = (0xD6, 0x27, 0x28)  # REVERSAL_COLOUR
NO_DOT = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)

MID_STACK_REVERSAL = """model mid(hp_lambda = 0.5)
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features { dense 4 tanh }
stack label { dense 3 softmax }
stack domain { dense 5 tanh; reverse(lambda = hp_lambda); dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
loss label_loss = crossentropy(label(fs), ys)
loss domain_loss = bce(domain(fs), 0) + bce(domain(ft), 1)
optimize sgd(lr = 0.01) minimize label_loss + domain_loss
"""


def example(name: str) -> Graph:
    return build_graph(spec_lang.load(ROOT / "examples" / f"{name}.dann").program)


def edges(graph: Graph, kind: str) -> list[tuple[str, str, str]]:
    """(source heading, target heading, label) of the edges of a kind; nodes named by their first line."""
    heading = {node.id: node.lines[0] for node in graph.nodes}
    return [(heading[e.source], heading[e.target], e.label) for e in graph.edges if e.kind == kind]


@pytest.mark.parametrize("name", ["seed_dann", "dann_reverse_layer", "methods/adda"])
def test_the_dot_text_of_the_examples_is_golden(name: str) -> None:
    text = to_dot(example(name))
    path = GOLDEN / f"{name.replace('/', '_')}.graph.dot"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
    assert text == to_dot(example(name))  # the same every time


def test_reverse_expressions_are_red_dashed_edges_and_what_lies_below_them_is_red() -> None:
    graph = example("seed_dann")
    assert edges(graph, "reversal") == [
        ("fs = features(xs)", "reverse(fs)", "reverse λ = hp_lambda (0.5)"),
        ("ft = features(xt)", "reverse(ft)", "reverse λ = hp_lambda (0.5)"),
    ]
    assert edges(graph, "reversed") == [("input xs", "fs = features(xs)", ""), ("input xt", "ft = features(xt)", "")]
    assert [node.lines[0] for node in graph.nodes if node.reverses] == ["reverse(fs)", "reverse(ft)"]
    data = edges(graph, "data")  # the label classifier's gradients are not reversed
    assert ("fs = features(xs)", "head label_probabilities = label(fs)", "") in data
    assert ("loss domain_loss", "minimize label_loss + domain_loss", "") in data
    assert graph.title[1:] == (
        "red dashed: gradient reversal (identity forward, gradient × −λ backward)",
        "red: edges carrying the reversed gradients of domain_loss to features",
    )


def test_a_reverse_layer_first_in_a_stack_reverses_the_edge_into_it() -> None:
    graph = example("dann_reverse_layer")
    assert edges(graph, "reversal") == [
        ("fs = features(xs)", "domain(fs)", "reverse λ = hp_lambda (0.5)"),
        ("ft = features(xt)", "domain(ft)", "reverse λ = hp_lambda (0.5)"),
    ]
    assert [node.lines[0] for node in graph.nodes if node.reverses] == ["domain(fs)", "domain(ft)"]
    assert edges(graph, "parameters") == [  # the l2 penalty reads each stack's parameters once
        ("fs = features(xs)", "loss weight_decay", "parameters of features"),
        ("head label_probabilities = label(fs)", "loss weight_decay", "parameters of label"),
        ("domain(fs)", "loss weight_decay", "parameters of domain"),
    ]


def test_a_reverse_layer_inside_a_stack_marks_the_stack_and_the_edges_below() -> None:
    graph = build_graph(spec_lang.loads(MID_STACK_REVERSAL).program)
    assert edges(graph, "reversal") == []
    assert edges(graph, "reversed") == [
        ("input xs", "fs = features(xs)", ""),
        ("input xt", "ft = features(xt)", ""),
        ("fs = features(xs)", "domain(fs)", ""),  # the layer before the reversal gets reversed gradients too
        ("ft = features(xt)", "domain(ft)", ""),
    ]
    domain = next(node for node in graph.nodes if node.lines[0] == "domain(fs)")
    assert domain.reverses and domain.lines[1] == "dense 4→5 tanh, reverse(λ = hp_lambda (0.5)),"


def test_outer_predictions_are_conditioning_without_gradient() -> None:
    graph = example("cdan")
    assert edges(graph, "conditioning") == [
        ("head label_probabilities = label(fs)", "outer(fs, label_probabilities)", "no gradient"),
        ("target_predictions = label(ft)", "outer(ft, target_predictions)", "no gradient"),
    ]
    assert ("fs = features(xs)", "outer(fs, label_probabilities)", "") in edges(graph, "reversed")


def test_a_model_without_reversal_has_no_red() -> None:
    graph = example("seed_l2_mlp")
    assert {edge.kind for edge in graph.edges} == {"data", "parameters"}
    assert len(graph.title) == 1 and 'color="#d62728"' not in to_dot(graph)


def red_pixels(path: Path) -> int:
    from matplotlib.image import imread

    pixels = imread(path)
    rgb = np.round(pixels[..., :3] * 255).astype(int)
    return int(np.sum(np.all(np.abs(rgb - np.array(RED)) <= 8, axis=-1)))


def assert_png(path: Path, min_width: int, min_height: int) -> tuple[int, int]:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 0
    height, width = imread(path).shape[:2]
    assert width >= min_width and height >= min_height
    assert not list(path.parent.glob(".*.tmp"))  # written atomically
    return width, height


def test_matplotlib_draws_a_png_with_the_reversal_in_red(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    program = spec_lang.load(ROOT / "examples" / "seed_dann.dann").program
    assert write_graph(program, tmp_path / "g.png", renderer="matplotlib") == "matplotlib"
    assert assert_png(tmp_path / "g.png", 800, 600) == (1382, 929)  # 13.82 × 9.29 inches at 100 dpi
    assert red_pixels(tmp_path / "g.png") > 500
    nn = spec_lang.load(ROOT / "examples" / "seed_l2_mlp.dann").program
    write_graph(nn, tmp_path / "nn.png", renderer="matplotlib")
    assert red_pixels(tmp_path / "nn.png") == 0


def test_without_dot_auto_falls_back_to_matplotlib(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    program = spec_lang.load(ROOT / "examples" / "dann_reverse_layer.dann").program
    assert write_graph(program, tmp_path / "g.png") == "matplotlib"
    assert red_pixels(tmp_path / "g.png") > 500
    assert write_graph(program, tmp_path / "g.svg") == "matplotlib"
    svg = ElementTree.parse(tmp_path / "g.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert "stroke: #d62728" in (tmp_path / "g.svg").read_text()


@NO_DOT
def test_dot_draws_a_png_and_an_svg(tmp_path: Path) -> None:
    program = spec_lang.load(ROOT / "examples" / "seed_dann.dann").program
    assert write_graph(program, tmp_path / "g.png") == "dot"
    assert_png(tmp_path / "g.png", 600, 400)
    assert red_pixels(tmp_path / "g.png") > 200
    assert write_graph(program, tmp_path / "g.svg", renderer="dot") == "dot"
    text = (tmp_path / "g.svg").read_text()
    assert ElementTree.fromstring(text).tag == "{http://www.w3.org/2000/svg}svg"
    assert text.count(">reverse λ = hp_lambda (0.5)<") == 2 and 'stroke="#d62728"' in text


def test_dot_text_files(tmp_path: Path) -> None:
    program = spec_lang.load(ROOT / "examples" / "seed_dann.dann").program
    for name in ("g.dot", "g.gv"):
        assert write_graph(program, tmp_path / name) == "text"
        assert (tmp_path / name).read_text(encoding="utf-8") == to_dot(build_graph(program))


def test_files_are_refused_with_located_errors(tmp_path: Path) -> None:
    program = spec_lang.load(ROOT / "examples" / "seed_dann.dann").program
    with pytest.raises(spec_lang.SpecError) as caught:
        write_graph(program, tmp_path / "g.jpg")
    assert caught.value.render().startswith(f"{tmp_path / 'g.jpg'}: error[E004]: unknown graph format '.jpg'")
    (tmp_path / "g.dot").write_text("precious")
    with pytest.raises(spec_lang.SpecError, match="already exists") as caught:
        write_graph(program, tmp_path / "g.dot")
    assert caught.value.diagnostics[0].code == "E002"
    assert (tmp_path / "g.dot").read_text() == "precious"
    write_graph(program, tmp_path / "g.dot", force=True)
    assert (tmp_path / "g.dot").read_text().startswith('digraph "seed_dann" {')


def test_with_neither_dot_nor_matplotlib_the_error_names_both(tmp_path: Path, monkeypatch) -> None:
    program = spec_lang.load(ROOT / "examples" / "seed_dann.dann").program
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    for renderer, wanted in [("auto", "Graphviz's dot or matplotlib"), ("dot", "Graphviz's dot")]:
        with pytest.raises(spec_lang.SpecError) as caught:
            write_graph(program, tmp_path / "g.png", renderer=renderer)
        diagnostic = caught.value.diagnostics[0]
        assert diagnostic.code == "E005" and diagnostic.message == f"drawing a .png file needs {wanted}, which is " \
            "not installed"
        assert "apt-get install graphviz" in (diagnostic.hint or "")
    assert write_graph(program, tmp_path / "g.dot") == "text"  # DOT text needs neither
    assert not (tmp_path / "g.png").exists()


def test_a_failing_dot_is_reported(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: something broke' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    program = spec_lang.load(ROOT / "examples" / "seed_dann.dann").program
    with pytest.raises(spec_lang.SpecError) as caught:
        write_graph(program, tmp_path / "g.png", renderer="dot")
    assert caught.value.diagnostics[0].message == "cannot draw it: Graphviz's dot failed: Error: something broke"
    assert not (tmp_path / "g.png").exists()
