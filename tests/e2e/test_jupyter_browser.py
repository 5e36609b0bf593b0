""""Open in Jupyter" as a person uses it: headless Chromium signed in to the portal clicks the
button on a measurement page, watches the progress page, and lands in JupyterLab on the starter
notebook: a real JupyterHub with its real proxy and a local single-user server, no second sign-in."""
from __future__ import annotations

import time

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


HUB_MESSAGES = ("Server requested", "Spawning server...", "Server ready at /user/tom/")


def test_the_progress_page_shows_the_hubs_progress_before_jupyterlab(commons, tmp_path):
    """While the server spawns, the page shows the hub's own messages and a percentage (relayed
    by the portal's /jupyter/progress stream), then goes on to JupyterLab."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    service, portal, hub, admin = commons
    measurement = next(iter(admin.nodes("measurement")))
    driver = chromium(tmp_path / "profile")
    seen = []  # (progress bar value, percent text, message) as the page showed them
    try:
        sign_in(driver, portal, service.data_dir, "tom")
        driver.get(f"{portal.url}/jupyter/open/measurement/{measurement['project_id']}/{measurement['submitter_id']}")
        assert driver.find_element(By.ID, "jupyter-progress-bar").get_attribute("max") == "100"
        lab = f"{hub.url}/user/tom/lab"
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
