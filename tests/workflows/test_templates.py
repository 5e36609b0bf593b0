"""The templates agree with the programs they run, and each runs end to end, step by step.

The end-to-end tests are a straight-line driver, not an engine: they take each step's command
line from the template, substitute `{{...}}` from known values, and run the steps in the order
the template declares, as separate processes.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pyimzml.ImzMLParser import ImzMLParser

from ground.settings import SHIPPED_TEMPLATES
from metadata.workflow_catalog import load_catalog, validate_parameters

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"{{\s*([^}]+?)\s*}}")
# What the local engine is asked to implement; a template using more must say so there first.
TEMPLATE_KEYS = {"name", "inputs", "outputs", "steps", "dag", "container", "retryStrategy",
                 "activeDeadlineSeconds"}
STEP_KEYS = {"name", "template", "arguments", "withParam", "withItems", "when", "dependencies"}
DOCUMENTS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(SHIPPED_TEMPLATES.glob("*.yaml"))}


def _templates(document: dict) -> dict[str, dict]:
    return {t["name"]: t for t in document["spec"]["templates"]}


def _steps(document: dict) -> list[dict]:
    """Every step or DAG task of every template, in declared order."""
    found = []
    for template in document["spec"]["templates"]:
        found += [s for group in template.get("steps", []) for s in group]
        found += template.get("dag", {}).get("tasks", [])
    return found


def _containers(document: dict) -> list[dict]:
    return [t for t in document["spec"]["templates"] if "container" in t]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_templates_use_only_what_the_local_engine_implements(name):
    document = DOCUMENTS[name]
    for template in document["spec"]["templates"]:
        assert set(template) <= TEMPLATE_KEYS, template["name"]
    for step in _steps(document):
        assert set(step) <= STEP_KEYS, step["name"]
        assert step["template"] in _templates(document)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_container_runs_a_step_program_with_options_it_knows(name):
    for template in _containers(DOCUMENTS[name]):
        python, flag, module = template["container"]["command"]
        assert (python, flag) == ("python", "-m") and module.startswith("workflow_templates.steps.")
        parser = importlib.import_module(module).parser()
        known = {option for action in parser._actions for option in action.option_strings}
        required = {action.option_strings[0] for action in parser._actions if action.required}
        given = {arg for arg in template["container"]["args"] if arg.startswith("--")}
        assert given <= known, (template["name"], given - known)
        assert required <= given, (template["name"], required - given)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_variable_names_something_declared(name):
    document = DOCUMENTS[name]
    workflow = {p["name"] for p in document["spec"]["arguments"]["parameters"]}
    templates = _templates(document)
    for template in document["spec"]["templates"]:
        inputs = {p["name"] for p in template.get("inputs", {}).get("parameters", [])}
        for variable in VARIABLE.findall(json.dumps(template)):
            kind, _, rest = variable.partition(".")
            if variable.startswith("workflow.parameters."):
                assert variable.split(".", 2)[2] in workflow, variable
            elif variable.startswith("inputs.parameters."):
                assert variable.split(".", 2)[2] in inputs, (template["name"], variable)
            elif kind in ("steps", "tasks"):
                step, _, _, output = rest.split(".")
                called = templates[next(s["template"] for s in _steps(document) if s["name"] == step)]
                assert output in {p["name"] for p in called["outputs"]["parameters"]}, variable
            else:
                assert variable == "item", variable
    for step in _steps(document):
        given = {p["name"] for p in step.get("arguments", {}).get("parameters", [])}
        wanted = {p["name"] for p in templates[step["template"]].get("inputs", {}).get("parameters", [])}
        assert given == wanted, step["name"]


def test_a_template_shared_by_several_files_is_the_same_in_each():
    by_name: dict[str, list] = {}
    for document in DOCUMENTS.values():
        for template in _containers(document):
            by_name.setdefault(template["name"], []).append(template)
    assert len(by_name["convert"]) == 2
    for name, copies in by_name.items():
        assert all(copy == copies[0] for copy in copies), name


# --- the straight-line driver -------------------------------------------------------------------

def _resolve(text: str, values: dict[str, str]) -> str:
    return VARIABLE.sub(lambda match: values[match.group(1)], text)


def _run_step(document: dict, step: dict, values: dict[str, str]) -> dict[str, str]:
    """Run one step's container as a process; return its output parameters' values."""
    template = _templates(document)[step["template"]]
    inputs = {p["name"]: _resolve(p["value"], values) for p in step.get("arguments", {}).get("parameters", [])}
    values = {**values, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
    argv = [_resolve(part, values) for part in template["container"]["command"] + template["container"]["args"]]
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, (step["name"], argv, done.stderr)
    return {p["name"]: Path(_resolve(p["valueFrom"]["path"], values)).read_text()
            for p in template.get("outputs", {}).get("parameters", [])}


def _workflow(name: str, imzml: Path, output_dir: Path, **parameters) -> dict[str, str]:
    """The workflow.parameters.* values of a launch, validated by the catalog."""
    given = {"imzml": str(imzml), "output-dir": str(output_dir), "spectra-per-shard": 50, **parameters}
    return {f"workflow.parameters.{k}": v for k, v in validate_parameters(load_catalog()[name], given).items()}


def test_ims_qc_runs_end_to_end(imzml, tmp_path):
    document = DOCUMENTS["ims-qc"]
    values = _workflow("ims-qc", imzml(), tmp_path / "run")
    tasks = {t["name"]: t for t in _templates(document)["main"]["dag"]["tasks"]}
    assert [tasks["qc-shard"]["dependencies"], tasks["qc-merge"]["dependencies"]] == [["qc-index"], ["qc-shard", "qc-pair"]]
    assert "dependencies" not in tasks["qc-pair"]   # beside the index and the shards

    shards = _run_step(document, tasks["qc-index"], values)["shards"]
    values["tasks.qc-index.outputs.parameters.shards"] = shards
    items = json.loads(_resolve(tasks["qc-shard"]["withParam"], values))
    assert items == ["0:50", "50:100", "100:120"]
    for item in items:
        _run_step(document, tasks["qc-shard"], {**values, "item": item})
    _run_step(document, tasks["qc-pair"], values)
    outputs = _run_step(document, tasks["qc-merge"], values)

    report = json.loads((tmp_path / "run" / "qc" / "report.json").read_text())
    assert outputs["passed"] == "true" and report["passed"] is True
    assert report["pair"]["problems"] == [] and "UUID" in report["pair"]["checked"]
    assert report["metrics"]["spectra"] == 120 and report["metrics"]["shards"] == 3, report["checks"]
    assert report["mass_accuracy"]["assessed"] and abs(report["metrics"]["mass_error_ppm"]) < 5
    for output in load_catalog()["ims-qc"].outputs:
        assert list((tmp_path / "run").glob(output.path)), output.path
    assert (tmp_path / "run" / "qc" / "tic.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_ims_preprocess_runs_end_to_end(mode, imzml, tmp_path):
    document = DOCUMENTS["ims-preprocess"]
    values = _workflow("ims-preprocess", imzml(mode), tmp_path / "run", **{"output-format": "imzml"})
    (convert,), (preprocess,), (merge,) = _templates(document)["main"]["steps"]

    values["steps.convert.outputs.parameters.shards"] = _run_step(document, convert, values)["shards"]
    for item in json.loads(_resolve(preprocess["withParam"], values)):
        _run_step(document, preprocess, {**values, "item": item})
    manifest = json.loads(_run_step(document, merge, values)["manifest"])

    assert len(manifest) == 3
    summary = json.loads((tmp_path / "run" / "preprocess" / "summary.json").read_text())
    assert summary["spectra"] == 120 and summary["centroided"] is True
    with ImzMLParser(summary["imzml"]) as parser:
        assert 0 < len(parser.coordinates) <= 120
    for output in load_catalog()["ims-preprocess"].outputs:
        assert list((tmp_path / "run").glob(output.path)), output.path
