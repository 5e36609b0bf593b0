"""The worker's engine interface over an Argo Server (what LocalEngine offers, for Argo).

    runs = ArgoRuns(ArgoEngine.from_settings(settings), settings.storage_root)
    handle = runs.start(template_document, parameters, run_id, project)   # installs the template if changed
    handle.status(); handle.stop(); handle.retry_failed(); runs.resume(run_id, project)

One Argo Workflow per run, labelled with the run's id, so a restarted worker finds the runs it
submitted (`knows`, `resume`). A step's log is fetched once, when the step ends, and kept in the
run's folder under its project, <storage_root>/<project>/runs/<run id>/logs/ (ground.storage.run_dir),
where the portal and `labcommons run logs` read it after checking the run's project.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ground.storage import run_dir
from metadata.workflow_catalog import digest
from workflow_templates.engines.argo import ArgoEngine, ArgoEngineError
from workflow_templates.engines.argo_bodies import RUN_ID_LABEL

log = logging.getLogger(__name__)
FINISHED = {"Succeeded", "Failed", "Error", "Skipped", "Omitted"}


class ArgoRuns:
    def __init__(self, engine: ArgoEngine, storage_root: Path):
        self.argo, self.storage_root = engine, Path(storage_root)
        self._installed: dict[str, str] = {}

    def knows(self, run_id: str, project: str = "") -> bool:
        return bool(self.argo.find_by_label(run_id))

    def start(self, document: dict, parameters: dict[str, str], run_id: str, project: str,
              sees: dict | None = None, reuse: bool = True, inputs: list | None = None) -> "ArgoHandle":
        """Submit the run; `sees` (the local engine's sandbox) is the cluster's volumes' business here,
        and reuse is Argo's own: the templates' `memoize`, passed through untouched (`reuse`, `inputs`:
        the local engine's step reuse, which Argo has not)."""
        name = document["metadata"]["name"]
        if self._installed.get(name) != digest(document):
            self.argo.install_templates([document])
            self._installed[name] = digest(document)
        workflow = self.argo.submit(name, parameters, {RUN_ID_LABEL: run_id})
        return ArgoHandle(self.argo, workflow, self._logs(run_id, project))

    def resume(self, run_id: str, project: str) -> "ArgoHandle":
        names = self.argo.find_by_label(run_id)
        if not names:
            raise LookupError(f"no Argo workflow is labelled with run {run_id}")
        handle = ArgoHandle(self.argo, names[-1], self._logs(run_id, project))
        handle.status()   # its phase as the server has it (the worker retries a finished one)
        return handle

    def _logs(self, run_id: str, project: str) -> Path:
        return run_dir(self.storage_root, project, run_id) / "logs"


class ArgoHandle:
    def __init__(self, argo: ArgoEngine, workflow: str, logs_dir: Path):
        self.argo, self.workflow, self.logs_dir = argo, workflow, logs_dir
        self._phase = "Pending"

    @property
    def phase(self) -> str:
        return self._phase

    def status(self) -> dict:
        """The workflow's state in the local engine's shape: phase, message, nodes by id."""
        state = self.argo.status(self.workflow)
        self._phase = state["phase"] or "Pending"
        nodes = {n["id"]: self._node(n) for n in state["nodes"]}
        return {"phase": self._phase, "message": state.get("message") or "", "nodes": nodes,
                "started_at": state.get("startedAt"), "finished_at": state.get("finishedAt")}

    def _node(self, node: dict) -> dict:
        converted = {"id": node["id"], "name": node.get("displayName") or node["name"],
                     "template": node.get("templateName") or "", "phase": node["phase"],
                     "started_at": node.get("startedAt"), "finished_at": node.get("finishedAt"),
                     "exit_code": node.get("exitCode"), "message": node.get("message") or "",
                     "children": node.get("children") or [], "outputs": node.get("outputs") or {}}
        if node.get("type") == "Pod" and node["phase"] in FINISHED:
            converted["log"] = str(self._saved_log(node["id"]))
        return converted

    def _saved_log(self, node_id: str) -> Path:
        path = self.logs_dir / f"{node_id}.log"
        if not path.exists():
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            try:
                text = self.argo.logs(self.workflow, node_id)
            except ArgoEngineError as error:
                text = f"(the log could not be fetched from the Argo Server: {error})\n"
            path.write_text(text)
        return path

    def stop(self, reason: str = "Stopped") -> None:
        self.argo.stop(self.workflow)

    def retry_failed(self) -> "ArgoHandle":
        self.argo.retry(self.workflow)
        return self
