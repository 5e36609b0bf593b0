"""A finished run as a Workflow Run RO-Crate (metadata/run_crate.py), read back with the `rocrate`
and `runcrate` packages: the template, inputs with checksums, parameters, steps and outputs."""
import io
import zipfile

import pytest
import yaml
from rocrate.rocrate import ROCrate
from runcrate.report import dump_crate_actions

from metadata import run_crate, templates
from metadata.idl import metadata_thrift as T
from tests.workflows.runs.conftest import template
from tests.workflows.runs.test_worker import run_until
from workflow_templates.worker import Worker

PROFILES = {f"https://w3id.org/ro/wfrun/{kind}/0.5" for kind in ("process", "workflow", "provenance")}


@pytest.fixture
def finished(admin, measurement, settings):
    worker = Worker(admin, templates.load(settings.templates_dir), settings.storage_root, name="w-crate")
    run = admin.launch("size-report", [measurement], {"mode": "qc-pass"}).run
    return run_until(worker, admin, run.id)


@pytest.fixture
def crate_path(workflow_cli, finished, tmp_path):
    path = tmp_path / "run.crate.zip"
    result = workflow_cli("run", "crate", finished.submitter_id, "-o", str(path))
    assert result.exit_code == 0 and f"wrote the RO-Crate of run {finished.id} to {path}" in result.output
    return path


def test_the_crate_names_the_template_its_profiles_and_the_run(crate_path, finished):
    crate = ROCrate(crate_path)
    workflow = crate.mainEntity
    assert {"File", "ComputationalWorkflow", "HowTo"} <= set(workflow.type)
    assert workflow["identifier"] == f"sha256:{finished.template_digest}"
    with zipfile.ZipFile(crate_path) as zipped:
        assert yaml.safe_load(zipped.read("workflow/size-report.yaml")) == template()
    assert PROFILES <= {p.id for p in crate.root_dataset["conformsTo"]}
    (action,) = [a for a in crate.get_by_type("CreateAction") if a.get("instrument") is workflow]
    status = action["actionStatus"]
    assert (action["identifier"], getattr(status, "id", status)) == (finished.id, "http://schema.org/CompletedActionStatus")
    assert action["startTime"] == finished.started_at and action["endTime"] == finished.finished_at
    assert action["description"] == "QC passed"


def test_inputs_carry_checksums_parameters_their_formal_definitions_and_outputs_their_sizes(
        crate_path, finished, admin):
    crate = ROCrate(crate_path)
    (action,) = [a for a in crate.get_by_type("CreateAction") if a.get("instrument") is crate.mainEntity]
    values = {o["name"]: o for o in action["object"] if "PropertyValue" in o.type}
    assert values["mode"]["value"] == "qc-pass"
    assert values["mode"]["exampleOfWork"] in crate.mainEntity["input"]
    files = {o.get("identifier"): o for o in action["object"] + action["result"] if "File" in o.type}
    for node in [admin.get(i) for i in [*finished.input_ids, *finished.output_ids]]:
        entity = files[node["id"]]
        assert entity.id == node["properties"]["storage_url"]  # referenced where it is stored
        assert (entity["md5"], entity["contentSize"]) == (node["properties"]["md5sum"], str(node["properties"]["file_size"]))
    assert {"imzML", "ibd", "json"} <= {f["encodingFormat"] for f in files.values()}


def test_runcrate_reads_the_run_and_each_step_with_its_times(crate_path, finished):
    report = io.StringIO()
    dump_crate_actions(ROCrate(crate_path), f=report)
    text = report.getvalue()
    assert f"action: #run-{finished.id}\n  instrument: workflow/size-report.yaml" in text
    (measure,) = [s for s in finished.steps if s.name == "measure"]
    assert (f"action: #step-run-{measure.id}\n  step: #size-report-step-measure\n"
            f"  instrument: #tool-measure (SoftwareApplication)\n"
            f"  started: {measure.started_at}\n  ended: {measure.finished_at}") in text


def test_a_user_who_cannot_read_the_run_gets_no_crate(finished, client_for, settings):
    stranger = client_for("eve", roles=("analyst",), grants={})
    with pytest.raises(T.NotFound):
        run_crate.gather(stranger, finished.id, templates.load(settings.templates_dir))


def test_a_template_changed_since_the_run_is_described_not_included(finished, admin, settings, tmp_path):
    (settings.templates_dir / "size-report.yaml").write_text(yaml.safe_dump(template(mode_default="fail")))
    record = run_crate.gather(admin, finished.id, templates.load(settings.templates_dir))
    crate = run_crate.build(record)
    assert crate.mainEntity.id == "#workflow-size-report" and "File" not in crate.mainEntity.type
    assert "no longer holds this digest" in crate.mainEntity["comment"]
