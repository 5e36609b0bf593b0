"""The argo engine: runs WorkflowTemplates on an Argo Server through the official SDK.

The worker installs the templates, submits one Workflow per run (labelled with the run's id),
follows it with `status`, and reads `logs`. Every failure is an ArgoEngineError whose message
names the server; `retryable` says the server could not be reached, so the run stays queued.

Requests are built as plain dicts by argo_bodies.py and sent through the SDK's API classes.
Answers are read as JSON, not as SDK models: the generated models refuse payloads real servers
send (null times on a fresh Workflow, fields newer than the SDK, the log stream), see
docs/workflows-argo.md.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable

import urllib3
from argo_workflows import ApiClient, Configuration
from argo_workflows.api.info_service_api import InfoServiceApi
from argo_workflows.api.workflow_service_api import WorkflowServiceApi
from argo_workflows.api.workflow_template_service_api import WorkflowTemplateServiceApi
from argo_workflows.exceptions import ApiException
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_retry_request import (
    IoArgoprojWorkflowV1alpha1WorkflowRetryRequest as RetryRequest)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_stop_request import (
    IoArgoprojWorkflowV1alpha1WorkflowStopRequest as StopRequest)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_submit_request import (
    IoArgoprojWorkflowV1alpha1WorkflowSubmitRequest as SubmitRequest)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_template_create_request import (
    IoArgoprojWorkflowV1alpha1WorkflowTemplateCreateRequest as TemplateCreateRequest)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_template_update_request import (
    IoArgoprojWorkflowV1alpha1WorkflowTemplateUpdateRequest as TemplateUpdateRequest)

from workflow_templates.engines import argo_bodies as bodies
from workflow_templates.engines.argo_bodies import RUN_ID_LABEL

# (connect, read) seconds: a server that does not answer must not hold the worker for long.
DEFAULT_TIMEOUT = (5.0, 60.0)
UPDATE_ATTEMPTS = 3


class ArgoEngineError(Exception):
    """The Argo Server refused, failed or could not be reached; the message names the server.

    `reason` is one of unreachable, tls, unauthorized, forbidden, not_found, conflict,
    invalid, server; `retryable` is true when nothing was done and the same call may succeed later.
    """

    def __init__(self, message: str, *, reason: str, status: int | None = None,
                 retryable: bool = False):
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.retryable = retryable


_REASONS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            409: "conflict", 422: "invalid"}


class ArgoEngine:
    """Install, submit, follow, stop and retry Workflows in one namespace of an Argo Server."""

    name = "argo"

    def __init__(self, server_url: str, token: str, namespace: str,
                 verify_tls: bool | str = True, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 service_account: str = ""):
        self.server_url = server_url.rstrip("/")
        self.namespace = namespace
        self.service_account = service_account  # the step pods' identity; "" = the namespace default
        self.timeout = timeout
        client = ApiClient(make_configuration(self.server_url, token, verify_tls))
        self._workflows = WorkflowServiceApi(client)
        self._templates = WorkflowTemplateServiceApi(client)
        self._info = InfoServiceApi(client)

    @classmethod
    def from_settings(cls, settings) -> ArgoEngine:
        """An engine from the argo_* settings (LABCOMMONS_ARGO_SERVER, _TOKEN, _NAMESPACE, _VERIFY_TLS,
        _SERVICE_ACCOUNT; ground.settings)."""
        if not settings.argo_server:
            raise ArgoEngineError("LABCOMMONS_ARGO_SERVER is not set: no Argo Server to use",
                                  reason="invalid")
        return cls(settings.argo_server, settings.argo_token, settings.argo_namespace,
                   verify_tls=parse_verify_tls(settings.argo_verify_tls),
                   service_account=settings.argo_service_account)

    def health(self) -> dict:
        """Check the server answers, knows the token and lets it read this namespace."""
        version = self._json("get the server version", self._info.get_version)
        self._json("list WorkflowTemplates", self._templates.list_workflow_templates,
                   self.namespace, list_options_limit="1")
        return {"server": self.server_url, "namespace": self.namespace,
                "version": version.get("version", "")}

    def install_templates(self, docs: Iterable[dict]) -> dict[str, str]:
        """Create or update each WorkflowTemplate; returns name -> created|updated|unchanged."""
        return {doc["metadata"]["name"]: self._install(doc) for doc in docs}

    def _install(self, doc: dict) -> str:
        name = doc["metadata"]["name"]
        try:
            body = bodies.template_create_request(self.namespace, doc)
            self._json(f"create WorkflowTemplate {name!r}",
                       self._templates.create_workflow_template, self.namespace,
                       TemplateCreateRequest(**_camel(body), _check_type=False))
            return "created"
        except ArgoEngineError as error:
            if error.reason != "conflict":
                raise
        return self._update(doc)

    def _update(self, doc: dict) -> str:
        """Update with the current resourceVersion; again if someone else updated in between."""
        for _ in range(UPDATE_ATTEMPTS - 1):
            try:
                return self._update_once(doc)
            except ArgoEngineError as error:
                if error.reason != "conflict":
                    raise
        return self._update_once(doc)

    def _update_once(self, doc: dict) -> str:
        name = doc["metadata"]["name"]
        current = self._json(f"get WorkflowTemplate {name!r}",
                             self._templates.get_workflow_template, self.namespace, name)
        if bodies.same_template(current, doc):
            return "unchanged"
        body = bodies.template_update_request(
            self.namespace, doc, current["metadata"]["resourceVersion"])
        self._json(f"update WorkflowTemplate {name!r}", self._templates.update_workflow_template,
                   self.namespace, name, TemplateUpdateRequest(**_camel(body), _check_type=False))
        return "updated"

    def submit(self, template_name: str, parameters: dict[str, str],
               labels: dict[str, str]) -> str:
        """Start a Workflow from the WorkflowTemplate; returns the Workflow's name.

        With a run-id label the Workflow is named after the run, so submitting the same run
        again (a lost answer, a worker restarted mid-submit) finds it instead of a second one.
        """
        try:
            body = bodies.submit_request(self.namespace, template_name, parameters, labels,
                                         self.service_account)
        except ValueError as error:
            raise ArgoEngineError(f"not submitted to {self.server_url}: {error}",
                                  reason="invalid") from error
        try:
            workflow = self._json(f"submit WorkflowTemplate {template_name!r}",
                                  self._workflows.submit_workflow, self.namespace,
                                  SubmitRequest(**_camel(body), _check_type=False))
        except ArgoEngineError as error:
            if error.reason == "conflict" and RUN_ID_LABEL in labels:
                return self._submitted_before(body["submitOptions"]["name"], labels)
            raise
        return workflow["metadata"]["name"]

    def _submitted_before(self, name: str, labels: dict[str, str]) -> str:
        """The Workflow a previous submit of this run made (checked by its run-id label)."""
        existing = self._json(f"get Workflow {name!r}", self._workflows.get_workflow,
                              self.namespace, name)
        found = (existing["metadata"].get("labels") or {}).get(RUN_ID_LABEL)
        if found != labels[RUN_ID_LABEL]:
            raise ArgoEngineError(f"Argo Server at {self.server_url}: Workflow {name!r} exists "
                                  f"but belongs to run {found!r}", reason="conflict", status=409)
        return name

    def status(self, name: str) -> dict:
        """The Workflow's phase, times, message and nodes (see argo_bodies.workflow_status)."""
        workflow = self._json(f"get Workflow {name!r}", self._workflows.get_workflow,
                              self.namespace, name)
        return bodies.workflow_status(workflow)

    def logs(self, name: str, node_id: str | None = None) -> str:
        """The main container's log of one node, or of every pod of the Workflow."""
        query = {"log_options_container": "main"}
        if node_id is not None:
            query["pod_name"] = self._pod_name(name, node_id)
        payload = self._raw(f"read logs of Workflow {name!r}", self._workflows.workflow_logs,
                            self.namespace, name, **query)
        try:
            entries = bodies.log_entries(payload)
        except ValueError as error:
            raise ArgoEngineError(f"Argo Server at {self.server_url}: logs of Workflow {name!r}: "
                                  f"{error}", reason="server") from error
        return bodies.log_text(entries, with_pod=node_id is None)

    def _pod_name(self, name: str, node_id: str) -> str:
        for node in self.status(name)["nodes"]:
            if node["id"] == node_id:
                if node["podName"] is None:
                    raise ArgoEngineError(f"node {node_id!r} of Workflow {name!r} is a "
                                          f"{node['type']} node and has no pod, so no log",
                                          reason="invalid")
                return node["podName"]
        raise ArgoEngineError(f"Argo Server at {self.server_url}: Workflow {name!r} has no node "
                              f"{node_id!r}", reason="not_found", status=404)

    def stop(self, name: str, message: str = "") -> None:
        """Stop the Workflow: running steps are stopped, exit handlers still run."""
        body = bodies.stop_request(self.namespace, name, message)
        self._json(f"stop Workflow {name!r}", self._workflows.stop_workflow, self.namespace,
                   name, StopRequest(**_camel(body), _check_type=False))

    def retry(self, name: str) -> None:
        """Run the failed steps of a Failed or Error Workflow again; succeeded ones are kept."""
        body = bodies.retry_request(self.namespace, name)
        self._json(f"retry Workflow {name!r}", self._workflows.retry_workflow, self.namespace,
                   name, RetryRequest(**_camel(body), _check_type=False))

    def find_by_label(self, run_id: str) -> list[str]:
        """The Workflows submitted for a run, oldest first (a restarted worker follows them)."""
        selector = bodies.label_selector({RUN_ID_LABEL: run_id})
        found = self._json(f"list Workflows of run {run_id!r}", self._workflows.list_workflows,
                           self.namespace, list_options_label_selector=selector)
        items = found.get("items") or []
        items.sort(key=lambda w: (w["metadata"].get("creationTimestamp", ""),
                                  w["metadata"]["name"]))
        return [w["metadata"]["name"] for w in items]

    def _json(self, what: str, method, *args, **kwargs) -> dict:
        return json.loads(self._raw(what, method, *args, **kwargs) or b"{}")

    def _raw(self, what: str, method, *args, **kwargs) -> bytes:
        """Call an SDK method, returning the body unparsed; map every failure to the error."""
        try:
            response = method(*args, _preload_content=False, _request_timeout=self.timeout,
                              **kwargs)
            return response.data
        except ApiException as error:
            raise self._refused(what, error) from error
        except urllib3.exceptions.HTTPError as error:
            if isinstance(getattr(error, "reason", None), urllib3.exceptions.SSLError):
                raise ArgoEngineError(
                    f"Argo Server at {self.server_url}: TLS verification failed ({what}): "
                    f"{_cause(error)}; give its CA bundle in LABCOMMONS_ARGO_VERIFY_TLS",
                    reason="tls", retryable=True) from error
            raise ArgoEngineError(
                f"Argo Server at {self.server_url} is unreachable ({what}): "
                f"{_cause(error)}; nothing was changed, try again when it is up",
                reason="unreachable", retryable=True) from error

    def _refused(self, what: str, error: ApiException) -> ArgoEngineError:
        if not error.status:  # the SDK's own TLS failure, raised before any HTTP answer
            return ArgoEngineError(f"Argo Server at {self.server_url}: TLS failed ({what}): "
                                   f"{error.reason}", reason="tls", retryable=True)
        detail = _server_message(error)
        if error.status == 401:
            text = f"Argo Server at {self.server_url} refused the token (401): {detail}"
        elif error.status == 403:
            text = (f"Argo Server at {self.server_url}: the token may not {what} in namespace "
                    f"{self.namespace!r} (403): {detail}")
        else:
            text = f"Argo Server at {self.server_url} could not {what} ({error.status}): {detail}"
        reason = _REASONS.get(error.status, "server")
        return ArgoEngineError(text, reason=reason, status=error.status,
                               retryable=error.status in (502, 503, 504))


def make_configuration(server_url: str, token: str, verify_tls: bool | str) -> Configuration:
    """SDK configuration: Bearer token, TLS verified unless told not to, no silent retries."""
    config = Configuration(host=server_url)
    config.verify_ssl = verify_tls is not False
    if isinstance(verify_tls, str):
        config.ssl_ca_cert = verify_tls
    # `argo auth token` prints "Bearer <jwt>"; accept it as well as the bare token.
    token = token.strip().removeprefix("Bearer ").strip()
    if token:
        config.api_key["BearerToken"] = token
        config.api_key_prefix["BearerToken"] = "Bearer"
    config.retries = 0  # the worker decides when to try again; a hidden retry would only delay
    return config


def parse_verify_tls(value: str) -> bool | str:
    """LABCOMMONS_ARGO_VERIFY_TLS: empty/true -> verify, false -> do not, else a CA bundle path."""
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    return value.strip()


def _camel(body: dict) -> dict:
    """Top-level request keys as the SDK's model wants them (submitOptions -> submit_options)."""
    return {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key): value
            for key, value in body.items()}


def _server_message(error: ApiException) -> str:
    """The grpc-gateway error's message, else the raw body, else the HTTP reason."""
    body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else error.body
    try:
        return json.loads(body).get("message") or body
    except (TypeError, ValueError, AttributeError):
        return body or str(error.reason)


def _cause(error: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error)
