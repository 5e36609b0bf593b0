"""Argo's semantics over a run's templates, apart from how steps execute: the entrypoint and the
exit handler, steps groups in order, DAG tasks as their dependencies allow (at most DAG_THREADS
at once per DAG), loops, `when`, inputs and outputs, the run's phase.

Walker is a mixin: RunHandle (local.py) executes what it walks to. It calls, of the executor,
`_new_node`, `_set` and `_run_leaf` (a container or script step: attempts, retries, processes),
and reads `_state`, `_globals`, `_lock`, `_limits`, `_stop` and `_stop_reason`.
"""
from __future__ import annotations

import calendar
import contextlib
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from workflow_templates.engines import phases
from workflow_templates.engines.expressions import ExpressionError, evaluate_when, render
from workflow_templates.engines.phases import ERROR, FAILED, OMITTED, RUNNING, SKIPPED, SUCCEEDED
from workflow_templates.engines.runner import artifact_source
from workflow_templates.engines.scope import (
    bind_inputs, compact_json, input_scope, item_scope, loop_items, node_scope, stringify)

_THREADS = 64       # threads of one step group or loop (their step processes wait for the engine's pool)
DAG_THREADS = 64    # tasks of one DAG started at once; the rest wait for one to end
MAX_DEPTH = 100     # templates nested deeper: a recursion that does not end


class Walker:
    """The templates' structure, walked as Argo's controller walks it (see the module's doc)."""

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
        status = phases.WORKFLOW_STATUS.get(main["phase"], main["phase"])
        with self._lock:
            failures = [phases.failure(n) for n in self._state["nodes"].values() if n["phase"] in (FAILED, ERROR)]
        self._globals.update({"workflow.status": status, "workflow.failures": compact_json(failures)})
        name = f"{self._state['name']}.onExit"
        handler = self._execute(self.spec.templates[self.spec.on_exit], name, name, None, values, {})
        if status == SUCCEEDED and handler["phase"] in (FAILED, ERROR):
            return handler["phase"], handler.get("message", "")
        return status, main.get("message", "")

    def _duration(self) -> str:
        """workflow.duration: seconds since the run started, as Go's %f prints them."""
        return "%f" % max(0.0, time.time() - self._started_epoch)

    @functools.cached_property
    def _started_epoch(self) -> int:
        """The run's start (it never changes), read once rather than at every node."""
        return calendar.timegm(time.strptime(self._state["started_at"], "%Y-%m-%dT%H:%M:%SZ"))

    def _execute(self, template: dict, node_id: str, display: str, parent: str | None,
                 arguments: dict, artifacts: dict) -> dict:
        """Run `template` as node `node_id` with the caller's argument values."""
        self._globals["workflow.duration"] = self._duration()
        kind = "Steps" if "steps" in template else "DAG" if "dag" in template else "Pod"
        node = self._new_node(node_id, display, kind, template["name"], parent)
        if node_id.count(".") - self._state["root"].count(".") > MAX_DEPTH:
            return self._set(node, phase=ERROR, message=f"templates nested deeper than "
                             f"{MAX_DEPTH} levels (a recursion that does not end?)")
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
        with self._boundary_limit(node) or contextlib.nullcontext():  # a child of its boundary
            return self._run_children(template, node, kind, inputs)

    def _run_children(self, template: dict, node: dict, kind: str, inputs: dict) -> dict:
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
        """Outputs of a steps/dag template: each parameter's valueFrom.parameter, rendered, or
        its valueFrom.expression, evaluated as an expression tag is."""
        parameters = {}
        for param in (template.get("outputs") or {}).get("parameters") or []:
            value_from = param.get("valueFrom") or {}
            if "expression" in value_from:
                source = "{{=" + value_from["expression"] + "}}"
            elif "parameter" in value_from:
                source = value_from["parameter"]
            else:
                raise ExpressionError(f"output parameter {param['name']!r} of a steps/dag "
                                      f"template needs valueFrom.parameter or expression")
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
            results = parallel([(lambda s=s: self._call(s, group_id, scope)) for s in group])
            failed = None
            for step, result in zip(group, results):
                scope.update(node_scope("steps", step["name"], result))
                if result["phase"] in (FAILED, ERROR) and not phases.continues(step, result["phase"]):
                    failed = failed or result
            if failed:
                message = f"child '{failed['id']}' {failed['phase'].lower()}"
                self._set(group_node, phase=FAILED, message=message)
                return FAILED, message, scope
            self._set(group_node, phase=SUCCEEDED)
        return SUCCEEDED, "", scope

    def _run_dag(self, template: dict, node: dict, scope: dict):
        """Start each task once its dependencies are done, at most DAG_THREADS at once. As in
        dag.go executeDAGTask, a failure elsewhere stops no task whose dependencies hold (dag
        failFast only orders assessDAGPhase); the DAG's phase is assessed once all are done."""
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        targets = phases.targets(template["dag"], tasks, scope)
        tasks = {name: tasks[name] for name in phases.needed(targets, tasks)}
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
                halted = self._stop.is_set()
                for name, task in tasks.items():
                    if len(started) - len(done) >= DAG_THREADS:
                        break  # the rest start as running tasks end
                    if halted or name in started or not all(d in done for d in phases.deps(task)):
                        continue
                    started.add(name)
                    for dep in phases.deps(task):
                        scope.update(node_scope("tasks", dep, done[dep]))
                    if not phases.dependencies_hold(task, done, tasks):
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
        failed = phases.dag_phase(done, tasks, targets)
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
            label = f"{step['name']}({index}:{phases.label(item)})"
            calls.append(lambda l=local, lb=label: self._one(
                step, template, f"{base}({lb[len(step['name']) + 1:-1]})", lb, base, l))
        children = parallel(calls)
        return self._set(loop, **phases.aggregate(children, step))

    def _callee(self, step: dict) -> dict:
        """The template a step calls: by name, or its `inline` template (named after the step)."""
        if "inline" in step:
            return dict(step["inline"], name=step["name"])
        return self.spec.templates[phases.target(step)]

    def _one(self, step, template, node_id, display, parent, scope) -> dict:
        try:
            if step.get("when") and not evaluate_when(render(step["when"], scope)):
                node = self._new_node(node_id, display, "Skipped", template["name"], parent)
                return self._set(node, phase=SKIPPED, outputs=phases.skipped_outputs(template),
                                 message=f"when '{render(step['when'], scope)}' evaluated false")
            arguments = {p["name"]: render(stringify(p.get("value", "")), scope)
                         for p in (step.get("arguments") or {}).get("parameters") or []}
            artifacts = {a["name"]: artifact_source(a, scope)
                         for a in (step.get("arguments") or {}).get("artifacts") or []}
        except ExpressionError as error:
            node = self._new_node(node_id, display, "Pod", template["name"], parent)
            return self._set(node, phase=ERROR, message=str(error))
        return self._execute(template, node_id, display, parent, arguments, artifacts)


def parallel(calls: list) -> list:
    """Run the calls on up to _THREADS threads; step processes are bounded by the engine's pool.

    A call only ever waits for its own subtree, which gets threads of its own, so the bound
    cannot deadlock; it only keeps a 10,000-item fan-out from starting 10,000 threads at once.
    """
    if len(calls) == 1:
        return [calls[0]()]
    with ThreadPoolExecutor(max_workers=min(len(calls), _THREADS)) as pool:
        return list(pool.map(lambda call: call(), calls))
