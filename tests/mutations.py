"""Mutations of a spec's text for the front end's fuzzing (`fuzzing.py`; a JSON model's data: `json_mutations.py`):
tokens deleted, duplicated, swapped, replaced or respelt, huge numbers, deep nesting, stretches repeated, lines
deleted or repeated, look-alike and control characters, random and non-UTF-8 bytes, truncation, an empty file.

>>> import random
>>> data, done = mutate_text(random.Random(0), "model m()")
>>> isinstance(data, bytes) and len(done) >= 1
True
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from spec_lang.syntax.syntax_errors import keywords as _keywords

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


def repeat_count(rng: random.Random) -> int:
    """A count from 1 to about 5,000, small ones as likely as large ones (log-uniform)."""
    return int(10 ** rng.uniform(0, 3.7))


def _nest(rng: random.Random, tokens: list[str]) -> list[str]:
    """Wrap a name or number in many brackets, signs or calls."""
    operands = [i for i, t in enumerate(tokens) if t[:1].isalnum() or t[:1] == "_"] or _significant(tokens)
    i, k = rng.choice(operands), repeat_count(rng)
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
    return tokens[:j] + [stretch * repeat_count(rng)] + tokens[j:]


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
