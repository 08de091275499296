"""`specc eval FILE --checkpoint CKPT --data DATA`: print metrics of a trained spec on labelled data; `--data` and
`--target` are repeatable, one file per source (per target) as `specc train` takes them
(`spec_lang.cli.datasets`). `--validator NAME` adds validators' scores (`val_NAME`), on the source rows of `--val FILE`
or of `--data`; the target accuracy, from target labels, is printed as the oracle."""

from __future__ import annotations

import argparse
import json
import math
import sys

from spec_lang.cli.datasets import add_validation_options, data_plan, validation
from spec_lang.cli.options import (
    add_backend_options,
    add_checkpoint_options,
    add_data_options,
    add_role_options,
    add_spec_options,
    compile_spec,
    data_files,
    format_metrics,
    roles,
)
from spec_lang.cli.trained import load_checkpointed_run
from spec_lang.diagnostics import file_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec options, the checkpoint and data, `--target`, `--json`, the backend and the roles."""
    add_spec_options(parser)
    add_checkpoint_options(
        parser,
        ".npz/.csv with inputs by name (source inputs and labels; target inputs and target labels, unless "
        "--target); repeatable: one for every source, or one per source in the order of train's --source",
        repeatable=True,
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="FILE",
        help=".npz/.csv with the target inputs and target labels; repeatable: one per target, as on train",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_validation_options(parser, fraction=False)
    add_backend_options(parser)
    add_role_options(parser)
    add_data_options(parser)


def run(args: argparse.Namespace) -> int:
    """Print the metrics, aligned or as JSON."""
    from spec_lang.training.display import oracle_marked

    spec, saved = load_checkpointed_run(args)
    data_plan(spec.program, args, args.data, "--data")  # a wrong number of files fails before compiling
    held = validation(args)  # an unknown validator too
    model = compile_spec(spec, args)
    saved.restore(model)
    values = model.metrics(*data_files(args, args.data), **held, **roles(args))
    if args.json:
        print(json.dumps(values, indent=2))
    else:
        sys.stdout.write(format_metrics(oracle_marked(values)))
    broken = [name for name, value in values.items() if isinstance(value, float) and not math.isfinite(value)]
    if broken:
        raise file_error(
            args.checkpoint,
            "E808",
            f"the model's outputs are not finite: {', '.join(broken)}",
            "this checkpoint holds a diverged model; evaluate an earlier checkpoint, or train again with a lower "
            "learning rate or gradient clipping (clip_norm)",
        )
    return 0
