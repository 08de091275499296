"""`specc fmt FILE…`: print specs in canonical form, check that they are (`--check`) or rewrite them (`--write`),
breaking lines longer than `--line-length`; imports no PyTensor."""

from __future__ import annotations

import argparse
import sys

from spec_lang.api import read_source
from spec_lang.cli.options import positive
from spec_lang.diagnostics import file_error, shown_path
from spec_lang.files import write_atomic
from spec_lang.syntax.printer import LINE_LENGTH, format_source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The files, `--check`, `--write` and `--line-length`."""
    parser.add_argument("files", nargs="+", metavar="file")
    parser.add_argument("--check", action="store_true", help="print nothing; exit 1 if a file is not canonical")
    parser.add_argument("--write", action="store_true", help="rewrite files in place")
    parser.add_argument(
        "--line-length",
        type=positive,
        default=LINE_LENGTH,
        metavar="N",
        help=f"break statements longer than N characters, trailing comments aside (default {LINE_LENGTH})",
    )


def run(args: argparse.Namespace) -> int:
    """Format each file in turn; with `--check`, exit 1 if one is not canonical. A JSON spec is an error."""
    status = 0
    for name in args.files:
        source = read_source(name)
        if name.endswith(".json"):
            raise file_error(
                None,
                "E003",
                f"{shown_path(name)} is JSON; fmt formats .dann text",
                "use `specc compile FILE --emit json` for canonical JSON",
            )
        formatted = format_source(source.text, name, args.line_length)
        if not args.check and not args.write:
            sys.stdout.write(formatted)
        elif formatted != source.text and args.check:
            print(f"would reformat {shown_path(name)}", file=sys.stderr)
            status = 1
        elif formatted != source.text:
            write_atomic(name, formatted)
            print(f"reformatted {shown_path(name)}", file=sys.stderr)
    return status
