"""No lost work: every output path is checked before any compiling or training, outputs never name each other or
the files a command reads, a resumed run never replaces a file that is not its own, and rewriting a file keeps its
permissions and writes through symbolic links (issue 12, item 1)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from spec_lang.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "seed_dann.dann")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outputs") / "moons.npz"
    assert main(["data", "moons", "-o", str(path)]) == 0
    return path


def _train(data: Path, *options: str) -> list[str]:
    return ["train", SPEC, "--steps", "3", "--source", str(data), *options]


@pytest.mark.parametrize(
    ("option", "where", "message"),
    [
        ("--checkpoint", "missing/run.npz", "cannot write it: the folder {tmp}/missing does not exist"),
        ("--checkpoint", "", "cannot write it: it is a folder"),
        ("--log", "missing/run.jsonl", "cannot write it: the folder {tmp}/missing does not exist"),
        ("--plot", "missing/run.png", "cannot write it: the folder {tmp}/missing does not exist"),
    ],
)
def test_an_output_that_cannot_be_written_fails_before_compiling(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, where: str, message: str
) -> None:
    target = tmp_path / where if where else tmp_path
    extra = ["--checkpoint", str(tmp_path / "c.npz")] if option != "--checkpoint" else []
    assert main(_train(data, option, str(target), *extra)) == 1
    err = capsys.readouterr().err
    assert "error[E004]" in err and message.format(tmp=tmp_path) in err and "Traceback" not in err
    assert not (tmp_path / "c.npz").exists()  # nothing ran


def _unwritable_folder() -> Path | None:
    """A folder nobody may create files in, root included (Linux's /sys; root ignores permission bits)."""
    folder = Path("/sys")
    try:
        handle, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        return folder
    os.close(handle)
    os.unlink(probe)
    return None


@pytest.mark.skipif(_unwritable_folder() is None, reason="no folder here refuses new files to this user")
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["train", SPEC, "--steps", "3", "--source", "DATA", "--checkpoint", "FOLDER/run.npz"], "is not writable"),
        (
            ["train", SPEC, "--steps", "3", "--source", "DATA", "--checkpoint", "TMP/c.npz", "--log", "FOLDER/a.jsonl"],
            "is not writable",
        ),
        (["compile", SPEC, "--emit", "python", "-o", "FOLDER/m.py"], "is not writable"),
        (["data", "moons", "-o", "FOLDER/moons.npz"], "is not writable"),
        (["reproduce", "moons", "--seeds", "1", "-o", "FOLDER/moons"], "cannot create the folder"),
        (["reproduce", "digits", "--seeds", "1", "-o", "FOLDER/digits"], "cannot create the folder"),
    ],
    ids=["checkpoint", "log", "compile", "data", "reproduce-moons", "reproduce-digits"],
)
def test_a_folder_that_refuses_new_files_fails_before_compiling(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], message: str
) -> None:
    """Tried by creating a file, not by its permission bits: for root those allow everything, and the lock beside
    the checkpoint then failed with a traceback (and `reproduce` with one after all its training)."""
    folder = str(_unwritable_folder())
    args = [a.replace("DATA", str(data)).replace("FOLDER", folder).replace("TMP", str(tmp_path)) for a in command]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "error[E004]: cannot" in err and message in err and folder in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_outputs_may_not_name_each_other_or_an_input(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = str(tmp_path / "run.npz")
    assert main(_train(data, "--checkpoint", same, "--log", same)) == 1
    assert "--log names the same file as --checkpoint" in capsys.readouterr().err
    before = data.read_bytes()
    assert main(_train(data, "--checkpoint", str(tmp_path / "c.npz"), "--log", str(data), "--force")) == 1
    assert "--log names a file this command reads" in capsys.readouterr().err
    assert data.read_bytes() == before


def test_resuming_never_replaces_a_file_that_is_not_its_own(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = str(tmp_path / "c.npz")
    assert main(_train(data, "--checkpoint", checkpoint)) == 0
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("my notes\n")
    assert main(_train(data, "--checkpoint", checkpoint, "--resume", "--log", str(unrelated))) == 1
    assert "not a training log" in capsys.readouterr().err and unrelated.read_text() == "my notes\n"
    assert main(_train(data, "--checkpoint", checkpoint, "--resume", "--plot", str(unrelated))) == 1
    assert "error[E002]" in capsys.readouterr().err and unrelated.read_text() == "my notes\n"
    log = tmp_path / "run.jsonl"
    assert main(_train(data, "--checkpoint", str(tmp_path / "d.npz"), "--log", str(log))) == 0
    assert main(_train(data, "--checkpoint", str(tmp_path / "d.npz"), "--log", str(log), "--resume")) == 0


def test_prediction_and_emitted_files_are_checked_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", SPEC, "--emit", "python", "-o", str(tmp_path / "no" / "m.py")]) == 1
    assert "cannot write it: the folder" in capsys.readouterr().err
    assert main(["data", "moons", "-o", str(tmp_path)]) == 1
    assert "cannot write it: it is a folder" in capsys.readouterr().err


def test_fmt_write_keeps_the_mode_and_writes_through_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.dann"
    real.write_text((ROOT / "examples" / "seed_dann.dann").read_text().replace("stack label {", "stack   label {"))
    os.chmod(real, 0o640)
    link = tmp_path / "link.dann"
    link.symlink_to(real)
    assert main(["fmt", "--write", str(link)]) == 0
    assert link.is_symlink() and "stack label {" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_a_second_run_on_one_checkpoint_is_refused_and_orphans_are_cleared(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl

    checkpoint, log = tmp_path / "c.npz", tmp_path / "[run].log"
    orphans = [tmp_path / ".c.npz.killed.tmp", tmp_path / ".[run].log.killed.tmp"]  # what killed writers leave
    for orphan in orphans:
        orphan.write_bytes(b"half a file")
    outputs = ("--checkpoint", str(checkpoint), "--log", str(log))
    with open(tmp_path / ".c.npz.lock", "a") as held:  # another run, holding the checkpoint
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(_train(data, *outputs)) == 1
        assert "error[E807]: another run is writing this checkpoint" in capsys.readouterr().err
        assert not checkpoint.exists() and all(orphan.exists() for orphan in orphans)
    assert main(_train(data, *outputs)) == 0
    assert checkpoint.exists() and not any(orphan.exists() for orphan in orphans)


def test_a_full_disk_is_a_diagnostic_and_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import spec_lang
    from spec_lang.files import write_atomic

    target = tmp_path / "c.npz"
    target.write_bytes(b"the old checkpoint")

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(spec_lang.SpecError, match="cannot write it: No space left on device"):
        write_atomic(target, b"the new one")
    assert target.read_bytes() == b"the old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left


def test_evaluating_a_diverged_model_says_so_and_exits_1(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    import spec_lang
    from spec_lang.runtime.checkpoint import write_checkpoint

    model = spec_lang.load(SPEC).compile("FAST_COMPILE")
    model.set_parameters({name: np.full_like(value, np.nan) for name, value in model.parameters.items()})
    checkpoint = tmp_path / "diverged.npz"
    write_checkpoint(checkpoint, model, {})
    assert main(["eval", SPEC, "--checkpoint", str(checkpoint), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert "error[E808]: the model's outputs are not finite:" in err and "Traceback" not in err


@pytest.mark.parametrize("emit", ["python", "theano", "json"])
def test_compile_never_writes_over_its_own_spec_even_with_force(
    emit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "seed_dann.dann"
    text = (ROOT / "examples" / "seed_dann.dann").read_text(encoding="utf-8")
    spec.write_text(text, encoding="utf-8")
    assert main(["compile", str(spec), "--emit", emit, "-o", str(spec), "--force"]) == 1
    assert "error[E004]: -o names a file this command reads" in capsys.readouterr().err
    assert spec.read_text(encoding="utf-8") == text
