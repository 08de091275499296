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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from spec_lang.cli.main import parser
from spec_lang.diagnostics import SpecError
from spec_lang.syntax.grammar import lark_parser as _parser
from spec_lang.syntax.jsonio import dump_json
from spec_lang.syntax.parser import parse
from spec_lang.syntax.syntax_errors import keywords as _keywords

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

# Names for NAME tokens: words the checker knows, so that some sentences get far into checking. No keywords: a
# keyword where the grammar wants a name may be read as the keyword.
NAMES = (
    "x",
    "xs",
    "xt",
    "y",
    "ys",
    "batch",
    "features",
    "label",
    "domain",
    "net",
    "fs",
    "h",
    "hidden",
    "width",
    "hp_lambda",
    "lr",
    "lambda",
    "float",
    "int",
    "float32",
    "float64",
    "tanh",
    "relu",
    "sigmoid",
    "softmax",
    "linear",
    "reverse",
    "outer",
    "dropout",
    "batchnorm",
    "conv2d",
    "flatten",
    "reshape",
    "maxpool",
    "crossentropy",
    "bce",
    "mse",
    "entropy",
    "l2",
    "sgd",
    "adam",
    "rmsprop",
    "momentum",
    "normal",
    "zeros",
    "std",
    "weights",
    "biases",
    "dann_lambda",
    "warmup",
    "constant",
    "value",
    "block",
    "lr_mult",
    "frozen",
)


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


# Mutations of text ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s+|#[^\n]*|[A-Za-z_]\w*|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|"[^"\n]*"?|.', re.DOTALL)
HUGE_NUMBERS = (
    "0",
    "-1",
    "1e999",
    "1e-999",
    "1000000000",
    "123456789012345678901234567890",
    "1" + "0" * 400,
    "9" * 5000,
    "0" * 5000 + "1",
    "0.000000000000000000000001",
    "1e308",
    "nan",
    "inf",
    "-0",
)
PUNCTUATION = tuple('()[]{},;:=<+-*/"#.')
HOSTILE_NAMES = (
    "true",
    "false",
    "dense",
    "for",
    "model",
    "__import__",
    "eval",
    "np",
    "pt",
    "build",
    "params",
    "print",
    "float",
    "SEED",
    "lambda",
    "class",
    "None",
    "os",
)
LOOK_ALIKES = (
    "\u0430",
    "\u043e",
    "\u0435",
    "\u03bf",
    "\uff41",
    "\u200b",
    "\ufeff",
    "\u00a0",
    "\u2028",
    "\x00",
    "\x0b",
    "\x0c",
    "\x1b",
    "\r",
    "\t",
    "\u0301",
    "é",
    "💥",
)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _significant(tokens: list[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if not t.isspace()] or [0]


def _vocabulary(rng: random.Random) -> str:
    pool = rng.choice([_keywords(), PUNCTUATION, NAMES, HOSTILE_NAMES, HUGE_NUMBERS])
    return rng.choice(pool)


def _delete(rng: random.Random, tokens: list[str]) -> list[str]:
    i = rng.choice(_significant(tokens))
    return tokens[:i] + tokens[i + 1 :]


def _duplicate(rng: random.Random, tokens: list[str]) -> list[str]:
    i = rng.choice(_significant(tokens))
    return tokens[: i + 1] + [" ", tokens[i]] + tokens[i + 1 :] if tokens else tokens


def _swap(rng: random.Random, tokens: list[str]) -> list[str]:
    i, j = rng.choice(_significant(tokens)), rng.choice(_significant(tokens))
    tokens = list(tokens)
    if tokens:
        tokens[i], tokens[j] = tokens[j], tokens[i]
    return tokens


def _replace(rng: random.Random, tokens: list[str]) -> list[str]:
    i = rng.choice(_significant(tokens))
    return tokens[:i] + [_vocabulary(rng)] + tokens[i + 1 :]


def _insert(rng: random.Random, tokens: list[str]) -> list[str]:
    i = rng.randrange(len(tokens) + 1)
    return tokens[:i] + [" ", _vocabulary(rng), " "] + tokens[i:]


def _respell(rng: random.Random, tokens: list[str]) -> list[str]:
    """Replace a name with another name of the same text, or a number with a small one: often still a model."""
    i = rng.choice(_significant(tokens))
    if tokens and tokens[i][:1].isdigit():
        return tokens[:i] + [rng.choice(["0", "1", "2", "3", "7", "8", "64", "0.5", "0.1", "1.0"])] + tokens[i + 1 :]
    names = [t for t in tokens if t[:1].isalpha() or t[:1] == "_"] or ["x"]
    return tokens[:i] + [rng.choice(names)] + tokens[i + 1 :]


def _huge_number(rng: random.Random, tokens: list[str]) -> list[str]:
    numbers = [i for i, t in enumerate(tokens) if t[:1].isdigit()] or _significant(tokens)
    i = rng.choice(numbers)
    return tokens[:i] + [rng.choice(HUGE_NUMBERS)] + tokens[i + 1 :]


def _big(rng: random.Random) -> int:
    """A count from 1 to about 5,000, small ones as likely as large ones (log-uniform)."""
    return int(10 ** rng.uniform(0, 3.7))


def _nest(rng: random.Random, tokens: list[str]) -> list[str]:
    """Wrap a name or number in many brackets, signs or calls."""
    operands = [i for i, t in enumerate(tokens) if t[:1].isalnum() or t[:1] == "_"] or _significant(tokens)
    i, k = rng.choice(operands), _big(rng)
    opening, closing = rng.choice(
        [
            ("(", ")"),
            ("[", "]"),
            ("-", ""),
            ("f(", ")"),
            ("- (", ")"),
            ("{", "}"),
            ("reverse(", ", lambda = 1)"),
            ("for h in [1] { ", " }"),
        ]
    )
    return tokens[:i] + [opening * k, tokens[i] if tokens else "1", closing * k] + tokens[i + 1 :]


def _repeat(rng: random.Random, tokens: list[str]) -> list[str]:
    """Repeat a stretch of tokens many times, e.g. a layer, a statement or a term of a sum."""
    i = rng.randrange(len(tokens) + 1)
    j = min(len(tokens), i + rng.randint(1, 12))
    stretch = "".join(tokens[i:j]) or rng.choice(["+ 1", "dense 3 tanh;", "let a = x\n"])
    return tokens[:j] + [stretch * _big(rng)] + tokens[j:]


def _delete_line(rng: random.Random, tokens: list[str]) -> list[str]:
    lines = "".join(tokens).split("\n")
    del lines[rng.randrange(len(lines))]
    return _tokens("\n".join(lines))


def _duplicate_line(rng: random.Random, tokens: list[str]) -> list[str]:
    lines = "".join(tokens).split("\n")
    i = rng.randrange(len(lines))
    return _tokens("\n".join(lines[: i + 1] + lines[i:]))


def _look_alike(rng: random.Random, tokens: list[str]) -> list[str]:
    text = "".join(tokens)
    i = rng.randrange(len(text) + 1)
    return _tokens(text[:i] + rng.choice(LOOK_ALIKES) + text[i + 1 :])


def _truncate(rng: random.Random, tokens: list[str]) -> list[str]:
    text = "".join(tokens)
    return _tokens(text[: rng.randrange(len(text) + 1)])


def _empty(rng: random.Random, tokens: list[str]) -> list[str]:
    return [rng.choice(["", " ", "\n", "# only a comment\n"])]


TEXT_MUTATIONS: tuple[Callable[[random.Random, list[str]], list[str]], ...] = (
    _delete,
    _duplicate,
    _swap,
    _replace,
    _insert,
    _respell,
    _respell,
    _respell,
    _huge_number,
    _nest,
    _repeat,
    _delete_line,
    _duplicate_line,
    _duplicate_line,
    _look_alike,
    _truncate,
    _empty,
)


def _bytes(rng: random.Random, data: bytes) -> bytes:
    """Random bytes at a random place: often not UTF-8."""
    i = rng.randrange(len(data) + 1)
    noise = rng.choice(
        [
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))),
            b"\xff",
            b"\xc3",
            b"\xed\xa0\x80",
            b"\xef\xbb\xbf",
            b"\x00",
            b"\xe2\x80",
        ]
    )
    return data[:i] + noise + data[i:]


def mutate_text(rng: random.Random, text: str) -> tuple[bytes, list[str]]:
    """Text with one to three mutations, as bytes (a last mutation may insert bytes that are not UTF-8)."""
    tokens, done = _tokens(text), []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        mutation = rng.choice(TEXT_MUTATIONS)
        tokens = mutation(rng, tokens)
        done.append(mutation.__name__.strip("_"))
    data = "".join(tokens).encode("utf-8", errors="surrogatepass")
    if rng.random() < 0.1:
        data, done = _bytes(rng, data), [*done, "bytes"]
    return data, done


# Mutations of JSON data ----------------------------------------------------------------------------------------

JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    10**30,
    float("inf"),
    float("nan"),
    "",
    "x",
    "true",
    "dense",
    "for",
    "x y",
    'a"b',
    "a\nb",
    "__import__('os').system('true')",
    "\u0430",
    [],
    {},
    [1, 2],
    {"call": "f"},
    {"op": "neg"},
    {"op": "%", "left": 1, "right": 2},
    {"call": "reverse", "args": ["x"], "kwargs": {"lambda": 1}},
)
JSON_KEYS = (
    "version",
    "model",
    "params",
    "inputs",
    "stacks",
    "name",
    "layers",
    "dense",
    "activation",
    "layer",
    "call",
    "args",
    "kwargs",
    "op",
    "left",
    "right",
    "operand",
    "for",
    "in",
    "body",
    "options",
    "template",
    "precison",
    "",
    "a/b~c",
    "\u0430",
)


def _containers(data: Any) -> list[Any]:
    """Every object and array in the data, found without recursion."""
    found, pending = [], [data]
    while pending:
        item = pending.pop()
        if isinstance(item, (dict, list)):
            found.append(item)
            pending.extend(item.values() if isinstance(item, dict) else item)
    return found


def _some_container(rng: random.Random, data: Any) -> dict | list:
    return rng.choice(_containers(data) or [[]])


def _json_drop(rng: random.Random, data: Any) -> None:
    target = _some_container(rng, data)
    if target:
        key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
        del target[key]


def _json_replace(rng: random.Random, data: Any) -> None:
    target = _some_container(rng, data)
    if target:
        key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
        target[key] = json.loads(json.dumps(rng.choice(JSON_VALUES)))


def _json_rename(rng: random.Random, data: Any) -> None:
    objects = [c for c in _containers(data) if isinstance(c, dict) and c]
    if objects:
        target = rng.choice(objects)
        key = rng.choice(list(target))
        target[rng.choice(JSON_KEYS)] = target.pop(key)


def _json_nest(rng: random.Random, data: Any) -> None:
    target = _some_container(rng, data)
    if target:
        key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
        value = target[key]
        for _ in range(_big(rng)):
            value = rng.choice([[value], {"op": "neg", "operand": value}, {"call": "f", "args": [value]}])
        target[key] = value


def _json_version(rng: random.Random, data: Any) -> None:
    if isinstance(data, dict):
        data["version"] = rng.choice([0, 2, 99, "1", True, None, 1.5, -1, [1]])


JSON_MUTATIONS: tuple[Callable[[random.Random, Any], None], ...] = (
    _json_drop,
    _json_replace,
    _json_rename,
    _json_nest,
    _json_version,
)


def mutate_json(rng: random.Random, text: str) -> tuple[bytes, list[str]]:
    """A JSON model with one or two mutations of its data, then sometimes one of its text."""
    data, done = json.loads(text), []
    for _ in range(rng.randint(1, 2)):
        mutation = rng.choice(JSON_MUTATIONS)
        mutation(rng, data)
        done.append(mutation.__name__.strip("_"))
    try:
        text = json.dumps(data, indent=rng.choice([None, 1]))
    except RecursionError:  # nested too deeply for the encoder: write the text by hand
        text, done = "[" * 5000 + "]" * 5000, [*done, "deep text"]
    if rng.random() < 0.3:
        data, more = mutate_text(rng, text)
        return data, done + more
    return text.encode("utf-8", errors="surrogatepass"), done


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
