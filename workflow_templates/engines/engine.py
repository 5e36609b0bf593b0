"""What the worker asks of an engine: one protocol that the local engine (local.LocalEngine and its
RunHandle) and Argo (argo_runs.ArgoRuns and its ArgoHandle) both satisfy, so the worker types
against it and a third engine knows what to offer."""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class EngineRun(Protocol):
    """One run as the engine runs it."""

    @property
    def phase(self) -> str:
        """Pending, Running, Succeeded, Failed or Error (Argo's workflow phases)."""

    def status(self) -> dict:
        """phase, message, started_at, finished_at and nodes by id (each: id, name, template,
        phase, started_at, finished_at, exit_code, message, children as Argo links them,
        outputs, and log: where its log is kept)."""

    def stop(self, reason: str = "Stopped") -> None:
        """Stop it: running steps are killed; it ends Failed."""

    def retry_failed(self) -> EngineRun:
        """Run again what did not succeed, keeping what did."""


@runtime_checkable
class Engine(Protocol):
    """Starts runs of a WorkflowTemplate and finds them again after the worker restarts."""

    def knows(self, run_id: str, project: str = "") -> bool:
        """Whether it has (had) a run by that id."""

    def start(self, document: dict, parameters: dict[str, str], run_id: str, project: str,
              sees: dict | None = None, reuse: bool = True, inputs: list | None = None) -> EngineRun:
        """Start the template `document` with `parameters`; `sees` says which folders of the
        storage its steps may read and write (the local engine's sandbox); `reuse` whether its
        steps may take earlier identical steps' outputs, `inputs` the files it reads that no
        parameter names (the local engine's step reuse; Argo has only the templates' memoize)."""

    def resume(self, run_id: str, project: str) -> EngineRun:
        """The run again after a restart, going on where it stopped."""
