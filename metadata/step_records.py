"""Step records: the outputs of succeeded workflow steps, kept so that a later step with the same
key reuses them instead of running (docs/workflows.md, "Step reuse across runs").

A record is a reserved `_step_record` node in its run's project, found by its key (the store's
record index). The worker computes keys and verifies files; the service decides which records a
run may see: only those of succeeded runs (a failed or cancelled run's outputs are never offered),
in the projects the run's launcher could read at the launch (`Run.reuse_projects_json`), and none
for a run launched without reuse. A record names the run's folder and the files the step wrote
there with their checksums, so the worker can check them before it copies anything.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from metadata import policy
from metadata.errors import Clash, Invalid
from metadata.idl import metadata_thrift as T
from metadata.records import Run, StepRecord
from metadata.store.base import Write, reserved_node
from metadata.store.record_index import RecordQuery

TYPE = StepRecord.TYPE
KEY = re.compile(r"^[A-Za-z0-9:._-]{1,300}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILES = 100_000
MAX_OFFERED = 20  # records offered per lookup: the worker verifies each until one holds
MAX_KEYS = 1000   # keys per batched lookup


class StepRecords:
    def __init__(self, store, dictionary, layout):
        self.store, self.dictionary, self.layout = store, dictionary, layout

    def record(self, who, run_id: str, record: T.StepRecord) -> None:
        """Keep a succeeded step's outputs, in its run's project (a second record of the same
        step of the same run is ignored: a resumed run may report it twice)."""
        run = policy.lookup(self.store, self.dictionary, policy.RUN, run_id, "run_id")
        self._check(run, record)
        props = StepRecord(key=record.key, run_id=run.id, step=record.step, node_id=record.node_id,
                           folder=record.folder, files_json=record.files_json,
                           outputs_json=record.outputs_json).to_props()
        name = hashlib.sha256(f"{record.key}\n{run.id}\n{record.node_id}".encode()).hexdigest()
        try:
            self.store.apply([Write(reserved_node(TYPE, run.project_id, name, props, None, who.user), None)], set())
        except Clash:
            pass

    def find(self, who, run_id: str, key: str, max_age_seconds: int) -> list[T.StepRecord]:
        """The records `run_id` may reuse for `key`, newest first (see the module's doc)."""
        return self.find_batch(who, run_id, [key], max_age_seconds)[key]

    def find_batch(self, who, run_id: str, keys: list[str], max_age_seconds: int) -> dict[str, list[T.StepRecord]]:
        """find for several keys in one call (the steps of a run ready together): per key, its records."""
        run = policy.lookup(self.store, self.dictionary, policy.RUN, run_id, "run_id")
        if not 1 <= len(keys or []) <= MAX_KEYS:
            raise Invalid(f"keys: give 1 to {MAX_KEYS} step keys")
        if not all(KEY.match(key or "") for key in keys):
            raise Invalid("key: give a step key (1 to 300 letters, digits, ':', '.', '_', '-')")
        wanted = Run.from_node(run)
        if wanted.reuse is False:
            return {key: [] for key in keys}
        since = ""
        if max_age_seconds >= 0:
            since = (datetime.now(timezone.utc) - timedelta(seconds=max_age_seconds)).isoformat(timespec="milliseconds")
        projects = json.loads(wanted.reuse_projects_json or json.dumps([run.project_id]))
        found = {key: [StepRecord.from_node(n) for n in
                       self.store.query(RecordQuery(TYPE, {"key": key}, projects, since, limit=MAX_OFFERED)).nodes]
                 for key in dict.fromkeys(keys)}
        succeeded = self._succeeded({r.run_id for records in found.values() for r in records} - {run.id})
        return {key: [record_thrift(r) for r in records if r.run_id in succeeded] for key, records in found.items()}

    def _succeeded(self, run_ids: set[str]) -> set[str]:
        """Those of the runs that succeeded (their records may be offered)."""
        runs = self.store.get_many(list(run_ids))
        return {i for i, node in runs.items() if Run.from_node(node).status == "succeeded"}

    def _check(self, run, record: T.StepRecord) -> None:
        if not KEY.match(record.key or ""):
            raise Invalid("key: give the step's key (1 to 300 letters, digits, ':', '.', '_', '-')")
        folder = Path(record.folder or "")
        if not folder.is_absolute() or folder.parts[-2:] != ("runs", run.id) or \
                self.layout.problem(folder.as_uri(), run.project_id):
            raise Invalid(f"folder: give the run's own folder (<storage>/{run.project_id}/runs/{run.id})")
        try:
            files = json.loads(record.files_json or "[]")
            json.loads(record.outputs_json or "{}")
        except ValueError:
            raise Invalid("files_json: give JSON (files_json a list, outputs_json an object)") from None
        if not isinstance(files, list) or len(files) > MAX_FILES or not all(map(_file_entry, files)):
            raise Invalid(f"files_json: give at most {MAX_FILES:,} files as {{path (relative, inside the "
                          "folder), sha256 (hex), size}}")


def _file_entry(entry) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        return False
    path = Path(entry["path"])
    return (not path.is_absolute() and ".." not in path.parts and bool(path.parts)
            and SHA256.match(str(entry.get("sha256", ""))) is not None
            and isinstance(entry.get("size"), int) and entry["size"] >= 0)


def record_thrift(record: StepRecord) -> T.StepRecord:
    return T.StepRecord(key=record.key, run_id=record.run_id, step=record.step, node_id=record.node_id,
                        folder=record.folder, files_json=record.files_json, outputs_json=record.outputs_json,
                        recorded_at=record.node.created_at if record.node else "")
