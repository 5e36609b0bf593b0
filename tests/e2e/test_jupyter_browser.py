""""Open in Jupyter" as a person uses it: headless Chromium signed in to the portal clicks the
button on a measurement page (or on a cohort or the view in the explorer), watches the progress
page, and lands in JupyterLab on the starter notebook: a real JupyterHub with its real proxy and a
local single-user server, no second sign-in."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import nbformat
import pytest

from labcommons.demo import create_demo
from labcommons.demo.accounts import PASSWORDS_FILE
from tests.e2e.browser import Portal, chromium, require_chromium, sign_in, until
from tests.e2e.conftest import ServiceProcess
from tests.hub.conftest import hub_environment, start_hub

pytestmark = pytest.mark.e2e
SPAWN_SECONDS = 120


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    """(service, portal, hub, admin client) over a demo commons at scale 0.1."""
    require_chromium()
    data_dir = tmp_path_factory.mktemp("jupyter") / "data"
    service = ServiceProcess(data_dir)
    hub_environment(service)
    service.start()
    admin = service.client()
    create_demo(admin, data_dir / "storage", scale=0.1, passwords_path=data_dir / PASSWORDS_FILE)
    portal, hub = Portal(service), None
    try:
        hub = start_hub(service, portal)
        yield service, portal, hub, admin
    finally:
        if hub is not None:
            hub.stop()
        admin.close()
        portal.stop()
        service.terminate()


def test_open_in_jupyter_lands_on_the_starter_notebook(commons, tmp_path):
    from selenium.webdriver.common.by import By

    service, portal, hub, admin = commons
    measurement = next(iter(admin.nodes("measurement")))
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, "ana")
        driver.get(f"{portal.url}/measurement/{measurement['project_id']}/{measurement['submitter_id']}")
        until(driver, lambda d: d.find_elements(By.ID, "measurement-jupyter"))[0].click()
        until(driver, lambda d: "/jupyter/open/" in d.current_url)
        notebook_url = f"{hub.url}/user/ana/lab/tree/labcommons/measurement-{measurement['submitter_id']}.ipynb"
        until(driver, lambda d: d.current_url.startswith(notebook_url), SPAWN_SECONDS)
        assert not driver.find_elements(By.ID, "signin-username")  # the hub never asked to sign in again
    finally:
        driver.quit()
    path = service.data_dir / "notebooks" / "ana" / "labcommons" / f"measurement-{measurement['submitter_id']}.ipynb"
    assert nbformat.read(path, as_version=4).metadata["labcommons"]["id"] == measurement["id"]


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
        until(driver, lambda d: d.find_elements(By.ID, "explore-cohort-name"))[0].send_keys("e2e imaged")
        driver.find_element(By.ID, "explore-cohort-save").click()
        link = until(driver, lambda d: [a for a in d.find_elements(By.ID, "explore-cohort-jupyter")
                                        if "disabled" not in a.get_attribute("class")])[0]
        cohort_id = link.get_attribute("href").rpartition("/")[2]
        link.click()
        until(driver, lambda d: "/jupyter/open/cohort/" in d.current_url)
        notebook = f"labcommons/cohort-e2e_imaged-{cohort_id[:8]}.ipynb"
        until(driver, lambda d: d.current_url.startswith(f"{hub.url}/user/ana/lab/tree/{notebook}"), SPAWN_SECONDS)
        assert not driver.find_elements(By.ID, "signin-username")

        driver.get(f"{portal.url}/explore?" + urlencode({"tab": "file", "filter": json.dumps(imaged)}))
        until(driver, lambda d: d.find_elements(By.ID, "explore-jupyter"))[0].click()
        until(driver, lambda d: d.current_url.startswith(f"{hub.url}/user/ana/lab/tree/labcommons/view-file-"),
              SPAWN_SECONDS)
    finally:
        driver.quit()
    folder = service.data_dir / "notebooks" / "ana" / "labcommons"
    assert nbformat.read(folder / notebook.rpartition("/")[2], as_version=4).metadata["labcommons"]["id"] == cohort_id
    assert (folder / f"cohort-e2e_imaged-{cohort_id[:8]}.manifest.tsv").read_text().startswith("id\tfile_name")
