"""`specc reproduce moons|digits`: reproduce the DANN paper's two-moons toy with the bundled examples
(`spec_lang.experiments.moons`), or compare every method of `examples/methods/` on the digits shift
(`spec_lang.experiments.digits`)."""

from __future__ import annotations

import argparse
import sys
import time

from spec_lang.cli.options import MODES, positive
from spec_lang.experiments.digits import DIGITS_EPOCHS, DIGITS_SEEDS, method_specs, reproduce_digits
from spec_lang.experiments.moons import MOONS_EPOCHS, reproduce_moons

DEFAULTS = {"moons": (5, MOONS_EPOCHS, "numba"), "digits": (DIGITS_SEEDS, DIGITS_EPOCHS, "fast_compile")}


def _methods(text: str) -> list[str]:
    """`--methods dann,mcd`: names of files in examples/methods/; another name is a usage error (exit 2)."""
    names = [name.strip() for name in text.split(",")]
    try:
        method_specs(names)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The experiment, the number of seeds and epochs, the methods (digits), the mode, the output folder and
    `--force`."""
    parser.add_argument(
        "experiment",
        choices=list(DEFAULTS),
        help="moons: the DANN paper's two-moons toy, NN against DANN over several seeds; digits: every method of "
        "examples/methods/ on the digits shift (specc data digits)",
    )
    parser.add_argument(
        "--seeds", type=positive, help=f"runs per model, seeds 0, 1, … (default 5 for moons, {DIGITS_SEEDS} for digits)"
    )
    parser.add_argument(
        "--epochs",
        type=positive,
        help=f"epochs per run (default {MOONS_EPOCHS} for moons, the authors'; {DIGITS_EPOCHS} for digits)",
    )
    parser.add_argument(
        "--methods",
        type=_methods,
        metavar="A,B",
        help="digits only: the methods to run, by file name in examples/methods/ (default: all)",
    )
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        help="PyTensor backend (default numba for moons, fast_compile for digits: its many small models compile "
        "in a second each)",
    )
    parser.add_argument("-o", "--out", help="folder for the table (JSON) and figures (default: the experiment's name)")
    parser.add_argument("--force", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    """Print a line per run to standard error, then the table; an output file that exists (without --force) is an
    error."""
    started = time.perf_counter()
    seeds, epochs, mode = DEFAULTS[args.experiment]
    options = {
        "epochs": args.epochs or epochs,
        "mode": MODES[args.mode or mode],
        "force": args.force,
        "report": lambda line: print(line, file=sys.stderr),
    }
    out = args.out or args.experiment
    if args.experiment == "digits":
        result = reproduce_digits(args.seeds or seeds, out, methods=args.methods, **options)
    elif args.methods:
        print("specc reproduce: error: --methods is for digits; moons runs NN and DANN", file=sys.stderr)
        return 2
    else:
        result = reproduce_moons(args.seeds or seeds, out, **options)
    print(result.table())
    print(f"\nwrote {', '.join(str(path) for path in result.files)} in {time.perf_counter() - started:.0f} s")
    return 0
