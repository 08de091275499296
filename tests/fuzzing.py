"""Fuzzing the front end: inputs made from valid specs by mutation, and what `specc check` makes of one.

`make_input(rng)` draws one input, a `.dann` or a `.json` file's bytes: a real spec (the examples and the golden
diagnostics corpus) or a sentence derived from the grammar, with one to three mutations: tokens deleted,
duplicated, swapped or replaced, lines repeated, deep nesting, huge numbers, random or non-UTF-8 bytes,
look-alike characters, truncation, an empty file; JSON models are also mutated as data (keys dropped, renamed or
added, values replaced, the version changed). `check(path)` runs `specc check PATH` in this process under a time
budget and classifies what happened: the spec is accepted, or rejected with diagnostics that each name a place
(`file:line:col`, or a JSON pointer), or something is wrong: an unlocated diagnostic, a crash (any exception out
of the command) or a hang. `tests/test_fuzz.py` runs a few hundred inputs; `bench/fuzz.py` runs the long campaign.

>>> import random
>>> made = make_input(random.Random(1))
>>> made.suffix in (".dann", ".json") and isinstance(made.data, bytes)
True
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import re
import signal
import sys
import traceback
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from json_mutations import mutate_json
from mutations import NAMES, mutate_text

from spec_lang.cli.main import parser
from spec_lang.diagnostics import SpecError
from spec_lang.syntax.grammar import lark_parser as _parser
from spec_lang.syntax.jsonio import dump_json
from spec_lang.syntax.parser import parse

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "examples" / "lib"  # included by an example as "lib/blocks.dann": copied beside each input

Kind = Literal["accepted", "diagnostics", "unlocated", "crash", "hang"]
FAILURES: tuple[Kind, ...] = ("unlocated", "crash", "hang")


@dataclass(frozen=True)
class Input:
    suffix: str  # ".dann" or ".json": the door the file goes through
    data: bytes
    how: str  # the seed and the mutations, for reports


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    detail: str  # the codes reported, or what went wrong: a crash's exception and innermost frame of specc

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES


# Running one input ---------------------------------------------------------------------------------------------

# The first line of a rendered diagnostic: `FILE:LINE:COL: error[E201]: …`, or `FILE: error[E120]: …` without a
# span.
_HEADER = re.compile(
    r"(?P<file>[^:]*)(?P<place>:\d+:\d+)?: (?:error|warning)\[(?P<code>[EW]\d{3})\]: "
    r"(?P<message>.*)"
)


class _OverBudget(BaseException):
    """Raised in the checked code when its time is up; a BaseException, so no `except Exception` swallows it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise _OverBudget

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@lru_cache(maxsize=8)
def _arguments(path: Path) -> argparse.Namespace:
    return parser().parse_args(["check", str(path)])  # parsed once: building the parser takes half the time


def _specc_check(path: Path) -> int:
    """`specc check PATH` as `spec_lang.cli.main.main` runs it, with the command line parsed once per path."""
    args = _arguments(path)
    try:
        return args.run(args)
    except SpecError as error:
        print(error.render(), file=sys.stderr)
        return 1


def check(path: Path, budget: float = 5.0) -> Outcome:
    """Run `specc check PATH` in this process (main thread only: the budget is a SIGALRM timer) and classify it."""
    err = io.StringIO()
    try:
        with _time_limit(budget), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            status = _specc_check(path)
    except _OverBudget:
        return Outcome("hang", f"over {budget:g} s")
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - anything out of the command is a crash, panics included
        return Outcome("crash", crash_class(error))
    headers = [line for line in err.getvalue().split("\n") if line and not line.startswith("  ")]
    matches = [_HEADER.fullmatch(line) for line in headers]
    unlocated = [line for line, match in zip(headers, matches, strict=True) if not _located(match)]
    if unlocated:
        return Outcome("unlocated", unlocated[0].replace(str(path), path.name)[:300])
    if status not in (0, 1) or (status == 1 and not headers):
        return Outcome("crash", f"exit status {status} with {len(headers)} diagnostics")
    codes = " ".join(sorted({match["code"] for match in matches if match}))
    return Outcome("accepted" if status == 0 else "diagnostics", codes)


def _located(match: re.Match[str] | None) -> bool:
    """Whether a diagnostic names its place: a line and column, or for the JSON door a JSON pointer."""
    if match is None:
        return False
    return bool(match["place"]) or (match["code"] == "E120" and match["message"].startswith(("/", "top level")))


def crash_class(error: BaseException) -> str:
    """The exception's type and the innermost frame of specc it passed through: one line per kind of crash."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if "/spec_lang/" in frame.filename]
    where = ours[-1] if ours else frames[-1] if frames else None
    place = f" in {Path(where.filename).name}:{where.lineno} {where.name}" if where else ""
    return f"{type(error).__name__}{place}"


def run(made: Input, folder: Path, budget: float = 5.0) -> Outcome:
    """Write an input into `folder` (which has a copy of `examples/lib`) and check it."""
    path = folder / f"fuzz{made.suffix}"
    path.write_bytes(made.data)
    return check(path, budget)


def prepare(folder: Path) -> Path:
    """A working folder for `run`: the library an example includes is copied into it."""
    (folder / "lib").mkdir(parents=True, exist_ok=True)
    for file in LIBRARY.glob("*.dann"):
        (folder / "lib" / file.name).write_bytes(file.read_bytes())
    return folder


# Seeds ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def dann_seeds() -> tuple[tuple[str, str], ...]:
    """(name, text) of every example and every case of the golden diagnostics corpus."""
    corpus = ROOT / "tests" / "diagnostics"
    files = [*sorted((ROOT / "examples").rglob("*.dann")), *sorted(corpus.glob("*.dann"))]
    return tuple(
        (file.relative_to(ROOT).as_posix(), file.read_text(encoding="utf-8", errors="replace")) for file in files
    )


@lru_cache(maxsize=1)
def json_seeds() -> tuple[tuple[str, str], ...]:
    """(name, JSON text) of the JSON examples and cases of the corpus, and the JSON form of every `.dann` seed that
    parses."""
    files = [*sorted((ROOT / "examples").glob("*.json")), *sorted((ROOT / "tests" / "diagnostics").glob("*.json"))]
    seeds = [(file.relative_to(ROOT).as_posix(), file.read_text(encoding="utf-8")) for file in files]
    for name, text in dann_seeds():
        with contextlib.suppress(SpecError, ValueError):  # a case that does not parse, or no JSON form
            seeds.append((f"{name} as JSON", json.dumps(dump_json(parse(text)), indent=1)))
    return tuple(seeds)


# Sentences of the grammar --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _grammar() -> tuple[dict[str, list[list[str]]], dict[str, int], dict[str, Any]]:
    """The grammar's rules by name, the least derivation height of each, and its terminals' patterns."""
    rules: dict[str, list[list[str]]] = defaultdict(list)
    for rule in _parser().rules:
        rules[rule.origin.name].append([symbol.name for symbol in rule.expansion])
    terminals = {terminal.name: terminal.pattern for terminal in _parser().terminals}
    height: dict[str, int] = {}
    changed = True
    while changed:  # a fixpoint: a rule's height is one more than the highest symbol of its lowest expansion
        changed = False
        for name, expansions in rules.items():
            best = min(
                (
                    1 + max((height.get(s, 0) if s in rules else 0 for s in expansion), default=0)
                    for expansion in expansions
                    if all(s in height or s not in rules for s in expansion)
                ),
                default=None,
            )
            if best is not None and best != height.get(name):
                height[name], changed = best, True
    return rules, height, terminals


def sentence(rng: random.Random, depth: int = 10) -> str:
    """A random sentence of the grammar; past `depth` levels, each rule takes one of its shortest expansions."""
    rules, height, terminals = _grammar()
    words: list[str] = []
    pending: list[tuple[str, int]] = [("start", 0)]
    while pending:
        symbol, level = pending.pop()
        if symbol not in rules:
            words.append(_terminal(rng, symbol, terminals[symbol]))
            continue
        expansions = rules[symbol]
        if level >= depth:
            lowest = min(_height(e, rules, height) for e in expansions)
            expansions = [e for e in expansions if _height(e, rules, height) == lowest]
        pending.extend((s, level + 1) for s in reversed(rng.choice(expansions)))
    return " ".join(words) + "\n"


def _height(expansion: list[str], rules: dict[str, list[list[str]]], height: dict[str, int]) -> int:
    return max((height[s] for s in expansion if s in rules), default=0)


def _terminal(rng: random.Random, name: str, pattern: Any) -> str:
    if pattern.type == "str":
        return pattern.value
    if name == "NAME":
        return rng.choice(NAMES)
    if name == "NUMBER":
        return rng.choice(["0", "1", "2", "3", "8", "0.5", "0.01", "1e-3", "10", "2.5"])
    if name == "NUMBER_LIST":
        numbers = ["0", "1", "-2", "8", "0.5", "-0.01", "1e-3", "10"]
        return "[" + ", ".join(rng.choice(numbers) for _ in range(rng.randint(1, 4))) + rng.choice(["]", ",]"])
    return '"lib/blocks.dann"'  # PATH


# Inputs --------------------------------------------------------------------------------------------------------


def make_input(rng: random.Random) -> Input:
    """One input: a `.dann` file (a real spec or a sentence of the grammar) or a `.json` file, mutated."""
    if rng.random() < 0.3:
        name, text = rng.choice(json_seeds())
        data, done = mutate_json(rng, text)
        return Input(".json", data, f"{name}: {', '.join(done)}")
    draw = rng.random()
    if draw < 0.2:
        name, text = "a sentence of the grammar", sentence(rng)
    elif draw < 0.6:  # the examples: valid models, so that some mutants are too and get through the checker
        name, text = rng.choice([seed for seed in dann_seeds() if seed[0].startswith("examples/")])
    else:
        name, text = rng.choice(dann_seeds())
    data, done = mutate_text(rng, text)
    return Input(".dann", data, f"{name}: {', '.join(done)}")
