"""`specc train FILE --source DATA`: train a spec; write checkpoints, a log and a plot. An interrupted run writes
its checkpoint and exits with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spec_lang.cli.options import (
    add_backend_options,
    add_role_options,
    add_spec_options,
    compile_spec,
    format_metrics,
    load_spec,
    print_warnings,
    roles,
)
from spec_lang.diagnostics import file_error
from spec_lang.files import check_distinct, check_output

MAX_SEED = 2**63 - 1  # numpy's generators take any whole number from 0; a seed past this is a slip, not a choice


def seed(text: str) -> int:
    """`--seed N`: a whole number from 0 to 2**63 - 1; anything else is a usage error (exit 2).

    >>> seed("42")
    42
    """
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"the seed must be a whole number from 0 to 2**63 - 1, got {text[:40]!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec options, the data, the length and batches of the run, its outputs, the backend and the roles."""
    add_spec_options(parser)
    parser.add_argument(
        "--source", required=True, metavar="FILE", help=".npz/.csv with the source inputs (by name, e.g. xs and ys)"
    )
    parser.add_argument("--target", metavar="FILE", help=".npz/.csv with the target inputs (default: the source file)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="passes over the source data (default 10)")
    length.add_argument("--steps", type=int, help="optimiser steps, instead of --epochs")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="source rows per step, paired with as many target rows (default 32)"
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seed of the batch order, 0 to 2**63 - 1 (default 0); the spec's `seed` draws the initial weights and "
        "dropout masks",
    )
    parser.add_argument("--log", metavar="FILE", help="a JSON-lines log: one record per epoch and a final record")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="plot the loss terms, accuracies, proxy A-distance, λ and learning rate per epoch (needs matplotlib)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="the checkpoint (.npz) written every --checkpoint-every "
        "steps, at the end and when interrupted (default "
        "MODEL.ckpt.npz, after the spec's file name)",
    )
    parser.add_argument("--checkpoint-every", type=int, metavar="N", help="also write the checkpoint every N steps")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    parser.add_argument("--force", action="store_true", help="start a new run over an existing checkpoint or log")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_backend_options(parser)
    add_role_options(parser)


def run(args: argparse.Namespace) -> int:
    """Train, then print where the checkpoint (and log) went and the final metrics; plot them with `--plot`.
    Every output file is checked before the spec is compiled."""
    import signal

    from spec_lang.reports.plots import plot_history, require_matplotlib
    from spec_lang.runtime.checkpoint import read_checkpoint
    from spec_lang.training import RUN_HINT, Interrupted

    spec = load_spec(args)
    print_warnings(spec)
    checkpoint = Path(args.checkpoint or f"{Path(args.file).stem}.ckpt.npz")
    check_distinct(
        {"--checkpoint": checkpoint, "--log": args.log, "--plot": args.plot}, [args.file, args.source, args.target]
    )
    if args.resume:
        read_checkpoint(checkpoint, spec.program)  # a damaged or foreign checkpoint fails before compiling
        for path in (checkpoint, args.log):
            if path is not None:
                check_output(path, True)
    else:
        for path in (checkpoint, args.log):
            if path is not None:
                check_output(path, args.force, RUN_HINT)
    if args.plot:  # the figure is drawn after training: find out now whether it can be
        check_output(args.plot, args.force or (args.resume and _is_png(args.plot)), RUN_HINT)
        try:
            require_matplotlib()
        except ImportError as error:
            raise file_error(None, "E005", str(error), "install it, or train without --plot") from None
    model = compile_spec(spec, args)
    try:
        history = model.fit(
            args.source,
            args.target,
            epochs=args.epochs,
            steps=args.steps,
            batch_size=args.batch_size,
            seed=args.seed,
            log=args.log,
            checkpoint=checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            overwrite=args.force,
            verbose=False if args.quiet else sys.stderr,
            **roles(args),
        )
    except Interrupted as stop:
        number = stop.signal_number or signal.SIGINT
        print(
            f"specc: {signal.Signals(number).name} received: stopped after step {stop.step} of {stop.total}; "
            f"checkpoint written to {checkpoint}; continue with the same command and --resume",
            file=sys.stderr,
        )
        return 128 + number
    final = history.final
    assert final is not None  # a run that returns (not interrupted) has its final record
    print(
        f"trained {final['step']} steps ({final['epoch']} epochs); checkpoint written to {checkpoint}"
        + (f"; log written to {args.log}" if args.log else "")
    )
    sys.stdout.write(format_metrics({k: v for k, v in final.items() if k not in ("final", "status")}))
    if args.plot:
        plot_history(
            history.records,
            args.plot,
            hyperparameters=spec.program.hypers,
            title=f"{spec.program.name} trained on {args.source}",
            force=True,
        )
        print(f"plotted the loss terms, accuracies, λ and learning rate in {args.plot}")
    return 0


def _is_png(path: str) -> bool:
    """Whether `path` holds a PNG image (a plot a resumed run may redraw), not some other file."""
    try:
        with open(path, "rb") as stream:
            return stream.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return True  # nothing there to lose
