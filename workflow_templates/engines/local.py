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

import calendar
import copy
import json
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ground import storage
from workflow_templates.engines import golang, graph, journal
from workflow_templates.engines.expressions import (
    ExpressionError, depends_operands, depends_tasks, evaluate_depends, evaluate_when, render)
from ground import bwrap
from workflow_templates.engines.runner import Attempt, StepError, artifact_source
from workflow_templates.engines.sandbox import Sight, default_user
from workflow_templates.engines.scope import (
    bind_inputs, compact_json, input_scope, item_scope, loop_items, node_scope, stringify)
from workflow_templates.engines.spec import WorkflowSpec, load

log = logging.getLogger(__name__)

PENDING, RUNNING, SUCCEEDED = "Pending", "Running", "Succeeded"
FAILED, ERROR, SKIPPED, OMITTED = "Failed", "Error", "Skipped", "Omitted"
FINISHED = {SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED}
_THREADS = 64
_MAX_DEPTH = 100
_POLICIES = {"Always": {FAILED, ERROR}, "OnFailure": {FAILED}, "OnError": {ERROR}}
# operator.go: the workflow phase workflow.status names, from the entrypoint node's phase
_WORKFLOW_STATUS = {SKIPPED: SUCCEEDED, OMITTED: SUCCEEDED}


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
    _pool: threading.BoundedSemaphore = field(init=False, repr=False)
    _runs: dict = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self):
        self.storage_root, self.runs_dir = Path(self.storage_root), Path(self.runs_dir)
        self.max_parallel = self.max_parallel or os.cpu_count() or 1
        self._pool = threading.BoundedSemaphore(self.max_parallel)

    def start(self, template: dict | str, parameters: dict | None = None,
              run_id: str | None = None, entrypoint: str | None = None, project: str = "",
              sees: dict | None = None) -> "RunHandle":
        """Check the template (refusing what the engine does not run), then start the run.
        sees: {"read": [dirs], "write": [dirs]} of the storage its steps may see (default: none)."""
        spec = load(template, entrypoint)
        run_id = run_id or uuid.uuid4().hex
        run_dir = self.run_folder(run_id, project)
        run_dir.mkdir(parents=True, exist_ok=False)
        state = {"run_id": run_id, "project": project, "uid": str(uuid.uuid4()), "name": f"{spec.name}-{run_id}",
                 "document": spec.document, "entrypoint": spec.entrypoint,
                 "parameters": {k: stringify(v) for k, v in (parameters or {}).items()},
                 "phase": PENDING, "message": "", "started_at": _now(), "finished_at": None,
                 "outputs": {}, "nodes": {}, "root": None,
                 "sees": {k: [str(Path(d).resolve()) for d in (sees or {}).get(k, [])] for k in ("read", "write")}}
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


class RunHandle:
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

    def _run_entrypoint(self) -> tuple[str, str]:
        state = self._state
        declared = self.spec.arguments
        unknown = sorted(set(state["parameters"]) - set(declared))
        if unknown:
            return ERROR, f"unknown workflow parameters: {', '.join(unknown)}"
        identity = {"workflow.name": state["name"], "workflow.uid": state["uid"],
                    "workflow.namespace": "local"}
        values = {n: stringify(p.get("value", p.get("default"))) for n, p in declared.items()}
        values = {n: v if v is None else render(v, identity) for n, v in values.items()}
        values.update(state["parameters"])
        missing = sorted(n for n, v in values.items() if v is None)
        if missing:
            return ERROR, f"workflow parameters not supplied: {', '.join(missing)}"
        self._globals = dict(identity, **{"workflow.parameters": compact_json(values)})
        self._globals.update({f"workflow.parameters.{k}": v for k, v in values.items()})
        root = state["name"]
        template = self.spec.templates[self.spec.entrypoint]
        node = self._execute(template, root, root, None, values, {})
        if self.spec.on_exit and not self._stop.is_set():
            return self._run_exit_handler(node, values)
        return node["phase"], node.get("message", "")

    def _run_exit_handler(self, main: dict, values: dict) -> tuple[str, str]:
        """operator.go: the onExit template runs as `<name>.onExit` with the workflow's arguments,
        workflow.status and workflow.failures set; it fails a run that had succeeded, never
        changes a failure's message."""
        status = _WORKFLOW_STATUS.get(main["phase"], main["phase"])
        with self._lock:
            failures = [_failure(n) for n in self._state["nodes"].values() if n["phase"] in (FAILED, ERROR)]
        self._globals.update({"workflow.status": status, "workflow.failures": compact_json(failures)})
        name = f"{self._state['name']}.onExit"
        handler = self._execute(self.spec.templates[self.spec.on_exit], name, name, None, values, {})
        if status == SUCCEEDED and handler["phase"] in (FAILED, ERROR):
            return handler["phase"], handler.get("message", "")
        return status, main.get("message", "")

    def _duration(self) -> str:
        """workflow.duration: seconds since the run started, as Go's %f prints them."""
        started = calendar.timegm(time.strptime(self._state["started_at"], "%Y-%m-%dT%H:%M:%SZ"))
        return "%f" % max(0.0, time.time() - started)

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

    def _execute(self, template: dict, node_id: str, display: str, parent: str | None,
                 arguments: dict, artifacts: dict) -> dict:
        """Run `template` as node `node_id` with the caller's argument values."""
        self._globals["workflow.duration"] = self._duration()
        kind = "Steps" if "steps" in template else "DAG" if "dag" in template else "Pod"
        node = self._new_node(node_id, display, kind, template["name"], parent)
        if node_id.count(".") - self._state["root"].count(".") > _MAX_DEPTH:
            return self._set(node, phase=ERROR, message=f"templates nested deeper than "
                             f"{_MAX_DEPTH} levels (a recursion that does not end?)")
        try:
            inputs = bind_inputs(template, arguments, self._globals)
        except ExpressionError as error:
            return self._set(node, phase=ERROR, message=str(error))
        with self._lock:
            node["inputs"] = inputs
        if kind == "Pod":
            return self._run_leaf(template, node, inputs, artifacts)
        if template.get("parallelism"):
            self._limits[node_id] = threading.BoundedSemaphore(template["parallelism"])
        self._set(node, phase=RUNNING)
        scope = dict(self._globals)
        scope.update(input_scope(inputs))
        try:
            if kind == "Steps":
                phase, message, scope = self._run_steps(template, node, scope)
            else:
                phase, message, scope = self._run_dag(template, node, scope)
            outputs = self._container_outputs(template, scope) if phase == SUCCEEDED else {}
        except ExpressionError as error:
            phase, message, outputs = ERROR, str(error), {}
        return self._set(node, phase=phase, message=message, outputs=outputs)

    def _container_outputs(self, template: dict, scope: dict) -> dict:
        """Outputs of a steps/dag template: each parameter's valueFrom.parameter, rendered."""
        parameters = {}
        for param in (template.get("outputs") or {}).get("parameters") or []:
            source = (param.get("valueFrom") or {}).get("parameter")
            if source is None:
                raise ExpressionError(f"output parameter {param['name']!r} of a steps/dag "
                                      f"template needs valueFrom.parameter")
            parameters[param["name"]] = render(source, scope)
            self._export(param, parameters[param["name"]])
        return {"parameters": parameters} if parameters else {}

    def _export(self, param: dict, value: str) -> None:
        if param.get("globalName"):
            with self._lock:
                self._state["outputs"][param["globalName"]] = value
                self._journal.record({"run": {"outputs": self._state["outputs"]}})

    def _run_steps(self, template: dict, node: dict, scope: dict):
        for index, group in enumerate(template["steps"]):
            if self._stop.is_set():
                return FAILED, self._stop_reason, scope
            group_id = f"{node['id']}[{index}]"
            group_node = self._new_node(group_id, f"[{index}]", "StepGroup", None, node["id"])
            self._set(group_node, phase=RUNNING)
            results = _parallel([(lambda s=s: self._call(s, group_id, scope)) for s in group])
            failed = None
            for step, result in zip(group, results):
                scope.update(node_scope("steps", step["name"], result))
                if result["phase"] in (FAILED, ERROR) and not _continues(step, result["phase"]):
                    failed = failed or result
            if failed:
                message = f"child '{failed['id']}' {failed['phase'].lower()}"
                self._set(group_node, phase=FAILED, message=message)
                return FAILED, message, scope
            self._set(group_node, phase=SUCCEEDED)
        return SUCCEEDED, "", scope

    def _run_dag(self, template: dict, node: dict, scope: dict):
        """Start each task once its dependencies are done; with failFast (Argo's default), an
        unhandled failure stops new tasks from starting."""
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        targets = _targets(template["dag"], tasks, scope)
        tasks = {name: tasks[name] for name in _needed(targets, tasks)}
        fail_fast = template["dag"].get("failFast", True)
        done: dict[str, dict] = {}
        started: set[str] = set()
        changed = threading.Condition()

        def run(task, task_scope):
            result = self._call(task, node["id"], task_scope)
            with changed:
                done[task["name"]] = result
                changed.notify()

        with changed:
            while True:
                halted = self._stop.is_set() or (fail_fast and _unhandled(done, tasks))
                for name, task in tasks.items():
                    if halted or name in started or not all(d in done for d in _deps(task)):
                        continue
                    started.add(name)
                    for dep in _deps(task):
                        scope.update(node_scope("tasks", dep, done[dep]))
                    if not _dependencies_hold(task, done, tasks):
                        omitted = self._new_node(f"{node['id']}.{name}", name, "Skipped",
                                                 self._callee(task)["name"], node["id"])
                        done[name] = self._set(omitted, phase=OMITTED,
                                               message="its dependencies did not hold")
                        continue
                    threading.Thread(target=run, args=(task, dict(scope)), daemon=True).start()
                if len(done) == len(started) and (halted or len(done) == len(tasks)):
                    break
                changed.wait(0.5)
        for name, result in done.items():
            scope.update(node_scope("tasks", name, result))
        if self._stop.is_set():
            return FAILED, self._stop_reason, scope
        failed = _unhandled(done, tasks) if len(done) < len(tasks) else _dag_phase(done, tasks, targets)
        if failed:
            return FAILED, f"child '{failed['id']}' {failed['phase'].lower()}", scope
        return SUCCEEDED, "", scope

    def _call(self, step: dict, parent: str, scope: dict) -> dict:
        """One step or task: its `when`, its loop, then the template it calls."""
        base = f"{parent}.{step['name']}"
        template = self._callee(step)
        try:
            items = loop_items(step, scope)
        except ExpressionError as error:
            node = self._new_node(base, step["name"], "Pod", template["name"], parent)
            return self._set(node, phase=ERROR, message=str(error))
        if items is None:
            return self._one(step, template, base, step["name"], parent, scope)
        if not items:  # steps.go / dag.go: an empty expansion is Skipped, the rest carries on
            node = self._new_node(base, step["name"], "Skipped", template["name"], parent)
            return self._set(node, phase=SKIPPED, message="Skipped, empty params")
        loop = self._new_node(base, step["name"], "TaskGroup", None, parent)
        self._set(loop, phase=RUNNING)
        calls = []
        for index, item in enumerate(items):
            local = dict(scope)
            local.update(item_scope(item))
            label = f"{step['name']}({index}:{_label(item)})"
            calls.append(lambda l=local, lb=label: self._one(
                step, template, f"{base}({lb[len(step['name']) + 1:-1]})", lb, base, l))
        children = _parallel(calls)
        return self._set(loop, **_aggregate(children, step))

    def _callee(self, step: dict) -> dict:
        """The template a step calls: by name, or its `inline` template (named after the step)."""
        if "inline" in step:
            return dict(step["inline"], name=step["name"])
        return self.spec.templates[_target(step)]

    def _one(self, step, template, node_id, display, parent, scope) -> dict:
        try:
            if step.get("when") and not evaluate_when(render(step["when"], scope)):
                node = self._new_node(node_id, display, "Skipped", template["name"], parent)
                return self._set(node, phase=SKIPPED, outputs=_skipped_outputs(template),
                                 message=f"when '{render(step['when'], scope)}' evaluated false")
            arguments = {p["name"]: render(stringify(p.get("value", "")), scope)
                         for p in (step.get("arguments") or {}).get("parameters") or []}
            artifacts = {a["name"]: artifact_source(a, scope)
                         for a in (step.get("arguments") or {}).get("artifacts") or []}
        except ExpressionError as error:
            node = self._new_node(node_id, display, "Pod", template["name"], parent)
            return self._set(node, phase=ERROR, message=str(error))
        return self._execute(template, node_id, display, parent, arguments, artifacts)

    # --- leaves -----------------------------------------------------------------------------

    def _run_leaf(self, template: dict, node: dict, inputs: dict, artifacts: dict) -> dict:
        previous = self._previous.get(node["id"])
        if previous and self._keeps(previous):
            with self._lock:
                node.update({k: v for k, v in previous.items() if k != "children"})
            self._export_all(template, node)
            return self._set(node)
        retry = template.get("retryStrategy") or {}
        limit = int(retry.get("limit", 0)) if retry else 0
        retried_on = _POLICIES[retry.get("retryPolicy", "OnFailure")]
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
            delay = _backoff(retry.get("backoff"), attempts)
            beyond = _beyond_max_duration(retry.get("backoff"), first_start, delay)
            if beyond:
                self._set(node, message=beyond)
                break
            if self._stop.wait(delay):
                break
            cut = _time_left(retry.get("backoff"), first_start)
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
                result = attempt.finish(_deadline(template.get("activeDeadlineSeconds"), cut))
            finally:
                with self._lock:
                    self._procs.pop(node["id"], None)
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
        """The `parallelism` limits a step is under: the workflow's, then each template's."""
        chain, parent = [], node["parent"]
        with self._lock:
            while parent is not None:
                if parent in self._limits:
                    chain.append(self._limits[parent])
                parent = self._state["nodes"][parent].get("parent")
        return ([self._limits[None]] if None in self._limits else []) + chain[::-1]


def _parallel(calls: list) -> list:
    """Run the calls on up to _THREADS threads; step processes are bounded by the engine's pool.

    A call only ever waits for its own subtree, which gets threads of its own, so the bound
    cannot deadlock; it only keeps a 10,000-item fan-out from starting 10,000 threads at once.
    """
    if len(calls) == 1:
        return [calls[0]()]
    with ThreadPoolExecutor(max_workers=min(len(calls), _THREADS)) as pool:
        return list(pool.map(lambda call: call(), calls))


def _aggregate(children: list[dict], step: dict) -> dict:
    """The loop node: Failed if any child failed (unless continueOn), outputs as JSON lists."""
    failed = [c for c in children
              if c["phase"] in (FAILED, ERROR) and not _continues(step, c["phase"])]
    outputs = {}
    names = {n for c in children for n in c.get("outputs", {}).get("parameters", {})}
    if names:
        outputs["parameters"] = {n: compact_json(_json_values([
            c["outputs"]["parameters"][n] for c in children
            if n in c.get("outputs", {}).get("parameters", {})])) for n in names}
    results = [c["outputs"]["result"] for c in children if "result" in c.get("outputs", {})]
    if results:
        outputs["result"] = compact_json([_json_or_text(r) for r in results])
    counts = {"any_succeeded": any(c["phase"] == SUCCEEDED for c in children),
              "all_failed": bool(children) and all(c["phase"] == FAILED for c in children),
              # what `steps.X.outputs.parameters` is after a loop: one map per child
              "parameter_maps": compact_json([c["outputs"]["parameters"] for c in children
                                            if c.get("outputs", {}).get("parameters")])}
    if failed:
        return {"phase": FAILED, "message": f"child '{failed[0]['id']}' failed",
                "outputs": outputs, **counts}
    return {"phase": SUCCEEDED, "outputs": outputs, **counts}


def _skipped_outputs(template: dict) -> dict:
    """A skipped node's outputs: each output parameter's valueFrom.default, which Argo passes on
    to whoever reads it (dag.go / steps.go since PR 16223: the producer's declared default)."""
    parameters = {p["name"]: stringify(p["valueFrom"]["default"])
                  for p in (template.get("outputs") or {}).get("parameters") or []
                  if "default" in (p.get("valueFrom") or {})}
    return {"parameters": parameters} if parameters else {}


def _json_values(values: list[str]) -> list:
    """Argo 3.6's per-name aggregation (operator.go, PR 13513): the values as JSON when every
    one is a JSON object or list, else the strings (a bare number stays a string)."""
    try:
        if all(v.strip()[:1] + v.strip()[-1:] in ("{}", "[]") for v in values):
            return [json.loads(v) for v in values]
    except ValueError:
        pass
    return values


def _json_or_text(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _failure(node: dict) -> dict:
    """One entry of workflow.failures, with the fields operator.go's failedNodeStatus has."""
    return {"displayName": node["name"], "message": node.get("message", ""), "templateName": node.get("template"),
            "phase": node["phase"], "podName": node["id"], "finishedAt": node.get("finished_at")}


def _continues(step: dict, phase: str) -> bool:
    on = step.get("continueOn") or {}
    return bool(on.get("failed") if phase == FAILED else on.get("error"))


def _target(step: dict) -> str:
    return step["templateRef"]["template"] if "templateRef" in step else step["template"]


def _deps(task: dict) -> list[str]:
    return task.get("dependencies") or depends_tasks(task.get("depends") or "")


def _dependencies_hold(task: dict, done: dict, tasks: dict) -> bool:
    if task.get("depends"):
        def outcome(name, result):
            phase = done[name]["phase"]
            return {"Succeeded": phase == SUCCEEDED, "Failed": phase == FAILED,
                    "Errored": phase == ERROR, "Skipped": phase == SKIPPED,
                    "Omitted": phase == OMITTED, "Daemoned": False,
                    "AnySucceeded": _any_child(done[name], SUCCEEDED),
                    "AllFailed": _all_children_failed(done[name])}[result]
        return evaluate_depends(task["depends"], outcome)
    # `dependencies`: every dependency succeeded or was skipped, or failed under continueOn.
    return all(done[d]["phase"] in (SUCCEEDED, SKIPPED) or _continues(tasks[d], done[d]["phase"])
               for d in task.get("dependencies") or [])


def _any_child(node: dict, phase: str) -> bool:
    if node["type"] == "TaskGroup":
        return node.get("any_succeeded", False)
    return node["phase"] == phase


def _all_children_failed(node: dict) -> bool:
    return node["phase"] == FAILED if node["type"] != "TaskGroup" else node.get("all_failed", False)


def _unhandled(done: dict, tasks: dict) -> dict | None:
    """The first finished task by name (as Argo orders targets, not by which finished first)
    whose failure nothing handles (continueOn or a depends)."""
    for name, result in sorted(done.items()):
        if result["phase"] in (FAILED, ERROR) and not _continues(tasks[name], result["phase"]) \
                and not _handled(name, tasks):
            return result
    return None


def _handled(name: str, tasks: dict) -> bool:
    """A failure another task's `depends` reacts to (`name.Failed`, `.Errored`, `.AllFailed`,
    the parsed operand, never a substring of another task's name) does not halt the DAG."""
    return any((name, result) in depends_operands(t.get("depends") or "")
               for t in tasks.values() for result in ("Failed", "Errored", "AllFailed"))


def _targets(dag: dict, tasks: dict, scope: dict) -> list[str]:
    """dag.go: `target`'s space-separated names (after substitution), else the leaf tasks."""
    if dag.get("target") is None:
        needed = {d for t in tasks.values() for d in _deps(t)}
        return sorted(n for n in tasks if n not in needed)
    names = render(str(dag["target"]), scope).split(" ")
    unknown = [name for name in names if name not in tasks]
    if unknown:
        raise ExpressionError(f"dag.target: target {unknown[0]!r} is not defined")
    return names


def _needed(targets: list[str], tasks: dict) -> set[str]:
    """The targets and every task they (transitively) depend on: all a DAG with a target runs."""
    needed: set[str] = set()
    pending = list(targets)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending += _deps(tasks[name])
    return needed


def _dag_phase(done: dict, tasks: dict, targets: list[str]) -> dict | None:
    """dag.go assessDAGPhase: the first target (the leaf tasks unless `dag.target` names them) by
    name whose branch failed, or None. A Skipped or Omitted task inherits its dependencies' branch
    phase (a failure before a success), so a target omitted after a failure fails the DAG; a
    target's continueOn for that phase excuses it."""
    branch: dict[str, dict] = {}

    def phase_of(name: str) -> dict | None:
        if name not in branch:
            node = done.get(name)
            if node is None or node["phase"] in (SUCCEEDED, FAILED, ERROR):
                branch[name] = node
            else:
                parents = [phase_of(d) for d in _deps(tasks[name])]
                failed = [p for p in parents if p and p["phase"] in (FAILED, ERROR)]
                branch[name] = failed[0] if failed else node
        return branch[name]

    for name in targets:  # in the order dag.go assesses them (leaves sorted)
        node = phase_of(name)
        if node and node["phase"] in (FAILED, ERROR) and not _continues(tasks[name], node["phase"]):
            return node
    return None


def _label(item) -> str:
    if isinstance(item, dict):
        return ",".join(f"{k}:{stringify(v)}" for k, v in item.items())
    return stringify(item)


def _safe(node_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.()" else "_" for c in node_id)[:200]


def _backoff(backoff: dict | None, attempt: int) -> float:
    if not backoff:
        return 0
    duration = golang.seconds(backoff.get("duration", "0"))
    wait = duration * float(backoff.get("factor", 1) or 1) ** (attempt - 1)
    return min(wait, golang.seconds(backoff["cap"])) if backoff.get("cap") else wait  # processNodeRetries


def _time_left(backoff: dict | None, first_start: float) -> float | None:
    """operator.go: a retry's pod gets the maxDuration deadline as its execution deadline."""
    if not backoff or not backoff.get("maxDuration"):
        return None
    return max(0.001, first_start + golang.seconds(backoff["maxDuration"]) - time.monotonic())


def _deadline(active_deadline, cut: float | None) -> float | None:
    limits = [float(v) for v in (active_deadline, cut) if v is not None]
    return min(limits) if limits else None


def _beyond_max_duration(backoff: dict | None, first_start: float, delay: float) -> str:
    """operator.go processNodeRetries: maxDuration bounds all attempts from the first one's
    start; no retry once it has passed, nor one whose backoff would end after it."""
    if not backoff or not backoff.get("maxDuration"):
        return ""
    deadline = first_start + golang.seconds(backoff["maxDuration"])
    if time.monotonic() > deadline:
        return "Max duration limit exceeded"
    if time.monotonic() + delay > deadline:
        return "Backoff would exceed max duration limit"
    return ""
