"""Raw data follows grants (issue 12): a writer of project A cannot have project B's bytes read,
whether by naming B's file in a storage_url, by a link planted in A's folder, or by a run's output.

Real parts: the metadata service on loopback (tests/conftest.py), the portal (create_app, through
Flask's test client, signed in with the demo accounts), the notebook helper over the service, and
the worker running the local engine. Project A ("ours") is granted to the demo accounts; project B
("theirs") is made afterwards and granted to nobody but the admin.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from ground.storage import project_dir, run_dir
from labcommons.demo import data_file_entity
from labcommons.demo.imzml import write_imzml_pair
from labcommons.notebook import Commons, DatasetError
from metadata import templates
from metadata.idl import metadata_thrift as T
from portal.previews import cache, imzml
from tests.portal.conftest import app, dash_call, portal, sign_in  # noqa: F401 (fixtures)
from tests.portal.layout import graphs
from tests.portal.test_experiments_pages import figure_array, key_input
from tests.workflows.runs.conftest import submit_measurement, template
from tests.workflows.runs.test_worker import run_until
from workflow_templates.worker import Worker

PROGRAM, OURS, THEIRS = "SEC", "ours", "theirs"


def their_file(settings, fmt: str) -> Path:
    """Where project B's measurement m-b keeps its file of a format (written by the `theirs` fixture)."""
    return settings.storage_root.resolve() / THEIRS / "m-b" / f"m-b.{fmt}"


def leak_template(target: Path) -> dict:
    """A template whose step leaves, as its declared output, a link to `target`."""
    leak = template()
    leak["metadata"]["name"] = "leak-report"
    step = f"import os, sys; os.symlink({str(target)!r}, os.path.join(sys.argv[2], 'report.json'))"
    leak["spec"]["templates"][1]["container"]["command"] = ["python", "-c", step]
    return leak


@pytest.fixture
def settings(settings, tmp_path):
    """The service's catalog: size-report (reads its input) and leak-report (links to B's ibd)."""
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "size-report.yaml").write_text(yaml.safe_dump(template()))
    (directory / "leak-report.yaml").write_text(yaml.safe_dump(leak_template(their_file(settings, "ibd"))))
    return dataclasses.replace(settings, templates_dir=directory)


def imaged(admin, settings, project: str, name: str, seed: int) -> dict[str, dict]:
    """A measurement with a real imzML pair in its project's folder; its file entities by format."""
    written = write_imzml_pair(project_dir(settings.storage_root, project) / name, name, 4, 3, seed=seed)
    files = {meta["data_format"]: data_file_entity(meta, name) for meta in written}
    submit_measurement(admin, project, name, list(files.values()))
    return files


@pytest.fixture
def commons(server, admin, app):  # noqa: F811 (the portal's fixture)
    """A (granted to tom: write, ana: read) and B (made after the portal granted the demo accounts
    their projects, so only the admin reads it), each with one real measurement."""
    admin.submit(PROGRAM, [{"type": "program", "submitter_id": PROGRAM}])
    for project in (OURS, THEIRS):
        admin.submit(project, [{"type": "project", "submitter_id": project, "programs": {"submitter_id": PROGRAM}}])
    admin.set_grant("tom", OURS, "write")
    admin.set_grant("ana", OURS, "read")
    imaged(admin, server.settings, OURS, "m-a", seed=2)
    imaged(admin, server.settings, THEIRS, "m-b", seed=1)
    return {fmt: their_file(server.settings, fmt).read_bytes() for fmt in ("imzML", "ibd")}


@pytest.fixture
def tom_client(client_for, commons):
    """tom's own service client (what the CLI and scripts use): a technician with write on A only."""
    return client_for("tom", roles=["technician"], grants={OURS: "write"})


@pytest.fixture
def tom(commons, portal, sign_in):  # noqa: F811
    assert sign_in(portal, "tom").status_code == 302
    return portal


@pytest.fixture
def planted(tom_client, server) -> str:
    """tom's measurement m-link in A whose files are links, placed in A's folder, to B's files (as a
    step or a writable mount could place them); the storage_urls name A's folder, so the service
    takes them. Returns the measurement's id."""
    folder = project_dir(server.settings.storage_root.resolve(), OURS) / "m-link"
    folder.mkdir(parents=True)
    files = []
    for fmt in ("imzML", "ibd"):
        (folder / f"m-link.{fmt}").symlink_to(their_file(server.settings, fmt))
        files.append({"type": "data_file", "submitter_id": f"m-link.{fmt}", "file_name": f"m-link.{fmt}",
                      "data_format": fmt, "file_size": 1, "md5sum": "0" * 32,
                      "storage_url": (folder / f"m-link.{fmt}").as_uri(), "measurements": {"submitter_id": "m-link"}})
    submit_measurement(tom_client, OURS, "m-link", files)
    return tom_client.find(OURS, "m-link")["id"]


# -- the service refuses a storage_url outside the submitting project's prefix ---------------------

@pytest.mark.parametrize("url", [
    "{root}/theirs/m-b/m-b.ibd",
    "{root}/ours/../theirs/m-b/m-b.ibd",
    "{root}/ours/%2e%2e/theirs/m-b/m-b.ibd",
    "file://localhost{path}/theirs/m-b/m-b.ibd",
    "{root}/ours",
    "s3://bucket/ours/m-b.ibd",
    "https://example.org/ours/m-b.ibd",
])
def test_a_storage_url_naming_another_projects_file_is_refused_naming_the_field(tom_client, server, url):
    root = server.settings.storage_root.resolve()
    entity = {"type": "data_file", "submitter_id": "stolen.ibd", "file_name": "stolen.ibd", "data_format": "ibd",
              "file_size": 1, "md5sum": "0" * 32, "storage_url": url.format(root=root.as_uri(), path=root),
              "measurements": {"submitter_id": "m-a"}}
    with pytest.raises(T.ValidationError) as refused:
        tom_client.submit(OURS, [entity])
    [issue] = refused.value.issues
    assert (issue.field, issue.index) == ("storage_url", 0)
    assert f"give {(root / OURS).as_uri()}/..." in issue.message
    with pytest.raises(T.NotFound):
        tom_client.find(OURS, "stolen.ibd")


def test_a_tsv_row_naming_another_projects_file_is_refused_with_its_row(tom_client, server):
    url = their_file(server.settings, "ibd").as_uri()
    tsv = ("type\tsubmitter_id\tfile_name\tdata_format\tfile_size\tmd5sum\tstorage_url\tmeasurements.submitter_id\n"
           f"data_file\tstolen.ibd\tstolen.ibd\tibd\t1\t{'0' * 32}\t{url}\tm-a\n")
    with pytest.raises(T.ValidationError) as refused:
        tom_client.submit(OURS, body=tsv, fmt="tsv")
    [issue] = refused.value.issues
    assert (issue.field, issue.row) == ("storage_url", 2)


# -- a link planted in A's folder: every reader refuses, and returns none of B's bytes ----------------

@pytest.mark.parametrize("fmt", ["imzML", "ibd"])
def test_a_download_through_a_planted_link_returns_none_of_their_bytes(tom, tom_client, planted, commons, fmt):
    node = tom_client.find(OURS, f"m-link.{fmt}")
    response = tom.get(f"/files/{node['id']}/download")
    assert response.status_code == 404
    assert "links outside the folder of project ours" in response.get_data(as_text=True)
    assert commons[fmt][:64] not in response.data


def test_a_download_through_a_linked_folder_returns_none_of_their_bytes(tom, tom_client, server, commons):
    linked = project_dir(server.settings.storage_root.resolve(), OURS) / "m-dir"
    linked.symlink_to(their_file(server.settings, "ibd").parent, target_is_directory=True)
    tom_client.submit(OURS, [{"type": "data_file", "submitter_id": "m-dir.ibd", "file_name": "m-dir.ibd",
                              "data_format": "ibd", "file_size": 1, "md5sum": "0" * 32,
                              "storage_url": (linked / "m-b.ibd").as_uri(), "measurements": {"submitter_id": "m-a"}}])
    response = tom.get(f"/files/{tom_client.find(OURS, 'm-dir.ibd')['id']}/download")
    assert response.status_code == 404 and commons["ibd"][:64] not in response.data


def test_a_preview_through_planted_links_shows_nothing_of_theirs(tom, dash_call, server, planted):  # noqa: F811
    answer = json.dumps(dash_call(tom, "measurement-previews.children", key_input(OURS, "m-link")))
    assert "measurement-previews-problem" in answer and "links outside the folder of project ours" in answer
    assert "measurement-tic" not in answer
    assert not cache.cache_dir(server.settings.data_dir).exists()  # nothing of B's was even read


def test_the_notebook_helper_refuses_planted_links(tom_client, server, planted):
    with Commons(tom_client, server.settings.storage_root) as lc, \
            pytest.raises(DatasetError, match="links outside the folder of project ours"):
        lc.dataset(planted).spectra(limit=1)


def test_the_worker_stages_no_input_through_planted_links(tom_client, client_for, server, planted):
    run = tom_client.launch("size-report", [planted]).run
    worker = Worker(client_for("worker", roles=["worker"]), templates.load(server.settings.templates_dir),
                    server.settings.storage_root, name="w-sec", capacity=1)
    done = run_until(worker, tom_client, run.id)
    assert done.status == "failed" and "links outside the folder of project ours" in done.message
    inputs = run_dir(server.settings.storage_root.resolve(), OURS, run.id) / "inputs"
    assert not any(p.is_symlink() for p in inputs.glob("*"))  # no link to their files was made


def test_a_preview_cannot_be_had_by_claiming_their_files_checksum(tom, dash_call, admin, tom_client, server,
                                                                  commons):  # noqa: F811
    """The preview cache is keyed by the checked path too, so A's node that claims B's imzML's
    sha256 is shown A's own image, even after B's preview was cached."""
    theirs = admin.find(THEIRS, "m-b.imzML")["properties"]
    imzml_b = their_file(server.settings, "imzML")
    cache.preview(imzml_b, imzml_b.with_suffix(".ibd"), theirs["sha256"], cache.cache_dir(server.settings.data_dir))
    ours = admin.find(OURS, "m-a.imzML")
    tom_client.submit(OURS, [{"type": "data_file", "submitter_id": "m-a.imzML", **{
        k: v for k, v in ours["properties"].items()}, "sha256": theirs["sha256"], "measurements": {"submitter_id": "m-a"}}])
    answer = dash_call(tom, "measurement-previews.children", key_input(OURS, "m-a"))
    tic = figure_array(_figure(answer, "measurement-tic")["data"][0]["z"])
    folder = project_dir(server.settings.storage_root.resolve(), OURS) / "m-a"
    assert (tic == imzml.compute(folder / "m-a.imzML", folder / "m-a.ibd").tic).all()
    assert not (tic == imzml.compute(imzml_b, imzml_b.with_suffix(".ibd")).tic).all()


def _figure(answer: dict, id_: str) -> dict:
    return graphs(answer["response"]["measurement-previews"]["children"])[id_]


# -- run outputs and logs lie under the run's project ------------------------------------------------

@pytest.fixture
def claimed(tom_client, client_for, commons) -> tuple:
    """A size-report run on A's measurement, claimed by a worker client: (worker client, run)."""
    run = tom_client.launch("size-report", [tom_client.find(OURS, "m-a")["id"]]).run
    worker = client_for("worker", roles=["worker"])
    assert [r.id for r in worker.claim_runs("w-sec", 1)] == [run.id]
    return worker, run


def test_a_run_output_registered_outside_the_runs_project_is_refused(claimed, server, tom_client):
    worker, run = claimed
    stolen = T.OutputFile(file_name="report.json", data_format="json", file_size=1, md5sum="0" * 32,
                          storage_url=their_file(server.settings, "ibd").as_uri(), data_category="qc_report")
    with pytest.raises(T.ValidationError) as refused:
        worker.update_run(T.RunUpdate(run_id=run.id, status="succeeded", outputs=[stolen]))
    assert [issue.field for issue in refused.value.issues] == ["storage_url"]
    assert tom_client.run(run.id).status == "running" and tom_client.run(run.id).output_ids == []


def test_a_run_log_outside_the_runs_project_is_refused(claimed, server):
    worker, run = claimed
    step = T.RunStep(id="s", name="s", template="t", phase="Succeeded",
                     log_url=their_file(server.settings, "ibd").as_uri())
    with pytest.raises(T.ValidationError, match=r"steps\[0\]\.log_url"):
        worker.update_run(T.RunUpdate(run_id=run.id, status="running", steps=[step]))


def test_a_step_that_leaves_a_link_to_their_file_registers_no_output(tom_client, client_for, server, commons):
    run = tom_client.launch("leak-report", [tom_client.find(OURS, "m-a")["id"]]).run
    worker = Worker(client_for("worker", roles=["worker"]), templates.load(server.settings.templates_dir),
                    server.settings.storage_root, name="w-sec", capacity=1)
    done = run_until(worker, tom_client, run.id)
    assert done.status == "succeeded" and done.output_ids == []   # the link is not an output
    assert (run_dir(server.settings.storage_root.resolve(), OURS, run.id) / "outputs" / "report.json").is_symlink()
