"""The argo engine against the fake Argo Server (every request checked against the swagger)."""
from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from ground import settings as settings_module
from workflow_templates.engines.argo import ArgoEngine, ArgoEngineError, parse_verify_tls
from workflow_templates.engines.argo_bodies import RUN_ID_LABEL

RUN = "0b7e4c1e-5d7a-4c3e-9a51-3f2d8f0a9c11"


def submit(engine, run_id=RUN, **parameters):
    return engine.submit("tiny-qc", {"dataset": "ds-1", **parameters}, {RUN_ID_LABEL: run_id})


def test_health_names_the_server_version(engine, fake_argo):
    assert engine.health() == {"server": fake_argo.url, "namespace": "argo", "version": "v4.1.2"}


def test_install_creates_then_updates_with_the_current_resource_version(
        fake_argo, engine, template_doc):
    assert engine.install_templates([template_doc]) == {"tiny-qc": "created"}
    first = fake_argo.templates["tiny-qc"]["metadata"]["resourceVersion"]

    template_doc["spec"]["arguments"]["parameters"][1]["value"] = "thorough"
    assert engine.install_templates([template_doc]) == {"tiny-qc": "updated"}

    method, _, body = fake_argo.requests[-1]
    assert method == "PUT" and body["template"]["metadata"]["resourceVersion"] == first
    installed = fake_argo.templates["tiny-qc"]
    assert installed["metadata"]["resourceVersion"] != first
    assert installed["spec"]["arguments"]["parameters"][1]["value"] == "thorough"


def test_install_leaves_an_identical_template_alone(installed, engine, template_doc):
    version = installed.templates["tiny-qc"]["metadata"]["resourceVersion"]
    assert engine.install_templates([template_doc]) == {"tiny-qc": "unchanged"}
    assert installed.templates["tiny-qc"]["metadata"]["resourceVersion"] == version


def test_install_tries_again_when_someone_updated_in_between(installed, engine, template_doc):
    real_template = installed._template
    calls = []

    def template_then_bumped(name):  # another writer updates right after our GET
        found = real_template(name)
        calls.append(name)
        if len(calls) == 1:
            found = json.loads(json.dumps(found))
            installed.templates[name]["metadata"]["resourceVersion"] += "9"
        return found

    installed._template = template_then_bumped
    template_doc["spec"]["arguments"]["parameters"][0]["description"] = "changed"
    assert engine.install_templates([template_doc]) == {"tiny-qc": "updated"}
    assert [m for m, _, _ in installed.requests].count("PUT") == 2


def test_submit_sends_parameters_and_labels_from_the_template(installed, engine):
    name = submit(engine, mode="thorough")

    assert name == f"tiny-qc-{RUN}"
    method, path, body = installed.requests[-1]
    assert (method, path) == ("POST", "/api/v1/workflows/argo/submit")
    assert body["resourceKind"] == "WorkflowTemplate" and body["resourceName"] == "tiny-qc"
    assert sorted(body["submitOptions"]["parameters"]) == ["dataset=ds-1", "mode=thorough"]
    assert body["submitOptions"]["labels"] == f"{RUN_ID_LABEL}={RUN}"
    workflow = installed.workflows[name]
    assert workflow["metadata"]["labels"][RUN_ID_LABEL] == RUN
    assert workflow["spec"]["arguments"]["parameters"] == [
        {"name": "dataset", "value": "ds-1"}, {"name": "mode", "value": "thorough"}]


def test_submit_asks_for_the_step_pods_service_account(installed, fake_argo):
    engine = ArgoEngine(fake_argo.url, fake_argo.token, fake_argo.namespace, service_account="labcommons-workflow")
    submit(engine)
    assert installed.requests[-1][2]["submitOptions"]["serviceAccount"] == "labcommons-workflow"  # the contract allows it


def test_submit_refuses_a_label_kubernetes_would_refuse_without_sending(installed, engine):
    sent = len(installed.requests)
    with pytest.raises(ArgoEngineError, match="not a valid Kubernetes label value") as caught:
        engine.submit("tiny-qc", {"dataset": "x"}, {RUN_ID_LABEL: "a run/with slashes"})
    assert caught.value.reason == "invalid" and len(installed.requests) == sent


def test_submit_passes_on_the_servers_refusal(installed, engine):
    with pytest.raises(ArgoEngineError, match="not in the enum") as caught:
        submit(engine, mode="sloppy")
    assert caught.value.reason == "invalid" and caught.value.status == 400
    assert installed.url in str(caught.value)


def test_submit_of_an_unknown_template_is_not_found(installed, engine):
    with pytest.raises(ArgoEngineError, match='"no-such" not found') as caught:
        engine.submit("no-such", {}, {})
    assert caught.value.reason == "not_found" and not caught.value.retryable


def test_a_submitted_workflow_is_pending(installed, engine):
    status = engine.status(submit(engine))
    assert status["phase"] == "Pending" and status["nodes"] == []
    assert status["labels"][RUN_ID_LABEL] == RUN


@pytest.mark.parametrize("phase", ["Pending", "Running", "Succeeded", "Failed", "Error"])
def test_status_maps_each_phase(installed, engine, phase):
    name = submit(engine)
    installed.advance(name, phase, outputs={"tic": "42"})

    status = engine.status(name)
    assert status["phase"] == phase
    assert [n["displayName"] for n in status["nodes"]] == [name, "measure", "report"]
    root, measure, report = status["nodes"]
    assert root["type"] == "Steps" and root["children"] == [measure["id"], report["id"]]
    assert measure["type"] == "Pod" and measure["podName"].startswith(f"{name}-measure-")
    if phase in ("Succeeded", "Failed", "Error"):
        assert status["finishedAt"] and status["startedAt"]
        assert measure["exitCode"] == 0 and measure["outputs"] == {"tic": "42"}
    else:
        assert status["finishedAt"] is None and measure["exitCode"] is None
    if phase in ("Failed", "Error"):
        assert report["phase"] == phase and report["exitCode"] == 1
        assert status["message"] == f"child '{report['id']}' failed"


def test_status_of_an_unknown_workflow_is_not_found(engine):
    with pytest.raises(ArgoEngineError, match="could not get Workflow 'gone'") as caught:
        engine.status("gone")
    assert caught.value.reason == "not_found"


def test_logs_of_the_workflow_and_of_one_node(installed, engine):
    name = submit(engine)
    installed.advance(name, "Succeeded")
    measure = engine.status(name)["nodes"][1]
    installed.pod_logs[measure["podName"]] = ["measuring ds-1", "tic=42"]

    assert engine.logs(name, measure["id"]) == "measuring ds-1\ntic=42\n"
    assert installed.requests[-1][1] == f"/api/v1/workflows/argo/{name}/log"
    everything = engine.logs(name)
    assert f"{measure['podName']}: tic=42\n" in everything
    assert "running report" in everything


def test_logs_of_a_node_without_a_pod_say_so(installed, engine):
    name = submit(engine)
    installed.advance(name, "Running")
    with pytest.raises(ArgoEngineError, match="Steps node and has no pod"):
        engine.logs(name, name)
    with pytest.raises(ArgoEngineError, match="has no node 'nope'"):
        engine.logs(name, "nope")


def test_stop_fails_the_running_workflow(installed, engine):
    name = submit(engine)
    installed.advance(name, "Running")
    engine.stop(name)

    status = engine.status(name)
    assert status["phase"] == "Failed" and status["message"] == "Stopped with strategy 'Stop'"
    with pytest.raises(ArgoEngineError, match="cannot shutdown a completed workflow"):
        engine.stop(name)


def test_retry_runs_only_the_failed_steps_again(installed, engine):
    name = submit(engine)
    installed.advance(name, "Failed")
    before = {n["displayName"]: n for n in engine.status(name)["nodes"]}
    engine.retry(name)

    status = engine.status(name)
    assert status["phase"] == "Running" and status["finishedAt"] is None
    after = {n["displayName"]: n for n in status["nodes"]}
    assert "report" not in after and after["measure"] == before["measure"]
    assert installed.requests[-2][2]["restartSuccessful"] is False
    installed.advance(name, "Succeeded")
    assert engine.status(name)["phase"] == "Succeeded"


def test_retry_of_a_running_workflow_is_refused(installed, engine):
    name = submit(engine)
    installed.advance(name, "Running")
    with pytest.raises(ArgoEngineError, match="must be Failed/Error to retry"):
        engine.retry(name)


def test_a_restarted_worker_finds_its_runs_by_label(installed, engine, fake_argo):
    first = submit(engine)
    other = submit(engine, run_id="other-run")

    restarted = ArgoEngine(fake_argo.url, fake_argo.token, fake_argo.namespace)
    assert restarted.find_by_label(RUN) == [first]
    assert restarted.find_by_label("other-run") == [other]
    assert restarted.find_by_label("never-submitted") == []


def test_submitting_a_run_again_finds_its_workflow_instead_of_a_second(installed, engine):
    first = submit(engine)
    assert submit(engine) == first == f"tiny-qc-{RUN}"
    assert list(installed.workflows) == [first]


def test_a_workflow_of_another_run_under_the_name_is_a_conflict(installed, engine):
    name = submit(engine)
    installed.workflows[name]["metadata"]["labels"][RUN_ID_LABEL] = "someone-else"
    with pytest.raises(ArgoEngineError, match="belongs to run 'someone-else'") as caught:
        submit(engine)
    assert caught.value.reason == "conflict"


def test_without_a_run_id_each_submit_is_a_new_workflow(installed, engine):
    names = {engine.submit("tiny-qc", {"dataset": "d"}, {}) for _ in range(2)}
    assert len(names) == 2 and all(n.startswith("tiny-qc-") for n in names)


def test_a_down_server_is_a_retryable_error_naming_it():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    engine = ArgoEngine(url, "token", "argo")
    for call in (engine.health, lambda: engine.submit("tiny-qc", {}, {RUN_ID_LABEL: RUN}),
                 lambda: engine.status("wf")):
        with pytest.raises(ArgoEngineError) as caught:
            call()
        assert caught.value.reason == "unreachable" and caught.value.retryable
        assert f"Argo Server at {url} is unreachable" in str(caught.value)


def test_a_refused_token_says_so(fake_argo):
    engine = ArgoEngine(fake_argo.url, "stale-token", "argo")
    with pytest.raises(ArgoEngineError, match="refused the token") as caught:
        engine.health()
    assert caught.value.reason == "unauthorized" and caught.value.status == 401
    assert fake_argo.url in str(caught.value) and not caught.value.retryable


def test_a_token_without_rights_names_the_namespace(fake_argo, template_doc):
    viewer = ArgoEngine(fake_argo.url, fake_argo.viewer_token, "argo")
    viewer.health()
    with pytest.raises(ArgoEngineError, match=r"may not create WorkflowTemplate 'tiny-qc' in "
                                              r"namespace 'argo' \(403\)") as caught:
        viewer.install_templates([template_doc])
    assert caught.value.reason == "forbidden"
    elsewhere = ArgoEngine(fake_argo.url, fake_argo.token, "other")
    with pytest.raises(ArgoEngineError, match="namespace 'other'"):
        elsewhere.health()


def test_the_token_may_carry_its_bearer_prefix(fake_argo):
    engine = ArgoEngine(fake_argo.url, f"Bearer {fake_argo.token}\n", "argo")
    assert engine.health()["version"] == "v4.1.2"


def test_the_fake_moves_workflows_on_over_http(installed, engine):
    name = submit(engine)
    request = urllib.request.Request(f"{installed.url}/_test/advance/{name}?phase=Succeeded",
                                     data=b'{"outputs": {"tic": "7"}}', method="POST")
    with urllib.request.urlopen(request) as answer:
        assert json.load(answer)["status"]["phase"] == "Succeeded"
    assert engine.status(name)["nodes"][1]["outputs"] == {"tic": "7"}


def test_settings_come_from_the_environment(fake_argo):
    engine = ArgoEngine.from_settings(settings_module.load({
        "LABCOMMONS_ARGO_SERVER": fake_argo.url, "LABCOMMONS_ARGO_TOKEN": fake_argo.token,
        "LABCOMMONS_ARGO_NAMESPACE": "argo"}))
    assert engine.health()["namespace"] == "argo"
    with pytest.raises(ArgoEngineError, match="LABCOMMONS_ARGO_SERVER is not set"):
        ArgoEngine.from_settings(settings_module.load({}))
    assert parse_verify_tls("") is True and parse_verify_tls("false") is False
    assert parse_verify_tls("/etc/ca.pem") == "/etc/ca.pem"
