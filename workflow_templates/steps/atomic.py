"""Atomic file writes for the steps' outputs: a `.part` file renamed onto the path on success.
Apart from shards.py (Parquet), so that steps writing only JSON and text do not load pyarrow."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: Path, value, indent: int | None = 2) -> None:
    """Write value as JSON (indented unless indent=None), atomically."""
    with atomic(path) as part:
        part.write_text(json.dumps(value, indent=indent) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write a text file (an output parameter's value), atomically."""
    with atomic(path) as part:
        part.write_text(text)


class atomic:
    """Context manager yielding a `.part` path that is renamed onto path on success."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.part

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            os.replace(self.part, self.path)
        else:
            self.part.unlink(missing_ok=True)
