"""The values `{{...}}` tags resolve to: inputs, loop items, and earlier steps' results."""
from __future__ import annotations

import json

from workflow_templates.engines import golang
from workflow_templates.engines.expressions import ExpressionError, render


def stringify(value) -> str | None:
    """A parameter value as Argo passes it: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return compact_json(value)


def compact_json(value) -> str:
    """JSON as Argo (Go's encoding/json) writes it: no spaces, map keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def input_scope(inputs: dict[str, str]) -> dict[str, str]:
    """`inputs.parameters.X` for each bound input, and `inputs.parameters` as a JSON list."""
    scope = {f"inputs.parameters.{k}": v for k, v in inputs.items()}
    scope["inputs.parameters"] = compact_json([{"name": k, "value": v} for k, v in inputs.items()])
    return scope


def bind_inputs(template: dict, arguments: dict, globals_: dict) -> dict[str, str]:
    """The template's input parameters: the caller's argument, else value, else default
    (in which workflow.* tags are resolved, as Argo does)."""
    bound = {}
    for param in (template.get("inputs") or {}).get("parameters") or []:
        name = param["name"]
        value = arguments.get(name)
        if value is None and param.get("value", param.get("default")) is not None:
            value = render(stringify(param.get("value", param.get("default"))), globals_)
        if value is None:
            raise ExpressionError(f"inputs.parameters.{name} was not supplied to "
                                  f"template {template['name']!r}")
        enum = [stringify(v) for v in param.get("enum") or []]
        if enum and value not in enum:
            raise ExpressionError(f"inputs.parameters.{name}: {value!r} is not one of {enum}")
        bound[name] = value
    return bound


def loop_items(step: dict, scope: dict) -> list | None:
    """The items a step fans out over (withItems, withParam, withSequence), or None."""
    if "withItems" in step:
        return [_render_item(item, scope) for item in step["withItems"]]
    if "withParam" in step:
        text = render(stringify(step["withParam"]), scope)
        try:
            items = json.loads(text)
        except ValueError:
            raise ExpressionError(f"withParam value is not a JSON list: {text[:200]!r}") from None
        if not isinstance(items, list):
            raise ExpressionError(f"withParam value is not a JSON list: {text[:200]!r}")
        return items
    if "withSequence" in step:
        return _sequence(step["withSequence"], scope)
    return None


def _render_item(item, scope):
    if isinstance(item, str):
        return render(item, scope)
    if isinstance(item, dict):
        return {k: _render_item(v, scope) for k, v in item.items()}
    if isinstance(item, list):
        return [_render_item(v, scope) for v in item]
    return item


def _sequence(sequence: dict, scope: dict) -> list[str]:
    """Argo's expandSequence: `end` (inclusive, counting down when below `start`) or `count`
    numbers from `start`, each formatted with Go's fmt.Sprintf(format, i)."""
    number = lambda key: int(render(stringify(sequence.get(key, 0)), scope))  # noqa: E731
    start = number("start")
    if "end" in sequence:
        end = number("end")
    elif number("count") < 0:
        raise ExpressionError(f"withSequence.count: {number('count')} is negative; it counts the items")
    elif number("count") == 0:  # no items: the step is Skipped
        return []
    else:
        end = start + number("count") - 1
    form = render(stringify(sequence.get("format") or "%d"), scope)
    if problem := golang.check(form):
        raise ExpressionError(f"withSequence.format {form!r}: {problem}")
    step = 1 if end >= start else -1
    return [golang.sprintf(form, i) for i in range(start, end + step, step)]


def item_scope(item) -> dict[str, str]:
    """`item`, and `item.key` (nested: `item.a.b`) when the item is a mapping."""
    scope = {"item": stringify(item)}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                scope[f"{prefix}.{key}"] = stringify(inner)
                walk(f"{prefix}.{key}", inner)
    walk("item", item)
    return scope


def node_scope(kind: str, name: str, node: dict) -> dict[str, str]:
    """What `steps.NAME.*` / `tasks.NAME.*` resolve to once the node is done."""
    prefix = f"{kind}.{name}"
    scope = {f"{prefix}.status": node["phase"], f"{prefix}.id": node["id"]}
    for key, field in (("startedAt", "started_at"), ("finishedAt", "finished_at")):
        if node.get(field):
            scope[f"{prefix}.{key}"] = node[field]
    if node.get("exit_code") is not None:
        # Argo records it in the node's outputs too (Outputs.exitCode, the example
        # exit-code-output-variable.yaml reads steps.X.outputs.exitCode)
        scope[f"{prefix}.exitCode"] = scope[f"{prefix}.outputs.exitCode"] = str(node["exit_code"])
    outputs = node.get("outputs") or {}
    if "result" in outputs:
        scope[f"{prefix}.outputs.result"] = outputs["result"]
    parameters = outputs.get("parameters") or {}
    if "parameter_maps" in node:
        scope[f"{prefix}.outputs.parameters"] = node["parameter_maps"]
    elif parameters:
        scope[f"{prefix}.outputs.parameters"] = compact_json(parameters)
    for key, value in parameters.items():
        scope[f"{prefix}.outputs.parameters.{key}"] = value
    for key, value in (outputs.get("artifacts") or {}).items():
        scope[f"{prefix}.outputs.artifacts.{key}"] = value
    return scope
