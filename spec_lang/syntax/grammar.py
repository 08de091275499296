"""The grammar: where `dann.lark` lives (inside the installed package, or in the source checkout's `grammar/`), and
the LALR parser built from it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark

from spec_lang.diagnostics import Span

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # spec_lang/


def grammar_path() -> Path:
    """The path of `dann.lark`.

    A wheel carries it as `spec_lang/grammar/dann.lark` (pyproject's force-include); a source checkout
    and an editable install read the repository's `grammar/dann.lark`, the only copy under version control.
    """
    for candidate in (_PACKAGE_DIR / "grammar" / "dann.lark", _PACKAGE_DIR.parent / "grammar" / "dann.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("grammar/dann.lark is missing from this installation of spec-lang")


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"), parser="lalr", propagate_positions=True, maybe_placeholders=True
    )


def token_span(meta_or_token) -> Span | None:
    """Where a token or a rule's match is in the text; None for an empty match."""
    if getattr(meta_or_token, "empty", False):
        return None
    return Span(meta_or_token.line, meta_or_token.column, meta_or_token.end_line, meta_or_token.end_column)
