"""The `specc` command line: check, compile (with a summary or `--emit ir|json|python`), fmt, graph and schema;
data, train, eval and predict.

Exit status: 0 success, 1 a problem with the user's input (diagnostics printed), 2 bad command-line usage; an
interrupted `train` writes its checkpoint and exits with 128 + the signal's number (130 for Ctrl-C).

Each command is a module of `spec_lang.cli` with `add_arguments(parser)` and `run(args) -> int`, listed in
`COMMANDS`. Building the parser imports no PyTensor: the commands import it only when they compile a model.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Protocol

from spec_lang import __version__
from spec_lang.cli import check, data, evaluate, fmt, graph, predict, reproduce, schema, sweep, train
from spec_lang.cli import compile as compile_
from spec_lang.diagnostics import SpecError


class CommandModule(Protocol):
    """What a command's module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


@dataclass(frozen=True)
class Command:
    """A subcommand: its module, its one-line help and, when longer, its description (default: the help)."""

    module: CommandModule
    help: str
    description: str | None = None


COMMANDS: dict[str, Command] = {
    "check": Command(check, "check a spec and print its diagnostics"),
    "compile": Command(compile_, "check, lower and compile a spec; print a summary"),
    "fmt": Command(fmt, "print specs in canonical form"),
    "graph": Command(graph, "draw a spec's network, reversal points marked: DOT text, or a .png or .svg picture"),
    "schema": Command(schema, "print the JSON Schema of the JSON form of specs"),
    "data": Command(
        data,
        "write a built-in data set",
        "write a built-in data set: `moons`, the DANN paper's toy (scikit-learn's make_moons(150, "
        "noise=0.05), source random_state 1, target random_state 2 rotated by 35 degrees, both centred on "
        "the source mean and scaled by 2) as xs, ys (source), xt (target) and yt (target labels, for "
        "evaluation)",
    ),
    "train": Command(train, "train a spec on data files; write checkpoints and a log"),
    "eval": Command(evaluate, "print metrics of a trained spec on labelled data"),
    "predict": Command(predict, "write the predictions of a head of a trained spec"),
    "reproduce": Command(reproduce, "reproduce a published result with the bundled examples"),
    "sweep": Command(sweep, "train a grid of parameter settings × seeds on Ray Tune; select by a validator"),
}


def parser() -> argparse.ArgumentParser:
    """The `specc` argument parser: a subcommand per entry of `COMMANDS`; the parsed arguments carry the command's
    `run` as `args.run`."""
    top = argparse.ArgumentParser(
        prog="specc", description="Compile .dann model specs for domain-adversarial networks to PyTensor."
    )
    top.add_argument("--version", action="version", version=f"specc {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.description or command.help)
        command.module.add_arguments(sub)
        sub.set_defaults(run=command.module.run)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run `specc` with `argv` (default: the process's arguments) and return the exit status; a usage error exits
    (status 2) from argparse."""
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
