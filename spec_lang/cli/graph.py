"""`specc graph FILE [-o model.png|svg|dot]`: draw a spec's network, its reversal points marked; imports no
PyTensor."""

from __future__ import annotations

import argparse
import sys

from spec_lang.cli.options import add_spec_options, load_spec, print_warnings
from spec_lang.diagnostics import shown_path
from spec_lang.reports.graph import RENDERERS, build_graph, graph_format, to_dot, write_graph

DRAWN_BY = {
    "text": "",
    "dot": " (drawn by Graphviz's dot)",
    "matplotlib": " (drawn by matplotlib; for Graphviz's layout: apt-get install graphviz)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec options, `-o`, `--renderer` and `--force`."""
    add_spec_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the picture to FILE: .png or .svg (drawn by Graphviz's dot when installed, else by matplotlib), "
        "or .dot/.gv (the DOT text); default: print the DOT text",
    )
    parser.add_argument(
        "--renderer",
        choices=RENDERERS,
        default="auto",
        help="who draws a .png or .svg: dot (Graphviz), matplotlib, or auto (dot when installed; the default)",
    )
    parser.add_argument("--force", action="store_true", help="with -o: replace an existing file")


def run(args: argparse.Namespace) -> int:
    """Print the DOT text, or write the picture to `-o` and say who drew it."""
    if args.output:
        graph_format(args.output)  # an unknown suffix fails before the spec is read
    spec = load_spec(args)
    print_warnings(spec)
    if not args.output:
        sys.stdout.write(to_dot(build_graph(spec.program)))
        return 0
    drawn = write_graph(spec.program, args.output, renderer=args.renderer, force=args.force)
    print(f"wrote {shown_path(args.output)}{DRAWN_BY[drawn]}")
    return 0
