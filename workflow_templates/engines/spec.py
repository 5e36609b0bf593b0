"""Load a WorkflowTemplate for the local engine: every field is either run, ignored as
placement-only, or refused here, at load, with its name and where it is."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import regex
import yaml

from workflow_templates.engines import expr, golang, reuse
from workflow_templates.engines.expressions import ExpressionError, depends_tasks, tags


class TemplateRefused(ValueError):
    """The template uses something the local engine does not run; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("template refused by the local engine:\n  " + "\n  ".join(problems))


# Fields that only place or dress a pod on Kubernetes; running them locally changes nothing.
_PLACEMENT = {"metadata", "nodeSelector", "affinity", "tolerations", "serviceAccountName",
              "securityContext", "priorityClassName", "priority", "schedulerName", "executor",
              "automountServiceAccountToken", "podGC", "ttlStrategy", "workflowMetadata",
              "podMetadata", "imagePullSecrets", "archiveLogs", "podPriorityClassName",
              "dnsPolicy", "dnsConfig"}
_CONTAINER_PLACEMENT = {"image", "imagePullPolicy", "resources", "securityContext", "name",
                        "livenessProbe", "readinessProbe", "startupProbe",
                        "terminationMessagePath", "terminationMessagePolicy"}

# shape -> (keys run, keys ignored)
_SHAPES = {
    "document": ({"apiVersion", "kind", "metadata", "spec"}, set()),
    "spec": ({"entrypoint", "arguments", "templates", "activeDeadlineSeconds", "parallelism", "onExit"},
             _PLACEMENT),
    "template": ({"name", "inputs", "outputs", "steps", "dag", "container", "script",
                  "retryStrategy", "activeDeadlineSeconds", "parallelism", "memoize",
                  "archiveLocation"}, _PLACEMENT),
    # where a template's artifacts and logs go on a cluster: only archiveLogs changes nothing here
    # (the engine keeps every step's log); an artifact location (s3, ...) would move outputs
    "archive_location": (set(), {"archiveLogs"}),
    "container": ({"command", "args", "env"}, _CONTAINER_PLACEMENT),
    "script": ({"command", "args", "env", "source"}, _CONTAINER_PLACEMENT),
    "env": ({"name", "value"}, set()),
    "step": ({"name", "template", "templateRef", "inline", "arguments", "when", "withItems",
              "withParam", "withSequence", "continueOn"}, set()),
    "task": ({"name", "template", "templateRef", "inline", "arguments", "when", "withItems",
              "withParam", "withSequence", "continueOn", "dependencies", "depends"}, set()),
    "dag": ({"tasks", "failFast", "target"}, set()),
    "arguments": ({"parameters", "artifacts"}, set()),
    "inputs": ({"parameters", "artifacts"}, set()),
    "outputs": ({"parameters", "artifacts"}, set()),
    "parameter": ({"name", "value", "default", "enum"}, {"description"}),
    "output_parameter": ({"name", "valueFrom", "globalName"}, {"description"}),
    "value_from": ({"path", "default", "parameter", "expression"}, set()),
    "input_artifact": ({"name", "path", "from", "raw", "s3", "optional"}, {"archive"}),
    "argument_artifact": ({"name", "from", "raw", "s3"}, set()),
    "output_artifact": ({"name", "path", "s3", "optional"}, {"archive"}),
    "s3": ({"key"}, set()),
    "raw": ({"data"}, set()),
    "retry": ({"limit", "retryPolicy", "backoff"}, {"affinity"}),
    "backoff": ({"duration", "factor", "maxDuration", "cap"}, set()),
    "continue_on": ({"failed", "error"}, set()),
    "template_ref": ({"name", "template"}, set()),
    "sequence": ({"count", "start", "end", "format"}, set()),
    "memoize": ({"key", "maxAge", "cache"}, set()),
    "cache": ({"configMap"}, set()),
    "config_map": ({"name"}, set()),
}
_RETRY_POLICIES = {"Always", "OnFailure", "OnError"}
_WORKFLOW_IDENTITY = re.compile(r"workflow\.(name|uid|namespace)")
_NODE_FIELDS = r"(?:outputs\.result|outputs\.exitCode|outputs\.parameters(?:\.[\w\-]+)?|outputs\.artifacts\.[\w\-]+" \
               r"|exitCode|status|startedAt|finishedAt|id)"


@dataclass
class WorkflowSpec:
    """A loaded WorkflowTemplate: its templates by name and its declared workflow arguments."""

    name: str
    entrypoint: str
    arguments: dict[str, dict]
    templates: dict[str, dict]
    deadline: float | None = None
    document: dict = field(default_factory=dict, repr=False)
    parallelism: int | None = None
    on_exit: str | None = None


def refusals(document: dict) -> list[str]:
    """What the local engine refuses of a template document (empty: it runs it); the catalog's
    check, injected by the CLI."""
    try:
        load(document)
    except TemplateRefused as refused:
        return refused.problems
    return []


def load(document: dict | str, entrypoint: str | None = None) -> WorkflowSpec:
    """Check and load a WorkflowTemplate (a dict or YAML text); TemplateRefused lists problems."""
    doc = yaml.safe_load(document) if isinstance(document, str) else document
    problems: list[str] = []
    if isinstance(doc, dict) and doc.get("kind", "WorkflowTemplate") not in _KINDS:
        raise TemplateRefused([f"kind: {doc['kind']!r} is not run by the local engine "
                               f"(it runs {', '.join(sorted(_KINDS))})"])
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        raise TemplateRefused(["document: not a WorkflowTemplate (no spec)"])
    _shape(doc["spec"], "spec", "spec", problems)
    if problems:  # the checks below read the structure, so it must have its shape first
        raise TemplateRefused(problems)
    _keys(doc, "document", "", problems)
    spec = doc["spec"]
    _keys(spec, "spec", "spec", problems)
    metadata = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    # a Workflow named by generateName (most published examples) is called generateName + suffix
    name = metadata.get("name") or str(metadata.get("generateName") or "").rstrip("-") or "workflow"
    templates = {t.get("name"): t for t in spec.get("templates") or [] if isinstance(t, dict)}
    arguments = {p["name"]: p for p in (spec.get("arguments") or {}).get("parameters") or []}
    _check_arguments(spec, problems)
    on_exit = spec.get("onExit")
    if on_exit is not None and on_exit not in templates:
        problems.append(f"spec.onExit: no template named {on_exit!r}")
    exit_side = _reachable(on_exit, templates) if on_exit in templates else set()
    for index, template in enumerate(spec.get("templates") or []):
        where = f"spec.templates[{index}]({template.get('name')})"
        _check_template(template, where, templates, name, arguments, problems,
                        template.get("name") in exit_side)
    if not _seconds_value(spec.get("activeDeadlineSeconds", 0)):
        problems.append("spec.activeDeadlineSeconds: not a number of seconds")
    _check_parallelism(spec, "spec", problems)
    entry = entrypoint or spec.get("entrypoint")
    if entry is None and "workflowTemplateRef" not in spec:
        problems.append("spec.entrypoint: missing (a WorkflowTemplate without one holds templates "
                        "for others to call; the local engine runs one with an entrypoint)")
    elif entry is not None and entry not in templates:
        problems.append(f"spec.entrypoint: no template named {entry!r}")
    if problems:
        raise TemplateRefused(problems)
    return WorkflowSpec(name, entry, arguments, templates, spec.get("activeDeadlineSeconds"), doc,
                        spec.get("parallelism"), on_exit)


# A CronWorkflow's schedule is not the engine's to keep (the commons' triggers start runs).
_KINDS = {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"}
# What each structural field must hold; fields not named here hold free-form values.
_MAPPING, _MAPPINGS, _STRINGS, _GROUPS = "a mapping", "a list of mappings", "a list of strings", \
    "a list of step groups (lists of steps)"
_STRUCTURE = {
    "spec": _MAPPING, "templates": _MAPPINGS, "arguments": _MAPPING, "inputs": _MAPPING,
    "outputs": _MAPPING, "parameters": _MAPPINGS, "artifacts": _MAPPINGS, "container": _MAPPING,
    "script": _MAPPING, "env": _MAPPINGS, "command": _STRINGS, "args": _STRINGS, "dag": _MAPPING,
    "tasks": _MAPPINGS, "steps": _GROUPS, "inline": _MAPPING, "valueFrom": _MAPPING,
    "s3": _MAPPING, "raw": _MAPPING, "retryStrategy": _MAPPING, "backoff": _MAPPING,
    "continueOn": _MAPPING, "templateRef": _MAPPING, "withSequence": _MAPPING,
    "memoize": _MAPPING, "cache": _MAPPING, "configMap": _MAPPING, "dependencies": _STRINGS,
    "archiveLocation": _MAPPING,
}


def _shape(value, key: str, where: str, problems: list[str]) -> None:
    """Refuse, by place, a structural field of the wrong type (e.g. steps written as a mapping,
    Argo's pre-v2 form), so that no later check trips over it."""
    expected = _STRUCTURE.get(key)
    if expected is None or value is None:
        return
    if expected == _MAPPING:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected {expected}")
            return
        for k, v in value.items():
            _shape(v, k, f"{where}.{k}", problems)
        return
    if not isinstance(value, list):
        problems.append(f"{where}: expected {expected}")
        return
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if expected == _STRINGS:
            if isinstance(item, (dict, list)):
                problems.append(f"{here}: expected a string")
        elif expected == _GROUPS and not isinstance(item, list):
            problems.append(f"{here}: expected a step group (a list of steps)")
        elif expected == _GROUPS:
            _shape(item, "tasks", here, problems)  # a group: a list of steps (mappings)
        elif not isinstance(item, dict):
            problems.append(f"{here}: expected a mapping")
        else:
            for k, v in item.items():
                _shape(v, k, f"{here}.{k}", problems)


def _reachable(name: str, templates: dict) -> set[str]:
    """`name` and every template it calls, through steps and DAG tasks."""
    found, pending = set(), [name]
    while pending:
        current = pending.pop()
        if current in found or current not in templates:
            continue
        found.add(current)
        template = templates[current]
        calls = [s for group in template.get("steps") or [] for s in (group or [])]
        calls += (template.get("dag") or {}).get("tasks") or []
        pending += [c.get("templateRef", {}).get("template") or c.get("template") for c in calls
                    if isinstance(c, dict) and "inline" not in c]
    return found


def _keys(obj, shape: str, where: str, problems: list[str]) -> None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected a mapping")
        return
    run, ignored = _SHAPES[shape]
    for key in obj:
        if key not in run and key not in ignored:
            problems.append(f"{where}.{key}: not supported by the local engine".lstrip("."))


def _check_arguments(spec: dict, problems: list[str]) -> None:
    arguments = spec.get("arguments") or {}
    _keys(arguments, "arguments", "spec.arguments", problems)
    for i, param in enumerate(arguments.get("parameters") or []):
        _keys(param, "parameter", f"spec.arguments.parameters[{i}]", problems)
    if arguments.get("artifacts"):
        problems.append("spec.arguments.artifacts: workflow-level artifacts are not supported")
    _check_tags(arguments.get("parameters"), _WORKFLOW_IDENTITY, "spec.arguments", problems)


def _check_template(template, where, templates, wf_name, arguments, problems, exit_side=False):
    _keys(template, "template", where, problems)
    kinds = [k for k in ("container", "script", "steps", "dag") if k in template]
    if len(kinds) != 1:
        problems.append(f"{where}: needs exactly one of container, script, steps, dag "
                        f"(has {kinds or 'none'})")
    _check_io(template, where, arguments, problems)
    _keys(template.get("archiveLocation") or {}, "archive_location", f"{where}.archiveLocation", problems)
    _check_retry(template.get("retryStrategy"), where, problems)
    for key in ("retryStrategy", "activeDeadlineSeconds", "memoize"):
        if key in template and ("steps" in template or "dag" in template):
            problems.append(f"{where}.{key}: the local engine applies it to container and "
                            f"script templates only")
    _check_parallelism(template, where, problems)
    if "parallelism" in template and not ("steps" in template or "dag" in template):
        problems.append(f"{where}.parallelism: only steps and dag templates have children to limit")
    deadline = template.get("activeDeadlineSeconds")
    if deadline is not None and not _seconds_value(deadline):
        problems.append(f"{where}.activeDeadlineSeconds: {deadline!r} is not a number of seconds")
    scope = _Scope(arguments, template, exit_side)
    if "container" in template or "script" in template:
        _check_leaf(template, where, scope, problems)
    elif "steps" in template:
        _check_steps(template, where, templates, wf_name, scope, problems)
    elif "dag" in template:
        _check_dag(template, where, templates, wf_name, scope, problems)


def _check_io(template, where, arguments, problems):
    """A template's inputs and outputs: known fields, paths the engine can map."""
    inputs, outputs = template.get("inputs") or {}, template.get("outputs") or {}
    _keys(inputs, "inputs", f"{where}.inputs", problems)
    _keys(outputs, "outputs", f"{where}.outputs", problems)
    for i, p in enumerate(inputs.get("parameters") or []):
        _keys(p, "parameter", f"{where}.inputs.parameters[{i}]", problems)
        _check_tags([p.get("value"), p.get("default")], _Scope(arguments, {}).workflow(),
                    f"{where}.inputs.parameters[{i}]", problems)
    for i, p in enumerate(outputs.get("parameters") or []):
        _keys(p, "output_parameter", f"{where}.outputs.parameters[{i}]", problems)
        _keys(p.get("valueFrom") or {}, "value_from",
              f"{where}.outputs.parameters[{i}].valueFrom", problems)
        if "path" in (p.get("valueFrom") or {}):
            _check_path(p["valueFrom"], f"{where}.outputs.parameters[{i}].valueFrom", problems)
        parent = "steps" in template or "dag" in template
        sources = {"parameter", "expression", "default"} if parent else {"path", "default"}
        if not sources & set(p.get("valueFrom") or {}):
            problems.append(f"{where}.outputs.parameters[{i}].valueFrom: needs "
                            f"{'parameter or expression' if parent else 'path'} here")
        if not parent and "expression" in (p.get("valueFrom") or {}):
            problems.append(f"{where}.outputs.parameters[{i}].valueFrom.expression: only the "
                            f"outputs of steps and dag templates are expressions")
    if ("steps" in template or "dag" in template) and outputs.get("artifacts"):
        problems.append(f"{where}.outputs.artifacts: output artifacts of steps/dag templates "
                        f"are not supported")
    for side, shape in (("inputs", "input_artifact"), ("outputs", "output_artifact")):
        for i, a in enumerate((template.get(side) or {}).get("artifacts") or []):
            here = f"{where}.{side}.artifacts[{i}]"
            _keys(a, shape, here, problems)
            _keys(a.get("s3") or {}, "s3", f"{here}.s3", problems)
            _check_path(a, here, problems)


def _check_leaf(template, where, scope, problems):
    """A container or script: what it runs, and the variables it uses."""
    kind = "container" if "container" in template else "script"
    body = template[kind]
    _keys(body, kind, f"{where}.{kind}", problems)
    for i, env in enumerate(body.get("env") or []):
        _keys(env, "env", f"{where}.{kind}.env[{i}]", problems)
    if not body.get("command"):
        problems.append(f"{where}.{kind}.command: needed locally (an image's entrypoint "
                        f"is not known here)" if kind == "container" else
                        f"{where}.script.command: a script needs its interpreter command")
    if "{{" in str(body.get("image", "")):
        problems.append(f"{where}.{kind}.image: {body['image']!r} is chosen per item or parameter; "
                        f"the local engine runs every step with the host's tools, so it cannot "
                        f"honour a choice of image")
    inputs = template.get("inputs") or {}
    _check_tags([body, template.get("outputs"), inputs.get("artifacts")], scope.leaf(), where,
                problems)
    if "memoize" in template:
        _check_memoize(template["memoize"], f"{where}.memoize", scope, problems)


def _check_memoize(memoize, where, scope, problems):
    """Argo's memoize: a key and a ConfigMap cache's name (maxAge optional, Go's durations)."""
    _keys(memoize, "memoize", where, problems)
    if not isinstance(memoize, dict):
        return
    _keys(memoize.get("cache") or {}, "cache", f"{where}.cache", problems)
    config_map = (memoize.get("cache") or {}).get("configMap")
    _keys(config_map or {}, "config_map", f"{where}.cache.configMap", problems)
    if not isinstance(memoize.get("key"), str) or not memoize["key"]:
        problems.append(f"{where}.key: give the cache key (Argo resolves its tags)")
    if not (config_map or {}).get("name"):
        problems.append(f"{where}.cache.configMap.name: name the cache")
    age = memoize.get("maxAge")
    if age is not None and "{{" not in str(age):
        try:
            reuse.duration(str(age))
        except ValueError as error:
            problems.append(f"{where}.maxAge: {error}")
    _check_tags([memoize.get("key"), age], scope.leaf(), where, problems)


def _seconds_value(value) -> bool:
    """Argo's activeDeadlineSeconds is an IntOrString: 3600 or "3600" (its published schema
    types it as a string, so templates validated against that schema quote it)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit())


def _check_parallelism(obj, where, problems):
    value = obj.get("parallelism")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        problems.append(f"{where}.parallelism: {value!r} is not a positive whole number")


def _check_path(obj, where, problems):
    path = obj.get("path")
    if isinstance(path, str) and path.startswith("/") and not path.startswith("/tmp/"):
        problems.append(f"{where}.path: {path!r}: the local engine maps paths under /tmp/ "
                        f"(each step's private /tmp) or relative to its work directory")


def _check_retry(retry, where, problems):
    if retry is None:
        return
    _keys(retry, "retry", f"{where}.retryStrategy", problems)
    backoff = retry.get("backoff") or {}
    _keys(backoff, "backoff", f"{where}.retryStrategy.backoff", problems)
    for key in ("duration", "cap", "maxDuration"):
        if isinstance(backoff, dict) and backoff.get(key) is not None:
            try:
                golang.seconds(backoff[key])
            except ValueError as error:
                problems.append(f"{where}.retryStrategy.backoff.{key}: {error}")
    factor = backoff.get("factor") if isinstance(backoff, dict) else None
    if factor is not None and not re.fullmatch(r"\d+(\.\d+)?", str(factor)):
        problems.append(f"{where}.retryStrategy.backoff.factor: {factor!r} is not a number")
    limit = retry.get("limit")
    if limit is not None and not (_seconds_value(limit) and "." not in str(limit)):
        problems.append(f"{where}.retryStrategy.limit: {limit!r} is not a whole number (a limit "
                        f"taken from a parameter is not supported locally)")
    policy = retry.get("retryPolicy")
    if policy is not None and policy not in _RETRY_POLICIES:
        problems.append(f"{where}.retryStrategy.retryPolicy: {policy!r} is not supported "
                        f"(supported: {', '.join(sorted(_RETRY_POLICIES))})")


def _check_call(step, where, shape, templates, wf_name, scope, problems):
    _keys(step, shape, where, problems)
    callees = [k for k in ("template", "templateRef", "inline") if k in step]
    if len(callees) != 1:
        problems.append(f"{where}: needs exactly one of template, templateRef, inline (has {callees or 'none'})")
    if isinstance(step.get("inline"), dict):
        _check_template(step["inline"], f"{where}.inline", templates, wf_name, scope.arguments, problems,
                        scope.exit_side)
    ref = step.get("templateRef")
    if ref is not None:
        _keys(ref, "template_ref", f"{where}.templateRef", problems)
        if ref.get("name") != wf_name:
            problems.append(f"{where}.templateRef: {ref.get('name')!r} is another "
                            f"WorkflowTemplate; only templates of {wf_name!r} can be called")
    target = ref.get("template") if ref else step.get("template")
    if "inline" not in step and target not in templates:
        problems.append(f"{where}: calls unknown template {target!r}")
    arguments = step.get("arguments") or {}
    _keys(arguments, "arguments", f"{where}.arguments", problems)
    for i, p in enumerate(arguments.get("parameters") or []):
        _keys(p, "parameter", f"{where}.arguments.parameters[{i}]", problems)
    for i, a in enumerate(arguments.get("artifacts") or []):
        _keys(a, "argument_artifact", f"{where}.arguments.artifacts[{i}]", problems)
        _keys(a.get("s3") or {}, "s3", f"{where}.arguments.artifacts[{i}].s3", problems)
    _keys(step.get("continueOn") or {}, "continue_on", f"{where}.continueOn", problems)
    _check_sequence(step.get("withSequence"), f"{where}.withSequence", problems)
    loops = [k for k in ("withItems", "withParam", "withSequence") if k in step]
    if len(loops) > 1:
        problems.append(f"{where}: more than one of {', '.join(loops)}")


def _check_sequence(sequence, where, problems):
    """validate.go: count or end, not both; expandSequence: a format Go prints one number with."""
    if sequence is None:
        return
    _keys(sequence, "sequence", where, problems)
    if not isinstance(sequence, dict):
        return
    if ("count" in sequence) == ("end" in sequence):
        problems.append(f"{where}: give exactly one of count or end")
    form = sequence.get("format")
    if isinstance(form, str) and "{{" not in form and (problem := golang.check(form)):
        problems.append(f"{where}.format: {form!r} {problem}")


def _check_steps(template, where, templates, wf_name, scope, problems):
    earlier: list[str] = []
    for g, group in enumerate(template["steps"] or []):
        if not isinstance(group, list):
            problems.append(f"{where}.steps[{g}]: a step group must be a list of steps")
            continue
        for s, step in enumerate(group):
            here = f"{where}.steps[{g}][{s}]({step.get('name')})"
            _check_call(step, here, "step", templates, wf_name, scope, problems)
            fields = [step.get(k) for k in ("arguments", "when", "withItems", "withParam")]
            _check_tags(fields, scope.caller("steps", earlier, _loops(step)), here, problems)
        earlier += [step.get("name") for step in group if isinstance(step, dict)]
    _check_tags(_checked_outputs(template), scope.caller("steps", earlier, False), where, problems)


def _check_dag(template, where, templates, wf_name, scope, problems):
    _keys(template["dag"], "dag", f"{where}.dag", problems)
    tasks = template["dag"].get("tasks") or []
    names = [t.get("name") for t in tasks]
    needs = {}
    for i, task in enumerate(tasks):
        here = f"{where}.dag.tasks[{i}]({task.get('name')})"
        _check_call(task, here, "task", templates, wf_name, scope, problems)
        try:
            needs[task.get("name")] = task.get("dependencies") or depends_tasks(
                task.get("depends") or "")
        except ExpressionError as error:
            problems.append(f"{here}.depends: {error}")
            needs[task.get("name")] = []
        if "depends" in task and any("dependencies" in t for t in tasks):
            problems.append(f"{here}: depends cannot be mixed with dependencies in one DAG")
        if "continueOn" in task and any("depends" in t for t in tasks):
            problems.append(f"{here}.continueOn: not available in a DAG that uses depends "
                            f"(depend on .Failed instead)")
        problems += [f"{here}: depends on unknown task {name!r}"
                     for name in needs[task.get("name")] if name not in names]
    ancestors = _ancestors(needs, f"{where}.dag", problems)
    for i, task in enumerate(tasks):
        here = f"{where}.dag.tasks[{i}]({task.get('name')})"
        fields = [task.get(k) for k in ("arguments", "when", "withItems", "withParam")]
        # Argo resolves tasks.X only for X this task (transitively) depends on.
        visible = sorted(ancestors.get(task.get("name"), set()))
        _check_tags(fields, scope.caller("tasks", visible, _loops(task)), here, problems)
    _check_tags(_checked_outputs(template), scope.caller("tasks", names, False), where, problems)
    _check_target(template["dag"].get("target"), names, f"{where}.dag.target", scope, problems)


def _checked_outputs(template: dict) -> list:
    """A steps/dag template's outputs as their tags are checked: a valueFrom.expression (Argo
    v3.1+, evaluated after the children) is read as the expression tag it amounts to."""
    outputs = template.get("outputs") or {}
    expressions = [f"{{{{={p['valueFrom']['expression']}}}}}" for p in outputs.get("parameters") or []
                   if isinstance(p.get("valueFrom"), dict) and "expression" in p["valueFrom"]]
    return [outputs, expressions]


def _check_target(target, names: list[str], where: str, scope: "_Scope", problems: list[str]) -> None:
    """validate.go validateDAGTargets: space-separated task names, each defined unless a parameter."""
    if target is None:
        return
    if not isinstance(target, str):
        problems.append(f"{where}: expected task names separated by spaces")
        return
    _check_tags(target, re.compile("|".join(scope.common)), where, problems)
    problems += [f"{where}: target {name!r} is not defined" for name in target.split(" ")
                 if "{{" not in name and name not in names]


def _ancestors(needs: dict[str, list[str]], where: str, problems: list[str]) -> dict:
    """Every task's transitive dependencies; a cycle is a problem (it would never start)."""
    found: dict[str, set[str]] = {}

    def visit(name, path):
        if name in path:
            problems.append(f"{where}: dependency cycle {' -> '.join(path + [name])}")
            return set()
        if name not in found:
            direct = [d for d in needs.get(name, []) if d in needs]
            found[name] = set(direct).union(*(visit(d, path + [name]) for d in direct))
        return found[name]
    for name in needs:
        visit(name, [])
    return found


def _loops(step) -> bool:
    return any(k in step for k in ("withItems", "withParam", "withSequence"))


class _Scope:
    """Which `{{...}}` names a template's fields may use, as regular expressions."""

    def __init__(self, arguments: dict, template: dict, exit_side: bool = False):
        inputs, outputs = template.get("inputs") or {}, template.get("outputs") or {}
        alt = lambda names: "|".join(re.escape(str(n)) for n in names) or "(?!)"  # noqa: E731
        # validate.go: workflow.status and workflow.failures exist for the exit handler's side only
        self.arguments, self.exit_side = arguments, exit_side  # what an inline template is checked with
        identity = "name|uid|namespace|parameters|duration" + ("|status|failures" if exit_side else "")
        self.common = [
            rf"workflow\.({identity})",
            rf"workflow\.parameters\.({alt(arguments)})",
            r"inputs\.parameters",
            rf"inputs\.parameters\.({alt(p['name'] for p in inputs.get('parameters') or [])})",
            rf"inputs\.artifacts\.({alt(a['name'] for a in inputs.get('artifacts') or [])})"
            r"\.path",
        ]
        self.outputs = [
            rf"outputs\.parameters\.({alt(p['name'] for p in outputs.get('parameters') or [])})"
            r"\.path",
            rf"outputs\.artifacts\.({alt(a['name'] for a in outputs.get('artifacts') or [])})"
            r"\.path",
        ]
        self.retries = [r"retries"] if template.get("retryStrategy") else []

    def workflow(self) -> re.Pattern:
        """Only workflow.* names: what an input's own value or default may use."""
        return re.compile("|".join(self.common[:2]))

    def leaf(self) -> re.Pattern:
        return re.compile("|".join(self.common + self.outputs + self.retries))

    def caller(self, kind: str, names: list[str], loops: bool) -> re.Pattern:
        alt = "|".join(re.escape(str(n)) for n in names) or "(?!)"
        extra = [rf"{kind}\.({alt})\.{_NODE_FIELDS}"]
        extra += [r"item", r"item\.[\w\-.]+"] if loops else []
        return re.compile("|".join(self.common + extra))


def _check_tags(value, allowed: re.Pattern, where: str, problems: list[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _check_tags(item, allowed, where, problems)
    elif isinstance(value, list):
        for item in value:
            _check_tags(item, allowed, where, problems)
    elif isinstance(value, str):
        for name in tags(value):
            if name.startswith("="):
                _check_expression(name[1:], allowed, where, problems)
            elif not allowed.fullmatch(name):
                problems.append(f"{where}: unknown variable {{{{{name}}}}}")


def _check_expression(source: str, allowed: re.Pattern, where: str, problems: list[str]) -> None:
    """An expression tag: it parses, calls known functions, and reads variables in scope here."""
    paths, found = expr.check(source)
    problems += [f"{where}: expression {{{{={source}}}}}: {problem}" for problem in found]
    problems += [f"{where}: expression {{{{={source}}}}}: unknown variable {path}"
                 for path in paths if not _in_scope(path, allowed)]


def _in_scope(path: str, allowed: re.Pattern) -> bool:
    """A path an expression reads is in scope when it is a tag's variable here, a map on the way
    to one (`inputs.parameters`, `steps.a.outputs`: `path + "."` can still grow into a variable),
    or reads into a variable that has no named children (`steps.a.outputs.result.x`)."""
    if allowed.fullmatch(path) or _grows(path, allowed):
        return True
    parts = path.split(".")
    above = [".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]
    return any(allowed.fullmatch(p) and not _grows(p, allowed) and p not in _PARAMETER_MAPS for p in above)


# the JSON of all parameters as a simple tag; in an expression its entries are the parameters
_PARAMETER_MAPS = {"inputs.parameters", "workflow.parameters"}


def _grows(path: str, allowed: re.Pattern) -> bool:
    return regex.fullmatch(allowed.pattern, path + ".", partial=True) is not None
