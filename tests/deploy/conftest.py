"""Fixtures for the deploy checks (deploy/: manifests, chart values, Dockerfile).

- kubectl:   the kubectl executable. Missing: the test fails when CI=true (.ci/run installs
             Debian's kubernetes-client) and is skipped otherwise, saying why.
- rendered:  rendered(env) -> every object `kubectl kustomize deploy/overlays/<env>` prints
             (rendered once per session and environment).
- values:    values(chart) -> deploy/values/<chart>.yaml, parsed.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.need import need

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENVIRONMENTS = ("dev", "prod")


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        need("kubectl", "install Debian's kubernetes-client (apt-get install kubernetes-client)")
    return path


@functools.cache
def _render(kubectl: str, env: str) -> tuple[dict, ...]:
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY / "overlays" / env)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize deploy/overlays/{env} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture
def rendered(kubectl):
    return lambda env: _render(kubectl, env)


@pytest.fixture
def values():
    return lambda chart: yaml.safe_load((DEPLOY / "values" / f"{chart}.yaml").read_text())
