"""Step reuse as the local engine's runs do it (the rules and the key: reuse.py): each container or
script step gets its key; with the cache holding an identical succeeded step whose files hold, the
step takes its outputs instead of running; after a succeeded run of it, what it wrote is recorded.

Reusing is a mixin: RunHandle (local.py) has `engine` (its `cache`, `storage_root`), `run_id`,
`run_dir`, `spec`, `_state`, `_lock`, `_globals`, `_sight`, `_folder` (the run's folder), `_claimed`,
`_ends` and `_claims` (their lock), `_set` and `_export_all`; it calls `_ended` when a
step's process ends.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from workflow_templates.engines import reuse
from workflow_templates.engines.phases import ERROR, SUCCEEDED
from workflow_templates.engines.runner import leaf_scope

log = logging.getLogger(__name__)


class Reusing:
    """A run's steps taking, and leaving, outputs in the step cache."""

    @property
    def _hidden(self) -> Path:
        """The engine's own part of the run's folder, which no step writes."""
        return self.run_dir if self._state.get("project") else self.run_dir / "steps"

    # --- reuse (engines/reuse.py) -----------------------------------------------------------

    def _reused(self, template: dict, node: dict, inputs: dict) -> bool:
        """Give the node its key; when the cache holds an identical succeeded step whose files all
        hold, take its outputs (the node Succeeded, marked reused_from) instead of running."""
        try:
            key, max_age = self._key(template, node, inputs)
        except reuse.MemoizeError as error:  # Argo errs the node at run time
            self._set(node, phase=ERROR, message=str(error))
            return True
        with self._lock:
            node["reuse_key"] = key
        if key is None or not self._state.get("reuse", {}).get("lookup", True):
            return False
        try:
            records = self.engine.cache.find(self.run_id, key, max_age)
        except Exception as error:  # the cache (the metadata service) is away: the step runs
            log.warning("run %s: no step reuse for %s: %s", self.run_id, node["id"], error)
            return False
        return any(self._take(template, node, record) for record in records)

    def _key(self, template: dict, node: dict, inputs: dict) -> tuple[str | None, float | None]:
        """The step's key and, with memoize, its maxAge in seconds; (None, None) when it has no key."""
        if self.engine.cache is None:
            return None, None
        scope = leaf_scope(template, self._globals, inputs, 0)
        memoized = reuse.memo_key(template, scope)
        if memoized:
            return memoized
        with self._lock:
            before = reuse.upstream(self._state["nodes"], node["id"], self.spec.templates)
        if before is None:
            return None, None
        given = self._state.get("reuse", {}).get("inputs", [])
        try:
            return reuse.step_key(template, scope, self._folder, self.engine.storage_root, given, before), None
        except OSError as error:  # an input it cannot read (the step will say so): no key, it runs
            log.warning("run %s: step %s has no reuse key: %s", self.run_id, node["id"], error)
            return None, None

    def _take(self, template: dict, node: dict, record: dict) -> bool:
        """Reuse one record when its files hold (copied into this run's folder); False otherwise."""
        sources = reuse.verified(record, self.engine.storage_root)
        if sources is None:
            return False
        with self._claims:
            try:
                placed = reuse.materialise(sources, Path(record["folder"]), self._folder, self._sight.user)
            except OSError as error:
                log.warning("run %s: cannot reuse %s for %s: %s", self.run_id, record["run_id"], node["id"], error)
                return False
            self._claimed.update(reuse.snapshot(placed))
        outputs = json.loads(reuse.placed(json.dumps(record["outputs"]), self._folder))
        self._set(node, phase=SUCCEEDED, outputs=outputs, attempts=0, message="",
                  reused_from={"run": record["run_id"], "step": record["step"], "node": record["node_id"]})
        self._export_all(template, node)
        return True

    def _before_step(self, template: dict, node: dict, inputs: dict) -> tuple[list[Path], dict]:
        """Where a keyed step may write in the run's folder, and the files there before it runs."""
        if not node.get("reuse_key"):
            return [], {}
        watch = reuse.watched(template, leaf_scope(template, self._globals, inputs, 0), self._folder, self._hidden)
        return watch, reuse.snapshot(watch)

    def _ended(self, node: dict, ended_ns: int) -> None:
        """A step's process ended: files changed after then are not its."""
        with self._claims:
            self._ends[node["id"]] = ended_ns

    def _record(self, node: dict, watch: list[Path], before: dict) -> None:
        """Record what a succeeded step wrote, for later runs (a failure to record is logged)."""
        if not node.get("reuse_key") or self.engine.cache is None:
            return
        with self._claims:
            ended = self._ends.get(node["id"], 0)
            files = reuse.mine(reuse.written(before, reuse.snapshot(watch), self._claimed), ended)
        try:
            record = {"key": node["reuse_key"], "step": reuse.short_name(node["name"]), "node_id": node["id"],
                      "folder": str(self._folder), "files": reuse.file_entries(files, self._folder),
                      "outputs": json.loads(reuse.normal(json.dumps(node.get("outputs") or {}), self._folder))}
            self.engine.cache.record(self.run_id, record)
        except Exception as error:  # a file gone meanwhile, the service away: the step is not kept
            log.warning("run %s: step %s not recorded for reuse: %s", self.run_id, node["id"], error)
