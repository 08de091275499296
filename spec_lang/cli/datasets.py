"""Which data file feeds which group of inputs, for `specc train` (`--source`, `--target`) and `specc eval`
(`--data`, `--target`), each option repeatable.

The spec's labelled sources and target domains are groups of inputs (`spec_lang.training.roles`). One file serves
every group of its kind, or there is one file per group, given in the order the groups are inferred:

* sources: the label classifier's crossentropy term first (the one the label head computes, else the first label
  term of the spec), then every other label term applying the same classifier, in the order the spec writes them;
* targets: one per domain class of the other inputs, in the order of the spec's `input` declarations (the first
  declared input of each class comes first).

Targets default to the first source file. A wrong number of files is an E802 at the spec that lists its groups.

Validation data (`--val FILE`, held-out labelled source rows with the source's input names, or `--val-fraction F` on
`train`) and the validators (`--validator NAME`, repeatable, the first the selector) are options of both commands.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from spec_lang.cli.options import data_file, mapping
from spec_lang.diagnostics import file_error

if TYPE_CHECKING:
    from spec_lang import program as P
    from spec_lang.training.roles import Group


_NOUNS = {"source": "labelled source", "target": "target domain"}
_ORDER = {"source": "of the spec's label terms", "target": "of the spec's input declarations"}


def data_plan(program: P.Program, args: argparse.Namespace, sources: list[str], option: str) -> list[str]:
    """Check that `sources` (given with `option`) and `--target` have one file for all groups of their kind or one
    per group (E802 otherwise); return a line per group naming the file that feeds it, or none when one file feeds
    one source and at most one target (nothing to tell)."""
    from spec_lang.training.trainer import program_roles

    roles = program_roles(program, args.label_head, args.domain_head, args.target_input)
    targets: list[str] | None = args.target
    _check_count(args.file, option, "source", sources, roles.sources)
    if targets is not None:
        _check_count(args.file, "--target", "target", targets, roles.targets)
    if len({*sources, *(targets or [])}) == 1 and len(roles.sources) == 1 and len(roles.targets) <= 1:
        return []
    renames = mapping(args)
    lines = _lines("source", roles.sources, sources, renames)
    if targets is None:
        return lines + _lines("target", roles.targets, sources[:1], renames, " (the first source file)")
    return lines + _lines("target", roles.targets, targets, renames)


def _check_count(spec: str, option: str, kind: str, files: list[str], groups: tuple[Group, ...]) -> None:
    """One file for all of the groups, or one per group (E802, at the spec, listing the groups)."""
    if len(files) == 1 or len(files) == len(groups):
        return
    listed = "; ".join(f"{i}. {', '.join(g.inputs)}" for i, g in enumerate(groups, 1))
    raise file_error(
        spec,
        "E802",
        f"{len(files)} {option} files were given, but the model has {len(groups)} {_NOUNS[kind]}"
        + ("" if len(groups) == 1 else "s"),
        f"give one {option} for all of them, or one per {kind} in the order {_ORDER[kind]}: {listed or 'none'}",
    )


def _lines(
    kind: str, groups: tuple[Group, ...], files: list[str], renames: dict[str, str], note: str = ""
) -> list[str]:
    """`source 1 (xs1, ys1): a.npz` for each group, with the `--map` renames of its inputs."""
    lines = []
    for i, group in enumerate(groups):
        file = files[0] if len(files) == 1 else files[i]
        mapped = [f"{n} from {renames[n]}" for n in group.inputs if n in renames]
        extra = f" ({', '.join(mapped)})" if mapped else ""
        lines.append(f"{kind} {i + 1} ({', '.join(group.inputs)}): {file}{extra}{note}")
    return lines


def add_validation_options(parser: argparse.ArgumentParser, fraction: bool) -> None:
    """`--val FILE` (or, on `train`, `--val-fraction F`) and `--validator NAME` (repeatable)."""
    from spec_lang.library.validators import VALIDATORS

    held = parser.add_mutually_exclusive_group() if fraction else parser
    held.add_argument(
        "--val",
        metavar="FILE",
        help="held-out labelled source rows (.npz/.csv with the source's input names) for the validators",
    )
    if fraction:
        held.add_argument(
            "--val-fraction",
            type=float,
            metavar="F",
            help="hold out this fraction of each source's rows (chosen by the seed, not trained on), e.g. 0.1",
        )
    parser.add_argument(
        "--validator",
        action="append",
        metavar="NAME",
        help=f"score without target labels, per epoch on train (repeatable; the first selects the best checkpoint): "
        f"{', '.join(n for n in VALIDATORS if not VALIDATORS[n].oracle)}; target_accuracy (the oracle) only if named",
    )


def validation(args: argparse.Namespace) -> dict[str, Any]:
    """The `validation` and `validators` keywords of `fit` and `metrics` from the options; unknown validator names
    are refused now (E809), before anything is compiled."""
    from spec_lang.training.validation import check_fraction, resolve

    validators = list(args.validator or [])
    resolve(validators)
    fraction = getattr(args, "val_fraction", None)
    if fraction is not None:
        check_fraction(fraction)
    held = data_file(args, args.val) if args.val else fraction
    return {"validation": held, "validators": validators}
