"""The run registry: launches keyed so that one launch never makes two runs, and the runs'
life as workers report it.

A run is a `workflow_run` node in the project of its inputs, linked to the files it used
(`used`) and to the parameter set that configured it (`configured_by`); its outputs are
data_file nodes linked back to it (`generated_by`), registered in the same write that records
its final status.

Idempotence (the Trellis lesson: at-least-once events made ~1 in 100 jobs run twice): a launch
is keyed by sha256(template digest, canonical parameters, sorted input file ids). The key is
held by a reserved `_launch` node whose submitter_id is the key, so the store's own uniqueness
of (project, submitter_id) and its optimistic versions decide races: the key node and the new
run are written in ONE batch that fails if another launch took the key first, and the loser
returns the winner's run. A key whose run failed or was cancelled may be taken again.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone

from ground.storage import Layout
from metadata import auth, policy
from metadata.auth import Identity
from metadata.dictionary import Dictionary
from metadata.entities import Entity
from metadata.errors import Clash, Denied, Invalid
from metadata.idl import metadata_thrift as T
from metadata.records import LaunchKey, ParameterSetRevision, Run
from metadata.store.base import LinkRef, Page, Store, StoredNode, Write, reserved_node
from metadata.store.record_index import MAX_LIMIT, RecordQuery, every
from metadata.submission import Planner

RUN_TYPE = "workflow_run"
KEY_TYPE, KEY_SCOPE = "_launch", "~launch"
LIVE = ("queued", "running", "succeeded")   # a launch key held by a run in one of these is taken
FINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running") + FINAL
OUTCOMES = ("passed", "failed")           # a succeeded run's verdict, when its template declares one
RAW_LINK = "measurements"                   # data_file -> measurement
MAX_INPUTS = 1000
MAX_PAGE = 500
MAX_OFFSET = 10_000  # an offset walks the index page by page; a cursor pages at any depth
RACE_RETRIES = 5
OPEN_RESCAN_SECONDS = 30   # another service replica may have launched runs this one has not seen
WORKER_GONE_SECONDS = 300  # a worker silent this long has died: its running runs go back to the queue
MAX_WAIT_MS = 10_000       # a waiting claim holds a service thread; SIGTERM's drain (30 s) outlasts it


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def launch_key(digest: str, parameters: dict[str, str], input_ids: list[str]) -> str:
    """The identity of a launch: same template content, parameters and inputs, same key."""
    canonical = json.dumps({"template": digest, "parameters": parameters, "inputs": sorted(input_ids)},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class OpenRuns:
    """The ids of runs not yet ended, so that workers' frequent claims read only those: kept
    current by this process's writes and read again from the store's index of runs by status
    (queued or running only) every OPEN_RESCAN_SECONDS."""

    def __init__(self, scan):
        self._scan, self._ids, self._scanned_at = scan, set(), float("-inf")
        self._lock = threading.Lock()

    def ids(self) -> list[str]:
        with self._lock:
            if time.monotonic() - self._scanned_at > OPEN_RESCAN_SECONDS:
                self._ids = {n.id for n in self._scan()}
                self._scanned_at = time.monotonic()
            return list(self._ids)

    def note(self, run: StoredNode) -> None:
        with self._lock:
            (self._ids.discard if Run.from_node(run).status in FINAL else self._ids.add)(run.id)


class RunRegistry:
    def __init__(self, store: Store, dictionary: Dictionary, catalog, layout: Layout):
        self.store, self.dictionary, self.catalog, self.layout = store, dictionary, catalog, layout
        self.open = OpenRuns(self._open_runs)
        self.worker_gone_seconds = WORKER_GONE_SECONDS
        self._started = time.monotonic()   # workers get the same grace after a service restart
        self._seen: dict[str, float] = {}  # worker -> when it last claimed
        self._queued = threading.Condition()  # notified whenever a run is queued, for waiting claims
        self._queued_count = 0

    # -- launching ----------------------------------------------------------------------

    def launch(self, who: Identity, request: T.LaunchRequest) -> tuple[StoredNode, bool]:
        """The run for this launch: (run, True) when an identical live run exists already."""
        template = self._template(who, request.template)
        pset, defaults = self._parameter_set(request.parameter_set_id, template.name)
        parameters = template.check({**defaults, **(request.parameters or {})})
        files = self._input_files(request.input_ids or [], template.input_formats)
        project = files[0].project_id  # the policy checked write access on the inputs' project
        key = launch_key(template.digest, parameters, [f.id for f in files])
        for _ in range(RACE_RETRIES):
            holder = self.store.find(KEY_SCOPE, [key]).get(key)
            current = self.store.get(LaunchKey.from_node(holder).run_id) if holder else None
            if current is not None and Run.from_node(current).status in LIVE and not request.force:
                return current, True
            run = self._new_run(who, project, template, parameters, files, pset, key, request.reuse)
            claim = reserved_node(KEY_TYPE, KEY_SCOPE, key, {"run_id": run.id}, holder, who.user)
            parents = {f.id for f in files} | ({pset.id} if pset else set())
            try:
                self.store.apply([Write(run, None), Write(claim, holder.version if holder else None)], parents)
                self._noted(run)
                return run, False
            except Clash:
                continue  # another launch took the key between our read and our write: read again
        raise Clash("the launch raced others too often; try again", code="busy")

    def _template(self, who: Identity, name: str):
        template = self.catalog.get(name)
        if template is None:
            raise Invalid(f"template: {name!r} is not a workflow template; choose from "
                          f"{', '.join(sorted(self.catalog.names())) or 'none installed'}")
        if not (who.is_admin or "analyst" in who.roles or ("technician" in who.roles and template.standard)):
            kind = "standard template" if template.standard else "template outside the standard set"
            raise Denied(f"launching {name!r} (a {kind}) needs the analyst role"
                         f"{' or the technician role' if template.standard else ''}; {who.user} has "
                         f"{', '.join(who.roles) or 'no roles'}")
        return template

    def _parameter_set(self, set_id: str, template: str) -> tuple[StoredNode | None, dict]:
        """The parameter set node and its parameters (which the launch's own parameters override)."""
        if not set_id:
            return None, {}
        node = policy.lookup(self.store, self.dictionary, policy.PARAMETER_SET, set_id, "parameter_set_id")
        revision = ParameterSetRevision.from_node(node)
        if revision.template != template:
            raise Invalid(f"parameter_set_id: the set {revision.name!r} is for template "
                          f"{revision.template!r}, not {template!r}")
        try:
            params = json.loads(revision.params_json or "{}")
        except ValueError:
            raise Invalid(f"parameter_set_id: the set {revision.name!r} holds no valid JSON") from None
        return node, {str(k): _text(v) for k, v in params.items()}

    def _input_files(self, ids: list[str], formats: list[str]) -> list[StoredNode]:
        """The data files to run on: files as given, measurements as their raw files; all in one
        readable project, of the formats the template accepts, each accepted format present."""
        if not ids:
            raise Invalid("input_ids: give the data files (or the measurement) to run on")
        if len(ids) > MAX_INPUTS:
            raise Invalid(f"input_ids: {len(ids)} inputs; give at most {MAX_INPUTS}")
        nodes = self.store.get_many(list(dict.fromkeys(ids)))
        files: dict[str, StoredNode] = {}
        for node_id in ids:
            node = nodes.get(node_id)
            if node is None or node.type not in ("data_file", "measurement"):
                raise policy.missing(policy.INPUT, node_id, "input_ids")
            files.update({f.id: f for f in (self.raw_files(node) if node.type == "measurement" else [node])})
        chosen = sorted(files.values(), key=lambda f: (f.props.get("data_format", ""), f.submitter_id))
        _check_formats(chosen, formats)
        projects = sorted({f.project_id for f in chosen})
        if len(projects) > 1:
            raise Invalid(f"input_ids: the inputs come from several projects ({', '.join(projects)}); "
                          "a run's inputs belong to one project")
        return chosen

    def raw_files(self, measurement: StoredNode) -> list[StoredNode]:
        child_ids = [e.child_id for e in self.store.edges(measurement.id)
                     if e.parent_id == measurement.id and e.child_type == "data_file" and e.link_name == RAW_LINK]
        return list(self.store.get_many(child_ids).values())

    def _new_run(self, who: Identity, project: str, template, parameters: dict, files: list[StoredNode],
                 pset: StoredNode | None, key: str, reuse: bool = True) -> StoredNode:
        run = Run(template=template.name, template_digest=template.digest, status="queued",
                  parameters_json=json.dumps(parameters, sort_keys=True), launch_key=key,
                  message="waiting for a worker", attempt=1, reuse=reuse is not False,
                  reuse_projects_json=json.dumps(reuse_projects(who, project)),
                  parameter_set_revision=int(pset.props.get("revision") or 1) if pset is not None else None)
        sid = f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        node = reserved_node(RUN_TYPE, project, sid, run.to_props(), None, who.user)
        node.links = [_link("input_files", f) for f in files] + ([_link("parameter_sets", pset)] if pset else [])
        self._check(node)
        return node

    # -- reading ------------------------------------------------------------------------

    def get(self, who: Identity, run_id: str) -> StoredNode:
        return policy.lookup(self.store, self.dictionary, policy.RUN, run_id)

    def list(self, who: Identity, query: T.RunQuery) -> Page:
        """Runs the caller may read that match the query, newest first, one page of them (from the
        cursor, else the offset), with the total and the next page's cursor."""
        if query.status and query.status not in STATUSES:
            raise Invalid(f"status: {query.status!r} is not a run status; choose from {', '.join(STATUSES)}")
        if not 1 <= query.limit <= MAX_PAGE or not 0 <= query.offset <= MAX_OFFSET:
            raise Invalid(f"limit: give 1 to {MAX_PAGE} runs from an offset of 0 to {MAX_OFFSET:,} "
                          "(page deeper with the cursor)")
        where = {key: value for key, value in (("status", query.status), ("template", query.template),
                                               ("created_by", query.user)) if value}
        wanted = RecordQuery(RUN_TYPE, where, auth.listing_projects(who, query.project_id), query.since or "",
                             query.before or "", total=True)
        wanted.cursor = query.cursor or self._skip(wanted, query.offset)
        if wanted.cursor is None:  # the offset is past the last run
            return Page([], self._query(replace(wanted, limit=1, cursor="")).total)
        wanted.limit = query.limit
        return self._query(wanted)

    def _skip(self, query: RecordQuery, offset: int) -> str | None:
        """The cursor `offset` runs into the query's order ("" for none; None past the end)."""
        cursor = ""
        while offset > 0:
            page = self._query(replace(query, limit=min(offset, MAX_LIMIT), cursor=cursor, total=False))
            offset -= len(page.nodes)
            if not page.next_cursor:
                return None
            cursor = page.next_cursor
        return cursor

    def _query(self, query: RecordQuery) -> Page:
        try:
            return self.store.query(query)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    def _open_runs(self) -> list[StoredNode]:
        """Every queued or running run, from the store's index, oldest first."""
        return every(self.store, RecordQuery(RUN_TYPE, {"status": ["queued", "running"]}, newest_first=False,
                                             limit=MAX_LIMIT))

    def outputs(self, run: StoredNode) -> list[str]:
        """The ids of the files the run generated."""
        return [e.child_id for e in self.store.edges(run.id) if e.parent_id == run.id and e.child_type == "data_file"]

    # -- users' requests ----------------------------------------------------------------

    def cancel(self, who: Identity, run_id: str) -> StoredNode:
        run = self._changeable(who, run_id, "cancel")
        status = Run.from_node(run).status
        if status in FINAL:
            raise Clash(f"the run {run.submitter_id} has already {status}; nothing to cancel", code="finished")
        if status == "queued":
            return self._save(run, who.user, status="cancelled", finished_at=now(), message=f"cancelled by {who.user}")
        return self._save(run, who.user, cancel_requested=True, message=f"{who.user} asked to cancel; stopping")

    def retry(self, who: Identity, run_id: str) -> StoredNode:
        run = self._changeable(who, run_id, "retry")
        record = Run.from_node(run)
        if record.status not in ("failed", "cancelled"):
            raise Clash(f"the run {run.submitter_id} is {record.status}; only a failed or cancelled "
                        "run can be retried", code="not_failed")
        holder = self.store.find(KEY_SCOPE, [record.launch_key]).get(record.launch_key)
        if holder and LaunchKey.from_node(holder).run_id != run.id:
            other = self.store.get(LaunchKey.from_node(holder).run_id)
            if other is not None and (other_status := Run.from_node(other).status) in LIVE:
                raise Clash(f"an identical launch is already {other_status} as run "
                            f"{other.submitter_id}; open that one", code="duplicate")
        return self._save(run, who.user, status="queued", retry_requested=True, cancel_requested=False,
                          attempt=int(record.attempt) + 1, finished_at=None,
                          message=f"{who.user} asked to retry the failed steps")

    def _changeable(self, who: Identity, run_id: str, action: str) -> StoredNode:
        run = self.get(who, run_id)
        if run.created_by != who.user and not who.can_write(run.project_id):
            raise Denied(f"only the run's launcher or a writer of project {run.project_id!r} may {action} "
                         f"the run {run.submitter_id}")
        return run

    # -- workers ------------------------------------------------------------------------

    def claim(self, who: Identity, worker: str, limit: int) -> list[StoredNode]:
        """This worker's running runs (to resume following them), then queued runs, oldest first."""
        mine, claimed = self._claim(who, worker, limit)
        return mine + claimed

    def claim_waiting(self, who: Identity, worker: str, limit: int, wait_ms: int) -> list[StoredNode]:
        """As claim; when there is room but nothing to claim, wait up to wait_ms for a run to be
        queued (in this process), then claim once more. The count is read before the first claim,
        so a run queued between that claim and the wait ends the wait at once."""
        if not 0 <= wait_ms <= MAX_WAIT_MS:
            raise Invalid(f"wait_ms: {wait_ms} is out of range; give 0 to {MAX_WAIT_MS}")
        with self._queued:
            seen = self._queued_count
        mine, claimed = self._claim(who, worker, limit)
        if claimed or not limit or not wait_ms:
            return mine + claimed
        with self._queued:
            if not self._queued.wait_for(lambda: self._queued_count != seen, wait_ms / 1000):
                return mine
        return self.claim(who, worker, limit)

    def _claim(self, who: Identity, worker: str, limit: int) -> tuple[list[StoredNode], list[StoredNode]]:
        """(this worker's running runs, the queued runs it claims now)."""
        if not worker or len(worker) > 200:
            raise Invalid("worker: name the worker (1 to 200 characters)")
        if not 0 <= limit <= 100:
            raise Invalid(f"limit: {limit} is out of range; give 0 to 100")
        self._seen[worker] = time.monotonic()
        runs = [self._requeue_if_orphaned(n, who) for n in self.store.get_many(self.open.ids()).values()]
        mine = [n for n in runs if (r := Run.from_node(n)).status == "running" and r.worker == worker]
        queued = sorted((n for n in runs if Run.from_node(n).status == "queued"), key=lambda n: n.created_at)
        claimed = []
        for run in queued[:limit * 2]:
            if len(claimed) == limit:
                break
            try:
                claimed.append(self._save(run, who.user, status="running", worker=worker, started_at=now(),
                                          message="started"))
            except Clash:
                continue  # another worker claimed it first
        return mine, claimed

    def _requeue_if_orphaned(self, run: StoredNode, who: Identity) -> StoredNode:
        """A running run whose worker has not claimed for worker_gone_seconds goes back to the
        queue (a retry of its failed or unfinished steps), so no run stays running forever."""
        record = Run.from_node(run)
        holder = record.worker
        if record.status != "running" or not holder:
            return run
        if time.monotonic() - self._seen.get(holder, self._started) < self.worker_gone_seconds:
            return run
        try:
            return self._save(run, who.user, status="queued", worker=None, started_at=None, retry_requested=True,
                              message=f"worker {holder} stopped reporting; queued again")
        except Clash:
            return self.store.get(run.id) or run

    def update(self, who: Identity, update: T.RunUpdate) -> StoredNode:
        node = policy.lookup(self.store, self.dictionary, policy.RUN, update.run_id, "run_id")
        status = update.status or Run.from_node(node).status
        _check_transition(node, status)
        self._check_logs(node, update.steps or [])
        changes = {"status": status, "steps_json": json.dumps([_step_dict(s) for s in update.steps or []])}
        if update.message:
            changes["message"] = update.message
        if update.engine_ref:
            changes["engine_ref"] = update.engine_ref
        if status in FINAL:
            changes.update(finished_at=now(), retry_requested=False)
        if status == "queued":  # handed back (the engine is unreachable): any worker may take it
            changes.update(worker=None, started_at=None)
        outputs = list(update.outputs or [])
        if outputs and status != "succeeded":
            raise Invalid("outputs: outputs are registered only with the status succeeded")
        changes.update(_verdict(update, status))
        return self._save(node, who.user, outputs=outputs, **changes)

    def _check_logs(self, run: StoredNode, steps: list[T.RunStep]) -> None:
        """A run's logs lie under its project's prefix, as its outputs do (readers check again)."""
        for index, step in enumerate(steps):
            if step.log_url and (problem := self.layout.problem(step.log_url, run.project_id)):
                raise Invalid(f"steps[{index}].log_url: {problem}")

    # -- writing ------------------------------------------------------------------------

    def _save(self, run: StoredNode, user: str, outputs: list | None = None, **changes) -> StoredNode:
        """The run's next version (None removes a property), with its outputs, in one write."""
        props = Run.from_node(run).but(**changes).to_props()
        node = reserved_node(RUN_TYPE, run.project_id, run.submitter_id, props, run, user)
        node.links = run.links
        self._check(node)
        writes, parents = [Write(node, run.version)], {link.target_id for link in run.links}
        if outputs:
            plan = Planner(self.dictionary, self.store, run.project_id, user, self.layout).plan(_output_entities(run, outputs))
            writes += plan.writes
            parents |= plan.parent_ids - {run.id}
        self.store.apply(writes, parents)
        self._noted(node)
        return node

    def _noted(self, run: StoredNode) -> None:
        """A run was written: keep the open set current, and wake waiting claims if it is queued."""
        self.open.note(run)
        if run.props.get("status") == "queued":
            with self._queued:
                self._queued_count += 1
                self._queued.notify_all()

    def _check(self, node: StoredNode) -> None:
        problems = self.dictionary.get(RUN_TYPE).check_properties(node.props)
        if problems:
            raise Invalid("; ".join(f"{field}: {message}" for field, message in problems))


def reuse_projects(who: Identity, project: str) -> list[str] | None:
    """The projects whose steps a run may reuse: those its launcher may read (None: any), fixed at
    the launch; a trigger's launch (no person) reuses only within the run's own project."""
    if who.user.startswith("trigger:"):
        return [project]
    return who.readable_projects


def _check_formats(files: list[StoredNode], formats: list[str]) -> None:
    if not formats:
        return
    wrong = [f for f in files if f.props.get("data_format") not in formats]
    if wrong:
        raise Invalid(f"input_ids: {wrong[0].submitter_id} is {wrong[0].props.get('data_format')}; "
                      f"this template takes {', '.join(formats)} files")
    absent = [fmt for fmt in formats if not any(f.props.get("data_format") == fmt for f in files)]
    if absent:
        raise Invalid(f"input_ids: no {', '.join(absent)} file among the inputs; this template needs "
                      f"one of each of: {', '.join(formats)}")


def _verdict(update: T.RunUpdate, status: str) -> dict:
    """The outcome and failing checks a worker reports, checked; nothing when it reports none."""
    outcome, failed = update.outcome or "", list(update.failed_checks or [])
    if not outcome:
        if failed:
            raise Invalid("failed_checks: give them with the outcome failed")
        return {}
    if outcome not in OUTCOMES:
        raise Invalid(f"outcome: {outcome!r} is not a verdict; choose from {', '.join(OUTCOMES)}")
    if status != "succeeded":
        raise Invalid("outcome: a verdict is reported only with the status succeeded")
    if (outcome == "failed") != bool(failed):
        raise Invalid("failed_checks: name the failing checks when, and only when, the outcome is failed")
    return {"outcome": outcome, "failed_checks_json": json.dumps(failed) if failed else None}


def _check_transition(run: StoredNode, status: str) -> None:
    current = Run.from_node(run).status
    allowed = {"running": ("running", "queued") + FINAL}.get(current, ())
    if status not in STATUSES:
        raise Invalid(f"status: {status!r} is not a run status; choose from {', '.join(STATUSES)}")
    if status not in allowed:
        raise Clash(f"the run {run.submitter_id} is {current}; a worker cannot make it {status}",
                    code="bad_transition")


def _link(name: str, target: StoredNode):
    return LinkRef(name, target.id, target.type, target.submitter_id)


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _step_dict(step: T.RunStep) -> dict:
    return {spec[1]: getattr(step, spec[1]) for spec in T.RunStep.thrift_spec.values()}


def _output_entities(run: StoredNode, outputs: list) -> list[Entity]:
    entities = []
    for index, out in enumerate(outputs):
        doc = {"type": "data_file", "submitter_id": f"{run.submitter_id}-{out.file_name}",
               "file_name": out.file_name, "data_format": out.data_format, "file_size": out.file_size,
               "md5sum": out.md5sum, "storage_url": out.storage_url, "workflow_runs": {"id": run.id}}
        doc.update({k: v for k, v in (("data_category", out.data_category), ("sha256", out.sha256)) if v})
        entities.append(Entity(doc, index))
    return entities


def run_thrift(node: StoredNode, output_ids: list[str]) -> T.Run:
    run = Run.from_node(node)
    inputs = [link.target_id for link in node.links if link.name == "input_files"]
    psets = [link.target_id for link in node.links if link.name == "parameter_sets"]
    return T.Run(id=node.id, project_id=node.project_id, template=run.template,
                 template_digest=run.template_digest or "", parameters=run.parameters,
                 input_ids=inputs, parameter_set_id=psets[0] if psets else "",
                 parameter_set_revision=int(run.parameter_set_revision or 0), status=run.status,
                 launch_key=run.launch_key or "", created_by=node.created_by, created_at=node.created_at,
                 started_at=run.started_at or "", finished_at=run.finished_at or "", message=run.message or "",
                 worker=run.worker or "", engine_ref=run.engine_ref or "", steps=[T.RunStep(**s) for s in run.steps],
                 output_ids=output_ids, cancel_requested=bool(run.cancel_requested),
                 retry_requested=bool(run.retry_requested), attempt=int(run.attempt),
                 submitter_id=node.submitter_id, outcome=run.outcome or "", failed_checks=run.failed_checks,
                 reuse=run.reuse is not False)
