"""`specc data`, `train`, `eval` and `predict`: files in and out, exit statuses, and a run stopped by SIGINT that
resumes to the same numbers as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spec_lang.cli.main import main
from spec_lang.data import load_arrays, two_moons
from spec_lang.runtime.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "seed_dann.dann")
RUN = ["train", SPEC, "--epochs", "30", "--batch-size", "1", "--seed", "9"]  # 4500 steps, about a second


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with the moons data and one finished run (checkpoint a.npz, log a.jsonl, plot a.png)."""
    folder = tmp_path_factory.mktemp("cli")
    assert main(["data", "moons", "-o", str(folder / "moons.npz")]) == 0
    assert main([*RUN, "--source", str(folder / "moons.npz"), "--log", str(folder / "a.jsonl"),
                 "--checkpoint", str(folder / "a.npz"), "--plot", str(folder / "a.png")]) == 0
    return folder


def test_data_moons_writes_the_papers_toy(work, tmp_path, capsys) -> None:
    written = load_arrays(work / "moons.npz")
    expected = two_moons()
    assert written.keys() == expected.keys()
    assert all(np.array_equal(written[n], expected[n]) for n in expected)
    assert main(["data", "moons", "-o", str(work / "moons.npz")]) == 1
    assert "E002" in capsys.readouterr().err
    assert main(["data", "moons", "-o", str(tmp_path / "moons.csv"), "--samples", "20", "--angle", "50"]) == 0
    csv = load_arrays(tmp_path / "moons.csv")
    np.testing.assert_allclose(csv["xt"], two_moons(20, 0.05, 50)["xt"], rtol=0, atol=0)


@pytest.mark.parametrize(
    "setting", [["--samples", "1"], ["--noise", "-0.1"], ["--noise", "nan"], ["--noise", "inf"], ["--angle", "nan"]]
)
def test_data_moons_refuses_settings_that_make_no_data(setting: list[str], tmp_path, capsys) -> None:
    assert main(["data", "moons", "-o", str(tmp_path / "m.npz"), *setting]) == 1
    assert "error[E802]: --samples is at least 2, --noise a finite number" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_train_logs_one_record_per_epoch_and_a_final_one(work) -> None:
    records = [json.loads(line) for line in (work / "a.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records[:-1]] == list(range(1, 31)) and records[-1]["final"] is True
    assert records[-1]["step"] == 4500 and records[-1]["status"] == "completed"
    assert records[-1]["label_loss"] < records[0]["label_loss"] and records[-1]["source_accuracy"] > 0.8
    saved = read_checkpoint(work / "a.npz")
    assert saved.meta["step"] == 4500 and saved.meta["history"] == records[:-1]


def test_train_plots_the_run(work, tmp_path, capsys) -> None:
    from matplotlib.image import imread

    image = imread(work / "a.png")
    colours = np.unique(image.reshape(-1, image.shape[2]), axis=0)
    assert image.shape[0] > 300 and image.shape[1] > 600 and len(colours) > 20  # a drawing, not a blank
    common = ["train", SPEC, "--source", str(work / "moons.npz"), "--steps", "2", "--checkpoint", str(tmp_path / "b")]
    assert main([*common, "--plot", str(work / "a.png")]) == 1  # refused before training: nothing written
    assert "a.png: error[E002]" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_train_refuses_to_overwrite_and_reports_data_errors(work, tmp_path, capsys) -> None:
    common = ["train", SPEC, "--source", str(work / "moons.npz"), "--steps", "2"]
    assert main([*common, "--checkpoint", str(work / "a.npz")]) == 1
    assert "a.npz: error[E002]: the file already exists" in capsys.readouterr().err
    assert main([*common, "--checkpoint", str(tmp_path / "b.npz"), "--log", str(work / "a.jsonl")]) == 1
    assert "a.jsonl: error[E002]: the file already exists" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", xs=np.zeros((5, 3)), ys=np.zeros(5), xt=np.zeros((5, 2)))
    assert main(["train", SPEC, "--source", str(tmp_path / "bad.npz"), "--checkpoint", str(tmp_path / "c.npz")]) == 1
    err = capsys.readouterr().err
    assert "error[E801]: input 'xs' expects shape [n, 2], but 'xs' in" in err and "has shape [5, 3]" in err
    assert "Traceback" not in err and not (tmp_path / "c.npz").exists()


@pytest.mark.parametrize("arguments", [
    ["train", SPEC],  # no --source
    ["train", SPEC, "--source", "d.npz", "--epochs", "2", "--steps", "3"],
    ["train", SPEC, "--source", "d.npz", "--mode", "theano"],
    ["predict", SPEC, "--checkpoint", "c.npz", "--data", "d.npz", "-o", "p.npz"],  # no --head
])
def test_usage_errors_exit_2(arguments) -> None:
    with pytest.raises(SystemExit) as stop:
        main(arguments)
    assert stop.value.code == 2


def test_eval_prints_the_metrics_of_the_checkpoint(work, capsys) -> None:
    capsys.readouterr()
    assert main(["eval", SPEC, "--checkpoint", str(work / "a.npz"), "--data", str(work / "moons.npz"), "--json",
                 "--mode", "fast_compile"]) == 0
    values = json.loads(capsys.readouterr().out)
    final = json.loads((work / "a.jsonl").read_text().splitlines()[-1])
    assert values == pytest.approx({k: final[k] for k in values}, rel=1e-9)
    assert {"source_accuracy", "target_accuracy", "domain_accuracy", "proxy_a_distance", "objective"} <= set(values)
    assert main(["eval", SPEC, "--set", "hp_lambda=0.3", "--checkpoint", str(work / "a.npz"),
                 "--data", str(work / "moons.npz")]) == 1
    assert "error[E804]" in capsys.readouterr().err


def test_predict_writes_a_heads_output(work, tmp_path, capsys) -> None:
    out = tmp_path / "p.npz"
    base = ["predict", SPEC, "--checkpoint", str(work / "a.npz"), "--data", str(work / "moons.npz"),
            "--mode", "fast_compile"]
    assert main([*base, "--head", "label_probabilities", "-o", str(out)]) == 0
    probabilities = np.load(out)["label_probabilities"]
    assert probabilities.shape == (150, 8)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1)
    final = json.loads((work / "a.jsonl").read_text().splitlines()[-1])
    data = two_moons()
    assert np.mean(probabilities.argmax(axis=1) == data["ys"]) == pytest.approx(final["source_accuracy"])
    assert main([*base, "--head", "label_probabilities", "-o", str(out)]) == 1
    assert "p.npz: error[E002]: the file already exists" in capsys.readouterr().err
    csv = tmp_path / "t.csv"
    assert main([*base, "--head", "label_probabilities", "--map", "xs=xt", "-o", str(csv)]) == 0
    target = load_arrays(csv)["label_probabilities"]
    assert np.mean(target.argmax(axis=1) == data["yt"]) == pytest.approx(final["target_accuracy"])
    assert main([*base, "--head", "label_probabilites", "-o", str(tmp_path / "q.npz")]) == 1
    assert "did you mean 'label_probabilities'?" in capsys.readouterr().err


def test_sigint_writes_a_checkpoint_and_resume_ends_like_an_uninterrupted_run(work, tmp_path) -> None:
    stopped = [*RUN, "--source", str(work / "moons.npz"), "--log", str(tmp_path / "b.jsonl"),
               "--checkpoint", str(tmp_path / "b.npz")]
    process = subprocess.Popen([sys.executable, "-m", "spec_lang.cli.main", *stopped], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    for line in process.stderr:  # not a terminal: a plain line per epoch
        lines.append(line)
        if line.startswith("epoch 1/30 step 150/4500"):
            process.send_signal(signal.SIGINT)
            break
    err = "".join(lines) + process.stderr.read()
    assert process.wait(timeout=120) == 130, err
    assert "SIGINT received: stopped after step" in err and "Traceback" not in err
    saved = read_checkpoint(tmp_path / "b.npz")
    assert 150 <= saved.meta["step"] < 4500
    assert json.loads((tmp_path / "b.jsonl").read_text().splitlines()[-1])["status"] == "interrupted"

    assert main([*stopped, "--resume", "--quiet"]) == 0  # a new process, as after a reboot
    resumed, whole = read_checkpoint(tmp_path / "b.npz"), read_checkpoint(work / "a.npz")  # a: never interrupted
    names = [n for n in whole.arrays if n.startswith(("parameters/", "optimizer/"))]
    assert names and all(np.array_equal(resumed.arrays[n], whole.arrays[n]) for n in names)
    assert (tmp_path / "b.jsonl").read_text() == (work / "a.jsonl").read_text()
