"""The local engine: runs an Argo WorkflowTemplate's steps as local processes.

    engine = LocalEngine(storage_root, runs_dir, max_parallel=4)
    run = engine.start(template_yaml, parameters={"shard-size": "500"}, run_id="run-1", project="p")
    run.wait()                    # -> "Succeeded" | "Failed" | "Error"
    run.status()["nodes"]         # per node: phase, times, exit code, log, outputs
    run.stop(); run.retry_failed(); engine.resume("run-1", "p"); engine.recover()

A run of a project lives in its project's folder of the storage root, so that its logs and
artifacts follow the project's grants like every other file (ground.storage.run_dir):
<storage_root>/<project>/runs/<run_id>/engine/ holds state.json (the journal, replaced atomically
on every change) and steps/<node>/attempt-<n>/ (the step's log, private /tmp and work directory);
artifact keys are taken in the project's folder, output artifacts copied under
<project>/runs/<run_id>/. A run started without a project (the engine on its own) lives in
runs_dir/<run_id>/ and takes artifact keys in the whole storage root.

Steps run in a sandbox (engines/sandbox.py): an unprivileged user, a private /tmp, the storage root
and the runs directory hidden; a run started with `sees` shows its steps those folders of the
storage (its project's, read-only; its output directory, writable), kept in its journal.
"""
from __future__ import annotations

import copy
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ground import storage
from workflow_templates.engines import graph, journal, retries
from workflow_templates.engines.phases import ERROR, FAILED, FINISHED, PENDING, RUNNING, SUCCEEDED
from workflow_templates.engines.walk import Walker
from workflow_templates.engines.reuse import StepCache
from workflow_templates.engines.reusing import Reusing
from workflow_templates.engines.expressions import ExpressionError
from ground import bwrap
from workflow_templates.engines.runner import Attempt, StepError
from workflow_templates.engines.sandbox import Sight, default_user
from workflow_templates.engines.scope import stringify
from workflow_templates.engines.spec import WorkflowSpec, load

log = logging.getLogger(__name__)



def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class LocalEngine:
    """Runs WorkflowTemplates locally with at most `max_parallel` step processes at once."""

    storage_root: Path
    runs_dir: Path
    max_parallel: int | None = None
    isolate: bool = True
    hidden: tuple = ()  # host directories steps must not see, besides storage_root and runs_dir (the data dir)
    user: tuple[int, int] | None = field(default_factory=default_user)  # who steps run as (None: the engine's)
    on_progress: Callable[[str, dict], None] | None = None
    cache: StepCache | None = None  # where succeeded steps are recorded and found (None: no reuse)
    _pool: threading.BoundedSemaphore = field(init=False, repr=False)
    _runs: dict = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self):
        self.storage_root, self.runs_dir = Path(self.storage_root), Path(self.runs_dir)
        self.max_parallel = self.max_parallel or os.cpu_count() or 1
        self._pool = threading.BoundedSemaphore(self.max_parallel)

    def start(self, template: dict | str, parameters: dict | None = None,
              run_id: str | None = None, entrypoint: str | None = None, project: str = "",
              sees: dict | None = None, reuse: bool = True, inputs: list | None = None) -> "RunHandle":
        """Check the template (refusing what the engine does not run), then start the run.
        sees: {"read": [dirs], "write": [dirs]} of the storage its steps may see (default: none);
        reuse: whether its steps may take earlier identical steps' outputs from the cache (they are
        recorded either way); inputs: files it reads that no parameter names (in every step's key)."""
        spec = load(template, entrypoint)
        run_id = run_id or uuid.uuid4().hex
        run_dir = self.run_folder(run_id, project)
        run_dir.mkdir(parents=True, exist_ok=False)
        state = {"run_id": run_id, "project": project, "uid": str(uuid.uuid4()), "name": f"{spec.name}-{run_id}",
                 "document": spec.document, "entrypoint": spec.entrypoint,
                 "parameters": {k: stringify(v) for k, v in (parameters or {}).items()},
                 "phase": PENDING, "message": "", "started_at": _now(), "finished_at": None,
                 "outputs": {}, "nodes": {}, "root": None,
                 "sees": {k: [str(Path(d).resolve()) for d in (sees or {}).get(k, [])] for k in ("read", "write")},
                 "reuse": {"lookup": reuse, "inputs": [str(Path(i).absolute()) for i in inputs or []]}}
        handle = RunHandle(self, spec, run_dir, state)
        self._runs[run_id] = handle
        handle._launch(previous={}, mode="start")
        return handle

    def run_folder(self, run_id: str, project: str = "") -> Path:
        """Where the engine keeps a run's journal and steps: in its project's run folder, else runs_dir."""
        return storage.run_dir(self.storage_root, project, run_id) / "engine" if project else self.runs_dir / run_id

    def knows(self, run_id: str, project: str = "") -> bool:
        """Whether this engine has (had) a run by that id: its journal's folder."""
        return self.run_folder(run_id, project).exists()

    def sight(self, sees: dict) -> Sight:
        """What a run's steps see: `sees` (from its journal), with the engine's own places hidden."""
        hidden = (self.storage_root, self.runs_dir, *self.hidden)
        return Sight(read=tuple(sees.get("read", ())), write=tuple(sees.get("write", ())),
                     hidden=tuple(str(Path(d).resolve()) for d in hidden), user=self.user)

    def handle(self, run_id: str) -> "RunHandle":
        """The handle of a run started or resumed by this engine."""
        return self._runs[run_id]

    def resume(self, run_id: str, project: str = "") -> "RunHandle":
        """Continue a journaled run after a crash: finished steps are kept, interrupted ones
        are retried within their retry limit."""
        if run_id in self._runs and not self._runs[run_id]._done.is_set():
            return self._runs[run_id]  # already running here: resuming it twice would race
        run_dir = self.run_folder(run_id, project)
        state = journal.load(run_dir)
        spec = load(state["document"], state["entrypoint"])
        handle = RunHandle(self, spec, run_dir, state)
        self._runs[run_id] = handle
        if state["phase"] in FINISHED:
            return handle
        previous = _interrupt(state["nodes"])
        handle._launch(previous=previous, mode="resume")
        return handle

    def recover(self) -> list["RunHandle"]:
        """Resume every journaled run not finished (called when a worker starts)."""
        handles = []
        journals = [*self.runs_dir.glob(f"*/{journal.STATE}"), *self.storage_root.glob(f"*/runs/*/engine/{journal.STATE}")]
        for state_file in sorted(journals):
            state = journal.load(state_file.parent)
            run_id, unfinished = state["run_id"], state["phase"] not in FINISHED
            if run_id not in self._runs and unfinished:
                try:
                    handles.append(self.resume(run_id, state.get("project", "")))
                except Exception as error:  # e.g. a template this engine version refuses
                    log.exception("cannot resume run %s", run_id)
                    _give_up(state_file.parent, f"cannot resume: {error}")
        return handles


def _give_up(run_dir: Path, message: str) -> None:
    """End a journaled run that cannot be resumed in Error, so it does not stay Running."""
    state = journal.load(run_dir)
    state.update(phase=ERROR, message=message, finished_at=_now())
    for node in state["nodes"].values():
        if node["phase"] not in FINISHED:
            node.update(phase=ERROR, message=message, finished_at=_now())
    journal.save(run_dir, state)
    (run_dir / journal.EVENTS).write_text("")


def _interrupt(nodes: dict) -> dict:
    """Mark nodes a dead engine left Pending/Running as interrupted; kill their leftovers.

    Only an attempt whose process was running counts against the retry limit: one still
    waiting for a place in the pool never ran."""
    for node in nodes.values():
        if node["phase"] in FINISHED:
            continue
        if node["phase"] == PENDING and node.get("attempts"):
            node["attempts"] -= 1
        pid = node.get("pid")
        if pid and journal.process_start_time(pid) == node.get("pid_start"):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.update(phase=ERROR, interrupted=True, finished_at=_now(),
                    message="interrupted: the engine stopped while this step ran")
    return nodes


class RunHandle(Walker, Reusing):
    """One run: its status, its journal, and the controls the worker needs."""

    def __init__(self, engine: LocalEngine, spec: WorkflowSpec, run_dir: Path, state: dict):
        self.engine, self.spec, self.run_dir, self.run_id = engine, spec, run_dir, state["run_id"]
        self._state = state
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._stop = threading.Event()
        self._stop_reason = ""
        self._procs: dict[str, Attempt] = {}
        self._sight = engine.sight(state.get("sees") or {})
        self._journal: journal.Journal | None = None
        self._limits: dict[str | None, threading.BoundedSemaphore] = {}  # parallelism by node
        project = state.get("project")  # the run's folder: its steps' paths in it are the same in every run
        self._folder = storage.run_dir(engine.storage_root, project, self.run_id) if project else run_dir
        self._claimed: dict[Path, tuple] = {}  # files reuse placed in the run's folder
        self._ends: dict[str, int] = {}  # when each step's last process ended (ns), for reuse.mine
        self._claims = threading.Lock()
        if spec.parallelism:
            self._limits[None] = threading.BoundedSemaphore(spec.parallelism)
        if state["phase"] in FINISHED:
            self._done.set()

    # --- what the worker reads --------------------------------------------------------------

    @property
    def phase(self) -> str:
        return self._state["phase"]

    @property
    def outputs(self) -> dict:
        return dict(self._state["outputs"])

    def status(self) -> dict:
        """A copy of the run's state: phase, message, times, outputs and every node, its children
        linked as Argo links them (what runs next; graph.py), its caller as `parent`."""
        with self._lock:
            state = copy.deepcopy(self._state)
        state.pop("document", None)
        for node_id, children in graph.argo_children(state["nodes"], self.spec.templates).items():
            state["nodes"][node_id]["children"] = children
        return state

    def log(self, node_id: str) -> str:
        """The log (stdout and stderr) of a step's latest attempt; empty before it starts."""
        path = self._state["nodes"].get(node_id, {}).get("log")
        return Path(path).read_text(errors="replace") if path and Path(path).exists() else ""

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run finishes (or timeout); returns its phase."""
        self._done.wait(timeout)
        return self.phase

    # --- what the worker does ---------------------------------------------------------------

    def stop(self, reason: str = "Stopped") -> None:
        """Cancel: kill every running step's process group; the run ends Failed."""
        self._stop_reason = reason
        self._stop.set()
        with self._lock:
            attempts = list(self._procs.values())
        for attempt in attempts:
            attempt.kill()

    def retry_failed(self) -> "RunHandle":
        """Run again the steps that failed, keeping every succeeded step and its outputs."""
        if not self._done.is_set():
            raise RuntimeError(f"run {self.run_id} is still {self.phase}")
        if self.phase == SUCCEEDED:
            return self
        exit_node = f"{self._state['name']}.onExit"  # like `argo retry`, the exit handler runs again
        previous = {k: v for k, v in self._state["nodes"].items()
                    if v["phase"] == SUCCEEDED and not (k == exit_node or k.startswith(exit_node + "."))}
        self._done.clear()
        self._stop.clear()
        self._launch(previous=previous, mode="retry")
        return self

    # --- running ----------------------------------------------------------------------------

    def _launch(self, previous: dict, mode: str) -> None:
        # Nodes stay in the state until re-created, so a second crash loses nothing.
        self._previous, self._mode = copy.deepcopy(previous), mode
        for writable in self._sight.write:  # the sandbox user writes the run's output directory
            bwrap.give(Path(writable), self._sight.user, recursive=True)
        with self._lock:
            if self._journal is None:
                self._journal = journal.Journal(self.run_dir, self._state.get("seq", 0))
            self._state.update(phase=RUNNING, message="", finished_at=None,
                               root=self._state["name"])
            self._journal.record({"run": {"phase": RUNNING}})
            self._journal.snapshot(self._state)
        threading.Thread(target=self._main, name=f"run-{self.run_id}", daemon=True).start()
        threading.Thread(target=self._snapshots, name=f"journal-{self.run_id}",
                         daemon=True).start()

    def _snapshots(self) -> None:
        """Rewrite the snapshot every second while the run goes on (the log stays short)."""
        while not self._done.wait(1.0):
            with self._lock:
                self._journal.snapshot(self._state)

    def _main(self) -> None:
        timer = None
        if self.spec.deadline:
            timer = threading.Timer(float(self.spec.deadline), self.stop,
                                    args=("Max duration limit exceeded",))
            timer.daemon = True
            timer.start()
        try:
            phase, message = self._run_entrypoint()
        except Exception as error:  # a bug or an unreadable state must still end the run
            log.exception("run %s failed in the engine", self.run_id)
            phase, message = ERROR, f"engine error: {error}"
        finally:
            if timer:
                timer.cancel()
        if self._stop.is_set() and phase != SUCCEEDED:
            phase, message = FAILED, self._stop_reason
        with self._lock:
            for node in self._state["nodes"].values():
                if node["phase"] not in FINISHED:  # only after an engine error or a stop
                    node.update(phase=ERROR if phase == ERROR else FAILED, message=message,
                                finished_at=_now())
            self._state.update(phase=phase, message=message, finished_at=_now())
            self._journal.record({"run": {"phase": phase}})
            self._journal.snapshot(self._state)
        self._notify({"id": None, "phase": phase})
        self._done.set()




    # --- nodes ------------------------------------------------------------------------------

    def _new_node(self, node_id: str, display: str, kind: str, template: str | None,
                  parent: str | None) -> dict:
        node = {"id": node_id, "name": display, "type": kind, "template": template,
                "parent": parent, "phase": PENDING, "started_at": None, "finished_at": None,
                "message": "", "children": [], "outputs": {}}
        with self._lock:
            self._state["nodes"][node_id] = node
            self._journal.record({"node": node})
            if parent is not None:
                self._state["nodes"][parent]["children"].append(node_id)
                self._journal.record({"child": node_id, "parent": parent})
        return node

    def _set(self, node: dict, **changes) -> dict:
        with self._lock:
            node.update(changes)
            if changes.get("phase") == RUNNING and not node["started_at"]:
                node["started_at"] = _now()
            if changes.get("phase") in FINISHED:
                node["started_at"] = node["started_at"] or _now()
                node["finished_at"] = _now()
            self._journal.record({"node": node})
        self._notify(node)
        return node

    def _notify(self, node: dict) -> None:
        if self.engine.on_progress:
            try:
                self.engine.on_progress(self.run_id, copy.deepcopy(node))
            except Exception:  # a broken observer must not break the run
                log.exception("on_progress callback failed")

    # --- templates --------------------------------------------------------------------------









    # --- leaves -----------------------------------------------------------------------------

    def _run_leaf(self, template: dict, node: dict, inputs: dict, artifacts: dict) -> dict:
        previous = self._previous.get(node["id"])
        if previous and self._keeps(previous):
            with self._lock:
                node.update({k: v for k, v in previous.items() if k != "children"})
            self._export_all(template, node)
            return self._set(node)
        if self._reused(template, node, inputs):
            return node
        watch, before = self._before_step(template, node, inputs)
        self._attempts(template, node, inputs, artifacts, previous)
        if node["phase"] == SUCCEEDED:
            self._record(node, watch, before)
        return node

    def _attempts(self, template: dict, node: dict, inputs: dict, artifacts: dict, previous: dict | None) -> dict:
        """Run the step: attempts as its retryStrategy allows."""
        retry = template.get("retryStrategy") or {}
        limit = retries.limit(template.get("retryStrategy"))
        retried_on = retries.POLICIES[retry.get("retryPolicy", "OnFailure")]
        attempts = previous.get("attempts", 0) if previous and previous.get("interrupted") else 0
        if attempts and attempts > limit:
            return self._set(node, attempts=attempts, phase=ERROR, message=previous["message"])
        first_start, cut = time.monotonic(), None
        while True:
            attempts += 1
            phase = self._attempt(template, node, inputs, artifacts, attempts, cut)
            if phase == SUCCEEDED or self._stop.is_set() or attempts > limit:
                break
            if phase not in retried_on:
                break
            delay = retries.backoff(retry.get("backoff"), attempts)
            beyond = retries.beyond_max_duration(retry.get("backoff"), first_start, delay)
            if beyond:
                self._set(node, message=beyond)
                break
            if self._stop.wait(delay):
                break
            cut = retries.time_left(retry.get("backoff"), first_start)
        self._export_all(template, node)
        return node

    def _keeps(self, previous: dict) -> bool:
        if previous.get("type") != "Pod" or previous.get("interrupted"):
            return False
        return previous["phase"] == SUCCEEDED or (
            self._mode == "resume" and previous["phase"] in (FAILED, ERROR))

    def _export_all(self, template: dict, node: dict) -> None:
        values = node.get("outputs", {}).get("parameters", {})
        for param in (template.get("outputs") or {}).get("parameters") or []:
            if param["name"] in values:
                self._export(param, values[param["name"]])

    def _attempt(self, template, node, inputs, artifacts, number, cut=None) -> str:
        """One attempt; cut: seconds it may run at most (a retry under backoff.maxDuration)."""
        step_dir = self.run_dir / "steps" / _safe(node["id"]) / f"attempt-{number}"
        body = template.get("script") or template["container"]
        self._set(node, attempts=number, phase=PENDING, message="", exit_code=None,
                  log=str(step_dir / "main.log"), replaced_image=str(body.get("image") or ""))
        with ExitStack() as places:
            for limit in self._limits_above(node):  # outermost first: no two waits cross
                places.enter_context(limit)
            places.enter_context(self.engine._pool)
            if self._stop.is_set():
                return self._set(node, phase=FAILED, message=self._stop_reason)["phase"]
            try:
                attempt = Attempt.prepare(template, step_dir, inputs, artifacts, self._globals,
                                          number - 1, self._storage(), self.engine.isolate, self._sight)
                attempt.start()
            except (StepError, ExpressionError, OSError) as error:
                return self._set(node, phase=ERROR, message=str(error))["phase"]
            with self._lock:
                self._procs[node["id"]] = attempt
            if self._stop.is_set():  # stop() may have run before the process was registered
                attempt.kill()
            self._set(node, phase=RUNNING, pid=attempt.pid,
                      pid_start=journal.process_start_time(attempt.pid))
            try:
                result = attempt.finish(retries.deadline(template.get("activeDeadlineSeconds"), cut))
            finally:
                with self._lock:
                    self._procs.pop(node["id"], None)
            self._ended(node, attempt.ended_ns)
        if result.phase == FAILED and self._stop.is_set():
            result.message = self._stop_reason
        if result.phase == SUCCEEDED:
            result = attempt.collect(result, self.run_id, _safe(node["id"]))
        if result.phase == SUCCEEDED:  # a failed attempt's files stay, to look into
            for scratch in ("tmp", "work"):
                shutil.rmtree(step_dir / scratch, ignore_errors=True)
        return self._set(node, phase=result.phase, message=result.message,
                         exit_code=result.exit_code, outputs=result.outputs, pid=None)["phase"]


    def _storage(self) -> Path:
        """Where the run's artifact keys are taken: its project's folder (a key never reaches
        another project's files), or the whole storage root for a run of no project."""
        project = self._state.get("project")
        return storage.project_dir(self.engine.storage_root, project) if project else self.engine.storage_root

    def _limits_above(self, node: dict) -> list[threading.BoundedSemaphore]:
        """The `parallelism` limits a step's process is under: the workflow's (it counts pods),
        then its boundary's, the steps or dag template it runs directly in."""
        boundary = self._boundary_limit(node)
        return ([self._limits[None]] if None in self._limits else []) + ([boundary] if boundary else [])

    def _boundary_limit(self, node: dict) -> threading.BoundedSemaphore | None:
        """operator.go checkParallelism: a template's parallelism counts its active children
        (pods, and steps or dag templates it calls), not what runs further down."""
        with self._lock:
            parent = node["parent"]
            while parent is not None and self._state["nodes"][parent]["type"] not in ("Steps", "DAG"):
                parent = self._state["nodes"][parent].get("parent")
            return self._limits.get(parent) if parent is not None else None


def _safe(node_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.()" else "_" for c in node_id)[:200]








