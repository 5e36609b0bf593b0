"""Export to workspace: a saved cohort or the explorer's unsaved view opened in Jupyter through
the portal and the real hub. The service decides who may open a cohort and which files its
manifest lists; the notebook and the manifest's TSV land side by side in the user's directory."""
from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from urllib.parse import urlencode

import nbformat
import pytest

from metadata.client import MetadataClient
from tests.hub.conftest import csrf_token
from tests.hub.test_handoff import follow_progress_page, run_as_server
from tests.hub.test_starter import output_text

pytestmark = pytest.mark.e2e
IMAGED = {"IN": {"data_format": ["imzML", "ibd"]}}


@contextmanager
def client_as(admin, user: str, grants: dict[str, str]):
    """A client straight to the service as user (to save cohorts and read what they may)."""
    issued = admin.create_token(user, ["analyst"], grants, 600)
    with MetadataClient(admin.host, admin.port, issued.token) as client:
        yield client


@pytest.fixture(scope="module")
def projects(hub_commons) -> list[str]:
    _, _, _, admin = hub_commons
    return sorted(p["submitter_id"] for p in admin.nodes("project"))


def manifest_rows(service, user: str, answer: dict) -> list[dict]:
    """The manifest TSV written next to the notebook."""
    path = service.data_dir / "notebooks" / user / answer["path"].removesuffix(".ipynb")
    with path.with_name(path.name + ".manifest.tsv").open(newline="") as stream:
        reader = csv.DictReader(stream, delimiter="\t")
        assert "storage_url" in reader.fieldnames
        return list(reader)


def test_a_saved_cohort_opens_on_its_notebook_which_runs_on_the_services_manifest(hub_commons, signed_in,
                                                                                 projects):
    service, portal, hub, admin = hub_commons
    with client_as(admin, "tom", {p: "write" for p in projects}) as tom:
        cohort = tom.save_cohort("imaged files", "file", IMAGED)
        expected = list(tom.manifest("file", IMAGED))
    answer = follow_progress_page(portal, signed_in("tom"), f"/jupyter/open/cohort/{cohort.id}")
    assert answer["path"] == f"labcommons-notebooks/cohort-imaged_files-{cohort.id[:8]}.ipynb"
    assert answer["url"] == f"{hub.url}/user/tom/lab/tree/{answer['path']}"
    path = service.data_dir / "notebooks" / "tom" / answer["path"]
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["labcommons"]["id"] == cohort.id
    assert [row["id"] for row in manifest_rows(service, "tom", answer)] == [row["id"] for row in expected]
    run_as_server(notebook, path, "tom")
    assert notebook.cells[1].outputs[0]["data"]["text/plain"] == str(len(expected))
    assert notebook.cells[4].outputs[0]["data"]["text/plain"] == "5"  # spectra of its first imzML file
    assert "Saved 'imaged-files-tuned', revision 1" in output_text(notebook.cells[-1])


def test_a_shared_cohort_lists_only_the_files_the_user_may_read(hub_commons, signed_in, projects):
    """una reads the project the cohort is shared in, not the project holding its files."""
    service, portal, _, admin = hub_commons
    shared_in = "no-images"  # every demo project holds images: share the cohort in a project without any
    admin.submit(shared_in, [{"type": "project", "submitter_id": shared_in,
                              "programs": {"submitter_id": "HUMAN-ATLAS"}}])
    assert shared_in not in {row["project_id"] for row in admin.manifest("file", IMAGED)}
    admin.set_grant("ana", shared_in, "read")
    with client_as(admin, "ana", {p: "read" for p in [*projects, shared_in]}) as ana:
        cohort = ana.save_cohort("every image", "file", IMAGED, project_id=shared_in, shared=True)
    admin.save_account("una", "una-password-123", ["analyst"], {shared_in: "read"})
    answer = follow_progress_page(portal, signed_in("una", "una-password-123"), f"/jupyter/open/cohort/{cohort.id}")
    with client_as(admin, "una", {shared_in: "read"}) as una:
        assert list(una.manifest("file", IMAGED)) == []
    assert manifest_rows(service, "una", answer) == []  # the header alone: what the service gives una


def test_a_cohort_not_shared_with_the_user_or_unknown_is_refused_with_the_services_reason(hub_commons, signed_in,
                                                                                        projects):
    service, portal, hub, admin = hub_commons
    with client_as(admin, "ana", {p: "read" for p in projects}) as ana:
        private = ana.save_cohort("ana's own", "file", IMAGED)
    session = signed_in("tom")
    page = session.get(f"{portal.url}/jupyter/open/cohort/{private.id}", timeout=30)
    assert page.status_code == 404 and "No cohort with id" in page.text  # another's private cohort is not there
    assert session.get(f"{portal.url}/jupyter/open/cohort/no-such-id", timeout=30).status_code == 404
    assert session.get(f"{portal.url}/jupyter/open/view/some/thing", timeout=30).status_code == 404  # nodes only
    headers = {"X-CSRFToken": csrf_token(session.get(f"{portal.url}/account", timeout=30).text),
               "Origin": portal.url}
    start = session.post(f"{portal.url}/jupyter/start", json={"kind": "cohort", "id": private.id}, headers=headers,
                         timeout=30)
    assert start.status_code == 404 and f"no cohort with id '{private.id}'" in start.json()["error"]
    status = session.get(f"{portal.url}/jupyter/status", params={"kind": "cohort", "id": "no-such-id"}, timeout=30)
    assert status.status_code == 404 and "no cohort with id 'no-such-id'" in status.json()["error"]


def test_the_explorers_view_opens_unsaved_with_its_filter_in_the_notebook(hub_commons, signed_in):
    service, portal, _, admin = hub_commons
    view = {"tab": "file", "filter": json.dumps({"IN": {"data_format": ["imzML"]}})}
    answer = follow_progress_page(portal, signed_in("tom"), "/jupyter/open/view?" + urlencode(view))
    assert answer["path"].startswith("labcommons-notebooks/view-file-")
    notebook = nbformat.read(service.data_dir / "notebooks" / "tom" / answer["path"], as_version=4)
    assert "lc.cohort_from_filter('file', {'IN': {'data_format': ['imzML']}})" in notebook.cells[1].source
    rows = manifest_rows(service, "tom", answer)
    assert rows and {row["data_format"] for row in rows} == {"imzML"}


def test_a_view_the_service_refuses_is_refused_with_its_reason(hub_commons, signed_in):
    _, portal, _, _ = hub_commons
    session = signed_in("tom")
    bad_field = session.get(f"{portal.url}/jupyter/open/view", timeout=30,
                            params={"tab": "file", "filter": json.dumps({"IN": {"no_such_field": ["x"]}})})
    assert bad_field.status_code == 400 and "no_such_field" in bad_field.text
    bad_tab = session.get(f"{portal.url}/jupyter/open/view", params={"tab": "zzz"}, timeout=30)
    assert bad_tab.status_code == 400 and "zzz" in bad_tab.text and "not a document kind" in bad_tab.text
