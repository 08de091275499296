"""What a training run records: the `History` that `fit` returns, and the JSON-lines log file, one record a line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spec_lang.files import write_atomic


@dataclass
class History:
    """What `fit` recorded: `records`, one per epoch (and one for a last partial epoch), and `final`, the record
    at the end of training with `final: True` and `status` ("completed" or "interrupted"); with validators, `best`:
    the selector's best record (`validator`, `score`, `epoch`, `step`, and `checkpoint`, where its model is kept)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    checkpoint: Path | None = None
    best: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"History({len(self.records)} records, final step {self.final and self.final.get('step')})"


class Log:
    """A JSON-lines log file, or nowhere when `path` is None."""

    def __init__(self, path: Path | None):
        self.path = path

    def is_log(self) -> bool:
        """Whether the file is absent, or a log of this kind (JSON records of epochs and steps) that a resumed run may
        rewrite: not a data file or a spec that happens to have its name."""
        if self.path is None or not self.path.exists():
            return True
        try:
            with self.path.open(encoding="utf-8") as stream:
                for line in stream:
                    record = json.loads(line)
                    if not isinstance(record, dict) or "step" not in record:
                        return False
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        return True

    def write(self, records: list[dict[str, Any]]) -> None:
        """Replace the file with these records, atomically."""
        if self.path is not None:
            write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in records))

    def append(self, record: dict[str, Any]) -> None:
        """Add a record at the end of the file."""
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(record) + "\n")
