"""`specc data moons|digits`: write a built-in data set to a `.npz` or `.csv` file."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from spec_lang.cli.arrays import write_arrays
from spec_lang.cli.options import seed
from spec_lang.diagnostics import file_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The generator, the output file and the generator's settings."""
    parser.add_argument(
        "generator",
        choices=["moons", "digits"],
        help="moons: the DANN paper's two-moons toy; digits: scikit-learn's digits as 3x28x28 grey source images and "
        "colour-blended target images, like MNIST to MNIST-M (needs scikit-learn)",
    )
    parser.add_argument("-o", "--output", help="a .npz or .csv file (default moons.npz or digits.npz)")
    parser.add_argument("--samples", type=int, default=150, help="moons: points per domain (default 150)")
    parser.add_argument("--noise", type=float, default=0.05, help="moons: the noise's deviation (default 0.05)")
    parser.add_argument("--angle", type=float, default=35.0, help="moons: the target's rotation, degrees (default 35)")
    parser.add_argument("--seed", type=seed, default=0, help="digits: the seed of the target's colours (default 0)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    """Write the data set and print the shapes of its arrays."""
    from spec_lang.data import two_moons

    if args.samples < 2 or not 0 <= args.noise < math.inf or not math.isfinite(args.angle):
        raise file_error(
            None,
            "E802",
            "--samples is at least 2, --noise a finite number of at least 0 and --angle a finite number",
            "the DANN paper uses --samples 150 --noise 0.05 --angle 35",
        )
    if args.generator == "digits":
        from spec_lang.data import digits_shift

        try:
            data = digits_shift(args.seed)
        except ImportError as error:
            raise file_error(None, "E005", str(error), "install it, or use your own data") from None
    else:
        data = two_moons(args.samples, args.noise, args.angle)
    output = Path(args.output or f"{args.generator}.npz")
    write_arrays(output, data, args.force)
    shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in data.items())
    print(f"wrote {output}: {shapes} (xs, ys: labelled source; xt: target; yt: target labels, for evaluation only)")
    return 0
