"""Argo's published examples (vendored in argo_examples/, see its README): each one either runs
as Argo documents it (the run's phase, its nodes' phases and outputs) or is refused at load with
the feature named, by the engine and by the catalog alike."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from metadata.workflow_catalog import TemplateError, load_template
from tests.workflows.engine.conftest import nodes_named
from workflow_templates.engines.spec import refusals

EXAMPLES = Path(__file__).parent / "argo_examples"

# example -> the feature its refusal names
REFUSED = {
    "argo-dangerous-interpolation-vap": "kind: 'ValidatingAdmissionPolicy'",
    "artifact-gc-workflow": "archiveLocation.s3",
    "coinflip-oldform": "steps[0]: expected a step group",
    "cron-workflow": "kind: 'CronWorkflow'",
    "loops-maps": "container.image",
    "retry-conditional": "retryStrategy.when",
    "sidecar": "sidecars",
    "suspend-template": "suspend",
}
# example -> (the run's phase, phases of nodes by name, results of nodes by name)
RUNS = {
    # dag.go: D (B.Failed && C) runs although E failed; G (E && F) is omitted; the leaf G
    # inherits E's failure, so the DAG fails
    "dag-continue-on-fail": ("Failed", {"B": "Failed", "D": "Succeeded", "E": "Failed", "G": "Omitted"}, {}),
    "dag-enhanced-depends": ("Succeeded", {"C": "Failed", "should-execute-1": "Succeeded",
                                           "should-not-execute": "Omitted", "should-execute-3": "Succeeded"}, {}),
    "dag-targets": ("Succeeded", {"A": "Succeeded", "C": "Succeeded", "E": "Succeeded"}, {}),
    "exit-code-output-variable": ("Succeeded", {"failing-container": "Failed"},
                                  {"echo-container": "Exit code was: 123"}),
    "exit-handlers": ("Failed", {"celebrate": "Skipped", "cry": "Succeeded"}, {"cry": "boohoo!"}),
    "loops-sequence": ("Succeeded", {}, {"sequence-negative": "[5,4,3,2,1,0]",
                                         "sequence-param": "[200,201,202]"}),
    "parameter-aggregation-script": ("Succeeded", {"divide-by-2(0:evenness:odd,num:1)": "Skipped"},
                                     {"divide-by-2": "[1,2]"}),
    "retry-container-to-completion": ("Succeeded", {}, {}),
    "status-reference": ("Succeeded", {"failed": "Succeeded", "succeeded": "Skipped"}, {}),
    "conditionals-complex": ("Succeeded", {}, {}),
}


def _document(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


def test_every_vendored_example_has_a_verdict():
    assert {p.stem for p in EXAMPLES.glob("*.yaml")} == set(REFUSED) | set(RUNS)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_at_load_with_the_feature_named(name):
    found = refusals(_document(name))
    assert any(REFUSED[name] in problem for problem in found), found


@pytest.mark.parametrize("name", sorted(RUNS))
def test_runs_as_argo_documents(run, name):
    phase, node_phases, results = RUNS[name]
    handle = run((EXAMPLES / f"{name}.yaml").read_text())
    nodes = nodes_named(handle)
    assert handle.phase == phase, handle.status()["message"]
    assert {n: nodes[n]["phase"] for n in node_phases} == node_phases
    assert {n: nodes[n]["outputs"].get("result") for n in results} == results
    if name == "conditionals-complex":  # =~ matched the second flip's result, !~ nothing else
        second = nodes["flip-again"]["outputs"]["result"]
        assert nodes[f"{second}-regex"]["phase"] == "Succeeded"


@pytest.mark.parametrize("name", ["artifact-gc-workflow", "retry-conditional", "sidecar", "suspend-template"])
def test_the_catalog_refuses_them_with_the_engines_reasons(tmp_path, name):
    # the example as a catalog entry (the catalog's annotations added), loaded with the engine's check
    document = _document(name)
    document["kind"] = "WorkflowTemplate"
    document["metadata"] = {"name": name, "annotations": {
        "labcommons.io/title": name, "labcommons.io/description": "Argo's example",
        "labcommons.io/inputs": "imzml", "labcommons.io/parameter-hints": json.dumps({})}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(TemplateError) as refused:
        load_template(path, refusals)
    assert [f"{name}.yaml: the engine refuses it: {reason}" for reason in refusals(document)] \
        == refused.value.problems
