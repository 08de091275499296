"""The `specc` command line: check, compile (with a summary or `--emit ir|json|python`) and fmt; data, train, eval
and predict.

Exit status: 0 success, 1 a problem with the user's input (diagnostics printed), 2 bad command-line usage; an
interrupted `train` writes its checkpoint and exits with 128 + the signal's number (130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spec_lang import __version__
from spec_lang.diagnostics import SpecError, file_error
from spec_lang.experiments.moons import add_parser as add_reproduce_parser
from spec_lang.files import refuse_existing, write_atomic
from spec_lang.training import RUN_HINT
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY, parse_memory
from spec_lang.runtime.model import CompiledModel
from spec_lang.lowering.passes import Optimizations
from spec_lang.reports.plots import plot_history, require_matplotlib
from spec_lang.api import Spec, from_ir, parse_source, read_source

MODES = {"numba": "NUMBA", "c": "CVM", "fast_compile": "FAST_COMPILE", "jax": "JAX"}


def _overrides(pairs: list[str]) -> dict[str, object]:
    """`--set NAME=VALUE` pairs; values are JSON (numbers, true/false, lists)."""
    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            values[name.strip()] = json.loads(text)
        except ValueError:
            raise file_error(None, "E603", f"cannot read --set {pair}",
                             "write NAME=VALUE with a number, true/false or a list, "
                             "e.g. --set hidden=[32,32]") from None
    return values


def _memory(text: str) -> int:
    """`--max-parameter-memory SIZE`: a bad size is a usage error (exit 2)."""
    try:
        return parse_memory(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _load(args: argparse.Namespace) -> Spec:
    source = read_source(args.file)
    return from_ir(parse_source(source), source, allow_outside=args.allow_outside_includes,
                   max_parameter_memory=args.max_parameter_memory, **_overrides(args.set))


def _print_warnings(spec: Spec) -> None:
    for warning in spec.warnings:
        print(warning.render(spec.source), file=sys.stderr)


def _compile(spec: Spec, args: argparse.Namespace) -> CompiledModel:
    """The spec compiled in the backend and with the optimisations the command line asks for."""
    return spec.compile(MODES[args.mode], Optimizations.parse(args.no_opt))


def cmd_check(args: argparse.Namespace) -> int:
    spec = _load(args)
    _print_warnings(spec)
    count = len(spec.warnings)
    print(f"{args.file}: ok" + (f" ({count} warning{'s' if count != 1 else ''})" if count else ""))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from spec_lang.reports.summary import listing, summary

    spec = _load(args)
    _print_warnings(spec)
    if args.emit:
        if args.emit == "ir":
            text = listing(spec.program)
        elif args.emit == "json":
            from spec_lang.syntax.jsonio import dumps_json

            text = dumps_json(spec.model)
        else:
            from spec_lang.lowering.python.emitter import emit_python

            text = emit_python(spec.program, args.file)
        if args.output:
            refuse_existing(args.output, args.force)
            write_atomic(args.output, text)
            print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    model = _compile(spec, args)
    sys.stdout.write(summary(spec.program, args.file, model.compile_seconds, MODES[args.mode]))
    return 0


def cmd_fmt(args: argparse.Namespace) -> int:
    from spec_lang.syntax.printer import format_source

    status = 0
    for name in args.files:
        source = read_source(name)
        if name.endswith(".json"):
            raise file_error(None, "E003", f"{name} is JSON; fmt formats .dann text",
                             "use `specc compile FILE --emit json` for canonical JSON")
        formatted = format_source(source.text, name)
        if not args.check and not args.write:
            sys.stdout.write(formatted)
        elif formatted != source.text and args.check:
            print(f"would reformat {name}", file=sys.stderr)
            status = 1
        elif formatted != source.text:
            write_atomic(name, formatted)
            print(f"reformatted {name}", file=sys.stderr)
    return status


# Training, evaluation, prediction and data (spec_lang/training.py, checkpoint.py, data.py) ----------------------


def _write_arrays(path: Path, arrays: dict, force: bool) -> None:
    """Write arrays to a new `.npz` (one array per name) or `.csv` (a column per vector, `NAME.0`, `NAME.1`, …
    per matrix; every array the same number of rows), atomically."""
    import numpy as np

    refuse_existing(path, force)
    if path.suffix == ".csv":
        columns: list[tuple[str, object]] = []
        for name, array in arrays.items():
            array = np.asarray(array)
            if array.ndim == 1:
                columns.append((name, array))
            else:
                flat = array.reshape(len(array), -1)
                columns += [(f"{name}.{i}", flat[:, i]) for i in range(flat.shape[1])]
        if len({len(c) for _, c in columns}) > 1:
            raise file_error(None, "E004", f"cannot write {path}: the arrays have different numbers "
                             "of rows", "write a .npz file instead")
        lines = [",".join(n for n, _ in columns)]
        rows = range(len(columns[0][1]) if columns else 0)
        lines += [",".join(repr(c[row].item()) for _, c in columns) for row in rows]
        write_atomic(path, "\n".join(lines) + "\n")
        return
    if path.suffix != ".npz":
        raise file_error(None, "E004", f"cannot write {path}: unknown data format '{path.suffix}'",
                         "name a .npz or a .csv file")
    write_atomic(path, lambda stream: np.savez(stream, **arrays))


def cmd_data(args: argparse.Namespace) -> int:
    from spec_lang.data import two_moons

    if args.samples < 2 or args.noise < 0:
        raise file_error(None, "E802", "--samples is at least 2 and --noise at least 0",
                         "the DANN paper uses --samples 150 --noise 0.05")
    data = two_moons(args.samples, args.noise, args.angle)
    output = Path(args.output)
    _write_arrays(output, data, args.force)
    shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in data.items())
    print(f"wrote {output}: {shapes} (xs, ys: labelled source; xt: target; yt: target labels, for evaluation only)")
    return 0


def _target_labels(args: argparse.Namespace) -> str | bool | None:
    return False if args.no_target_labels else args.target_labels


def _roles(args: argparse.Namespace) -> dict:
    return {"target_labels": _target_labels(args), "label_head": args.label_head, "domain_head": args.domain_head,
            "target_input": args.target_input}


def _format_metrics(values: dict) -> str:
    width = max((len(k) for k in values), default=0)
    return "".join(f"{k:<{width}}  {v:.6g}\n" if isinstance(v, float) else f"{k:<{width}}  {v}\n"
                   for k, v in values.items())


def cmd_train(args: argparse.Namespace) -> int:
    import signal

    from spec_lang.runtime.checkpoint import read_checkpoint
    from spec_lang.training import Interrupted

    spec = _load(args)
    _print_warnings(spec)
    checkpoint = Path(args.checkpoint or f"{Path(args.file).stem}.ckpt.npz")
    if args.resume:
        read_checkpoint(checkpoint, spec.program)  # a damaged or foreign checkpoint fails before compiling
    else:
        for path in (checkpoint, Path(args.log) if args.log else None):
            if path is not None:
                refuse_existing(path, args.force, RUN_HINT)
    if args.plot:  # the figure is drawn after training: find out now whether it can be
        refuse_existing(args.plot, args.force or args.resume, RUN_HINT)
        try:
            require_matplotlib()
        except ImportError as error:
            raise file_error(None, "E005", str(error), "install it, or train without --plot") from None
    model = _compile(spec, args)
    try:
        history = model.fit(args.source, args.target, epochs=args.epochs, steps=args.steps,
                            batch_size=args.batch_size, seed=args.seed, log=args.log, checkpoint=checkpoint,
                            checkpoint_every=args.checkpoint_every, resume=args.resume, overwrite=args.force,
                            verbose=False if args.quiet else sys.stderr, **_roles(args))
    except Interrupted as stop:
        number = stop.signal_number or signal.SIGINT
        print(f"specc: {signal.Signals(number).name} received: stopped after step {stop.step} of {stop.total}; "
              f"checkpoint written to {checkpoint}; continue with the same command and --resume", file=sys.stderr)
        return 128 + number
    final = history.final
    print(f"trained {final['step']} steps ({final['epoch']} epochs); checkpoint written to {checkpoint}"
          + (f"; log written to {args.log}" if args.log else ""))
    sys.stdout.write(_format_metrics({k: v for k, v in final.items() if k not in ("final", "status")}))
    if args.plot:
        plot_history(history.records, args.plot, hyperparameters=spec.program.hypers,
                     title=f"{spec.program.name} trained on {args.source}", force=True)
        print(f"plotted the loss terms, accuracies, λ and learning rate in {args.plot}")
    return 0


def _restored(args: argparse.Namespace):
    """The spec compiled, with a checkpoint's parameters; the checkpoint is read (and checked) before compiling."""
    from spec_lang.runtime.checkpoint import read_checkpoint

    spec = _load(args)
    _print_warnings(spec)
    saved = read_checkpoint(args.checkpoint, spec.program)
    return spec, saved


def cmd_eval(args: argparse.Namespace) -> int:
    spec, saved = _restored(args)
    model = _compile(spec, args)
    saved.restore(model)
    values = model.metrics(args.data, args.target, **_roles(args))
    if args.json:
        print(json.dumps(values, indent=2))
    else:
        sys.stdout.write(_format_metrics(values))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from spec_lang.data import check_arrays, load_arrays
    from spec_lang.diagnostics import did_you_mean

    output = Path(args.output)
    refuse_existing(output, args.force)
    if output.suffix not in (".npz", ".csv"):
        raise file_error(None, "E004", f"cannot write {output}: unknown data format '{output.suffix}'",
                         "name a .npz or a .csv file")
    spec, saved = _restored(args)
    heads = spec.program.heads
    if args.head not in heads:
        raise file_error(None, "E802", f"--head {args.head}: the model has no head '{args.head}'",
                         did_you_mean(args.head, heads) or f"heads: {', '.join(heads) or 'none'}")
    arrays = load_arrays(args.data)
    mapping: dict[str, str] = {}
    for pair in args.map:
        name, sep, array = pair.partition("=")
        if not sep or not name or not array:
            raise file_error(None, "E802", f"cannot read --map {pair}",
                             "write INPUT=ARRAY, e.g. --map xs=xt to feed the array xt to the input xs")
        mapping[name] = array
    model = _compile(spec, args)
    saved.restore(model)
    names = model.head_inputs(args.head)
    renamed = {n: arrays[mapping.get(n, n)] for n in names if mapping.get(n, n) in arrays}
    where = args.data + "".join(f" (input {n} from array '{a}')" for n, a in mapping.items() if n in names)
    inputs = check_arrays(spec.program, renamed, names, where)
    rows = len(next(iter(inputs.values()))) if inputs else 0
    parts = [model.predict(args.head, **{n: a[i:i + 4096] for n, a in inputs.items()}) for i in range(0, rows, 4096)]
    predictions = np.concatenate(parts) if parts else np.zeros((0,))
    _write_arrays(output, {args.head: predictions}, args.force)
    print(f"wrote {output}: {args.head} {list(predictions.shape)}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="specc", description="Compile .dann model specs for domain-adversarial "
                                                           "networks to PyTensor.")
    top.add_argument("--version", action="version", version=f"specc {__version__}")
    commands = top.add_subparsers(dest="command", required=True)

    def with_file(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("file", help="a .dann or .json model spec")
        sub.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="override a model parameter, e.g. --set hidden=[32,32] (repeatable)")
        sub.add_argument("--allow-outside-includes", action="store_true",
                         help="let `include` read files outside the including file's folder")
        sub.add_argument("--max-parameter-memory", type=_memory, default=DEFAULT_MAX_PARAMETER_MEMORY, metavar="SIZE",
                         help="refuse a model whose parameters need more memory, e.g. 8GiB (default 2GiB)")
        return sub

    def with_backend(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--mode", choices=sorted(MODES), default="numba", help="PyTensor backend (default numba)")
        sub.add_argument("--no-opt", action="append", default=[], choices=[*Optimizations.names(), "all"],
                         metavar="NAME", help="switch an optimisation of the lowering off (repeatable): "
                                              f"{', '.join(Optimizations.names())}, or all")

    check = with_file("check", "check a spec and print its diagnostics")
    check.set_defaults(run=cmd_check)
    compile_ = with_file("compile", "check, lower and compile a spec; print a summary")
    compile_.add_argument("--emit", choices=["ir", "json", "python"],
                          help="print the checked IR, the JSON form, or a standalone PyTensor module instead")
    with_backend(compile_)
    compile_.add_argument("-o", "--output", help="with --emit: write to this file instead of standard output")
    compile_.add_argument("--force", action="store_true", help="with -o: replace an existing file")
    compile_.set_defaults(run=cmd_compile)
    fmt = commands.add_parser("fmt", help="print specs in canonical form", description="print specs in canonical form")
    fmt.add_argument("files", nargs="+", metavar="file")
    fmt.add_argument("--check", action="store_true", help="print nothing; exit 1 if a file is not canonical")
    fmt.add_argument("--write", action="store_true", help="rewrite files in place")
    fmt.set_defaults(run=cmd_fmt)

    data = commands.add_parser("data", help="write a built-in data set",
                               description="write a built-in data set: `moons`, the DANN paper's toy (scikit-learn's "
                                           "make_moons(150, noise=0.05), source random_state 1, target random_state 2 "
                                           "rotated by 35 degrees, both centred on the source mean and scaled by 2) "
                                           "as xs, ys (source), xt (target) and yt (target labels, for evaluation)")
    data.add_argument("generator", choices=["moons"])
    data.add_argument("-o", "--output", default="moons.npz", help="a .npz or .csv file (default moons.npz)")
    data.add_argument("--samples", type=int, default=150, help="points per domain (default 150)")
    data.add_argument("--noise", type=float, default=0.05, help="standard deviation of the noise (default 0.05)")
    data.add_argument("--angle", type=float, default=35.0, help="rotation of the target in degrees (default 35)")
    data.add_argument("--force", action="store_true", help="replace an existing file")
    data.set_defaults(run=cmd_data)

    def with_roles(sub: argparse.ArgumentParser) -> None:
        with_backend(sub)
        sub.add_argument("--target-labels", metavar="NAME",
                         help="the array of the target file holding target labels, for evaluation only "
                              "(default: yt, when the file has it)")
        sub.add_argument("--no-target-labels", action="store_true", help="never read target labels")
        sub.add_argument("--label-head", metavar="HEAD", help="the head whose accuracy is measured "
                                                             "(default: inferred from the crossentropy loss)")
        sub.add_argument("--domain-head", metavar="HEAD", help="the head that tells the domains apart "
                                                              "(default: the domain loss's own classifier)")
        sub.add_argument("--target-input", metavar="INPUT",
                         help="the target input the target labels belong to, when there are several")

    train = with_file("train", "train a spec on data files; write checkpoints and a log")
    train.add_argument("--source", required=True, metavar="FILE",
                       help=".npz/.csv with the source inputs (by name, e.g. xs and ys)")
    train.add_argument("--target", metavar="FILE", help=".npz/.csv with the target inputs (default: the source file)")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="passes over the source data (default 10)")
    length.add_argument("--steps", type=int, help="optimiser steps, instead of --epochs")
    train.add_argument("--batch-size", type=int, default=32, help="source rows per step, paired with as many "
                                                                 "target rows (default 32)")
    train.add_argument("--seed", type=int, default=0, help="seed of the batch order (default 0); the spec's `seed` "
                                                           "draws the initial weights and dropout masks")
    train.add_argument("--log", metavar="FILE", help="a JSON-lines log: one record per epoch and a final record")
    train.add_argument("--plot", metavar="FILE.png", help="plot the loss terms, accuracies, proxy A-distance, λ and "
                                                          "learning rate per epoch (needs matplotlib)")
    train.add_argument("--checkpoint", metavar="FILE", help="the checkpoint (.npz) written every --checkpoint-every "
                                                            "steps, at the end and when interrupted (default "
                                                            "MODEL.ckpt.npz, after the spec's file name)")
    train.add_argument("--checkpoint-every", type=int, metavar="N", help="also write the checkpoint every N steps")
    train.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    train.add_argument("--force", action="store_true", help="start a new run over an existing checkpoint or log")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    with_roles(train)
    train.set_defaults(run=cmd_train)

    def with_checkpoint(name: str, help_text: str, data_help: str) -> argparse.ArgumentParser:
        sub = with_file(name, help_text)
        sub.add_argument("--checkpoint", required=True, metavar="FILE", help="a checkpoint written by specc train")
        sub.add_argument("--data", required=True, metavar="FILE", help=data_help)
        return sub

    evaluate = with_checkpoint("eval", "print metrics of a trained spec on labelled data",
                               ".npz/.csv with inputs by name (source inputs and labels; target inputs and target "
                               "labels, unless --target)")
    evaluate.add_argument("--target", metavar="FILE", help=".npz/.csv with the target inputs and target labels")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    with_roles(evaluate)
    evaluate.set_defaults(run=cmd_eval)

    predict = with_checkpoint("predict", "write the predictions of a head of a trained spec",
                              ".npz/.csv with the head's inputs by name")
    predict.add_argument("--head", required=True, help="the head to predict with")
    predict.add_argument("--map", action="append", default=[], metavar="INPUT=ARRAY",
                         help="read an input from an array of another name, e.g. --map xs=xt (repeatable)")
    predict.add_argument("-o", "--output", required=True, help="a .npz (one array, named after the head) or .csv file")
    predict.add_argument("--force", action="store_true", help="replace an existing file")
    with_backend(predict)
    predict.set_defaults(run=cmd_predict)
    add_reproduce_parser(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except SpecError as error:
        print(error.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("specc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
