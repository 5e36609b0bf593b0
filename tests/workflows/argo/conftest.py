"""Fixtures for the argo engine tests.

- argo_contract: the Argo Server's swagger, loaded once for the session.
- fake_argo:     a FakeArgoServer on a free loopback port, stopped after the test; the test
                 fails if any request broke the published contract (or any answer did).
- engine:        an ArgoEngine pointed at fake_argo, with its token and namespace.
- template_doc:  a small valid WorkflowTemplate: two steps, an enum parameter, an output.
- installed:     fake_argo with template_doc installed through the engine.
"""
from __future__ import annotations

import copy

import pytest

from tests.workflows.argo.contract import Contract
from tests.workflows.argo.fake_server import FakeArgoServer
from workflow_templates.engines.argo import ArgoEngine

TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "tiny-qc", "labels": {"labcommons.io/template": "tiny-qc"}},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [
            {"name": "dataset", "description": "The dataset id"},
            {"name": "mode", "value": "fast", "enum": ["fast", "thorough"]},
        ]},
        "templates": [
            {"name": "main", "steps": [
                [{"name": "measure", "template": "measure",
                  "arguments": {"parameters": [
                      {"name": "dataset", "value": "{{workflow.parameters.dataset}}"}]}}],
                [{"name": "report", "template": "report"}],
            ]},
            {"name": "measure",
             "inputs": {"parameters": [{"name": "dataset"}]},
             "retryStrategy": {"limit": 2},
             "container": {"image": "python:3.11-slim",
                           "command": ["python", "-c"],
                           "args": ["print('measuring {{inputs.parameters.dataset}}'); "
                                    "open('/tmp/tic', 'w').write('42')"]},
             "outputs": {"parameters": [{"name": "tic", "valueFrom": {"path": "/tmp/tic"}}]}},
            {"name": "report",
             "script": {"image": "python:3.11-slim", "command": ["python"],
                        "source": "print('report')"}},
        ],
    },
}


@pytest.fixture
def template_doc() -> dict:
    return copy.deepcopy(TEMPLATE)


@pytest.fixture(scope="session")
def argo_contract() -> Contract:
    return Contract()


@pytest.fixture
def fake_argo(argo_contract):
    fake = FakeArgoServer(contract=argo_contract).start()
    yield fake
    fake.stop()
    assert fake.violations == [], "requests or answers broke the Argo Server contract"


@pytest.fixture
def engine(fake_argo) -> ArgoEngine:
    return ArgoEngine(fake_argo.url, fake_argo.token, fake_argo.namespace)


@pytest.fixture
def installed(fake_argo, engine, template_doc):
    engine.install_templates([template_doc])
    return fake_argo
