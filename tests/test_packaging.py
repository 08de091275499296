"""A non-editable install finds the grammar and the JSON Schema; the README and CI run the same tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_an_installed_wheel_carries_and_finds_the_grammar(tmp_path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("spec_lang-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "spec_lang/grammar/dann.lark" in names and "spec_lang/syntax/schema/dann.schema.json" in names
    assert {"spec_lang/examples/moons_nn.dann", "spec_lang/examples/moons_dann.dann"} <= set(names)  # reproduce
    assert {"spec_lang/examples/methods/adda.dann", "spec_lang/examples/methods/lib/networks.dann"} <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Run from an empty directory with only the unpacked wheel on the path: no source checkout to fall back on.
    script = ("import spec_lang, spec_lang.syntax.grammar as g; "
              f"spec = spec_lang.load({str(ROOT / 'examples' / 'seed_dann.dann')!r}); "
              "print(g.grammar_path(), spec.program.name)")
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {script}"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{site / 'spec_lang' / 'grammar' / 'dann.lark'} seed_dann"


def test_ci_runs_the_readme_test_command() -> None:
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command in (ROOT / "README.md").read_text()
    assert (ROOT / "grammar" / "dann.lark").is_file() and not (ROOT / "spec_lang" / "grammar").exists()


def test_the_readme_python_examples_run(tmp_path, monkeypatch) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)  # the examples save files; keep them out of the repository
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "params.npz").is_file()
