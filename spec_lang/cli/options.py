"""The options several `specc` commands share, each defined once, and the helpers that act on them: loading the spec,
printing its warnings, compiling it, reading a checkpoint.

Only light modules are imported here: the parser is built for every command, and must not import PyTensor.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict

from spec_lang.api import Spec, from_ir, parse_source, read_source
from spec_lang.diagnostics import file_error, shown_path
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY, parse_memory
from spec_lang.experiments.seeds import MAX_SEED
from spec_lang.files import check_distinct, check_output, write_atomic
from spec_lang.lowering.passes import Optimizations
from spec_lang.syntax.json_text import MAX_JSON_DEPTH, too_deep_text

if TYPE_CHECKING:
    from spec_lang import CompiledModel
    from spec_lang.data import DataFile

MODES = {"numba": "NUMBA", "c": "CVM", "fast_compile": "FAST_COMPILE", "jax": "JAX"}  # --mode → PyTensor mode


class Roles(TypedDict):
    """What `--target-labels`, `--label-head`, … choose, as keywords of `CompiledModel.fit` and `.metrics`."""

    target_labels: str | bool | None
    label_head: str | None
    domain_head: str | None
    target_input: str | None


def overrides(pairs: list[str]) -> dict[str, object]:
    """`--set NAME=VALUE` pairs; values are JSON (numbers, true/false, lists).

    >>> overrides(["hidden=[32, 32]", " rate =0.5"])
    {'hidden': [32, 32], 'rate': 0.5}
    """
    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        shown = pair if len(pair) <= 60 else f"{pair[:40]}…{pair[-10:]} ({len(pair)} characters)"
        if too_deep_text(text) is not None:  # json.loads would exhaust Python's recursion limit
            raise file_error(
                None,
                "E603",
                f"cannot read --set {shown}: nested more than {MAX_JSON_DEPTH} levels deep",
                "write NAME=VALUE with a number, true/false or a list, e.g. --set hidden=[32,32]",
            )
        try:
            if not sep or not name.strip():
                raise ValueError
            values[name.strip()] = json.loads(text)
        except ValueError:
            raise file_error(
                None,
                "E603",
                f"cannot read --set {shown}",
                "write NAME=VALUE with a number, true/false or a list, e.g. --set hidden=[32,32]",
            ) from None
    return values


def positive(text: str) -> int:
    """A whole number of at least 1 (`--line-length`, `--epochs`, …); anything else is a usage error (exit 2)."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text[:40]!r}")
    return int(text)


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


def memory(text: str) -> int:
    """`--max-parameter-memory SIZE`: a bad size is a usage error (exit 2)."""
    try:
        return parse_memory(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """The spec file and the options that change how it is read: `--set`, `--allow-outside-includes`,
    `--max-parameter-memory`, `--strict` (warnings are errors: `load_spec` refuses the spec)."""
    parser.add_argument("file", help="a .dann or .json model spec")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a model parameter, e.g. --set hidden=[32,32] (repeatable)",
    )
    parser.add_argument(
        "--allow-outside-includes",
        action="store_true",
        help="let `include` read files outside the including file's folder",
    )
    parser.add_argument(
        "--max-parameter-memory",
        type=memory,
        default=DEFAULT_MAX_PARAMETER_MEMORY,
        metavar="SIZE",
        help="refuse a model whose parameters and optimiser state (Adam's two moments, a momentum velocity) need "
        "more memory, e.g. 8GiB (default 2GiB; from 1 byte to 2**63 bytes)",
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """`--mode` and `--no-opt`: how the spec is compiled."""
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="numba",
        help="PyTensor backend (default numba); jax needs the package jax, runs on a GPU when JAX finds one and "
        "compiles each function at its first call for each batch size",
    )
    parser.add_argument(
        "--no-opt",
        action="append",
        default=[],
        choices=[*Optimizations.names(), "all"],
        metavar="NAME",
        help=f"switch an optimisation of the lowering off (repeatable): {', '.join(Optimizations.names())}, or all",
    )


def add_role_options(parser: argparse.ArgumentParser) -> None:
    """The options that name the target labels and the heads that training and evaluation measure."""
    parser.add_argument(
        "--target-labels",
        metavar="NAME",
        help="the array of the target file holding target labels, for evaluation only "
        "(default: yt, when the file has it)",
    )
    parser.add_argument("--no-target-labels", action="store_true", help="never read target labels")
    parser.add_argument(
        "--label-head",
        metavar="HEAD",
        help="the head whose accuracy is measured (default: inferred from the crossentropy loss)",
    )
    parser.add_argument(
        "--domain-head",
        metavar="HEAD",
        help="the head that tells the domains apart (default: the domain loss's own classifier)",
    )
    parser.add_argument(
        "--target-input", metavar="INPUT", help="the target input the target labels belong to, when there are several"
    )


def add_checkpoint_options(parser: argparse.ArgumentParser, data_help: str, repeatable: bool = False) -> None:
    """`--checkpoint` (written by `specc train`) and `--data` (a list of files when `repeatable`), of the commands
    that use a trained spec."""
    parser.add_argument(
        "--checkpoint", required=True, metavar="FILE", help="a checkpoint, or a run folder, written by specc train"
    )
    parser.add_argument(
        "--data", required=True, action="append" if repeatable else "store", metavar="FILE", help=data_help
    )


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """`--map INPUT=ARRAY` (repeatable): read an input from an array of another name, a `.npy` file or another file."""
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="INPUT=ARRAY",
        help="read the input INPUT from the array ARRAY of its data file (e.g. --map xs=X --map ys=y), from a .npy "
        "file (--map xs=X.npy) or from an array of another .npz/.csv file (--map xs2=b.npz:X) (repeatable)",
    )


def mapping(args: argparse.Namespace) -> dict[str, str]:
    """The `--map INPUT=ARRAY` pairs, input name → array (a name, a `.npy` path or `FILE:NAME`).

    >>> mapping(argparse.Namespace(map=["xs=X", "ys=labels.npy"]))
    {'xs': 'X', 'ys': 'labels.npy'}
    """
    pairs: dict[str, str] = {}
    for pair in args.map:
        name, sep, array = pair.partition("=")
        if not sep or not name.strip() or not array.strip():
            raise file_error(
                None,
                "E802",
                f"cannot read --map {pair}",
                "write INPUT=ARRAY, e.g. --map xs=X to feed the array X to the input xs",
            )
        pairs[name.strip()] = array.strip()
    return pairs


def data_file(args: argparse.Namespace, path: str) -> DataFile:
    """The data file `path`, with the renames of `--map`."""
    from spec_lang.data import DataFile

    return DataFile(path, mapping(args))


def data_files(
    args: argparse.Namespace, sources: list[str]
) -> tuple[tuple[DataFile, ...], tuple[DataFile, ...] | None]:
    """The data files `sources` and those of `--target` (when given), with the renames of `--map`: one for all the
    sources (targets) or one per source (target), as `fit` and `metrics` take them."""
    targets: list[str] | None = args.target
    given = tuple(data_file(args, s) for s in sources)
    return given, None if targets is None else tuple(data_file(args, t) for t in targets)


def load_spec(args: argparse.Namespace) -> Spec:
    """The checked spec of `args.file`, read with the options of `add_spec_options`."""
    source = read_source(args.file)
    return from_ir(
        parse_source(source),
        source,
        allow_outside=args.allow_outside_includes,
        max_parameter_memory=args.max_parameter_memory,
        strict=args.strict,
        **overrides(args.set),
    )


def print_warnings(spec: Spec) -> None:
    """Print the spec's warnings, rendered with its source, to standard error."""
    for warning in spec.warnings:
        print(warning.render(spec.source), file=sys.stderr)


def compile_spec(spec: Spec, args: argparse.Namespace) -> CompiledModel:
    """The spec compiled in the backend and with the optimisations of `add_backend_options`."""
    return spec.compile(MODES[args.mode], Optimizations.parse(args.no_opt))


def roles(args: argparse.Namespace) -> Roles:
    """The choices of `add_role_options`; `--no-target-labels` wins over `--target-labels`."""
    return {
        "target_labels": False if args.no_target_labels else args.target_labels,
        "label_head": args.label_head,
        "domain_head": args.domain_head,
        "target_input": args.target_input,
    }


def format_metrics(values: Mapping[str, object]) -> str:
    """Metrics a line each, names aligned, floats to 6 significant digits.

    >>> print(format_metrics({"step": 20, "source_accuracy": 0.98333333}), end="")
    step             20
    source_accuracy  0.983333
    """
    width = max((len(k) for k in values), default=0)
    return "".join(
        f"{k:<{width}}  {v:.6g}\n" if isinstance(v, float) else f"{k:<{width}}  {v}\n" for k, v in values.items()
    )


def write_output(path: str, text: str, force: bool, reads: Sequence[str] = ()) -> None:
    """Write a command's text to `-o` and say so: a file the command `reads` is refused even with `--force` (E004),
    an existing file without it (E002)."""
    check_distinct({"-o": path}, list(reads))
    check_output(path, force)
    write_atomic(path, text)
    print(f"wrote {shown_path(path)}")
