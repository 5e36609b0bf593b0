"""A run's state on disk: a snapshot (state.json, replaced atomically) and, since that snapshot,
an append-only log of changes (events.jsonl, one JSON line each; a torn last line is ignored).

Appending one line per change keeps journaling cheap however large the run; the snapshot is
rewritten now and then (and at the start and end of a run), and the log is emptied after it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

STATE, EVENTS = "state.json", "events.jsonl"


class Journal:
    """Writes one run's journal; every method is called under the run's lock."""

    def __init__(self, run_dir: Path, seq: int = 0):
        self.run_dir, self.seq, self.saved_seq = run_dir, seq, -1
        self._events = open(run_dir / EVENTS, "a")

    def record(self, entry: dict) -> None:
        """Append one change: {"node": {...}}, {"child": id, "parent": id} or {"run": {...}}."""
        self.seq += 1
        self._events.write(json.dumps({"seq": self.seq, **entry}, separators=(",", ":")) + "\n")
        self._events.flush()

    def snapshot(self, state: dict) -> None:
        """Write the whole state, then empty the log it now covers."""
        if self.saved_seq == self.seq:
            return
        state["seq"] = self.seq
        save(self.run_dir, state)
        self._events.close()
        self._events = open(self.run_dir / EVENTS, "w")
        self.saved_seq = self.seq

    def close(self) -> None:
        self._events.close()


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
    """The run's last journaled state: the snapshot with the logged changes after it replayed."""
    state = json.loads((run_dir / STATE).read_text())
    events = run_dir / EVENTS
    lines = events.read_text().splitlines() if events.exists() else []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            break  # a line torn by a crash: it and anything after it were never complete
        if entry["seq"] <= state.get("seq", 0):
            continue
        state["seq"] = entry["seq"]
        if "node" in entry:
            state["nodes"][entry["node"]["id"]] = entry["node"]
        elif "child" in entry:
            state["nodes"][entry["parent"]]["children"].append(entry["child"])
        elif "run" in entry:
            state.update(entry["run"])
    return state


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a live `pid` (field 22 of /proc/pid/stat), to tell reused pids
    apart; None when there is no such process or it is a zombie (dead, not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]
