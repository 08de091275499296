"""`specc sweep FILE --grid NAME=V1,V2 … --seeds 0,1,2 --source DATA`: train every setting of the swept parameters
once per seed on Ray Tune, aggregate over the seeds, select by a validator, print a table and write `results.json`,
`results.csv` and `results.png` into the sweep folder; `--resume SWEEP_DIR` continues an interrupted sweep."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from spec_lang.cli.datasets import add_validation_options
from spec_lang.cli.options import MODES, add_backend_options, overrides, positive
from spec_lang.diagnostics import file_error
from spec_lang.experiments.seeds import parse_seeds
from spec_lang.experiments.sweep_spec import SweepDefinition, parse_grid, read_sweep_file

DEFINING = (  # the options that define a sweep, which --resume takes from the plan
    "grid sweep set samples seeds epochs steps batch_size source target select_by out asha validator val val_fraction"
).split()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep (a spec and its swept parameters, from options or a sweep file), how it runs, and resuming."""
    parser.add_argument("file", nargs="?", help="a .dann or .json model spec (not with --resume)")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="sweep a model parameter over values (JSON each: lr=0.1,0.01, hidden=[32],[64]) or a distribution "
        "(lr='{\"loguniform\": [1e-4, 0.1]}', drawn --samples times); repeatable: every combination is a setting",
    )
    parser.add_argument(
        "--sweep",
        metavar="FILE.json",
        help="a sweep file: parameters (values or distributions), set, samples, seeds, epochs or steps, batch_size, "
        "source, target, val (paths relative to the file), val_fraction, select_by, validators; the options given "
        "here win",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="fix a model parameter in every trial"
    )
    parser.add_argument("--samples", type=positive, help="draws of the distributions (default 1)")
    parser.add_argument("--seeds", type=parse_seeds, metavar="LIST", help="the seeds of every setting (default 0)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive, help="passes over the source data per trial (default 10)")
    length.add_argument("--steps", type=positive, help="optimiser steps per trial, instead of --epochs")
    parser.add_argument("--batch-size", type=positive, help="source rows per step (default 32)")
    parser.add_argument("--source", action="append", metavar="FILE", help=".npz/.csv source data (repeatable)")
    parser.add_argument("--target", action="append", metavar="FILE", help=".npz/.csv target data (repeatable)")
    parser.add_argument(
        "--select-by",
        metavar="NAME",
        help="select the setting by this validator (default source_accuracy, on held-out source rows: --val, "
        "--val-fraction, else a tenth of the source) or record key (objective, a loss term); target_accuracy, the "
        "oracle, only when named here",
    )
    parser.add_argument("--out", metavar="DIR", help="the sweep folder (default sweeps/MODEL/N)")
    parser.add_argument("--resume", metavar="SWEEP_DIR", help="continue the sweep in SWEEP_DIR, as it was planned")
    parser.add_argument("--workers", type=positive, help="trials at once (default: every core; on a cluster, its CPUs)")
    parser.add_argument("--address", metavar="ADDR", help="attach to a running Ray cluster (e.g. auto, or ray://…)")
    parser.add_argument(
        "--max-trials", type=positive, metavar="N", help="run at most N trials now; continue with --resume"
    )
    parser.add_argument("--asha", action="store_true", help="stop poor trials early (ASHA, on the selector)")
    parser.add_argument("--quiet", action="store_true", help="print the table and errors only")
    add_validation_options(parser, fraction=True)  # --validator: more validators, their choices reported too
    add_backend_options(parser)


def run(args: argparse.Namespace) -> int:
    """Plan a new sweep (or read the plan of `--resume`), run the trials that have not ended, print the table and
    write the results."""
    from spec_lang.experiments.sweep_ray import require_ray
    from spec_lang.experiments.sweeps import SweepFolder, new_sweep, pending, run_sweep

    require_ray()  # before anything is planned or written
    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in DEFINING if getattr(args, name) not in (None, [], False)]
        if given or args.file:
            raise file_error(
                None,
                "E820",
                f"--resume continues the sweep as planned: {', '.join(given) or 'FILE'} does not go with it",
                "leave them out, or start a new sweep",
            )
        folder = SweepFolder(Path(args.resume))
        plan = folder.read_plan()
    else:
        folder, plan = new_sweep(_definition(args), args.out, mode=MODES[args.mode], no_opt=args.no_opt, asha=args.asha)
    say = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    todo = pending(folder, plan)
    if say:
        held = plan["val"] or (plan["val_fraction"] and f"{plan['val_fraction']:.0%} of the source rows")
        say(
            f"sweep {folder.path}: {len(plan['settings'])} settings × {len(plan['seeds'])} seeds, "
            f"{len(todo)} of {len(plan['trials'])} trials to run; selecting by "
            f"{', '.join(plan['selectors'])}" + (f" (held out for the validators: {held})" if held else "")
        )
    results = run_sweep(
        folder,
        plan,
        workers=args.workers or (None if args.address else os.cpu_count()),
        address=args.address,
        max_trials=args.max_trials,
        asha=plan["asha"],
        say=say,
    )
    sys.stdout.write(results.table())
    written = results.write(folder.path)
    if not args.quiet:
        print(f"wrote {', '.join(p.name for p in written)} to {folder.path}")
    if results.ended == len(results.trials):
        return 0
    print(
        f"{results.ended} of {len(results.trials)} trials have ended; continue with: specc sweep --resume "
        f"{folder.path}",
        file=sys.stderr,
    )
    ran = results.ended - (len(results.trials) - len(todo))
    return 130 if ran < len(todo[: args.max_trials]) else 0  # stopped by Ctrl-C before the trials it was to run


def _definition(args: argparse.Namespace) -> SweepDefinition:
    """The sweep of the options, over the sweep file's (`--sweep`), over the defaults."""
    if args.file is None:
        print("specc sweep: error: the following arguments are required: FILE (unless --resume)", file=sys.stderr)
        raise SystemExit(2)
    read: dict[str, Any] = read_sweep_file(args.sweep) if args.sweep else {}
    parameters = {**read.pop("parameters", {}), **parse_grid(args.grid)}
    fixed = {**read.pop("set", {}), **overrides(args.set)}
    given = {
        "seeds": args.seeds,
        "epochs": args.epochs,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "source": args.source,
        "target": args.target,
        "select_by": args.select_by,
        "samples": args.samples,
        "validators": args.validator,
        "val": args.val,
        "val_fraction": args.val_fraction,
    }
    if args.epochs or args.steps:
        read.pop("epochs", None), read.pop("steps", None)
    options = {**read, **{k: v for k, v in given.items() if v is not None}}
    if not parameters:
        raise file_error(None, "E820", "the sweep sweeps no parameter", "give --grid NAME=V1,V2, or a sweep file")
    return SweepDefinition(args.file, parameters, fixed, **options)
