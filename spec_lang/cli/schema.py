"""`specc schema [-o FILE]`: print (or write) the JSON Schema that the JSON form of a spec is checked against."""

from __future__ import annotations

import argparse
import sys

from spec_lang.cli.options import write_output
from spec_lang.syntax.json_schema import schema_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`-o` and `--force`."""
    parser.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of standard output")
    parser.add_argument("--force", action="store_true", help="with -o: replace an existing file")


def run(args: argparse.Namespace) -> int:
    """Print the schema, or write it to `-o`."""
    text = schema_text()
    if args.output:
        write_output(args.output, text, args.force)
    else:
        sys.stdout.write(text)
    return 0
