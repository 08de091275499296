"""docs/errors.md lists every diagnostic code with an example from the golden corpus; it is written by
docs/error_codes.py, and these tests fail when it is out of date. To update it: .venv/bin/python docs/error_codes.py
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("error_codes", ROOT / "docs" / "error_codes.py")
error_codes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(error_codes)


def test_the_committed_doc_is_what_the_generator_writes() -> None:
    assert error_codes.OUTPUT.read_text(encoding="utf-8") == error_codes.render(), \
        "docs/errors.md is out of date: run .venv/bin/python docs/error_codes.py"


def test_every_code_specc_reports_is_listed_once() -> None:
    source = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "spec_lang").rglob("*.py"))
    listed = [code for code, _, _ in error_codes.CODES]
    assert len(listed) == len(set(listed))
    assert set(re.findall(r'"([EW]\d{3})"', source)) == set(listed)


@pytest.mark.parametrize(("code", "case"), [(code, case) for code, _, case in error_codes.CODES])
def test_each_example_reports_its_code(code: str, case: str) -> None:
    if case.endswith((".dann", ".json", ".args")):
        assert f"[{code}]" in error_codes.example(case, code).splitlines()[0]
    else:
        assert case.startswith("reported by")
