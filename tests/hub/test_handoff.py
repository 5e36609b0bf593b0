""""Open in Jupyter" through the portal: the service decides who may, the hub starts the
server, the starter notebook lands in the user's notebook directory, and the notebook's address
opens through single sign-on."""
from __future__ import annotations

import json
import re
import time

import nbformat
import pytest

from tests.hub.conftest import ROOT, csrf_token
from tests.hub.test_starter import output_text
from tests.stored import with_spectra

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def measurement(imaged) -> dict:
    """What is opened: a measurement with spectra (one without has nothing to open)."""
    return imaged


def open_in_jupyter(portal, session, context: dict, seconds: float = 120) -> dict:
    """Open a measurement's or an experiment's progress page and do what its script does."""
    return follow_progress_page(portal, session, f"/jupyter/open/{context['kind']}/{context['project']}/"
                                f"{context['submitter_id']}", seconds)


def follow_progress_page(portal, session, page_path: str, seconds: float = 120) -> dict:
    """What the progress page's script does with the context it was given: start, then poll
    until the notebook is ready."""
    page = session.get(f"{portal.url}{page_path}", timeout=30)
    assert page.status_code == 200, page.text[:800]
    given = page_context(page.text)
    token, body = given["csrf"], given["context"]
    started = session.post(f"{portal.url}/jupyter/start", json=body, timeout=60,
                           headers={"X-CSRFToken": token, "Origin": portal.url})
    assert started.status_code == 200, started.text[:800]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = session.get(f"{portal.url}/jupyter/status", params=body, timeout=60).json()
        assert "error" not in answer, answer
        if answer["ready"]:
            return answer
        time.sleep(0.5)
    raise AssertionError("the notebook server did not become ready")


def page_context(html: str) -> dict:
    """The context and CSRF token the page hands its script (a JSON block: the CSP allows no inline script)."""
    return json.loads(re.search(r'<script id="jupyter-context" type="application/json">(.*?)</script>', html,
                                re.S).group(1))


def test_open_in_jupyter_writes_the_starter_notebook_and_opens_it(hub_commons, signed_in, measurement):
    service, portal, hub, _ = hub_commons
    session = signed_in("tom")
    answer = open_in_jupyter(portal, session, measurement)
    path = service.data_dir / "notebooks" / "tom" / answer["path"]
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["labcommons"]["id"] == measurement["id"]
    assert any("dataset.tissue_spectra(limit=5)" in c.source for c in notebook.cells)
    assert answer["url"] == f"{hub.url}/user/tom/lab/tree/{answer['path']}"
    # the browser goes there next: the hub signs it in through the portal, no second sign-in
    opened = session.get(answer["url"], timeout=60)
    assert opened.status_code == 200 and opened.url.startswith(f"{hub.url}/user/tom/lab"), opened.url
    # a second hand-off keeps the user's edits
    notebook.cells.append(nbformat.v4.new_markdown_cell("my notes"))
    nbformat.write(notebook, path)
    open_in_jupyter(portal, session, measurement)
    assert nbformat.read(path, as_version=4).cells[-1].source == "my notes"


def test_a_user_without_a_grant_is_refused_with_the_services_reason(hub_commons, signed_in, measurement):
    service, portal, hub, admin = hub_commons
    admin.save_account("zoe", "zoe-password-123", ["analyst"], {})
    session = signed_in("zoe", "zoe-password-123")
    url = f"{portal.url}/jupyter/open/measurement/{measurement['project']}/{measurement['submitter_id']}"
    page = session.get(url, timeout=30)
    assert page.status_code == 404 and "cannot be opened in Jupyter" in page.text  # unreadable: not there
    start = session.post(f"{portal.url}/jupyter/start", timeout=30, json={k: measurement[k] for k in (
        "kind", "project", "submitter_id")}, headers={"X-CSRFToken": csrf_token(session.get(
            f"{portal.url}/account", timeout=30).text), "Origin": portal.url})
    assert start.status_code == 404 and measurement["project"] in start.json()["error"]
    assert hub.api("GET", "/users/zoe").status_code == 404  # the hub was never asked


def test_an_experiment_opens_on_its_imaged_measurement_and_runs(hub_commons, signed_in, imaged):
    service, portal, _, admin = hub_commons
    measurement = admin.get(imaged["id"])
    (experiment_id,) = [link["target_id"] for link in measurement["links"] if link["name"] == "experiments"]
    node = admin.get(experiment_id)
    context = {"kind": "experiment", "project": node["project_id"], "submitter_id": node["submitter_id"]}
    answer = open_in_jupyter(portal, signed_in("tom"), context)
    path = service.data_dir / "notebooks" / "tom" / answer["path"]
    notebook = nbformat.read(path, as_version=4)
    assert answer["path"].startswith("labcommons-notebooks/experiment-")
    assert notebook.metadata["labcommons"]["id"] == node["id"]
    assert f"MEASUREMENTS = [\n    {imaged['id']!r}," in notebook.cells[1].source  # the imaged one first
    run_as_server(notebook, path, "tom")
    assert notebook.cells[1].outputs[0]["data"]["text/plain"] == "5"


def test_a_server_that_is_gone_is_reported_and_retry_starts_it_again(hub_commons, signed_in, measurement):
    service, portal, hub, _ = hub_commons
    session = signed_in("tom")
    open_in_jupyter(portal, session, measurement)
    stop_server(hub, "tom")
    body = {k: measurement[k] for k in ("kind", "project", "submitter_id")}
    gone = session.get(f"{portal.url}/jupyter/status", params=body, timeout=30)
    assert gone.status_code == 503 and "Retry" in gone.json()["error"]
    assert open_in_jupyter(portal, session, measurement)["ready"]  # what the Retry button does


def stop_server(hub, user: str, seconds: float = 60) -> None:
    """Stop the user's server through the hub's API and wait until the hub has no server for them."""
    hub.api("DELETE", f"/users/{user}/server")
    deadline = time.monotonic() + seconds
    while hub.api("GET", f"/users/{user}").json()["servers"] and time.monotonic() < deadline:
        time.sleep(0.3)


@pytest.fixture(scope="session")
def imaged(hub_commons) -> dict:
    """A demo measurement with an imzML image (and its ibd) in the storage root."""
    node = with_spectra(hub_commons[3])
    return {"kind": "measurement", "project": node["project_id"], "submitter_id": node["submitter_id"],
            "id": node["id"]}


@pytest.mark.parametrize("user", ["ana", "tom"])
def test_the_starter_notebook_runs_for_a_reader_and_a_writer_and_only_the_writer_saves(hub_commons, signed_in,
                                                                                     imaged, user):
    """Top to bottom without an error for both: the tuner, the figure before and after with its
    peaks, then the set saved by the technician, and for the read-only analyst why not and whom to ask."""
    service, portal, hub, admin = hub_commons
    answer = open_in_jupyter(portal, signed_in(user), imaged)
    path = service.data_dir / "notebooks" / user / answer["path"]
    notebook = nbformat.read(path, as_version=4)
    try:
        run_as_server(notebook, path, user)  # an error in any cell raises
    finally:
        if user == "ana":
            stop_server(hub, user)  # as test_sso.py expects to find the analyst: no server yet
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert code[0].outputs[0]["data"]["text/plain"] == "5"
    assert "application/vnd.jupyter.widget-view+json" in code[1].outputs[0]["data"]  # the tuner's controls
    figure = next(o for o in code[2].outputs if "data" in o)["data"]["application/vnd.plotly.v1+json"]["layout"]
    assert "peaks picked at S/N ≥ 3" in figure["title"]["text"]
    assert (figure["xaxis"]["title"]["text"], figure["yaxis"]["title"]["text"]) == ("m/z", "intensity (a.u.)")
    said = output_text(code[-1])
    name = f"{imaged['submitter_id']}-tuned"
    saved = [s for s in admin.parameter_sets(template="ims-preprocess") if s.name == name]
    if user == "ana":
        assert "Saving a parameter set needs write access to project" in said and "ask the project's admins" in said
        assert "Traceback" not in said and not [r for s in saved for r in s.revisions if r.created_by == "ana"]
    else:
        assert f"Saved {name!r}, revision 1" in said
        assert saved[0].revisions[0].created_by == "tom"


def test_jupyterlab_opens_without_a_build_prompt_or_a_news_question(hub_commons, signed_in, imaged):
    """The single-user server's own configuration (hub/singleuser/), as the lab page and its
    settings API serve it."""
    _, portal, hub, _ = hub_commons
    session = signed_in("tom")
    open_in_jupyter(portal, session, imaged)
    lab = session.get(f"{hub.url}/user/tom/lab", timeout=60)
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                  lab.text, re.S).group(1))
    assert (config["buildCheck"], config["buildAvailable"], config["news"]) == (False, False, {"disabled": True})
    notification = session.get(f"{hub.url}/user/tom/lab/api/settings/@jupyterlab/apputils-extension:notification",
                               timeout=60).json()["schema"]["properties"]
    assert notification["fetchNews"]["default"] == "false" and notification["checkForUpdates"]["default"] is False


def run_as_server(notebook, path, user: str) -> None:
    """Execute the notebook at path (in a user's notebook directory) as that user's server would:
    its token, address and data dir."""
    from nbclient import NotebookClient

    from tests.hub.test_sso import server_environment
    data_dir = next(p.parent for p in path.parents if p.name == "notebooks")  # <data dir>/notebooks/<user>/...
    env = {k: v for k, v in server_environment(user, data_dir).items()
           if k.startswith(("LABCOMMONS_", "PATH", "HOME"))}
    env["PYTHONPATH"] = str(ROOT)  # the helper under test, not the one the shared editable install points at
    env["JPY_SESSION_NAME"] = str(path)  # what Jupyter Server gives a kernel it starts for a notebook
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
