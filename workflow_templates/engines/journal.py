"""A run's state on disk: one JSON file, replaced atomically on every change."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

STATE = "state.json"


def save(run_dir: Path, state: dict) -> None:
    """Write `state` to run_dir/state.json so a reader sees the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".state-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(state, out, separators=(",", ":"))
        os.replace(tmp, run_dir / STATE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(run_dir: Path) -> dict:
    """The last state written for the run in `run_dir`."""
    return json.loads((run_dir / STATE).read_text())


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/pid/stat), to tell reused pids apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]
