"""The JSON door: every example survives text → IR → JSON → IR, the hand-written `examples/seed_dann.json`
is the same model as `examples/seed_dann.dann`, and bad JSON is reported at its JSON pointer."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import spec_lang
from spec_lang.diagnostics import SpecError
from spec_lang.syntax import ir
from spec_lang.syntax.jsonio import dump_json, dumps_json, load_json, loads_json
from spec_lang.syntax.parser import parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DANN_FILES = sorted(EXAMPLES.rglob("*.dann"))  # with examples/lib/, whose files are only meant to be included
SCHEMA = json.loads((files("spec_lang.syntax") / "schema" / "dann.schema.json").read_text(encoding="utf-8"))


def _parse(path: Path) -> ir.Model:
    return parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize("path", DANN_FILES, ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_example_survives_json(path: Path) -> None:
    model = _parse(path)
    data = dump_json(model)
    assert list(Draft202012Validator(SCHEMA).iter_errors(data)) == []
    assert load_json(data) == model
    text = dumps_json(model)
    assert text.endswith("}\n") and json.loads(text) == data
    assert loads_json(text, "model.json") == model


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_hand_written_json_is_the_dann_model() -> None:
    path = EXAMPLES / "seed_dann.json"
    assert loads_json(path.read_text(encoding="utf-8"), str(path)) == _parse(EXAMPLES / "seed_dann.dann")
    spec = spec_lang.load(path, hp_lambda=0.3)
    assert spec.program.hypers["hp_lambda"] == 0.3
    assert spec.model == spec_lang.load(EXAMPLES / "seed_dann.dann", hp_lambda=0.3).model


def test_empty_parts_are_left_out() -> None:
    assert dump_json(ir.Model("m")) == {"version": 1, "model": "m"}
    assert load_json({"version": 1, "model": "m", "params": {}, "inputs": [], "lets": []}) == ir.Model("m")


def test_a_name_given_twice_where_json_needs_an_object_cannot_be_dumped() -> None:
    model = ir.Model("m", params=(ir.Param("a", ir.Number(1)), ir.Param("a", ir.Number(2))))
    with pytest.raises(ValueError, match="the parameter 'a' is given twice"):
        dump_json(model)


# Errors --------------------------------------------------------------------------------------------

SEED = json.loads((EXAMPLES / "seed_dann.json").read_text(encoding="utf-8"))


def _rendered(data: object) -> str:
    with pytest.raises(SpecError) as caught:
        load_json(data, "bad.json")
    assert all(d.code == "E120" for d in caught.value.diagnostics)
    return caught.value.render()


def _edited(path: str, value: object) -> dict:
    """The seed with the value at a JSON pointer replaced (or, for `...`, removed)."""
    data = json.loads(json.dumps(SEED))
    *parents, last = [int(p) if p.isdigit() else p for p in path.strip("/").split("/")]
    target = data
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("/stacks/0/layers/1/activaton", "tanh",
     "bad.json: error[E120]: /stacks/0/layers/1/activaton: unknown key 'activaton'\n"
     "  hint: did you mean 'activation'?"),
    ("/inputs/0/shape", "batch",
     "bad.json: error[E120]: /inputs/0/shape: expected an array, got a string\n"
     '  hint: the shape: a list of sizes, e.g. ["batch", 2]'),
    ("/stacks/1/layers", ...,
     "bad.json: error[E120]: /stacks/1: missing key: one of 'layers' or 'template'\n"
     '  hint: a stack: {"name": "net", "options": {"lr_mult": 0.1}, "layers": [layers]}, or one made from a template: '
     '{"name": "enc", "template": {"call": "block", "args": [64]}}'),
    ("/stacks/1/template", {"call": "block", "args": [8]},
     "bad.json: error[E120]: /stacks/1: give 'layers' or 'template', not both"),
    ("/includes", ["lib/a#b.dann"],
     "bad.json: error[E120]: /includes/0: 'lib/a#b.dann' is not a file path\n"
     '  hint: a path relative to the folder of this file, with / between folders, and no ", \\, # or line break'),
    ("/version", 7,
     "bad.json: error[E120]: /version: this file is version 7; this specc reads version 1\n"
     "  hint: read it with the specc that wrote it, or write it again as version 1"),
    ("/version", "1",
     "bad.json: error[E120]: /version: expected 1, got '1'\n"
     '  hint: write "version": 1'),
    ("/precision", "float31",
     "bad.json: error[E120]: /precision: 'float31' is not one of float32, float64\n"
     "  hint: did you mean 'float32'?"),
    ("/losses/1/value/op", "%",
     "bad.json: error[E120]: /losses/1/value/op: '%' is not one of +, -, *, /\n"
     '  hint: one of "+", "-", "*", "/" (or "neg" with an "operand")'),
    ("/lets/0/value", {"cal": "features", "args": ["xs"]},
     "bad.json: error[E120]: /lets/0/value: missing key: one of 'call' or 'op'"),
    ("/stacks/0/layers/0", {"units": 3},
     "bad.json: error[E120]: /stacks/0/layers/0: missing key: one of 'dense', 'layer' or 'for'"),
    ("/heads/0/value", "1x",
     "bad.json: error[E120]: /heads/0/value: '1x' is not a name"),
    ("/seed", None,
     "bad.json: error[E120]: /seed: expected a number, true or false, a string, an array or an object, got null"),
    ("/optimize/optimizer", "sgd",
     "bad.json: error[E120]: /optimize/optimizer: expected an object, got a string"),
])
def test_a_schema_error_names_its_json_pointer(path: str, value: object, expected: str) -> None:
    assert _rendered(_edited(path, value)).startswith(expected)


def test_every_schema_error_is_reported_in_path_order() -> None:
    data = _edited("/stacks/0/layers/0/dense", "1x")
    data["inputs"][2]["dtype"] = "integer"
    data["model"] = 3
    data["extra"] = True
    messages = [line for line in _rendered(data).splitlines() if not line.startswith("  ")]
    assert messages == [
        "bad.json: error[E120]: /extra: unknown key 'extra'",
        "bad.json: error[E120]: /inputs/2/dtype: 'integer' is not one of float, int",
        "bad.json: error[E120]: /model: expected a string, got a number",
        "bad.json: error[E120]: /stacks/0/layers/0/dense: '1x' is not a name",
    ]


def test_a_misspelt_activation_is_reported_by_the_checker(tmp_path: Path) -> None:
    """The schema takes any name for an activation (in a template it may be a parameter); the checker knows them."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_edited("/stacks/2/layers/1/activation", "sigmod")), encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad\.json:1:\d+: error\[E206\]: unknown activation 'sigmod'\n"
                                        r"(.*\n){2}  hint: did you mean 'sigmoid'\?"):
        spec_lang.load(path)


def test_not_an_object_at_the_top_level() -> None:
    assert _rendered([1, 2]).startswith("bad.json: error[E120]: top level: expected an object, got an array")


def test_invalid_json_text_is_located() -> None:
    with pytest.raises(SpecError) as caught:
        loads_json('{"version": 1,\n "model": "m",\n "seed": 1,}\n', "bad.json")
    assert caught.value.render() == (
        "bad.json:3:12: error[E120]: invalid JSON: Expecting property name enclosed in double quotes\n"
        '  3 |  "seed": 1,}\n'
        "    |            ^\n"
        "  hint: JSON wants double-quoted keys and strings, and commas between items but not after the last")


def test_a_key_given_twice_is_an_error() -> None:
    with pytest.raises(SpecError, match="the key 'model' is given twice in one object"):
        loads_json('{"version": 1, "model": "m", "model": "n"}', "bad.json")


def test_load_reports_a_bad_json_file_by_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_edited("/precision", "double")), encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad\.json:1:\d+: error\[E120\]: /precision: 'double' is not one of"):
        spec_lang.load(path)


def test_the_nesting_scan_reads_an_unterminated_string_once() -> None:
    """The depth scan before decoding takes an unterminated string to the end of the text in one match, so text full
    of quotes is scanned in one pass (a backtracking pattern rescanned it from every quote: 100 KB took minutes)."""
    from spec_lang.syntax.json_text import _JSON_BRACKETS, too_deep_text

    text = '{"a": "' + '\\"' * 50_000 + "\n" + '\\\n' * 1000
    assert [m.group()[:2] for m in _JSON_BRACKETS.finditer(text)] == ["{", '"a', '"\\']
    assert too_deep_text(text) is None
    with pytest.raises(spec_lang.SpecError, match="invalid JSON"):
        loads_json(text, "m.json")
