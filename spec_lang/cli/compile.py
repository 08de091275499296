"""`specc compile FILE`: check, lower and compile a spec and print a summary, or print (or write) the checked IR,
the JSON form or a standalone PyTensor (or Theano) module with `--emit`."""

from __future__ import annotations

import argparse
import sys

from spec_lang.cli.options import (
    MODES,
    add_backend_options,
    add_spec_options,
    compile_spec,
    load_spec,
    print_warnings,
    write_output,
)
from spec_lang.diagnostics import shown_path
from spec_lang.reports.summary import listing, summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec options, `--emit`, the backend options and `-o`/`--force` for `--emit`."""
    add_spec_options(parser)
    parser.add_argument(
        "--emit",
        choices=["ir", "json", "python", "theano"],
        help="print the checked IR, the JSON form, or a standalone PyTensor (or Theano 1.0.5) module instead",
    )
    add_backend_options(parser)
    parser.add_argument("-o", "--output", help="with --emit: write to this file instead of standard output")
    parser.add_argument("--force", action="store_true", help="with -o: replace an existing file")


def run(args: argparse.Namespace) -> int:
    """Print the summary of the compiled spec, or the `--emit` text (to standard output or `-o`)."""
    spec = load_spec(args)
    print_warnings(spec)
    if args.emit:
        if args.emit == "ir":
            text = listing(spec.program)
        elif args.emit == "json":
            from spec_lang.syntax.jsonio import dumps_json

            text = dumps_json(spec.model)
        elif args.emit == "theano":
            from spec_lang.lowering.theano.target import emit_theano

            text = emit_theano(spec.program, args.file)
        else:
            from spec_lang.lowering.python.emitter import emit_python

            text = emit_python(spec.program, args.file)
        if args.output:
            write_output(args.output, text, args.force, reads=[args.file])
        else:
            sys.stdout.write(text)
        return 0
    model = compile_spec(spec, args)
    sys.stdout.write(summary(spec.program, shown_path(args.file), model.compile_seconds, MODES[args.mode]))
    if args.mode == "jax":
        print("(built the graphs; XLA compiles each function at its first call for each batch size)")
    return 0
