"""The `specc` command line: check, compile (with a summary or `--emit ir|json|python`) and fmt.

Exit status: 0 success, 1 a problem with the user's input (diagnostics printed), 2 bad command-line usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from . import __version__
from .diagnostics import Diagnostic, SpecError
from .spec import Spec, from_ir, parse_source, read_source

MODES = {"numba": "NUMBA", "c": "CVM", "fast_compile": "FAST_COMPILE", "jax": "JAX"}


def _overrides(pairs: list[str]) -> dict[str, object]:
    """`--set NAME=VALUE` pairs; values are JSON (numbers, true/false, lists)."""
    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            values[name.strip()] = json.loads(text)
        except ValueError:
            raise SpecError([Diagnostic("error", "E603", f"cannot read --set {pair}", None,
                                        "write NAME=VALUE with a number, true/false or a list, "
                                        "e.g. --set hidden=[32,32]")]) from None
    return values


def _load(args: argparse.Namespace) -> Spec:
    source = read_source(args.file)
    return from_ir(parse_source(source), source, allow_outside=args.allow_outside_includes, **_overrides(args.set))


def _print_warnings(spec: Spec) -> None:
    for warning in spec.warnings:
        print(warning.render(spec.source), file=sys.stderr)


def _write_new(path: Path, text: str, force: bool) -> None:
    """Write a file atomically; never replace an existing one unless `force`."""
    if path.exists() and not force:
        raise SpecError([Diagnostic("error", "E002", f"{path} already exists", None,
                                    "choose another path, or pass --force to replace it")])
    _write_atomic(path, text)


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cmd_check(args: argparse.Namespace) -> int:
    spec = _load(args)
    _print_warnings(spec)
    count = len(spec.warnings)
    print(f"{args.file}: ok" + (f" ({count} warning{'s' if count != 1 else ''})" if count else ""))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from .report import listing, summary

    spec = _load(args)
    _print_warnings(spec)
    if args.emit:
        if args.emit == "ir":
            text = listing(spec.program)
        elif args.emit == "json":
            from .jsonio import dumps_json

            text = dumps_json(spec.model)
        else:
            from .emit import emit_python

            text = emit_python(spec.program, args.file)
        if args.output:
            _write_new(Path(args.output), text, args.force)
            print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    model = spec.compile(MODES[args.mode])
    sys.stdout.write(summary(spec.program, args.file, model.compile_seconds, MODES[args.mode]))
    return 0


def cmd_fmt(args: argparse.Namespace) -> int:
    from .printer import format_source

    status = 0
    for name in args.files:
        source = read_source(name)
        if name.endswith(".json"):
            raise SpecError([Diagnostic("error", "E003", f"{name} is JSON; fmt formats .dann text", None,
                                        "use `specc compile FILE --emit json` for canonical JSON")])
        formatted = format_source(source.text, name)
        if not args.check and not args.write:
            sys.stdout.write(formatted)
        elif formatted != source.text and args.check:
            print(f"would reformat {name}", file=sys.stderr)
            status = 1
        elif formatted != source.text:
            _write_atomic(Path(name), formatted)
            print(f"reformatted {name}", file=sys.stderr)
    return status


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="specc", description="Compile .dann model specs for domain-adversarial "
                                                           "networks to PyTensor.")
    top.add_argument("--version", action="version", version=f"specc {__version__}")
    commands = top.add_subparsers(dest="command", required=True)

    def with_file(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("file", help="a .dann or .json model spec")
        sub.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="override a model parameter, e.g. --set hidden=[32,32] (repeatable)")
        sub.add_argument("--allow-outside-includes", action="store_true",
                         help="let `include` read files outside the including file's folder")
        return sub

    check = with_file("check", "check a spec and print its diagnostics")
    check.set_defaults(run=cmd_check)
    compile_ = with_file("compile", "check, lower and compile a spec; print a summary")
    compile_.add_argument("--emit", choices=["ir", "json", "python"],
                          help="print the checked IR, the JSON form, or a standalone PyTensor module instead")
    compile_.add_argument("--mode", choices=sorted(MODES), default="numba", help="PyTensor backend (default numba)")
    compile_.add_argument("-o", "--output", help="with --emit: write to this file instead of standard output")
    compile_.add_argument("--force", action="store_true", help="with -o: replace an existing file")
    compile_.set_defaults(run=cmd_compile)
    fmt = commands.add_parser("fmt", help="print specs in canonical form", description="print specs in canonical form")
    fmt.add_argument("files", nargs="+", metavar="file")
    fmt.add_argument("--check", action="store_true", help="print nothing; exit 1 if a file is not canonical")
    fmt.add_argument("--write", action="store_true", help="rewrite files in place")
    fmt.set_defaults(run=cmd_fmt)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except SpecError as error:
        print(error.render(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
