"""Workflows as a technician uses them: real headless Chromium, a real portal and metadata service
over a demo commons (scale 0.1), and a real worker (in this process, local engine) running the
runs. Tom opens a demo measurement, launches a template on it with a saved parameter set,
watches the run succeed, opens its outputs (the JSON report, and any PNG image), follows the
provenance from the report back to the raw file and its measurement, and re-running the same
launch shows the existing run. Ada, an admin, reads the workflows dashboard and clicks a point
through to its runs.

TEMPLATE is the shipped `ims-qc`; with TEST_TEMPLATES = True, TEMPLATE = "size-report" and
PARAMETERS = {"window": "5"} it runs the small test template of tests/portal/test_workflow_pages.py
instead (a templates dir the service and the worker share)."""
from __future__ import annotations

import json
import threading

import pytest
import yaml

from labcommons.demo import create_demo
from labcommons.demo.accounts import PASSWORDS_FILE
from metadata import templates
from tests.e2e.browser import Portal, click, pick, require_chromium, signed_in_chromium, until
from tests.e2e.conftest import ServiceProcess
from tests.portal.test_workflow_pages import wf_template
from workflow_templates.worker import Worker

TEMPLATE = "ims-qc"
TEST_TEMPLATES = False          # the shipped workflow_templates/ (True: the small test template)
PARAMETERS = {"snr": "4"}       # what the saved parameter set holds
SET_NAME = "e2e-fast"
RUN_SECONDS = 120

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    """(service, portal, admin client, storage root) over a demo commons, with a worker running."""
    require_chromium()
    root = tmp_path_factory.mktemp("workflows")
    service = ServiceProcess(root / "data")
    templates_dir = _templates_dir(root)
    if templates_dir:
        service.env["LABCOMMONS_TEMPLATES_DIR"] = str(templates_dir)
    service.env["LABCOMMONS_TRIGGERS_DIR"] = str(root / "no-triggers")  # no run but the one the test launches
    service.start()
    admin = service.client()
    storage = service.data_dir / "storage"
    create_demo(admin, storage, scale=0.1, passwords_path=service.data_dir / PASSWORDS_FILE)
    portal = Portal(service)
    stop = threading.Event()
    worker = Worker(service.client(), templates.load(templates_dir), storage, name="w-e2e", capacity=2)
    thread = threading.Thread(target=worker.serve, args=(stop, 0.1), daemon=True)
    thread.start()
    try:
        yield service, portal, admin
    finally:
        stop.set()
        thread.join(30)
        admin.close()
        portal.stop()
        service.terminate()


def _templates_dir(root):
    if not TEST_TEMPLATES:
        return None
    directory = root / "templates"
    directory.mkdir()
    (directory / f"{TEMPLATE}.yaml").write_text(yaml.safe_dump(wf_template()))
    return directory


@pytest.fixture(scope="module")
def measurement(commons) -> dict:
    """The demo measurement with an imzML image, and a saved parameter set for the template in its project."""
    _, _, admin = commons
    image = next(f for f in admin.nodes("data_file") if f["properties"]["data_format"] == "imzML")
    node = admin.get(image["links"][0]["target_id"])
    admin.save_parameter_set(TEMPLATE, SET_NAME, PARAMETERS, node["project_id"], notes="saved by the e2e test")
    return {**node, "image": image}


@pytest.fixture(scope="module")
def browser(commons, tmp_path_factory):
    with signed_in_chromium(commons, tmp_path_factory.mktemp("chrome-profile"), "tom") as driver:
        yield driver


def _click_graph_node(driver, graph_id: str, trace_name: str) -> None:
    """Click the first point of a named trace of a Plotly graph, with the mouse, where it is drawn."""
    from selenium.webdriver.common.action_chains import ActionChains

    point = until(driver, lambda d: d.execute_script(
        "const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
        "if (!gd || !gd.data) return null;"
        "const index = gd.data.findIndex(t => t.name === arguments[1]);"
        "const traces = gd.querySelectorAll('.scatterlayer .trace');"
        "return index < 0 || !traces[index] ? null : traces[index].querySelector('.points path');",
        graph_id, trace_name))
    ActionChains(driver).move_to_element(point).pause(0.2).click().perform()


def _fetch(driver, href: str) -> str:
    """The body of a link as the signed-in browser fetches it (a download is not shown as a page)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text()).then(done, e => done('failed: ' + e));", href)


def test_a_technician_launches_watches_follows_provenance_and_reruns(commons, measurement, browser):
    from selenium.webdriver.common.by import By

    service, portal, admin = commons
    driver = browser
    driver.get(f"{portal.url}/measurement/{measurement['project_id']}/{measurement['submitter_id']}")
    click(driver, By.ID, "measurement-launch")
    click(driver, By.ID, f"launch-choose-{TEMPLATE}")
    until(driver, lambda d: d.find_elements(By.ID, "launch-form"))
    pick(driver, "launch-set", f"{SET_NAME} · revision 1")
    name, value = next(iter(PARAMETERS.items()))
    field = f"//*[@id='launch-field-{name}']//input"
    until(driver, lambda d: d.find_element(By.XPATH, field).get_attribute("value") == value)
    click(driver, By.ID, "launch-submit")

    until(driver, lambda d: "/runs/" in d.current_url and d.find_elements(By.ID, "run-status"))
    run_url = driver.current_url
    run_id = run_url.rsplit("/", 1)[1]
    until(driver, lambda d: d.find_element(By.ID, "run-status").text in ("Succeeded", "Failed"), RUN_SECONDS)
    assert driver.find_element(By.ID, "run-status").text == "Succeeded", admin.run(run_id).message
    assert f"{SET_NAME} · revision 1" in driver.find_element(By.ID, "run-parameter-set").text
    run = admin.run(run_id)
    assert run.parameters[name] == value and run.parameter_set_revision == 1

    outputs = driver.find_element(By.ID, "run-outputs")
    files = {a.text: a.get_attribute("href") for a in outputs.find_elements(By.CSS_SELECTOR, "a[href^='/files/']")}
    reports = [name for name in files if name.endswith(".json")]
    assert reports, f"no JSON report among the outputs {sorted(files)}"
    for name, href in files.items():                                          # open every output
        body = _fetch(driver, href)
        assert json.loads(body) if name.endswith(".json") else not body.startswith("failed:"), name
        assert body[1:4] == "PNG" or not name.endswith(".png"), name
    log = driver.find_element(By.ID, "run-steps").find_elements(By.LINK_TEXT, "log")[0]
    assert "failed:" not in _fetch(driver, log.get_attribute("href"))

    # provenance: the output, made by the run, from the raw files, of the measurement
    report_row = f"//*[@id='run-outputs']//tr[.//a[normalize-space(text())='{reports[0]}']]"
    outputs.find_element(By.XPATH, report_row + "//a[contains(@class, 'wf-lineage-link')]").click()
    until(driver, lambda d: "/lineage/" in d.current_url and d.find_elements(By.ID, "lineage-download"))
    ancestors = driver.find_element(By.ID, "lineage-ancestors")
    assert ancestors.find_elements(By.CSS_SELECTOR, f"a[href='/runs/{run_id}']")
    output_page = driver.current_url
    _click_graph_node(driver, "lineage-graph", "Workflow run")   # the graph's run node (its legend name) opens the run
    until(driver, lambda d: d.current_url.endswith(f"/runs/{run_id}") and d.find_elements(By.ID, "run-status"))
    driver.get(output_page)
    ancestors = until(driver, lambda d: d.find_elements(By.ID, "lineage-ancestors"))[0]
    raw_name = measurement["image"]["properties"]["file_name"]
    ancestors.find_element(By.LINK_TEXT, raw_name).click()
    until(driver, lambda d: d.current_url.endswith(f"/lineage/{measurement['image']['id']}")
          and d.find_element(By.CSS_SELECTOR, "#lineage-page .node-name").text == raw_name)
    assert driver.find_element(By.ID, "lineage-descendants").find_elements(By.CSS_SELECTOR, f"a[href='/runs/{run_id}']")
    driver.find_element(By.ID, "lineage-ancestors").find_element(By.LINK_TEXT, measurement["submitter_id"]).click()
    until(driver, lambda d: "/measurement/" in d.current_url and d.find_elements(By.ID, "measurement-files"))

    # the same launch again: the existing run, not a second one
    driver.get(run_url)
    click(driver, By.ID, "run-rerun")
    notice = until(driver, lambda d: d.find_elements(By.ID, "run-existing"))[0]
    assert "An identical run already exists" in notice.text
    assert notice.find_element(By.ID, "run-existing-link").get_attribute("href").endswith(f"/runs/{run_id}")
    assert driver.find_element(By.ID, "run-force").is_displayed()
    assert admin.runs(template=TEMPLATE).total == 1


def test_an_admin_reads_the_dashboard_and_a_point_opens_its_runs(commons, measurement, tmp_path_factory):
    """The dashboard drawn by Plotly in Chromium; clicking a point of a template's line opens the
    runs list filtered to that template."""
    from selenium.webdriver.common.by import By

    service, portal, admin = commons
    if not admin.runs(template=TEMPLATE).total:   # run alone: the first test's run is not there
        admin.launch(TEMPLATE, [measurement["id"]], PARAMETERS)
    until_ended = lambda: all(r.status in ("succeeded", "failed") for r in admin.runs(template=TEMPLATE).runs)  # noqa: E731
    with signed_in_chromium(commons, tmp_path_factory.mktemp("chrome-ada"), "ada") as driver:
        until(driver, lambda _d: until_ended(), RUN_SECONDS)
        driver.get(f"{portal.url}/dashboard")
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#dashboard-outcomes .main-svg"))
        titles = driver.find_element(By.ID, "dashboard-page").text
        assert "Runs by outcome per day" in titles and "Run duration, median" in titles and "w-e2e" in titles
        _click_graph_node(driver, "dashboard-duration", TEMPLATE)
        until(driver, lambda d: "/runs?template=" in d.current_url and d.find_elements(By.ID, "runs-list"))
        assert f"template={TEMPLATE}" in driver.current_url
