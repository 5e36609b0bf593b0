"""Pure builders for the Argo Server requests the argo engine sends, and readers of its answers.

Nothing here talks to a server: each function takes and returns plain dicts and strings, so
they are tested against expected values (the engine in argo.py is the thin adapter).
"""
from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import re

RUN_ID_LABEL = "labcommons.io/run-id"
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error")
POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"

# Kubernetes label syntax: an optional DNS-subdomain prefix, a name of up to 63 characters.
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")


def check_labels(labels: dict[str, str]) -> None:
    """Raise ValueError naming the first label Kubernetes would refuse."""
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ValueError(f"label {key}={value!r}: not a valid Kubernetes label value "
                             "(at most 63 letters, digits, '-', '_' or '.')")


def label_selector(labels: dict[str, str]) -> str:
    """An equality label selector: {"a": "1", "b": "2"} -> "a=1,b=2"."""
    check_labels(labels)
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def submit_request(namespace: str, template_name: str, parameters: dict[str, str],
                   labels: dict[str, str], service_account: str = "") -> dict:
    """The WorkflowSubmitRequest that starts a Workflow from a WorkflowTemplate (its step pods
    running as service_account, when one is given)."""
    for name, value in parameters.items():
        if not isinstance(value, str):
            raise ValueError(f"parameter {name!r} must be a string, got {type(value).__name__}")
    options = {"parameters": [f"{name}={value}" for name, value in parameters.items()]}
    if RUN_ID_LABEL in labels:
        options["name"] = workflow_name(template_name, labels[RUN_ID_LABEL])
    else:
        options["generateName"] = f"{template_name}-"
    if labels:
        options["labels"] = label_selector(labels)
    if service_account:
        options["serviceAccount"] = service_account
    return {"namespace": namespace, "resourceKind": "WorkflowTemplate",
            "resourceName": template_name, "submitOptions": options}


def workflow_name(template_name: str, run_id: str) -> str:
    """The one Workflow name of a run: `<template>-<run id>`, at most 63 characters (Argo puts
    it in pod labels); a run id that is not a DNS label is replaced by its hash."""
    suffix = run_id.lower()
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?", suffix):
        suffix = hashlib.sha256(run_id.encode()).hexdigest()[:16]
    return f"{template_name[:63 - 1 - len(suffix)].rstrip('-.')}-{suffix}"


def template_body(namespace: str, doc: dict, resource_version: str | None = None) -> dict:
    """A WorkflowTemplate manifest placed in `namespace`, without server-kept fields."""
    body = copy.deepcopy(doc)
    body.pop("status", None)
    metadata = body.setdefault("metadata", {})
    for kept_by_server in ("uid", "creationTimestamp", "generation", "managedFields",
                           "resourceVersion"):
        metadata.pop(kept_by_server, None)
    metadata["namespace"] = namespace
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return body


def template_create_request(namespace: str, doc: dict) -> dict:
    return {"namespace": namespace, "template": template_body(namespace, doc)}


def template_update_request(namespace: str, doc: dict, resource_version: str) -> dict:
    return {"namespace": namespace, "name": doc["metadata"]["name"],
            "template": template_body(namespace, doc, resource_version)}


def stop_request(namespace: str, name: str, message: str = "") -> dict:
    body = {"namespace": namespace, "name": name}
    if message:
        body["message"] = message
    return body


def retry_request(namespace: str, name: str) -> dict:
    """Retry only what failed: succeeded steps keep their results."""
    return {"namespace": namespace, "name": name, "restartSuccessful": False}


def same_template(current: dict, doc: dict) -> bool:
    """True when the installed template already has this document's spec, labels, annotations."""
    def meta(d, key):
        return d.get("metadata", {}).get(key) or {}
    return (current.get("spec") == doc.get("spec")
            and meta(current, "labels") == meta(doc, "labels")
            and meta(current, "annotations") == meta(doc, "annotations"))


def workflow_status(workflow: dict) -> dict:
    """The engine-neutral view of a Workflow: phase, times, message and one entry per node."""
    status = workflow.get("status") or {}
    nodes = workflow_nodes(status)
    phase = status.get("phase") or "Pending"
    return {
        "name": workflow["metadata"]["name"],
        "phase": phase if phase in PHASES else "Pending",
        "startedAt": status.get("startedAt"),
        "finishedAt": status.get("finishedAt"),
        "message": status.get("message", ""),
        "labels": dict(workflow["metadata"].get("labels") or {}),
        "outputs": output_parameters(status.get("outputs")),
        "nodes": [node_status(workflow, node) for node in ordered_nodes(workflow, nodes)],
    }


def workflow_nodes(status: dict) -> dict:
    """The node map, inflating it where the controller stored it compressed (gzip + base64)."""
    if status.get("nodes"):
        return status["nodes"]
    if status.get("compressedNodes"):
        return json.loads(gzip.decompress(base64.b64decode(status["compressedNodes"])))
    return {}


def ordered_nodes(workflow: dict, nodes: dict) -> list[dict]:
    """Nodes from the root down, breadth first, then any the tree does not reach, by id."""
    order, seen = [], set()
    queue = [workflow["metadata"]["name"]]
    while queue:
        node_id = queue.pop(0)
        if node_id in seen or node_id not in nodes:
            continue
        seen.add(node_id)
        order.append(nodes[node_id])
        queue.extend(nodes[node_id].get("children") or [])
    order.extend(nodes[key] for key in sorted(nodes) if key not in seen)
    return order


def node_status(workflow: dict, node: dict) -> dict:
    outputs = node.get("outputs") or {}
    exit_code = outputs.get("exitCode")
    return {
        "id": node["id"],
        "name": node.get("name", ""),
        "displayName": node.get("displayName") or node.get("name", ""),
        "type": node.get("type", ""),
        "phase": node.get("phase") or "Pending",
        "startedAt": node.get("startedAt"),
        "finishedAt": node.get("finishedAt"),
        "message": node.get("message", ""),
        "templateName": template_name_of(node),
        "exitCode": int(exit_code) if exit_code not in (None, "") else None,
        "outputs": output_parameters(outputs),
        "children": list(node.get("children") or []),
        "podName": pod_name(workflow, node) if node.get("type") == "Pod" else None,
    }


def output_parameters(outputs: dict | None) -> dict[str, str]:
    return {p["name"]: p.get("value", "") for p in (outputs or {}).get("parameters") or []}


def template_name_of(node: dict) -> str:
    return node.get("templateName") or (node.get("templateRef") or {}).get("template", "")


def pod_name(workflow: dict, node: dict) -> str:
    """The pod that runs a Pod node, named as Argo's controller names it (v1 or v2 format)."""
    name = workflow["metadata"]["name"]
    annotations = workflow["metadata"].get("annotations") or {}
    if annotations.get(POD_NAME_FORMAT) == "v1":
        return node["id"]
    if node.get("name") == name:
        return name
    template = template_name_of(node)
    prefix = f"{name}-{template}" if template else name
    return f"{prefix[:253 - 10 - 1]}-{fnv32a(node['name'])}"


def fnv32a(text: str) -> int:
    """The 32-bit FNV-1a hash Argo uses in node ids and pod names."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def node_id(workflow_name: str, node_name: str) -> str:
    """The id Argo gives the node called `node_name` in workflow `workflow_name`."""
    if node_name == workflow_name:
        return workflow_name
    return f"{workflow_name}-{fnv32a(node_name)}"


def log_entries(payload: bytes | str) -> list[dict]:
    """Parse the log endpoint's stream: JSON objects, one per line ({"result": LogEntry})."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    decoder, entries, position = json.JSONDecoder(), [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return entries
        message, position = decoder.raw_decode(text, position)
        if message.get("error"):
            raise ValueError(message["error"].get("message") or json.dumps(message["error"]))
        entries.append(message.get("result") or {})


def log_text(entries: list[dict], with_pod: bool) -> str:
    """The log lines as text; prefixed by their pod's name when several pods are mixed."""
    lines = []
    for entry in entries:
        content = entry.get("content", "")
        lines.append(f"{entry.get('podName', '')}: {content}" if with_pod else content)
    return "".join(f"{line}\n" for line in lines)
