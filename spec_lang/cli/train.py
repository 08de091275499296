"""`specc train FILE --source DATA`: train a spec; write checkpoints, a log and a plot. `--source` and `--target`
are repeatable: one file per labelled source (per target) of the spec, in the order of `spec_lang.cli.datasets`.
An interrupted run writes its checkpoint and exits with 128 + the signal's number (130 for Ctrl-C, 143 for
SIGTERM)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spec_lang.api import Spec
from spec_lang.cli.datasets import add_validation_options, data_plan, validation
from spec_lang.cli.options import (
    add_backend_options,
    add_data_options,
    add_role_options,
    add_spec_options,
    compile_spec,
    data_files,
    format_metrics,
    overrides,
    positive,
    print_warnings,
    roles,
    seed,
)
from spec_lang.diagnostics import file_error
from spec_lang.experiments.runs import RunFolder, load_spec, new_run_folder
from spec_lang.experiments.seeds import parse_seeds, table, write_summary
from spec_lang.files import check_distinct, check_output, write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec options, the data, the length and batches of the run, its outputs, the backend and the roles."""
    add_spec_options(parser)
    parser.add_argument(
        "--source",
        action="append",
        metavar="FILE",
        help=".npz/.csv with the source inputs (by name, e.g. xs and ys); repeatable: one for every labelled "
        "source, or one per source in the order of the spec's label terms (default with --resume RUN_DIR: the "
        "run's own)",
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="FILE",
        help=".npz/.csv with the target inputs (default: the first source file); repeatable: one per target domain, "
        "in the order of the spec's input declarations",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive, help="passes over the source data (default 10)")
    length.add_argument("--steps", type=positive, help="optimiser steps, instead of --epochs")
    parser.add_argument(
        "--batch-size",
        type=positive,
        default=32,
        help="source rows per step, paired with as many target rows (default 32)",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed",
        type=seed,
        help="seed of the batch order and of the initial weights and dropout masks (replacing the spec's `seed` "
        "statement), 0 to 2**63 - 1 (default: batch order 0, the spec's seed)",
    )
    seeds.add_argument(
        "--seeds",
        type=parse_seeds,
        metavar="LIST",
        help="train once per seed (as --seed), e.g. 0,1,2 or 0-4, each in a folder seed-N of the run folder; "
        "print and write (seeds.json) the mean, std, min and max of the final metrics",
    )
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help="the run folder (spec.dann, overrides.json, log.jsonl, checkpoint.npz, metrics.json; default "
        "runs/MODEL/N, N the next free number), unless --checkpoint",
    )
    parser.add_argument("--log", metavar="FILE", help="a JSON-lines log: one record per epoch and a final record")
    parser.add_argument(
        "--plot",
        nargs="?",
        const="",
        metavar="FILE.png",
        help="plot per epoch the loss terms, accuracies, proxy A-distance, and λ and learning rate where they vary "
        "(needs matplotlib); without FILE, history.png in the run folder",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="write the checkpoint (.npz) here, and no run folder: every --checkpoint-every steps, at the end and "
        "when interrupted",
    )
    parser.add_argument(
        "--checkpoint-every", type=positive, metavar="N", help="also write the checkpoint every N steps"
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="RUN_DIR",
        help="continue the run saved in RUN_DIR (with its --set values and --seed), in --run-dir, or in --checkpoint",
    )
    parser.add_argument("--force", action="store_true", help="start a new run over an existing checkpoint or log")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_validation_options(parser, fraction=True)
    add_backend_options(parser)
    add_role_options(parser)
    add_data_options(parser)


@dataclass(frozen=True)
class _Outputs:
    """Where one run writes: its checkpoint, log and plot, and its run folder (None with --checkpoint)."""

    checkpoint: Path
    log: str | None
    plot: str | None
    folder: RunFolder | None

    @staticmethod
    def of(folder: RunFolder | None, args: argparse.Namespace) -> _Outputs:
        """The outputs of `args`: named files, else the run folder's."""
        if folder is None:
            return _Outputs(Path(args.checkpoint), args.log, args.plot, None)
        plot = None if args.plot is None else args.plot or str(folder.plot)
        return _Outputs(folder.checkpoint, args.log or str(folder.log), plot, folder)


def run(args: argparse.Namespace) -> int:
    """Train once, or once per seed of `--seeds`, then print where the files went and the final metrics (or their
    aggregate over the seeds). The data and every output file are checked before the spec is compiled."""
    from spec_lang.training.trainer import check_data

    _check_options(args)
    given, chosen, resumed = _overrides(args)
    seeds: list[int | None] = list(args.seeds) if args.seeds else [chosen]
    reading = {
        "allow_outside": args.allow_outside_includes,
        "max_parameter_memory": args.max_parameter_memory,
        "strict": args.strict,
    }
    specs = {s: load_spec(args.file, given, s, **reading) for s in seeds}
    first = specs[seeds[0]]
    if not args.quiet:
        print_warnings(first)
    _data_options(args, resumed)
    validation(args)  # an unknown validator fails now, not after compiling
    plan = data_plan(first.program, args, args.source, "--source")  # a wrong number of files fails here
    if plan and not args.quiet:
        print("\n".join(f"data: {line}" for line in plan), file=sys.stderr)
    # a bad path fails now, not after compiling
    check_data(first.program, *data_files(args, args.source), **roles(args))
    if resumed is None and args.checkpoint is None:
        _check_named(args)
        parent: RunFolder | None = new_run_folder(first.program.name, args.run_dir)
    else:
        parent = resumed
        _check_files(args, _Outputs.of(parent, args), first)
    finals: dict[int, dict[str, Any]] = {}
    folders: dict[int, Path] = {}
    for value in seeds:
        folder = parent.seed(value) if args.seeds and value is not None and parent is not None else parent
        outputs = _Outputs.of(folder, args)
        if folder is not None and resumed is None:
            seed_given = {"set": given, "seed": value, "init_seed": specs[value].program.seed}
            held = {"val": args.val, "val_fraction": args.val_fraction, "validators": args.validator}
            held = {k: v for k, v in held.items() if v is not None}  # recorded when given
            folder.record(specs[value], {**seed_given, "source": args.source, "target": args.target, **held})
        final = _train_one(specs[value], args, outputs, value)
        if isinstance(final, int):
            return final
        finals[value or 0], folders[value or 0] = final, outputs.checkpoint.parent
    if args.seeds and parent is not None:
        setup = {"spec": args.file, "set": given, "source": args.source, "target": args.target}
        written = write_summary(parent.path / "seeds.json", finals, folders, setup)
        if not args.quiet:
            sys.stdout.write(table(written["summary"], list(finals)))
            print(f"wrote the aggregate of {len(finals)} seeds to {parent.path / 'seeds.json'}")
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Options that do not go together (E802)."""
    clashes = [
        (args.checkpoint and args.run_dir, "--checkpoint and --run-dir do not go together", "--checkpoint writes no "
         "run folder: choose one"),
        (isinstance(args.resume, str) and (args.checkpoint or args.run_dir), "--resume RUN_DIR does not go with "
         "--checkpoint or --run-dir", "the run folder holds its checkpoint"),
        (args.resume is True and not (args.checkpoint or args.run_dir), "--resume needs the run to continue",
         "pass --resume runs/MODEL/N, or --checkpoint FILE --resume"),
        (args.seeds and (args.checkpoint or args.log or args.plot or args.resume), "--seeds does not go with "
         "--checkpoint, --log, --plot FILE or --resume", "each seed writes into its own folder; --plot alone draws "
         "each one's history.png"),
        (args.plot == "" and args.checkpoint, "--plot needs a file name with --checkpoint", "--plot FILE.png"),
    ]  # fmt: skip
    for clash, message, hint in clashes:
        if clash:
            raise file_error(None, "E802", message, hint)


def _data_options(args: argparse.Namespace, resumed: RunFolder | None) -> None:
    """`--source` and `--target` as lists; when resuming a run folder without `--source`, the files it recorded.
    No `--source` otherwise is a usage error (exit 2), as argparse reports a missing option."""
    if args.source is None and resumed is not None:
        args.source, recorded = resumed.data_files()
        args.target = args.target or recorded
    if resumed is not None and args.val is None and args.val_fraction is None and not args.validator:
        saved = resumed.read_overrides()  # the run's validation, which resuming must repeat
        args.val, args.val_fraction, args.validator = (saved.get(k) for k in ("val", "val_fraction", "validators"))
    if not args.source:
        print("specc train: error: the following arguments are required: --source (unless --resume)", file=sys.stderr)
        raise SystemExit(2)


def _overrides(args: argparse.Namespace) -> tuple[dict[str, object], int | None, RunFolder | None]:
    """The `--set` values and `--seed`, under those of the run folder to resume (`--resume RUN_DIR`, or `--run-dir
    DIR --resume`), and that folder."""
    given = overrides(args.set)
    named = args.resume if isinstance(args.resume, str) else args.run_dir if args.resume else None
    if named is None:
        return given, args.seed, None
    folder = RunFolder(Path(named))
    saved = folder.read_overrides()
    seed_value = saved.get("seed")
    return {**saved.get("set", {}), **given}, args.seed if args.seed is not None else seed_value, folder


def _check_named(args: argparse.Namespace) -> None:
    """The files a run into a new run folder writes outside it, named by --log and --plot FILE: distinct from each
    other and the inputs, and free (unless --force)."""
    from spec_lang.training import RUN_HINT

    check_distinct({"--log": args.log, "--plot": args.plot or None}, _inputs(args))
    if args.log:
        check_output(args.log, args.force, RUN_HINT)
    _check_plot(args.plot, args.force)


def _inputs(args: argparse.Namespace) -> list[str | os.PathLike | None]:
    """The files a run reads, which it must never write: the spec and the data files."""
    return [args.file, *args.source, *(args.target or []), args.val]


def _check_plot(plot: str | None, replace: bool) -> None:
    """The figure is drawn after training: find out now whether it can be (its file, unless the run folder's, and
    matplotlib)."""
    from spec_lang.reports.plots import require_matplotlib
    from spec_lang.training import RUN_HINT

    if plot is None:
        return
    if plot:
        check_output(plot, replace, RUN_HINT)
    try:
        require_matplotlib()
    except ImportError as error:
        raise file_error(None, "E005", str(error), "install it, or train without --plot") from None


def _check_files(args: argparse.Namespace, outputs: _Outputs, spec: Spec) -> None:
    """The outputs of a run that names its checkpoint, or resumes: distinct from each other and the inputs, free
    (unless --force), or the run's own when it resumes (its checkpoint checked against the spec)."""
    from spec_lang.runtime.checkpoint import read_checkpoint
    from spec_lang.training import RUN_HINT

    check_distinct(
        {"--checkpoint": outputs.checkpoint, "--log": outputs.log, "--plot": outputs.plot},
        _inputs(args),
    )
    resume = args.resume is not None
    if resume:
        read_checkpoint(outputs.checkpoint, spec.program)  # a damaged or foreign checkpoint fails before compiling
    for path in (outputs.checkpoint, outputs.log):
        if path is not None:
            check_output(path, resume or args.force, RUN_HINT)
    _check_plot(outputs.plot, args.force or (resume and _is_png(outputs.plot)))


def _train_one(spec: Spec, args: argparse.Namespace, outputs: _Outputs, seed_value: int | None) -> dict | int:
    """Compile and train one run; print where its files went and its final metrics (one line of them with
    --seeds). Returns the final record, or the exit status of an interrupted run."""
    import signal

    from spec_lang.library.validators import record_key
    from spec_lang.reports.plots import plot_history
    from spec_lang.training import Interrupted
    from spec_lang.training.display import Compiling, oracle_marked

    stream = None if args.quiet else sys.stderr
    with Compiling(stream):
        model = compile_spec(spec, args)
    try:
        history = model.fit(
            *data_files(args, args.source),
            epochs=args.epochs,
            steps=args.steps,
            batch_size=args.batch_size,
            seed=seed_value or 0,
            log=outputs.log,
            checkpoint=outputs.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume is not None,
            overwrite=args.force,
            verbose=stream or False,
            **validation(args),
            **roles(args),
        )
    except Interrupted as stop:
        number = stop.signal_number or signal.SIGINT
        again = "the same command and --resume"
        if args.seeds and outputs.folder:
            again = f"--resume {outputs.folder.path} in place of --seeds (this seed only)"
        elif outputs.folder and not args.run_dir:
            again = f"{again} {outputs.folder.path}"
        print(
            f"specc: {signal.Signals(number).name} received: stopped after step {stop.step} of {stop.total}; "
            f"checkpoint written to {outputs.checkpoint}; continue with {again}",
            file=sys.stderr,
        )
        return 128 + number
    final = history.final
    assert final is not None  # a run that returns (not interrupted) has its final record
    values = {k: v for k, v in final.items() if k not in ("final", "status")}
    seeds = {"seed": seed_value or 0, "init_seed": spec.program.seed}
    best = {"best": history.best} if history.best else {}
    if outputs.folder is not None:
        write_atomic(outputs.folder.metrics, json.dumps({**seeds, "final": values, **best}, indent=2) + "\n")
    if outputs.plot:
        plot_history(
            history.records,
            outputs.plot,
            hyperparameters=spec.program.hypers,
            title=f"{spec.program.name} trained on {', '.join(args.source)}",
            force=True,
        )
    if not args.quiet:
        where = f"in {outputs.folder.path}" if outputs.folder else f"checkpoint written to {outputs.checkpoint}"
        print(
            f"trained {final['step']} steps ({final['epoch']} epochs, seed {seeds['seed']}, initial weights from "
            f"seed {seeds['init_seed']}) {where}"
            + (f"; log written to {outputs.log}" if outputs.log and not outputs.folder else "")
            + (f"; plotted in {outputs.plot}" if outputs.plot else "")
        )
        if history.best:
            kept = f", kept in {history.best['checkpoint']}" if history.best["checkpoint"] else ""
            print(
                f"best by {history.best['validator']}: epoch {history.best['epoch']} (step {history.best['step']}, "
                f"{record_key(history.best['validator'])} {history.best['score']:.6g}){kept}"
            )
        if not args.seeds:
            sys.stdout.write(format_metrics(oracle_marked(values)))
    return values


def _is_png(path: str | None) -> bool:
    """Whether `path` holds a PNG image (a plot a resumed run may redraw), not some other file."""
    if path is None:
        return False
    try:
        with open(path, "rb") as stream:
            return stream.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return True  # nothing there to lose
