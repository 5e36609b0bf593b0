"""Argo's semantics that the local engine follows, as pure functions: node phases; a DAG's
dependencies, `depends` and its phase (dag.go assessDAGPhase), dag.target; continueOn;
what a loop's outputs aggregate to; a skipped step's outputs; a failed node as workflow.failures
lists it."""
from __future__ import annotations

import json

from workflow_templates.engines.expressions import (
    ExpressionError, depends_tasks, evaluate_depends, render)
from workflow_templates.engines.scope import compact_json, stringify

PENDING, RUNNING, SUCCEEDED = "Pending", "Running", "Succeeded"
FAILED, ERROR, SKIPPED, OMITTED = "Failed", "Error", "Skipped", "Omitted"
FINISHED = {SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED}
# operator.go: the workflow phase workflow.status names, from the entrypoint node's phase
WORKFLOW_STATUS = {SKIPPED: SUCCEEDED, OMITTED: SUCCEEDED}


def aggregate(children: list[dict], step: dict) -> dict:
    """The loop node: Failed if any child failed (unless continueOn), outputs as JSON lists."""
    failed = [c for c in children
              if c["phase"] in (FAILED, ERROR) and not continues(step, c["phase"])]
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


def skipped_outputs(template: dict) -> dict:
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


def failure(node: dict) -> dict:
    """One entry of workflow.failures, with the fields operator.go's failedNodeStatus has."""
    return {"displayName": node["name"], "message": node.get("message", ""), "templateName": node.get("template"),
            "phase": node["phase"], "podName": node["id"], "finishedAt": node.get("finished_at")}


def continues(step: dict, phase: str) -> bool:
    on = step.get("continueOn") or {}
    return bool(on.get("failed") if phase == FAILED else on.get("error"))


def target(step: dict) -> str:
    return step["templateRef"]["template"] if "templateRef" in step else step["template"]


def deps(task: dict) -> list[str]:
    return task.get("dependencies") or depends_tasks(task.get("depends") or "")


def dependencies_hold(task: dict, done: dict, tasks: dict) -> bool:
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
    return all(done[d]["phase"] in (SUCCEEDED, SKIPPED) or continues(tasks[d], done[d]["phase"])
               for d in task.get("dependencies") or [])


def _any_child(node: dict, phase: str) -> bool:
    if node["type"] == "TaskGroup":
        return node.get("any_succeeded", False)
    return node["phase"] == phase


def _all_children_failed(node: dict) -> bool:
    return node["phase"] == FAILED if node["type"] != "TaskGroup" else node.get("all_failed", False)


def targets(dag: dict, tasks: dict, scope: dict) -> list[str]:
    """dag.go: `target`'s space-separated names (after substitution), else the leaf tasks."""
    if dag.get("target") is None:
        needed = {d for t in tasks.values() for d in deps(t)}
        return sorted(n for n in tasks if n not in needed)
    names = render(str(dag["target"]), scope).split(" ")
    unknown = [name for name in names if name not in tasks]
    if unknown:
        raise ExpressionError(f"dag.target: target {unknown[0]!r} is not defined")
    return names


def needed(targets: list[str], tasks: dict) -> set[str]:
    """The targets and every task they (transitively) depend on: all a DAG with a target runs."""
    needed: set[str] = set()
    pending = list(targets)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending += deps(tasks[name])
    return needed


def dag_phase(done: dict, tasks: dict, targets: list[str]) -> dict | None:
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
                parents = [phase_of(d) for d in deps(tasks[name])]
                failed = [p for p in parents if p and p["phase"] in (FAILED, ERROR)]
                branch[name] = failed[0] if failed else node
        return branch[name]

    for name in targets:  # in the order dag.go assesses them (leaves sorted)
        node = phase_of(name)
        if node and node["phase"] in (FAILED, ERROR) and not continues(tasks[name], node["phase"]):
            return node
    return None


def label(item) -> str:
    if isinstance(item, dict):
        return ",".join(f"{k}:{stringify(v)}" for k, v in item.items())
    return stringify(item)
