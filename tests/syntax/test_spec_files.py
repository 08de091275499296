"""Spec files that are not what a spec file should be: not regular files (a folder, a FIFO, a device), too large,
includes thousands of files deep, names that are not UTF-8, and old Mac (`\\r`) or Windows (`\\r\\n`) line ends.
Each is a located diagnostic, never a hang, a traceback or a crash while printing."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import spec_lang
from spec_lang.cli.main import main
from spec_lang.diagnostics import Source, SpecError, shown_path
from spec_lang.diagnostics.limits import MAX_INCLUDE_DEPTH, MAX_SOURCE_BYTES
from spec_lang.syntax import sources
from spec_lang.syntax.jsonio import loads_json
from spec_lang.syntax.printer import format_source
from spec_lang.syntax.sources import read_source

ROOT = Path(__file__).resolve().parents[2]
MODEL = (
    "model m()\n"
    "input x : float[batch, 2]\n"
    "input y : int[batch] < 2\n"
    "stack net { dense 2 softmax }\n"
    "loss xent = crossentropy(net(x), y)\n"
    "optimize sgd(lr = 0.1)\n"
)


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail a test that blocks (opening a FIFO waits for a writer) instead of hanging the run."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("blocked for 10 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _error(path: str | os.PathLike, **options: object) -> str:
    with pytest.raises(SpecError) as caught:
        spec_lang.load(path, **options)
    return caught.value.render()


# Files that are not regular files -----------------------------------------------------------------------------


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, no_hang: None) -> None:
    os.mkfifo(tmp_path / "m.dann")
    assert _error(tmp_path / "m.dann") == (
        f"{tmp_path}/m.dann: error[E001]: cannot read {tmp_path}/m.dann: it is a FIFO (named pipe), not a regular "
        "file\n  hint: give the path of a .dann or .json file"
    )


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.dann").mkdir()
    assert "cannot read" in _error(tmp_path / "m.dann")
    assert "it is a folder, not a regular file" in _error(tmp_path / "m.dann")


def test_a_device_is_refused_without_reading_it() -> None:
    """`/dev/zero` never ends: reading it all filled memory. A child process with 2 GiB of address space."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    script = "import sys; from spec_lang.cli.main import main; sys.exit(main(['check', '/dev/zero']))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, preexec_fn=limit
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "/dev/zero: error[E001]: cannot read /dev/zero: it is a device, not a regular file\n"
        "  hint: give the path of a .dann or .json file\n"
    )


def test_an_include_that_is_not_a_regular_file_is_located(tmp_path: Path, no_hang: None) -> None:
    (tmp_path / "folder.dann").mkdir()
    os.mkfifo(tmp_path / "fifo.dann")
    includes = 'include "folder.dann"\ninclude "fifo.dann"\ninclude "/dev/zero"\n'
    (tmp_path / "m.dann").write_text(MODEL.replace("\n", "\n" + includes, 1), encoding="utf-8")
    report = _error(tmp_path / "m.dann", allow_outside=True)
    assert report == (
        f'{tmp_path}/m.dann:2:1: error[E901]: cannot include "folder.dann": it is a folder, not a regular file\n'
        '  2 | include "folder.dann"\n'
        "    | ^^^^^^^^^^^^^^^^^^^^^\n"
        "  hint: include a .dann or .json file\n"
        f'{tmp_path}/m.dann:3:1: error[E901]: cannot include "fifo.dann": it is a FIFO (named pipe), not a regular '
        "file\n"
        '  3 | include "fifo.dann"\n'
        "    | ^^^^^^^^^^^^^^^^^^^\n"
        "  hint: include a .dann or .json file\n"
        f'{tmp_path}/m.dann:4:1: error[E901]: cannot include "/dev/zero": it is a device, not a regular file\n'
        '  4 | include "/dev/zero"\n'
        "    | ^^^^^^^^^^^^^^^^^^^\n"
        "  hint: include a .dann or .json file"
    )


# Files too large ----------------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.dann"
    with big.open("wb") as file:
        file.write(b"model m()\n")
        file.truncate(MAX_SOURCE_BYTES + 1)  # sparse: no more written
    assert _error(big) == (
        f"{big}: error[E001]: cannot read {big}: the file is 16.0 MiB; a spec file is at most 16.0 MiB\n"
        "  hint: a spec describes a model; keep data in data files (`specc train --data`)"
    )


def test_an_include_over_the_size_limit_is_refused_at_the_include(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "MAX_SOURCE_BYTES", 1000)
    (tmp_path / "lib.dann").write_text("model lib()\n" + "#" * 1000 + "\n", encoding="utf-8")
    (tmp_path / "m.dann").write_text(MODEL.replace("\n", '\ninclude "lib.dann"\n', 1), encoding="utf-8")
    assert _error(tmp_path / "m.dann") == (
        f'{tmp_path}/m.dann:2:1: error[E901]: cannot include "lib.dann": the file is 1013 bytes; a spec file is at '
        "most 1000 bytes\n"
        '  2 | include "lib.dann"\n'
        "    | ^^^^^^^^^^^^^^^^^^\n"
        "  hint: a spec describes a model; keep data in data files (`specc train --data`)"
    )


# Includes nested thousands deep -------------------------------------------------------------------------------


def _chain(folder: Path, length: int) -> Path:
    """m.dann, which includes c0.dann, which includes c1.dann, … c{length - 1}.dann, each with a template."""
    for k in range(length):
        include = f'include "c{k + 1}.dann"\n' if k + 1 < length else ""
        (folder / f"c{k}.dann").write_text(f"model c{k}()\n{include}template t{k}() {{ dense 2 tanh }}\n")
    (folder / "m.dann").write_text(MODEL.replace("\n", '\ninclude "c0.dann"\n', 1), encoding="utf-8")
    return folder / "m.dann"


def test_includes_thousands_deep_stop_at_the_limit(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        spec_lang.load(_chain(tmp_path, 3000))
    (diagnostic,) = caught.value.diagnostics
    last = MAX_INCLUDE_DEPTH - 1  # m.dann includes c0.dann at depth 1: c99.dann, at depth 100, is the last read
    assert caught.value.render() == (
        f'{tmp_path}/c{last}.dann:2:1: error[E901]: cannot include "c{last + 1}.dann": includes nest more than 100 '
        "files deep\n"
        f'  2 | include "c{last + 1}.dann"\n'
        "    | ^^^^^^^^^^^^^^^^^^^\n"
        f"  note: the chain of 102 files: {tmp_path}/m.dann → {tmp_path}/c0.dann → {tmp_path}/c1.dann → … → "
        f"{tmp_path}/c98.dann → {tmp_path}/c99.dann → {tmp_path}/c100.dann\n"
        "  hint: include the files a model needs from its own file instead of from each other"
    )


def test_includes_as_deep_as_the_limit_load(tmp_path: Path) -> None:
    spec = spec_lang.load(_chain(tmp_path, MAX_INCLUDE_DEPTH))
    assert spec.program is not None


def test_a_long_include_cycle_is_reported_once(tmp_path: Path) -> None:
    for k in range(50):
        (tmp_path / f"c{k}.dann").write_text(f'model c{k}()\ninclude "c{(k + 1) % 50}.dann"\n', encoding="utf-8")
    (tmp_path / "m.dann").write_text(MODEL.replace("\n", '\ninclude "c0.dann"\n', 1), encoding="utf-8")
    (diagnostic,) = _errors(tmp_path / "m.dann")
    assert diagnostic.code == "E902" and diagnostic.span.source.name == f"{tmp_path}/c49.dann"


def _errors(path: Path) -> tuple:
    with pytest.raises(SpecError) as caught:
        spec_lang.load(path)
    return caught.value.diagnostics


# File names that are not UTF-8 --------------------------------------------------------------------------------


@contextlib.contextmanager
def strict_output() -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    """Standard output and error that refuse what is not UTF-8, as Python's standard output is in a UTF-8 locale
    other than C (its standard error escapes what it cannot write)."""
    out, err = io.BytesIO(), io.BytesIO()
    streams = [io.TextIOWrapper(stream, encoding="utf-8", errors="strict", write_through=True) for stream in (out, err)]
    try:
        with contextlib.redirect_stdout(streams[0]), contextlib.redirect_stderr(streams[1]):
            yield out, err
    finally:
        for stream in streams:
            stream.detach()  # so that out and err stay open to be read


def _non_utf8_name(folder: Path, raw: bytes, text: str) -> str:
    """The name, as Python holds it (bytes that are not UTF-8 as lone surrogates), of a new file in `folder`."""
    path = os.fsencode(folder) + b"/" + raw
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError:
        pytest.skip("this file system takes only UTF-8 names")
    return os.fsdecode(path)


def test_shown_path_escapes_what_cannot_be_printed() -> None:
    assert shown_path(os.fsdecode(b"nu/\xff\xfe.dann")) == "nu/\\xff\\xfe.dann"
    assert shown_path("a\nb\x00.dann") == "a\\nb\\x00.dann"
    assert shown_path("\ud800é💥.dann") == "\\ud800é💥.dann"


def test_commands_print_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    good = _non_utf8_name(tmp_path, b"\xff\xfe.dann", MODEL.replace("model m()", "model m(  )"))
    shown = f"{tmp_path}/\\xff\\xfe.dann"
    with strict_output() as (out, err):
        assert main(["check", good]) == 0
        assert out.getvalue().decode() == f"{shown}: ok\n"
        assert main(["compile", good, "--emit", "json", "-o", good[:-5] + ".json"]) == 0
        assert out.getvalue().decode().endswith(f"wrote {shown[:-5]}.json\n")
        assert main(["fmt", "--check", good]) == 1
        assert main(["fmt", "--write", good]) == 0
        assert main(["fmt", good]) == 0
        assert err.getvalue().decode() == f"would reformat {shown}\nreformatted {shown}\n"


def test_diagnostics_print_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    bad = _non_utf8_name(tmp_path, b"\xfe\xff.dann", MODEL.replace("net(x)", "nett(x)"))
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/\xfa.dann")
    with strict_output() as (out, err):
        assert main(["check", bad]) == 1
        assert main(["check", missing]) == 1
    assert err.getvalue().decode() == (
        f"{tmp_path}/\\xfe\\xff.dann:5:26: error[E201]: unknown stack or function 'nett'\n"
        "  5 | loss xent = crossentropy(nett(x), y)\n"
        "    |                          ^^^^\n"
        "  hint: did you mean 'net'?\n"
        f"{tmp_path}/\\xfa.dann: error[E001]: cannot read {tmp_path}/\\xfa.dann: No such file or directory\n"
        "  hint: check the path\n"
    )


def test_the_console_script_prints_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    """The real standard streams, with Python's own handling: strict on standard output."""
    good = _non_utf8_name(tmp_path, b"\xff.dann", MODEL)
    specc = Path(sys.executable).parent / "specc"
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    result = subprocess.run([str(specc), "check", good], capture_output=True, env=environment, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{tmp_path}/\\xff.dann: ok\n".encode(), b"")


# Line ends ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["\r", "\r\n", "\n"], ids=["cr", "crlf", "lf"])
def test_every_line_end_ends_a_line(tmp_path: Path, end: str) -> None:
    path = tmp_path / "m.dann"
    path.write_bytes(MODEL.replace("net(x)", "nett(x)").replace("\n", end).encode())
    assert _error(path) == (
        f"{path}:5:26: error[E201]: unknown stack or function 'nett'\n"
        "  5 | loss xent = crossentropy(nett(x), y)\n"
        "    |                          ^^^^\n"
        "  hint: did you mean 'net'?"
    )


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_a_comment_ends_at_a_line_end(end: str) -> None:
    """`#` comments to the end of the line: with `\\r` lines, not to the end of the file."""
    text = MODEL.replace("\n", "  # a comment\n", 1).replace("\n", end)
    assert spec_lang.loads(text, "m.dann").model.inputs[0].span.line == 2


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_json_lines_end_alike(end: str) -> None:
    text = '{"version": 1,\n"model": "m",\n\n"seed": 1,\n"sede": 2}'.replace("\n", end)
    with pytest.raises(SpecError) as caught:
        loads_json(text, "m.json")
    assert caught.value.render().startswith("m.json:5:9: error[E120]: /sede: unknown key 'sede'\n  5 | \"sede\": 2}\n")


def test_a_byte_that_is_not_utf8_is_located_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "m.dann"
    path.write_bytes(b"model m()\r\rinput x\xff : float[batch, 2]\r")
    assert _error(path).startswith(f"{path}:3:8: error[E001]: cannot read {path}: byte 0xff is not UTF-8 text\n")


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_fmt_writes_newlines(tmp_path: Path, end: str, capsys) -> None:
    path = tmp_path / "m.dann"
    canonical = format_source(MODEL)
    path.write_bytes(canonical.replace("\n", end).encode())
    assert main(["fmt", "--check", str(path)]) == 1  # other line ends than `\n` are not canonical
    assert main(["fmt", "--write", str(path)]) == 0
    assert path.read_bytes() == canonical.encode()
    assert main(["fmt", "--check", str(path)]) == 0


def test_source_lines_split_at_every_line_end() -> None:
    source = Source("m.dann", "a\rb\r\nc\nd\fe")
    assert [source.line(n) for n in range(0, 6)] == ["", "a", "b", "c", "d\fe", ""]


def test_read_source_keeps_the_text_as_it_is(tmp_path: Path) -> None:
    """`specc fmt` compares the file's text with the canonical text: reading changes nothing but the BOM."""
    path = tmp_path / "m.dann"
    path.write_bytes(b"\xef\xbb\xbfmodel m()\r\n")
    assert read_source(path).text == "model m()\r\n"
