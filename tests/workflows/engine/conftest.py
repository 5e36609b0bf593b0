"""Fixtures for the local engine's tests.

- engine:   a LocalEngine (2 parallel steps) with its storage root and runs dir under tmp_path.
- shared:   a directory outside /tmp that every step may write (each step has a private /tmp and
            sees of the host's files only what its run `sees`), for counters and timestamps;
            removed after the test.
- dag(*tasks, fail_fast): a DAG template of the given tasks over ok, fail, slow (1 s) and late-fail.
- run:      run(template_yaml, **parameters) -> the finished RunHandle (60 s at most), its
            steps seeing `shared`.
"""
from __future__ import annotations

import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from workflow_templates.engines.local import LocalEngine


@pytest.fixture
def engine(tmp_path) -> LocalEngine:
    return LocalEngine(tmp_path / "storage", tmp_path / "runs", max_parallel=2)


@pytest.fixture
def shared():
    path = Path(tempfile.mkdtemp(prefix="labcommons-engine-test-", dir="/var/tmp"))
    path.chmod(0o777)  # steps run as the sandbox user when the tests run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run(engine, shared):
    def run(template: str, **parameters):
        handle = engine.start(textwrap.dedent(template), parameters=parameters, sees={"write": [shared]})
        handle.wait(60)
        assert handle.phase != "Running", "run did not finish within 60 s"
        return handle
    return run


def nodes_named(handle) -> dict:
    """The run's nodes by display name (the last one wins for repeated names)."""
    return {n["name"]: n for n in handle.status()["nodes"].values()}


DAG = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: dag-phase}
    spec:
      entrypoint: main
      templates:
      - name: main
        dag:
          failFast: %s
          tasks:
%s
      - name: ok
        container: {image: alpine, command: [sh, -c, "exit 0"]}
      - name: fail
        container: {image: alpine, command: [sh, -c, "exit 1"]}
      - name: slow
        container: {image: alpine, command: [sh, -c, "sleep 1"]}
      - name: late-fail
        container: {image: alpine, command: [sh, -c, "sleep 1; exit 1"]}
    """


def dag(*tasks: str, fail_fast: bool = False) -> str:
    """A DAG template of `tasks` (YAML flow mappings) over the templates ok, fail, slow and late-fail."""
    return DAG % (str(fail_fast).lower(), "\n".join(" " * 10 + "- " + task for task in tasks))
