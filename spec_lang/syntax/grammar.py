"""Where the grammar lives: inside the installed package, or in the source checkout's `grammar/`."""

from __future__ import annotations

from pathlib import Path

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
