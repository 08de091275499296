"""Lists of a million numbers: a list of numbers alone is one token of the text (`NUMBER_LIST`) and one match in the
JSON door, so it reads in seconds, not minutes, with each number where it was before: the same IR, spans,
messages and canonical text as a list read item by item."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from lark import Token

from spec_lang.diagnostics import SpecError
from spec_lang.syntax import ir
from spec_lang.syntax.grammar import lark_parser
from spec_lang.syntax.json_text import LocatingDecoder, member_span
from spec_lang.syntax.jsonio import loads_json
from spec_lang.syntax.parser import parse
from spec_lang.syntax.printer import format_source

ROOT = Path(__file__).resolve().parents[2]
LISTS = [
    "1, -2, 3.5",
    "0,\n  1e3,\t-0.5 ,\n\n 7,",
    "  8  ",
    "007, 1.e5, .5, 2E-3, -0, -0.0",
    "1" + "0" * 299 + ", " + "9" * 300 + ", " + "2" * 308,  # whole numbers too long to take the short way
]


def _list(text: str) -> ir.ListExpr:
    default = parse(text).params[0].default
    assert isinstance(default, ir.ListExpr)
    return default


def _item_by_item(items: str) -> str:
    """The list with a name at its end, so that it is read item by item, its numbers where they were."""
    return f"[{items} a]" if items.rstrip().endswith(",") else f"[{items}, a]"


@pytest.mark.parametrize("items", LISTS)
def test_a_list_of_numbers_is_one_token(items: str) -> None:
    tokens = [t for t in lark_parser().parse(f"model m(xs = [{items}])").scan_values(lambda v: isinstance(v, Token))]
    assert [t.type for t in tokens] == ["NAME", "NAME", "NUMBER_LIST"]


@pytest.mark.parametrize("items", LISTS)
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_list_of_numbers_reads_as_it_does_item_by_item(items: str, end: str) -> None:
    text = f"model m(\n  xs = [{items}])\n"
    whole = _list(text.replace("\n", end))
    one_by_one = _list(f"model m(\n  xs = {_item_by_item(items)})\n".replace("\n", end))
    assert whole.items == one_by_one.items[:-1]
    assert [i.span for i in whole.items] == [i.span for i in one_by_one.items[:-1]]
    assert [type(i.value) for i in whole.items] == [type(i.value) for i in one_by_one.items[:-1]]
    bracket = text.index("])")
    line, column = text.count("\n", 0, bracket) + 1, bracket - text.rfind("\n", 0, bracket)
    assert (whole.span.line, whole.span.column, whole.span.end_line, whole.span.end_column) == (2, 8, line, column + 1)


def test_a_number_too_large_in_a_list_is_located() -> None:
    for text in ("model m(xs = [1, -1e999])", "model m(xs = [1, -1e999, a])"):
        with pytest.raises(SpecError) as caught:
            parse(text)
        assert caught.value.render() == (
            "<string>:1:19: error[E109]: the number 1e999 is too large\n"
            f"  1 | {text}\n"
            "    |                   ^^^^^\n"
            "  hint: numbers are at most about 1.8e+308"
        )


def test_a_list_where_none_may_be_is_reported_at_its_bracket() -> None:
    with pytest.raises(SpecError) as caught:
        parse("model m(a = 1 [1, 2])")
    assert caught.value.render() == (
        "<string>:1:15: error[E100]: unexpected '['\n"
        "  1 | model m(a = 1 [1, 2])\n"
        "    |               ^\n"
        "  hint: expected ',', '-', '+', ')', '/', '*'"
    )


def test_a_list_with_a_comment_in_it_is_read_item_by_item() -> None:
    text = "model m(xs = [1,  # one\n  2])\n"
    assert _list(text).items == (ir.Number(1), ir.Number(2))


def test_fmt_prints_a_list_of_numbers_as_before() -> None:
    assert format_source("model m(xs = [1,\n  -2 ,3.50,1e3,])\n") == "model m(xs = [1, -2, 3.5, 1000.0])\n"


# The JSON door --------------------------------------------------------------------------------------------------


def _decoded(text: str) -> Any:
    return LocatingDecoder(text).decode(text)


@pytest.mark.parametrize(
    "items", ["1, 2.5, -3e2, 0, -0", "\n  10000000000000000000000,\n  1E+2\n", "1" + "0" * 500, "-0.0, 1e999"]
)
def test_a_json_array_of_numbers_reads_as_it_does_item_by_item(items: str) -> None:
    whole = _decoded(f'{{"xs": [{items}]}}')["xs"]
    one_by_one = _decoded(f'{{"xs": [{items}, "a"]}}')["xs"]
    assert whole == one_by_one[:-1]
    assert [isinstance(i, float) for i in whole] == [isinstance(i, float) for i in one_by_one[:-1]]
    assert [member_span(whole, k) for k in range(len(whole))] == [member_span(one_by_one, k) for k in range(len(whole))]


def test_json_numbers_that_are_not_json_are_still_refused() -> None:
    for items in ("01", "1.", ".5", "+1", "1e", "0x10", "1 2"):
        with pytest.raises(SpecError, match="invalid JSON"):
            loads_json(f'{{"version": 1, "model": "m", "params": {{"xs": [{items}]}}}}', "m.json")


def test_an_array_of_numbers_where_the_schema_wants_objects_is_reported_once() -> None:
    numbers = ", ".join(map(str, range(20)))
    with pytest.raises(SpecError) as caught:
        loads_json(f'{{"version": 1, "model": "m",\n "inputs": [{numbers}]}}', "m.json")
    assert caught.value.render() == (
        "m.json:2:13: error[E120]: /inputs/0: expected an object, got a number\n"
        f'  2 |  "inputs": [{numbers}]}}\n'
        "    |             ^\n"
        '  hint: an input: {"name": "x", "dtype": "float", "shape": ["batch", 2]}, with "bound": n for integer '
        "labels in [0, n)"
    )


def test_the_schema_judges_no_number_by_its_value() -> None:
    """What lets the JSON door validate a long array of numbers by its first (`json_schema.abridged`): no keyword of
    the schema looks at a number's value or at an array's length or order, and its constants are strings but the
    version."""
    schema = json.loads((files("spec_lang.syntax") / "schema" / "dann.schema.json").read_text(encoding="utf-8"))
    keywords: set[str] = set()
    constants: list[Any] = []
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            keywords.update(node)
            constants += [node["const"]] if "const" in node else []
            constants += node.get("enum", [])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    by_value = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    by_array = {"prefixItems", "contains", "minItems", "maxItems", "uniqueItems", "unevaluatedItems"}
    assert not keywords & (by_value | by_array)
    assert [c for c in constants if not isinstance(c, str)] == [1]  # "version": 1, not in an array


# A million numbers ----------------------------------------------------------------------------------------------

_MEASURE = """
import re, sys, time
from pathlib import Path
from spec_lang.cli.main import main
for path in sys.argv[1:]:
    start = time.perf_counter()
    assert main(["check", path]) == 0, path
    print(f"{path} {time.perf_counter() - start:.1f}", file=sys.stderr)
print(int(re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024)
"""


def test_a_list_of_a_million_numbers_checks_in_seconds(tmp_path: Path) -> None:
    """Both doors, in a fresh process that measures its own peak memory: the high-water mark of its own memory
    (`VmHWM`), since `ru_maxrss` keeps the peak of the forking process, a test run holding PyTensor and JAX. Reading
    the text made a tree node for each number: 47 s and 1.4 GB for such a list on the 2-core development machine,
    now 6 s and 380 MB; the JSON door validated each number with the schema (about 50 s), now 7 s and 400 MB."""
    numbers = ", ".join(str(k % 10) for k in range(10**6))  # 3 MB
    (tmp_path / "big.dann").write_text(
        f"model big(xs = [{numbers}])\n"
        "input x : float[batch, 2]\ninput y : int[batch] < 2\nstack net { dense 2 softmax }\n"
        "loss xent = crossentropy(net(x), y)\noptimize sgd(lr = 0.1)\n",
        encoding="utf-8",
    )
    model = {
        "version": 1,
        "model": "big",
        "params": {"xs": "NUMBERS"},
        "inputs": [
            {"name": "x", "dtype": "float", "shape": ["batch", 2]},
            {"name": "y", "dtype": "int", "shape": ["batch"], "bound": 2},
        ],
        "stacks": [{"name": "net", "layers": [{"dense": 2, "activation": "softmax"}]}],
        "losses": [{"name": "xent", "value": {"call": "crossentropy", "args": [{"call": "net", "args": ["x"]}, "y"]}}],
        "optimize": {"optimizer": {"call": "sgd", "kwargs": {"lr": 0.1}}},
    }
    (tmp_path / "big.json").write_text(json.dumps(model).replace('"NUMBERS"', f"[{numbers}]"), encoding="utf-8")
    paths = [str(tmp_path / "big.dann"), str(tmp_path / "big.json")]
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *paths], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    seconds = [float(line.rsplit(" ", 1)[1]) for line in result.stderr.splitlines()]
    peak = int(result.stdout.splitlines()[-1])
    assert all(s < 40 for s in seconds), result.stderr  # generous: a slow machine, other work beside it
    assert peak < 2**30, f"peak memory {peak / 2**20:.0f} MiB"
    assert re.fullmatch(r".*big\.dann: ok\n.*big\.json: ok\n\d+\n", result.stdout, re.DOTALL)
