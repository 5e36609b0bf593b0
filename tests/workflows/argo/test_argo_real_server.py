"""The argo engine against a real Argo Server, when one is named; otherwise skipped.

Set LABCOMMONS_TEST_ARGO_SERVER (e.g. https://localhost:2746), LABCOMMONS_TEST_ARGO_TOKEN
(`argo auth token`), LABCOMMONS_TEST_ARGO_NAMESPACE (default argo) and, for a self-signed
certificate, LABCOMMONS_TEST_ARGO_VERIFY_TLS=false or a CA bundle path. The test installs
(or updates) the WorkflowTemplate `labcommons-test-echo`, runs it once and leaves both behind,
labelled, for inspection.
"""
from __future__ import annotations

import os
import time
import uuid

import pytest

from workflow_templates.engines.argo import ArgoEngine, parse_verify_tls
from workflow_templates.engines.argo_bodies import RUN_ID_LABEL

SERVER = os.environ.get("LABCOMMONS_TEST_ARGO_SERVER", "")
DEADLINE_S = 600

pytestmark = pytest.mark.skipif(
    not SERVER, reason="LABCOMMONS_TEST_ARGO_SERVER is not set: no Argo Server can run in CI, "
                       "so this test runs only against a real one; the fake-server tests check "
                       "every request against the Argo Server's published swagger instead")

ECHO = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "labcommons-test-echo"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "message"}]},
        "templates": [
            {"name": "main", "steps": [[{"name": "say", "template": "say"}]]},
            {"name": "say",
             "container": {"image": "busybox:1.36", "command": ["sh", "-c"],
                           "args": ["echo {{workflow.parameters.message}}; "
                                    "echo -n done > /tmp/result"]},
             "outputs": {"parameters": [{"name": "result",
                                         "valueFrom": {"path": "/tmp/result"}}]}},
        ],
    },
}


@pytest.fixture
def real_engine() -> ArgoEngine:
    return ArgoEngine(SERVER, os.environ.get("LABCOMMONS_TEST_ARGO_TOKEN", ""),
                      os.environ.get("LABCOMMONS_TEST_ARGO_NAMESPACE", "argo"),
                      verify_tls=parse_verify_tls(
                          os.environ.get("LABCOMMONS_TEST_ARGO_VERIFY_TLS", "")))


def test_a_template_runs_to_the_end_on_a_real_server(real_engine):
    assert real_engine.health()["version"]
    assert real_engine.install_templates([ECHO])["labcommons-test-echo"] in (
        "created", "updated", "unchanged")
    run_id = str(uuid.uuid4())
    name = real_engine.submit("labcommons-test-echo", {"message": f"hello {run_id}"},
                              {RUN_ID_LABEL: run_id})
    assert real_engine.find_by_label(run_id) == [name]

    status = real_engine.status(name)
    started = time.monotonic()
    while status["phase"] in ("Pending", "Running") and time.monotonic() - started < DEADLINE_S:
        time.sleep(2)
        status = real_engine.status(name)
    assert status["phase"] == "Succeeded", status["message"]
    say = next(n for n in status["nodes"] if n["displayName"] == "say")
    assert say["outputs"] == {"result": "done"} and say["exitCode"] == 0
    assert f"hello {run_id}" in real_engine.logs(name, say["id"])
