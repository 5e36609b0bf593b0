"""A fake Argo Server on loopback: the few endpoints the argo engine uses, state in memory.

Every request is checked against the published contract (contract.py): unknown paths get 404,
unknown methods 405, a query or body the contract does not allow 400 with the schema error;
each is also recorded in `violations`, which the tests' fixture requires to be empty. Every
answer is checked against the contract's response schema before it is sent (a bad one is a
500 and a violation), so the SDK reads realistic payloads.

Test hooks, outside the contract and without a token:
    POST /_test/advance/{name}?phase=Running|Succeeded|Failed|Error  (JSON body, optional:
         {"outputs": {"param": "value"}}), and the same as FakeArgoServer.advance().
Set `pod_logs[pod_name] = [lines]` to choose what a pod logged.
"""
from __future__ import annotations

import copy
import itertools
import json
import random
import ssl
import string
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.workflows.argo.contract import Contract, ContractError
from workflow_templates.engines.argo_bodies import node_id, pod_name

# grpc status -> HTTP status, as grpc-gateway maps them
HTTP_OF_GRPC = {3: 400, 5: 404, 6: 409, 7: 403, 9: 400, 10: 409, 12: 405, 13: 500, 16: 401}
GRPC_OF_HTTP = {400: 3, 404: 5, 405: 12}
COMPLETED = ("Succeeded", "Failed", "Error")


class ArgoError(Exception):
    """An answer of the server's own (not found, already exists, ...) as grpc code + message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeArgoServer:
    """Start with `start()`, stop with `stop()`; `url`, `token`, `namespace` to point at it."""

    def __init__(self, token: str = "good-token", namespace: str = "argo",
                 viewer_token: str = "viewer-token", contract: Contract | None = None):
        self.token, self.viewer_token, self.namespace = token, viewer_token, namespace
        self.contract = contract or Contract()
        self.templates: dict[str, dict] = {}
        self.workflows: dict[str, dict] = {}
        self.pod_logs: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str, dict | None]] = []  # (method, path, body)
        self.violations: list[str] = []
        self._lock = threading.RLock()
        self._versions = itertools.count(1000)
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self, tls: ssl.SSLContext | None = None) -> FakeArgoServer:
        """Listen on a free loopback port; over HTTPS when given a server TLS context."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers, raw: bytes) -> tuple[int, object]:
        """Answer one request: (HTTP status, JSON payload, or a list of stream messages)."""
        path, query = urlsplit(target).path, parse_qs(urlsplit(target).query,
                                                      keep_blank_values=True)
        if path.startswith("/_test/"):
            return self._test_hook(method, path, query, raw)
        try:
            operation = self.contract.operation(method, path)
            self.contract.check_query(operation, query)
            body = self.contract.check_body(operation, raw)
        except ContractError as error:
            self.violations.append(str(error))
            return error.status, {"code": GRPC_OF_HTTP[error.status], "message": str(error)}
        self.requests.append((method, path, copy.deepcopy(body)))
        try:
            self._authorize(headers.get("Authorization", ""), method, operation.path_params)
            with self._lock:
                # a copy, so the answer is serialized as it was, whatever happens next
                status, payload = 200, copy.deepcopy(self._operate(operation, query, body))
        except ArgoError as error:
            status, payload = HTTP_OF_GRPC[error.code], {"code": error.code, "message": str(error)}
        return self._checked_answer(operation, status, payload)

    def _checked_answer(self, operation, status, payload):
        """The answer, or a 500 (and a violation) where it breaks the response schema."""
        try:
            for message in payload if isinstance(payload, list) else [payload]:
                self.contract.check_response(operation, status, message)
        except ContractError as error:
            self.violations.append(f"fake answer: {error}")
            return 500, {"code": 13, "message": f"fake answer: {error}"}
        return status, payload

    def _authorize(self, header: str, method: str, path_params: dict) -> None:
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or token not in (self.token, self.viewer_token):
            raise ArgoError(16, "token not valid. see https://argo-workflows.readthedocs.io/"
                                "en/latest/faq/")
        namespace = path_params.get("namespace", self.namespace)
        if namespace != self.namespace or (token == self.viewer_token and method != "GET"):
            raise ArgoError(7, f'workflows.argoproj.io is forbidden: User "system:serviceaccount:'
                               f'{self.namespace}:labcommons" cannot {method.lower()} resource '
                               f'in the namespace "{namespace}"')

    def _operate(self, operation, query, body):
        name = operation.path_params.get("name", "")
        handlers = {
            "InfoService_GetVersion": lambda: VERSION,
            "WorkflowTemplateService_ListWorkflowTemplates": lambda: self._list_templates(query),
            "WorkflowTemplateService_CreateWorkflowTemplate": lambda: self._create_template(body),
            "WorkflowTemplateService_GetWorkflowTemplate": lambda: self._template(name),
            "WorkflowTemplateService_UpdateWorkflowTemplate": lambda: self._update_template(body),
            "WorkflowService_SubmitWorkflow": lambda: self._submit(body),
            "WorkflowService_GetWorkflow": lambda: self._workflow(name),
            "WorkflowService_ListWorkflows": lambda: self._list_workflows(query),
            "WorkflowService_StopWorkflow": lambda: self._stop(name, body),
            "WorkflowService_RetryWorkflow": lambda: self._retry(name),
            "WorkflowService_WorkflowLogs": lambda: self._logs(name, query),
        }
        if operation.operation_id not in handlers:
            raise ArgoError(12, f"the fake does not implement {operation.operation_id}")
        return handlers[operation.operation_id]()

    # --- WorkflowTemplates ----------------------------------------------------------------

    def _list_templates(self, query):
        items = sorted(self.templates.values(), key=lambda t: t["metadata"]["name"])
        limit = int(query.get("listOptions.limit", ["0"])[0])
        return {"metadata": {"resourceVersion": str(next(self._versions))},
                "items": items[:limit] if limit else items}

    def _create_template(self, body):
        template = body["template"]
        name = template["metadata"]["name"]
        if name in self.templates:
            raise ArgoError(6, f'workflowtemplates.argoproj.io "{name}" already exists')
        template["metadata"].update(namespace=self.namespace, uid=_uid(),
                                    creationTimestamp=now(),
                                    resourceVersion=str(next(self._versions)))
        self.templates[name] = template
        return template

    def _template(self, name):
        return found(self.templates, "workflowtemplates", name)

    def _update_template(self, body):
        template = body["template"]
        current = self._template(template["metadata"]["name"])
        version = template["metadata"].get("resourceVersion")
        if not version:
            raise ArgoError(3, "metadata.resourceVersion: Invalid value: 0x0: must be specified "
                               "for an update")
        if version != current["metadata"]["resourceVersion"]:
            raise ArgoError(6, "Operation cannot be fulfilled on workflowtemplates.argoproj.io: "
                               "the object has been modified; please apply your changes to the "
                               "latest version and try again")
        keep = {k: current["metadata"][k] for k in ("uid", "creationTimestamp", "namespace")}
        template["metadata"].update(keep, resourceVersion=str(next(self._versions)))
        self.templates[template["metadata"]["name"]] = template
        return template

    # --- Workflows ------------------------------------------------------------------------

    def _submit(self, body):
        if body.get("resourceKind") != "WorkflowTemplate":
            raise ArgoError(3, f"resourceKind {body.get('resourceKind')!r} is not supported")
        template = self._template(body.get("resourceName", ""))
        options = body.get("submitOptions") or {}
        arguments = submitted_arguments(template, options.get("parameters") or [])
        name = options.get("name") or options.get("generateName", "") + "".join(
            random.choices(string.ascii_lowercase + string.digits, k=5))
        if name in self.workflows:
            raise ArgoError(6, f'workflows.argoproj.io "{name}" already exists')
        labels = parse_labels(options.get("labels", ""))
        labels["workflows.argoproj.io/workflow-template"] = template["metadata"]["name"]
        workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                    "metadata": {"name": name, "generateName": options.get("generateName", ""),
                                 "namespace": self.namespace, "uid": _uid(),
                                 "creationTimestamp": now(),
                                 "resourceVersion": str(next(self._versions)), "labels": labels,
                                 "annotations": {"workflows.argoproj.io/pod-name-format": "v2"}},
                    "spec": {"workflowTemplateRef": {"name": template["metadata"]["name"]},
                             "arguments": {"parameters": arguments}},
                    "status": {}}
        self.workflows[name] = workflow
        return workflow

    def _workflow(self, name):
        return found(self.workflows, "workflows", name)

    def _list_workflows(self, query):
        selector = parse_labels(query.get("listOptions.labelSelector", [""])[0])
        items = [w for w in self.workflows.values()
                 if all(w["metadata"]["labels"].get(k) == v for k, v in selector.items())]
        return {"metadata": {"resourceVersion": str(next(self._versions))}, "items": items}

    def _stop(self, name, body):
        workflow = self._workflow(name)
        if workflow["status"].get("phase") in COMPLETED:
            raise ArgoError(9, "cannot shutdown a completed workflow")
        workflow["spec"]["shutdown"] = "Stop"
        for node in workflow["status"].get("nodes", {}).values():
            if node["phase"] in ("Pending", "Running"):
                node.update(phase="Failed", finishedAt=now(),
                            message="workflow shutdown with strategy:  Stop")
        self._finish(workflow, "Failed", body.get("message") or "Stopped with strategy 'Stop'")
        return workflow

    def _retry(self, name):
        workflow = self._workflow(name)
        status = workflow["status"]
        if status.get("phase") not in ("Failed", "Error"):
            raise ArgoError(9, "Workflow must be Failed/Error to retry")
        nodes = status.get("nodes", {})
        for key in [k for k, n in nodes.items() if n["type"] == "Pod"
                    and n["phase"] not in ("Succeeded", "Skipped")]:
            del nodes[key]
        for node in nodes.values():
            if node["type"] != "Pod":
                node.update(phase="Running", message="")
                node.pop("finishedAt", None)
        status.update(phase="Running", message="")
        status.pop("finishedAt", None)
        workflow["spec"].pop("shutdown", None)
        workflow["metadata"]["labels"]["workflows.argoproj.io/completed"] = "false"
        return workflow

    def _logs(self, name, query):
        workflow = self._workflow(name)
        wanted = query.get("podName", [None])[0]
        messages = []
        for node in workflow["status"].get("nodes", {}).values():
            if node["type"] != "Pod" or node["phase"] == "Pending":
                continue
            pod = pod_name(workflow, node)
            if wanted in (None, pod):
                lines = self.pod_logs.get(pod, [f"running {node['templateName']}"])
                messages += [{"result": {"content": line, "podName": pod}} for line in lines]
        return messages

    # --- the test hook: move a Workflow on ------------------------------------------------

    def advance(self, name: str, phase: str, outputs: dict[str, str] | None = None) -> dict:
        """Move a Workflow to `phase`, making the nodes of its entrypoint's steps or tasks."""
        with self._lock:
            workflow = self._workflow(name)
            template = self.templates[workflow["spec"]["workflowTemplateRef"]["name"]]
            status = workflow["status"]
            kept = {k: n for k, n in status.get("nodes", {}).items() if n["phase"] == "Succeeded"}
            status.setdefault("startedAt", now())
            status["nodes"] = plan_nodes(name, template["spec"], phase, outputs or {}, kept)
            if phase in COMPLETED:
                failed = [n for n in status["nodes"].values() if n["phase"] in ("Failed", "Error")]
                message = f"child '{failed[0]['id']}' failed" if failed else ""
                self._finish(workflow, phase, message)
            else:
                status["phase"] = phase
            workflow["metadata"]["resourceVersion"] = str(next(self._versions))
            return workflow

    def _finish(self, workflow: dict, phase: str, message: str) -> None:
        workflow["status"].update(phase=phase, finishedAt=now())
        workflow["status"].setdefault("startedAt", workflow["status"]["finishedAt"])
        if message:
            workflow["status"]["message"] = message
        workflow["metadata"]["labels"]["workflows.argoproj.io/completed"] = "true"

    def _test_hook(self, method, path, query, raw):
        parts = path.strip("/").split("/")
        if method != "POST" or len(parts) != 3 or parts[1] != "advance":
            return 404, {"code": 5, "message": f"no test hook {method} {path}"}
        extra = json.loads(raw) if raw.strip() else {}
        try:
            return 200, self.advance(parts[2], query["phase"][0], extra.get("outputs"))
        except ArgoError as error:
            return HTTP_OF_GRPC[error.code], {"code": error.code, "message": str(error)}


VERSION = {"version": "v4.1.2", "buildDate": "2026-08-21T00:00:00Z",
           "gitCommit": "f016ad89eb269d282aec06dc491c29f396a38df4", "gitTag": "v4.1.2",
           "gitTreeState": "clean", "goVersion": "go1.24", "compiler": "gc",
           "platform": "linux/amd64"}


def found(store: dict, kind: str, name: str) -> dict:
    if name not in store:
        raise ArgoError(5, f'{kind}.argoproj.io "{name}" not found')
    return store[name]


def _uid() -> str:
    return "".join(random.choices("0123456789abcdef", k=32))


def parse_labels(text: str) -> dict[str, str]:
    """"a=1,b=2" -> {"a": "1", "b": "2"} (equality selectors only, as the engine sends)."""
    labels = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise ArgoError(3, f"unable to parse requirement: {part!r}")
        labels[key.strip()] = value.lstrip("=").strip()
    return labels


def submitted_arguments(template: dict, pairs: list[str]) -> list[dict]:
    """The template's arguments with the submitted NAME=VALUE pairs, checked as Argo does."""
    given = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ArgoError(3, f"expected parameter of the form: NAME=VALUE. Received: {pair}")
        given[key] = value
    arguments = []
    for param in template["spec"].get("arguments", {}).get("parameters", []):
        value = given.pop(param["name"], param.get("value", param.get("default")))
        if value is None:
            raise ArgoError(3, f"spec.arguments.{param['name']}.value is required")
        if param.get("enum") and value not in param["enum"]:
            raise ArgoError(3, f"spec.arguments.{param['name']}.value: {value!r} is not in "
                               f"the enum {param['enum']}")
        arguments.append({"name": param["name"], "value": value})
    arguments += [{"name": key, "value": value} for key, value in given.items()]
    return arguments


def plan_nodes(name: str, spec: dict, phase: str, outputs: dict, kept: dict) -> dict:
    """The node map of a Workflow in `phase`: a root, one Pod per step or task of the
    entrypoint; on Failed/Error the last Pod is the one that failed."""
    templates = {t["name"]: t for t in spec.get("templates", [])}
    entry = templates[spec["entrypoint"]]
    steps = [(f"{name}[{i}].{s['name']}", s) for i, group in enumerate(entry.get("steps") or [])
             for s in group]
    steps += [(f"{name}.{t['name']}", t) for t in (entry.get("dag") or {}).get("tasks", [])]
    root_type = "Steps" if entry.get("steps") else "DAG" if entry.get("dag") else "Pod"
    pods = [(n, s.get("template", "")) for n, s in steps] or [(name, entry["name"])]
    nodes = {}
    for index, (node_name, template_name) in enumerate(pods):
        node = kept.get(node_id(name, node_name)) or pod_node(
            name, node_name, template_name, pod_phase(phase, index == len(pods) - 1),
            templates.get(template_name, {}), outputs)
        nodes[node["id"]] = node
    if root_type != "Pod":
        root_phase = "Running" if phase == "Pending" else phase
        nodes[name] = {"id": name, "name": name, "displayName": name, "type": root_type,
                       "phase": root_phase, "templateName": entry["name"], "startedAt": now(),
                       "children": [k for k in nodes]}
        if phase in COMPLETED:
            nodes[name]["finishedAt"] = now()
    return nodes


def pod_phase(phase: str, last: bool) -> str:
    if phase in ("Failed", "Error"):
        return phase if last else "Succeeded"
    return phase


def pod_node(workflow: str, node_name: str, template_name: str, phase: str, template: dict,
             outputs: dict) -> dict:
    node = {"id": node_id(workflow, node_name), "name": node_name,
            "displayName": node_name.rsplit(".", 1)[-1], "type": "Pod", "phase": phase,
            "templateName": template_name, "startedAt": now()}
    if phase in COMPLETED:
        declared = (template.get("outputs") or {}).get("parameters") or []
        node["finishedAt"] = now()
        node["outputs"] = {"exitCode": "0" if phase == "Succeeded" else "1"}
        if phase == "Succeeded" and declared:
            node["outputs"]["parameters"] = [{"name": p["name"],
                                              "value": outputs.get(p["name"], "")}
                                             for p in declared]
        if phase != "Succeeded":
            node["message"] = "Error (exit code 1)"
    return node


def _handler_for(fake: FakeArgoServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, payload = fake.handle(self.command, self.path, self.headers, raw)
            if isinstance(payload, list):  # a stream: one JSON message a line
                data = "".join(json.dumps(m) + "\n" for m in payload).encode()
            else:
                data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format, *args):  # keep test output quiet
            pass

    return Handler
