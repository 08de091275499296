"""`specc check FILE`: check a spec and print its diagnostics; imports no PyTensor."""

from __future__ import annotations

import argparse

from spec_lang.cli.options import add_spec_options, load_spec, print_warnings
from spec_lang.diagnostics import shown_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec file and the options that change how it is read."""
    add_spec_options(parser)


def run(args: argparse.Namespace) -> int:
    """Print the warnings, then `FILE: ok` and their count."""
    spec = load_spec(args)
    print_warnings(spec)
    count = len(spec.warnings)
    print(f"{shown_path(args.file)}: ok" + (f" ({count} warning{'s' if count != 1 else ''})" if count else ""))
    return 0
