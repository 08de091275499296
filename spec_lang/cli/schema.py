"""`specc schema [-o FILE]`: print (or write) the JSON Schema that the JSON form of a spec is checked against."""

from __future__ import annotations

import argparse
import sys

from spec_lang.diagnostics import shown_path
from spec_lang.files import check_output, write_atomic
from spec_lang.syntax.jsonio import schema_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`-o` and `--force`."""
    parser.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of standard output")
    parser.add_argument("--force", action="store_true", help="with -o: replace an existing file")


def run(args: argparse.Namespace) -> int:
    """Print the schema, or write it to `-o`."""
    text = schema_text()
    if args.output:
        check_output(args.output, args.force)
        write_atomic(args.output, text)
        print(f"wrote {shown_path(args.output)}")
    else:
        sys.stdout.write(text)
    return 0
