"""The pure builders and readers behind the argo engine, against expected dicts."""
from __future__ import annotations

import base64
import gzip
import json
import re

import pytest

from workflow_templates.engines import argo_bodies as bodies


def test_submit_request_from_a_template():
    assert bodies.submit_request("argo", "ims-qc", {"snr": "3", "expr": "a=b"},
                                 {"labcommons.io/run-id": "r-1", "app": "labcommons"}) == {
        "namespace": "argo", "resourceKind": "WorkflowTemplate", "resourceName": "ims-qc",
        "submitOptions": {"name": "ims-qc-r-1", "parameters": ["snr=3", "expr=a=b"],
                          "labels": "app=labcommons,labcommons.io/run-id=r-1"}}


def test_submit_request_without_a_run_generates_a_name_and_sends_no_labels():
    assert bodies.submit_request("argo", "t", {}, {})["submitOptions"] == {
        "generateName": "t-", "parameters": []}


def test_submit_request_names_the_step_pods_service_account_when_given():
    options = bodies.submit_request("argo", "t", {}, {}, service_account="labcommons-workflow")["submitOptions"]
    assert options["serviceAccount"] == "labcommons-workflow"


def test_a_runs_workflow_name_fits_a_label_value():
    run = "0B7E4C1E-5D7A-4C3E-9A51-3F2D8F0A9C11"
    assert bodies.workflow_name("ims-qc", run) == f"ims-qc-{run.lower()}"
    long = bodies.workflow_name("a-very-long-template-name-" * 3, run)
    assert len(long) <= 63 and long.endswith(f"e-{run.lower()}")
    hashed = bodies.workflow_name("ims-qc", "Run_42/x")
    assert re.fullmatch(r"ims-qc-[0-9a-f]{16}", hashed)
    assert hashed == bodies.workflow_name("ims-qc", "Run_42/x")


@pytest.mark.parametrize("labels, says", [
    ({"labcommons.io/run-id": "x" * 64}, "not a valid Kubernetes label value"),
    ({"labcommons.io/run-id": "a,b"}, "not a valid Kubernetes label value"),
    ({"bad key!": "v"}, "not a valid Kubernetes label key"),
])
def test_labels_kubernetes_would_refuse_are_refused(labels, says):
    with pytest.raises(ValueError, match=says):
        bodies.label_selector(labels)


def test_parameters_must_be_strings():
    with pytest.raises(ValueError, match="parameter 'snr' must be a string, got int"):
        bodies.submit_request("argo", "t", {"snr": 3}, {})


def test_template_body_drops_what_the_server_keeps():
    doc = {"metadata": {"name": "t", "namespace": "elsewhere", "uid": "u",
                        "resourceVersion": "9", "creationTimestamp": "x"},
           "spec": {"entrypoint": "main"}, "status": {}}
    assert bodies.template_update_request("argo", doc, "12") == {
        "namespace": "argo", "name": "t",
        "template": {"metadata": {"name": "t", "namespace": "argo", "resourceVersion": "12"},
                     "spec": {"entrypoint": "main"}}}
    assert doc["metadata"]["uid"] == "u"  # the caller's document is left as it was


def test_memoize_goes_to_argo_untouched():
    """On a cluster, Argo's controller memoizes in its own ConfigMaps; the engine adds nothing."""
    memoize = {"key": "{{inputs.parameters.m}}", "maxAge": "1h", "cache": {"configMap": {"name": "c"}}}
    doc = {"metadata": {"name": "t"}, "spec": {"templates": [{"name": "a", "memoize": memoize}]}}
    assert bodies.template_create_request("argo", doc)["template"]["spec"]["templates"][0]["memoize"] == memoize


def test_fnv32a_and_node_ids_match_argo():
    assert bodies.fnv32a("") == 0x811C9DC5 and bodies.fnv32a("a") == 0xE40C292C
    assert bodies.node_id("wf", "wf") == "wf"
    assert bodies.node_id("wf", "wf[0].step") == f"wf-{bodies.fnv32a('wf[0].step')}"


def test_pod_names_in_both_formats():
    workflow = {"metadata": {"name": "wf"}}
    node = {"id": "wf-123", "name": "wf[0].step", "templateRef": {"template": "measure"}}
    assert bodies.pod_name(workflow, node) == f"wf-measure-{bodies.fnv32a('wf[0].step')}"
    workflow["metadata"]["annotations"] = {bodies.POD_NAME_FORMAT: "v1"}
    assert bodies.pod_name(workflow, node) == "wf-123"
    assert bodies.pod_name({"metadata": {"name": "wf"}}, {"id": "wf", "name": "wf"}) == "wf"


def test_status_of_a_workflow_with_compressed_nodes():
    nodes = {"wf": {"id": "wf", "name": "wf", "type": "Pod", "phase": "Failed",
                    "templateName": "main", "outputs": {"exitCode": "2"}}}
    compressed = base64.b64encode(gzip.compress(json.dumps(nodes).encode())).decode()
    workflow = {"metadata": {"name": "wf"},
                "status": {"phase": "Failed", "message": "boom", "compressedNodes": compressed,
                           "startedAt": "2026-01-01T00:00:00Z",
                           "outputs": {"parameters": [{"name": "report", "value": "r.json"}]}}}
    assert bodies.workflow_status(workflow) == {
        "name": "wf", "phase": "Failed", "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": None, "message": "boom", "labels": {},
        "outputs": {"report": "r.json"},
        "nodes": [{"id": "wf", "name": "wf", "displayName": "wf", "type": "Pod",
                   "phase": "Failed", "startedAt": None, "finishedAt": None, "message": "",
                   "templateName": "main", "exitCode": 2, "outputs": {}, "children": [],
                   "podName": "wf"}]}


def test_an_unset_or_unknown_phase_reads_as_pending():
    assert bodies.workflow_status({"metadata": {"name": "wf"}})["phase"] == "Pending"
    assert bodies.workflow_status(
        {"metadata": {"name": "wf"}, "status": {"phase": "Unknown"}})["phase"] == "Pending"


def test_nodes_come_root_first_then_those_the_tree_misses():
    nodes = {"b": {"id": "b"}, "wf": {"id": "wf", "children": ["c"]}, "c": {"id": "c"},
             "a": {"id": "a"}}
    ordered = bodies.ordered_nodes({"metadata": {"name": "wf"}}, nodes)
    assert [n["id"] for n in ordered] == ["wf", "c", "a", "b"]


def test_log_stream_lines_however_they_are_separated():
    stream = ('{"result":{"content":"one","podName":"p1"}}\n'
              '{"result":{"content":"two","podName":"p2"}} {"result":{}}\n')
    entries = bodies.log_entries(stream.encode())
    assert bodies.log_text(entries, with_pod=False) == "one\ntwo\n\n"
    assert bodies.log_text(entries[:2], with_pod=True) == "p1: one\np2: two\n"
    assert bodies.log_entries(b"") == []


def test_an_error_in_the_log_stream_is_raised():
    with pytest.raises(ValueError, match="pods not found"):
        bodies.log_entries(b'{"error":{"grpc_code":5,"message":"pods not found"}}\n')
