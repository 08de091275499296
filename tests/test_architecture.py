"""The shape of the package: stages as packages whose imports flow one way, a front end free of PyTensor, and short
modules and classes. These tests read the sources (every import, at module level, inside functions and under
TYPE_CHECKING alike) and fail on a backward import.

The layers, lowest first; a module may import from its own package and from lower layers, never from a higher one
or from a sibling in its own layer.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "spec_lang"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("diagnostics",),
    ("files", "reading"),
    ("syntax",),
    ("program",),
    ("library",),
    ("semantics",),
    ("lowering",),
    ("runtime", "data"),
    ("training", "reports"),
    ("model",),
    ("api", "builder"),
    ("__init__",),
    ("experiments",),
    ("cli",),
)
FRONT_END = ("diagnostics", "files", "syntax", "program", "library", "semantics")  # what `specc check` runs
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300


def _unit(module: str) -> str:
    """The package (or top-level module) of `spec_lang` a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _rank(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a `spec_lang` module in a file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("spec_lang")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spec_lang"):
            if node.module == "spec_lang":  # `from spec_lang import program` names a package; `__version__` does not
                found += [
                    (node.lineno, f"spec_lang.{alias.name}" if _is_module(alias.name) else "spec_lang")
                    for alias in node.names
                ]
            else:
                found.append((node.lineno, node.module))
    return found


def _is_module(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_of_the_package_has_a_layer() -> None:
    units = {_unit(_module_name(path)) for path in SOURCES}
    assert units == {unit for layer in LAYERS for unit in layer}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_one_way(path: Path) -> None:
    unit = _unit(_module_name(path))
    backward = []
    for line, imported in _imports(path):
        target = _unit(imported)
        if target != unit and _rank(target) >= _rank(unit):
            backward.append(f"{path.relative_to(ROOT)}:{line} imports {imported} ({target} is not below {unit})")
    assert not backward, "\n".join(backward)


def test_the_contract_catches_a_backward_import(tmp_path: Path) -> None:
    source = tmp_path / "checker.py"
    source.write_text("def f():\n    from spec_lang.runtime.model import CompiledProgram\n")
    assert _imports(source) == [(2, "spec_lang.runtime.model")]
    assert _rank(_unit("spec_lang.runtime.model")) > _rank(_unit("spec_lang.semantics.checker"))


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if _unit(_module_name(p)) in FRONT_END], ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_front_end_never_imports_pytensor(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    modules += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    assert not [m for m in modules if m.split(".")[0] in ("pytensor", "numba", "jax")]


def test_loading_and_checking_a_spec_imports_no_pytensor() -> None:
    code = (
        "import sys, spec_lang\n"
        "spec = spec_lang.load('examples/digits_dann.dann')\n"
        "assert spec.program.stack('features').parameter_count > 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytensor', 'numba')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_classes_are_short(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has over {MAX_MODULE_LINES} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"class {node.name} in {path.name} has {length} lines"
