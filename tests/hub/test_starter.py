"""The starter notebooks, built without a hub: valid nbformat, naming their context. A cohort's
runs top to bottom in a real kernel (nbclient) against a real metadata service with its user's
token, on the manifest the service gives that user; a measurement's runs in a hub server's
environment, as a reader and as a writer, in tests/hub/test_handoff.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T
from portal.notebooks.starter import (cohort_notebook, cohort_path, dataset_notebook, manifest_path, notebook_path,
                                      spectrum_cells)
from tests.conftest import PROGRAM
from tests.notebook.test_helper import imaged_measurement, measurement  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]

NODE = {"id": "0b7c-uuid", "project_id": "atlas-kidney", "submitter_id": "ak-meas-0001", "type": "measurement"}

def test_the_starter_notebook_is_valid_and_names_its_context():
    notebook = dataset_notebook("measurement", NODE)
    nbformat.validate(notebook)
    assert notebook.metadata["labcommons"] == {"kind": "measurement", "id": "0b7c-uuid",
                                               "project_id": "atlas-kidney", "submitter_id": "ak-meas-0001"}
    assert "DATASET = '0b7c-uuid'" in notebook.cells[1].source
    assert notebook_path("measurement", "ak/meas 1") == "labcommons-notebooks/measurement-ak_meas_1.ipynb"


COHORT = T.Cohort(id="5f0e8a2c-77aa-4f1e-9c3b-1d2e3f405061", name="old kidneys", kind="file", owner="ana",
                  filter_json='{"IN":{"organ":["kidney"]}}', shared=False)


def test_a_cohorts_notebook_loads_it_by_id_and_ends_with_the_measurement_notebooks_cells():
    notebook = cohort_notebook(COHORT, "cohort-old_kidneys-5f0e8a2c.manifest.tsv")
    nbformat.validate(notebook)
    assert notebook.metadata["labcommons"] == {"kind": "cohort", "id": COHORT.id, "name": "old kidneys",
                                               "document_kind": "file",
                                               "manifest": "cohort-old_kidneys-5f0e8a2c.manifest.tsv"}
    assert f"cohort = lc.cohort_by_id({COHORT.id!r})" in notebook.cells[1].source
    ending = [c.source for c in spectrum_cells("old kidneys")]
    assert [c.source for c in notebook.cells[-len(ending):]] == ending
    measurements = dataset_notebook("measurement", NODE).cells
    assert [c.source for c in measurements[-len(ending):]] == [c.source for c in spectrum_cells("ak-meas-0001")]
    assert any("name='old-kidneys-tuned'" in c.source for c in notebook.cells)  # a valid parameter set name
    assert cohort_path(COHORT) == "labcommons-notebooks/cohort-old_kidneys-5f0e8a2c.ipynb"
    assert manifest_path(cohort_path(COHORT)) == "labcommons-notebooks/cohort-old_kidneys-5f0e8a2c.manifest.tsv"


def test_a_views_notebook_holds_its_filter_and_each_filter_has_its_own_notebook():
    view = T.Cohort(id="", name="", kind="file", filter_json='{"IN":{"data_format":["imzML"]}}')
    notebook = cohort_notebook(view, "view.manifest.tsv")
    nbformat.validate(notebook)
    assert "cohort = lc.cohort_from_filter('file', {'IN': {'data_format': ['imzML']}})" in notebook.cells[1].source
    assert notebook.metadata["labcommons"]["filter"] == {"IN": {"data_format": ["imzML"]}}
    other = T.Cohort(id="", name="", kind="file", filter_json='{"IN":{"data_format":["ibd"]}}')
    assert cohort_path(view).startswith("labcommons-notebooks/view-file-") and cohort_path(view) != cohort_path(other)


@pytest.mark.parametrize("saved", [True, False], ids=["saved-cohort", "explorer-view"])
def test_a_cohorts_notebook_runs_as_its_user_on_the_manifest_the_service_gives_them(
        saved, server, settings, admin, project, measurement, tmp_path):  # noqa: F811
    other = "other-proj"
    admin.submit(other, [{"type": "project", "submitter_id": other, "programs": {"submitter_id": PROGRAM}}])
    imaged_measurement(admin, other, settings.storage_root)  # files ana may not read
    token, _ = server.tokens.mint("ana", ["analyst"], {project: "write"})
    where = {"IN": {"data_format": ["imzML", "ibd"]}}
    with MetadataClient("127.0.0.1", server.bound_port(), token) as ana:
        cohort = ana.save_cohort("imaged files", "file", where) if saved else \
            T.Cohort(id="", name="", kind="file", filter_json=json.dumps(where))
        expected = list(ana.manifest("file", where))
    assert len(expected) == 2 and len(list(admin.manifest("file", where))) == 4  # only what ana may read
    notebook = cohort_notebook(cohort, "imaged.manifest.tsv")
    notebook.cells.append(nbformat.v4.new_code_cell("import json\nprint(json.dumps(manifest.to_dict('records')))"))
    run_as(notebook, tmp_path, {"LABCOMMONS_TOKEN": token, "LABCOMMONS_PORT": str(server.bound_port()),
                                "LABCOMMONS_DATA_DIR": str(settings.data_dir)})
    assert json.loads(notebook.cells[-1].outputs[0]["text"]) == expected
    assert notebook.cells[1].outputs[0]["data"]["text/plain"] == "2"
    assert "application/vnd.plotly.v1+json" in notebook.cells[2].outputs[0]["data"]  # the summary chart
    assert notebook.cells[4].outputs[0]["data"]["text/plain"] == "5"  # spectra of the first imzML file
    assert "revision 1: technicians pick it" in output_text(notebook.cells[-2])  # the parameters saved


def output_text(cell) -> str:
    """What a code cell printed and showed as text."""
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)


def run_as(notebook, directory: Path, env: dict[str, str]) -> None:
    """Execute in a kernel with only this environment, importing the code under test."""
    env = {**env, "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(directory)),
           "PYTHONPATH": str(ROOT)}
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(directory)}}).execute(env=env)


def test_names_enter_code_cells_only_as_literals():
    """A name with a line break (cohort names and submitter ids may hold one) adds no code."""
    evil = "x\nimport os; os.remove('data')"
    cohort = cohort_notebook(T.Cohort(id="1d2e", name=evil, kind="file", filter_json="", owner="eve"), "x.tsv")
    node = {**NODE, "submitter_id": evil}
    experiment = dataset_notebook("experiment", node, [{"id": "m-1", "submitter_id": evil}])
    for notebook in (cohort, dataset_notebook("measurement", node), experiment):
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert "\nimport os" not in cell.source, cell.source
