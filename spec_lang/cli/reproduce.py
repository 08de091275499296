"""`specc reproduce moons`: reproduce the DANN paper's two-moons toy with the bundled examples
(`spec_lang.experiments.moons`)."""

from __future__ import annotations

import argparse
import sys
import time

from spec_lang.cli.options import positive
from spec_lang.experiments.moons import MOONS_EPOCHS, reproduce_moons


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The experiment, the number of seeds and epochs, the output folder and `--force`."""
    parser.add_argument(
        "experiment",
        choices=["moons"],
        help="moons: the DANN paper's two-moons toy, NN against DANN over several seeds",
    )
    parser.add_argument("--seeds", type=positive, default=5, help="runs per model, seeds 0, 1, … (default 5)")
    parser.add_argument(
        "--epochs", type=positive, default=MOONS_EPOCHS, help=f"epochs per run (default {MOONS_EPOCHS}, the authors')"
    )
    parser.add_argument("-o", "--out", default="moons", help="folder for the table (JSON) and figures")
    parser.add_argument("--force", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    """Print a line per run to standard error, then the table; an output file that exists (without --force) is an
    error."""
    started = time.perf_counter()
    result = reproduce_moons(
        args.seeds, args.out, epochs=args.epochs, force=args.force, report=lambda line: print(line, file=sys.stderr)
    )
    print(result.table())
    print(f"\nwrote {', '.join(str(path) for path in result.files)} in {time.perf_counter() - started:.0f} s")
    return 0
