"""Reading a trained run for `specc eval` and `specc predict`: `--checkpoint` names a checkpoint or a run folder,
and the `--set` values and `--seed` it was trained with are recovered from it (`spec_lang.experiments.runs`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from spec_lang.api import Spec
from spec_lang.cli.options import overrides, print_warnings
from spec_lang.experiments.runs import load_trained

if TYPE_CHECKING:
    from spec_lang.runtime.checkpoint import Checkpoint


def load_checkpointed_run(args: argparse.Namespace) -> tuple[Spec, Checkpoint]:
    """The spec as `--checkpoint` (a checkpoint or a run folder) was trained with, `--set` winning, and the
    checkpoint checked against it; read before compiling, so that a damaged or foreign checkpoint fails fast. What
    was recovered is said on standard error."""
    spec, saved, note = load_trained(
        args.file,
        args.checkpoint,
        overrides(args.set),
        allow_outside=args.allow_outside_includes,
        max_parameter_memory=args.max_parameter_memory,
        strict=args.strict,
    )
    print_warnings(spec)
    if note:
        print(f"specc: {note}", file=sys.stderr)
    return spec, saved
