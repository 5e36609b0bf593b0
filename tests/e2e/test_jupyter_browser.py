""""Open in Jupyter" as a person uses it: headless Chromium signed in to the portal clicks the
button on a measurement page (or on a cohort or the view in the explorer), watches the progress
page, and lands in JupyterLab on the starter notebook: a real JupyterHub with its real proxy and a
local single-user server, no second sign-in."""
from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import nbformat
import pytest

from tests.e2e.browser import chromium, click, pick, require_chromium, sign_in, until
from tests.hub.conftest import commons_with_hub, demo
from tests.stored import with_spectra

pytestmark = pytest.mark.e2e
SPAWN_SECONDS = 120


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    """(service, portal, hub, admin client) over a demo commons at scale 0.1."""
    require_chromium()
    with commons_with_hub(tmp_path_factory.mktemp("jupyter") / "data", demo) as running:
        yield running


def test_open_in_jupyter_lands_on_the_starter_notebook(commons, tmp_path):
    from selenium.webdriver.common.by import By

    service, portal, hub, admin = commons
    measurement = with_spectra(admin)
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, "ana")
        driver.get(f"{portal.url}/measurement/{measurement['project_id']}/{measurement['submitter_id']}")
        until(driver, lambda d: d.find_elements(By.ID, "measurement-jupyter"))[0].click()
        until(driver, lambda d: "/jupyter/open/" in d.current_url)
        notebook = f"labcommons-notebooks/measurement-{measurement['submitter_id']}.ipynb"
        notebook_url = f"{hub.url}/user/ana/lab/tree/{notebook}"
        until(driver, lambda d: d.current_url.startswith(notebook_url), SPAWN_SECONDS)
        assert not driver.find_elements(By.ID, "signin-username")  # the hub never asked to sign in again
        # JupyterLab's first screen: the notebook, no build prompt, no news question (hub/singleuser/)
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"), SPAWN_SECONDS)
        time.sleep(5)  # both would come once the application is restored
        assert not driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
        assert "Build Recommended" not in driver.page_source and "Jupyter news" not in driver.page_source
    finally:
        driver.quit()
    path = service.data_dir / "notebooks" / "ana" / notebook
    assert nbformat.read(path, as_version=4).metadata["labcommons"]["id"] == measurement["id"]


def test_a_set_tuned_in_a_notebook_is_picked_for_a_launch_that_records_its_revision(commons, tmp_path):
    """The loop of the product in one go, as people do it: a technician opens an imaged measurement
    in Jupyter from the portal, the starter notebook runs in their server's environment and saves
    its parameters as a set, the set shows on the Parameter sets page with its author and source
    notebook, and a launch that picks it records that revision on the run."""
    from selenium.webdriver.common.by import By

    from tests.hub.test_handoff import run_as_server
    from tests.hub.test_starter import output_text

    service, portal, hub, admin = commons
    measurement = with_spectra(admin)
    project, submitter_id = measurement["project_id"], measurement["submitter_id"]
    set_name = f"{submitter_id}-tuned"
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, "tom")
        driver.get(f"{portal.url}/measurement/{project}/{submitter_id}")
        click(driver, By.ID, "measurement-jupyter")
        notebook = f"labcommons-notebooks/measurement-{submitter_id}.ipynb"
        until(driver, lambda d: d.current_url.startswith(f"{hub.url}/user/tom/lab/tree/{notebook}"), SPAWN_SECONDS)

        path = service.data_dir / "notebooks" / "tom" / notebook
        executed = nbformat.read(path, as_version=4)
        run_as_server(executed, path, "tom")   # the kernel gets the server's token and address
        assert f"Saved {set_name!r}, revision 1" in output_text(executed.cells[-1])

        driver.get(f"{portal.url}/parameter-sets?template=ims-preprocess")
        key = f"{project}/ims-preprocess/{set_name}"
        revisions = until(driver, lambda d: d.find_elements(By.ID, f"psets-revisions-{key}"))[0]
        row = revisions.find_element(By.XPATH, ".//tr[.//a[normalize-space(text())='r1']]").text
        assert "tom" in row and "snr = 3" in row and "none yet" in row

        driver.get(f"{portal.url}/measurement/{project}/{submitter_id}")
        click(driver, By.ID, "measurement-launch")
        click(driver, By.ID, "launch-choose-ims-preprocess")
        until(driver, lambda d: d.find_elements(By.ID, "launch-form"))
        pick(driver, "launch-set", f"{set_name} · revision 1")
        until(driver, lambda d: d.find_element(By.XPATH, "//*[@id='launch-field-snr']//input")
              .get_attribute("value") == "3")
        click(driver, By.ID, "launch-submit")
        until(driver, lambda d: "/runs/" in d.current_url and d.find_elements(By.ID, "run-parameter-set"))
        assert f"{set_name} · revision 1" in driver.find_element(By.ID, "run-parameter-set").text
        run = admin.run(driver.current_url.rsplit("/", 1)[1])
    finally:
        driver.quit()
    (saved,) = [s for s in admin.parameter_sets(template="ims-preprocess") if s.name == set_name]
    revision = saved.revisions[0]
    assert (revision.created_by, revision.source, revision.dataset_id) == ("tom", notebook, measurement["id"])
    assert run.parameter_set_revision == 1 and run.parameters["snr"] == "3" and run.created_by == "tom"


HUB_MESSAGES = ("Server requested", "Spawning server...", "Server ready at /user/ada/")


def test_the_progress_page_shows_the_hubs_progress_before_jupyterlab(commons, tmp_path):
    """While the server spawns, the page shows the hub's own messages and a percentage (relayed
    by the portal's /jupyter/progress stream), then goes on to JupyterLab."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    service, portal, hub, admin = commons
    measurement = with_spectra(admin)
    driver = chromium(tmp_path / "profile")
    seen = []  # (progress bar value, percent text, message) as the page showed them
    try:
        sign_in(driver, portal, service.data_dir, "ada")
        driver.get(f"{portal.url}/jupyter/open/measurement/{measurement['project_id']}/{measurement['submitter_id']}")
        assert driver.find_element(By.ID, "jupyter-progress-bar").get_attribute("max") == "100"
        lab = f"{hub.url}/user/ada/lab"
        deadline = time.monotonic() + SPAWN_SECONDS
        while not driver.current_url.startswith(lab) and time.monotonic() < deadline:
            try:
                seen.append(tuple(driver.execute_script(
                    "const $ = id => document.getElementById(id);"
                    "return $('jupyter-progress-bar') && [$('jupyter-progress-bar').value,"
                    " $('jupyter-percent').textContent, $('jupyter-progress').textContent];") or ()))
            except WebDriverException:
                pass  # the page is being left for the hub
            time.sleep(0.05)
        assert driver.current_url.startswith(lab), (driver.current_url, seen[-5:])
    finally:
        driver.quit()
    shown = [s for s in seen if s]
    assert any(message in HUB_MESSAGES for _, _, message in shown), sorted(set(shown))
    assert any(value > 0 and percent == f"{value} %" for value, percent, _ in shown), sorted(set(shown))
    assert not any(s[2].startswith("starting your notebook server (") for s in shown)  # no fallback to polling


def test_export_to_workspace_saves_a_cohort_and_lands_on_its_notebook(commons, tmp_path):
    """In the explorer: filter, save as a cohort (which the list then picks), click "Open cohort
    in Jupyter"; then "Open in Jupyter" on the unsaved view."""
    from selenium.webdriver.common.by import By

    service, portal, hub, admin = commons
    imaged = {"IN": {"data_format": ["imzML"]}}
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, "ana")
        driver.get(f"{portal.url}/explore?" + urlencode({"tab": "file", "filter": json.dumps(imaged)}))
        until(driver, lambda d: d.find_elements(By.ID, "explore-cohorts-toggle"))[0].click()  # unfold the cohorts bar
        until(driver, lambda d: d.find_elements(By.ID, "explore-cohort-name"))[0].send_keys("e2e imaged")
        driver.find_element(By.ID, "explore-cohort-save").click()
        link = until(driver, lambda d: [a for a in d.find_elements(By.ID, "explore-cohort-jupyter")
                                        if "disabled" not in a.get_attribute("class")])[0]
        cohort_id = link.get_attribute("href").rpartition("/")[2]
        link.click()
        until(driver, lambda d: "/jupyter/open/cohort/" in d.current_url)
        notebook = f"labcommons-notebooks/cohort-e2e_imaged-{cohort_id[:8]}.ipynb"
        until(driver, lambda d: d.current_url.startswith(f"{hub.url}/user/ana/lab/tree/{notebook}"), SPAWN_SECONDS)
        assert not driver.find_elements(By.ID, "signin-username")

        driver.get(f"{portal.url}/explore?" + urlencode({"tab": "file", "filter": json.dumps(imaged)}))
        until(driver, lambda d: d.find_elements(By.ID, "explore-jupyter"))[0].click()
        views = f"{hub.url}/user/ana/lab/tree/labcommons-notebooks/view-file-"
        until(driver, lambda d: d.current_url.startswith(views), SPAWN_SECONDS)
    finally:
        driver.quit()
    folder = service.data_dir / "notebooks" / "ana" / "labcommons-notebooks"
    assert nbformat.read(folder / notebook.rpartition("/")[2], as_version=4).metadata["labcommons"]["id"] == cohort_id
    assert (folder / f"cohort-e2e_imaged-{cohort_id[:8]}.manifest.tsv").read_text().startswith("id\tfile_name")
