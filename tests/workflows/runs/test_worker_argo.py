"""The worker with the Argo engine, against the fake Argo Server (which checks every request
against the server's published contract): submit, follow, end; an unreachable server leaves the
run queued and loses nothing; a restarted worker finds the workflow it submitted; a retried run
retries its failed workflow."""
import socket

import pytest

from metadata import templates
from tests.workflows.argo.contract import Contract
from tests.workflows.argo.fake_server import FakeArgoServer
from workflow_templates.engines.argo import ArgoEngine
from workflow_templates.engines.argo_runs import ArgoRuns
from workflow_templates.worker import Worker


@pytest.fixture
def fake_argo():
    fake = FakeArgoServer(contract=Contract()).start()
    yield fake
    fake.stop()
    assert fake.violations == [], "requests or answers broke the Argo Server contract"


def argo_worker(admin, settings, url: str, token: str, namespace: str, name: str = "w-argo") -> Worker:
    runs = ArgoRuns(ArgoEngine(url, token, namespace), settings.storage_root)
    return Worker(admin, templates.load(settings.templates_dir), settings.storage_root, name=name, engine=runs)


def test_a_run_is_submitted_followed_and_ended_through_argo(admin, settings, measurement, fake_argo):
    worker = argo_worker(admin, settings, fake_argo.url, fake_argo.token, fake_argo.namespace)
    run = admin.launch("size-report", [measurement]).run
    worker.tick()
    [workflow] = worker.engine.argo.find_by_label(run.id)
    assert admin.run(run.id).status == "running"
    fake_argo.advance(workflow, "Succeeded")
    worker.tick()
    done = admin.run(run.id)
    assert done.status == "succeeded" and done.worker == "w-argo"


def test_a_restarted_worker_resumes_following_its_workflow(admin, settings, measurement, fake_argo):
    first = argo_worker(admin, settings, fake_argo.url, fake_argo.token, fake_argo.namespace)
    run = admin.launch("size-report", [measurement]).run
    first.tick()
    [workflow] = first.engine.argo.find_by_label(run.id)
    again = argo_worker(admin, settings, fake_argo.url, fake_argo.token, fake_argo.namespace)  # same name
    fake_argo.advance(workflow, "Failed")
    again.tick()
    done = admin.run(run.id)
    assert done.status == "failed" and len(again.engine.argo.find_by_label(run.id)) == 1


def test_an_unreachable_argo_server_leaves_the_run_queued(admin, settings, measurement):
    with socket.socket() as sock:   # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = argo_worker(admin, settings, f"http://127.0.0.1:{port}", "token", "argo")
    run = admin.launch("size-report", [measurement]).run
    worker.tick()
    waiting = admin.run(run.id)
    assert waiting.status == "queued" and "cannot be reached" in waiting.message and not worker.followed
    worker.tick()                                   # paused: it claims nothing while the server is away
    assert admin.run(run.id).status == "queued"


def test_a_retried_run_retries_its_failed_workflow(admin, settings, measurement, fake_argo):
    worker = argo_worker(admin, settings, fake_argo.url, fake_argo.token, fake_argo.namespace)
    run = admin.launch("size-report", [measurement]).run
    worker.tick()
    [workflow] = worker.engine.argo.find_by_label(run.id)
    fake_argo.advance(workflow, "Failed")
    worker.tick()
    assert admin.run(run.id).status == "failed"
    admin.retry_run(run.id)
    worker.tick()                                   # resumed, seen Failed on the server, retried there
    assert admin.run(run.id).status == "running" and worker.engine.argo.find_by_label(run.id) == [workflow]
