"""`specc sweep` on a real local Ray instance (two workers, started once for the module): a sweep file and a grid
run in two parts with --max-trials and --resume, with ASHA, the table with the oracle column; the clear error
without Ray."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from spec_lang.cli.main import main

ROOT = Path(__file__).resolve().parent.parent.parent
SPEC = str(ROOT / "examples" / "moons_dann.dann")


def test_a_sweep_file_and_a_grid_run_in_two_parts(local_ray, moons: Path, tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep.json"
    sweep.write_text(
        json.dumps(
            {
                "parameters": {"lambda_adapt": [6]},
                "seeds": [0],
                "epochs": 3,
                "batch_size": 50,
                "source": "data.npz",
                "select_by": "objective",
            }
        )
    )
    (tmp_path / "data.npz").symlink_to(moons)  # the sweep file's paths are relative to its folder
    out = tmp_path / "out"
    command = ["sweep", SPEC, "--sweep", str(sweep), "--grid", "lr=0.05,0.2", "--out", str(out), "--asha"]
    assert main([*command, "--mode", "fast_compile", "--max-trials", "1", "--workers", "2"]) == 0
    first = capsys.readouterr()
    assert "[1 done, 0 running, 0 failed of 2] trial 0 (lambda_adapt=6 lr=0.05, seed 0) completed" in first.err
    assert f"1 of 2 trials have ended; continue with: specc sweep --resume {out}" in first.err
    assert main(["sweep", "--resume", str(out), "--workers", "2"]) == 0
    second = capsys.readouterr()
    assert "1 of 2 trials to run" in second.err and "trial 0 " not in second.err
    lines = second.out.splitlines()
    assert lines[0].split() == "setting lambda_adapt lr seeds objective (selected by) target_accuracy (oracle)".split()
    assert lines[3].startswith("selected objective (lower is better): setting ") and "oracle" in lines[3]
    results = json.loads((out / "results.json").read_text())
    assert results["trials_ended"] == 2 and {t["status"] for t in results["trials"]} <= {"completed", "stopped"}
    assert results["select_by"] == {"name": "objective", "key": "objective", "higher_is_better": False}
    scored = [s for s in results["settings"] if "objective" in s["summary"]]
    best = min(scored, key=lambda s: s["summary"]["objective"]["mean"])
    assert results["selected"] == best["index"] and "Configuration for experiment" not in second.out
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_without_ray_the_sweep_names_the_extra(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    assert main(["sweep", SPEC, "--grid", "lr=0.1", "--source", "moons.npz"]) == 1
    error = capsys.readouterr().err
    assert "error[E005]: specc sweep needs Ray Tune" in error and "pip install 'spec-lang[sweep]'" in error


def test_resume_takes_the_plan_as_it_was(capsys) -> None:
    assert main(["sweep", "--resume", "somewhere", "--grid", "lr=0.1"]) == 1
    assert "error[E820]: --resume continues the sweep as planned: --grid does not go with it" in capsys.readouterr().err
