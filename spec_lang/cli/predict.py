"""`specc predict FILE --checkpoint CKPT --data DATA --head HEAD -o OUT`: write the predictions of a head of a
trained spec."""

from __future__ import annotations

import argparse
from pathlib import Path

from spec_lang.cli.arrays import refuse_array_output, write_arrays
from spec_lang.cli.options import (
    add_backend_options,
    add_checkpoint_options,
    add_data_options,
    add_spec_options,
    compile_spec,
    data_file,
)
from spec_lang.cli.trained import load_checkpointed_run
from spec_lang.diagnostics import did_you_mean, file_error

BATCH_ROWS = 4096  # rows per call of the predict function: its intermediate values need not fit for every row at once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec options, the checkpoint and data, the head, `--map`, the output and the backend."""
    add_spec_options(parser)
    add_checkpoint_options(parser, ".npz/.csv with the head's inputs by name")
    parser.add_argument("--head", required=True, help="the head to predict with")
    add_data_options(parser)
    parser.add_argument("-o", "--output", required=True, help="a .npz (one array, named after the head) or .csv file")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    add_backend_options(parser)


def run(args: argparse.Namespace) -> int:
    """Predict `--head` for every row of `--data` and write the predictions; the output file, the head and the
    data are checked before the spec is compiled."""
    import numpy as np

    from spec_lang.data import check_arrays

    output = Path(args.output)
    refuse_array_output(output, args.force)
    spec, saved = load_checkpointed_run(args)
    heads = spec.program.heads
    if args.head not in heads:
        raise file_error(
            None,
            "E802",
            f"--head {args.head}: the model has no head '{args.head}'",
            did_you_mean(args.head, heads) or f"heads: {', '.join(heads) or 'none'}",
        )
    data = data_file(args, args.data)
    arrays = data.read(spec.program)
    model = compile_spec(spec, args)
    saved.restore(model)
    names = model.head_inputs(args.head)
    inputs = check_arrays(spec.program, arrays, names, data.name)
    rows = len(next(iter(inputs.values()))) if inputs else 0
    parts = [
        model.predict(args.head, **{n: a[i : i + BATCH_ROWS] for n, a in inputs.items()})
        for i in range(0, rows, BATCH_ROWS)
    ]
    predictions = np.concatenate(parts) if parts else np.zeros((0,))
    write_arrays(output, {args.head: predictions}, args.force)
    print(f"wrote {output}: {args.head} {list(predictions.shape)}")
    return 0
