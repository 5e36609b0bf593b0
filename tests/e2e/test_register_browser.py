"""Registering a dataset as a technician does it: real headless Chromium, a real portal and
metadata service over a demo commons (scale 0.1). Tom fills the form, picks the imzML + ibd pair
from disk, registers, and then finds the measurement in the explorer and the experiments browser;
a bad entry shows the service's message next to its field and saves nothing."""
from __future__ import annotations

import hashlib

import pytest

from labcommons.demo.imzml import write_imzml_pair
from metadata.idl import metadata_thrift as T
from tests.e2e.browser import demo_commons, signed_in_chromium, until

pytestmark = pytest.mark.e2e
MEASUREMENT = "tom-run-001"


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    with demo_commons(tmp_path_factory.mktemp("register") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def browser(commons, tmp_path_factory):
    """Headless Chromium signed in as tom, the demo technician."""
    with signed_in_chromium(commons, tmp_path_factory.mktemp("chrome-profile"), "tom") as driver:
        yield driver


@pytest.fixture(scope="module")
def place(commons) -> dict:
    admin = commons[2]
    sample = next(admin.nodes("sample"))
    experiment = next(admin.nodes("experiment", sample["project_id"]))
    return {"project": sample["project_id"], "experiment": experiment["submitter_id"], "sample": sample["submitter_id"]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict:
    """A real imzML + ibd pair on disk, as an instrument would have written it: {format: path}."""
    directory = tmp_path_factory.mktemp("instrument")
    records = write_imzml_pair(directory, "slide7", 12, 9, seed=7)
    return {r["data_format"]: directory / r["file_name"] for r in records}


def _fill(driver, portal, place: dict, measurement: str, **values) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.ID, "shell-register").click()  # the header's link, shown to technicians
    until(driver, lambda d: d.find_elements(By.ID, "register-form"))
    for name, value in (("project", place["project"]), ("experiment", place["experiment"]), ("sample", place["sample"]),
                        ("ionisation", values.pop("ionisation", "MALDI")), ("polarity", "positive")):
        Select(driver.find_element(By.ID, f"register-{name}")).select_by_value(value)
    for name, value in {"submitter_id": measurement, "instrument": "timsTOF fleX", **values}.items():
        box = driver.find_element(By.ID, f"register-{name}")
        box.clear()
        box.send_keys(value)


def _error(driver, field: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, f"register-error-{field}").text


def test_a_bad_entry_shows_its_message_next_to_the_field_and_saves_nothing(commons, browser, place, pair):
    from selenium.webdriver.common.by import By

    service, portal, admin = commons
    _fill(browser, portal, place, "tom-bad-001", raster_width="-3")
    message = until(browser, lambda d: _error(d, "raster_width"))  # inline, as typed (debounced dry run)
    assert message == "-3 is out of range: must be at least 1 pixels"  # the service's words
    assert _error(browser, "instrument") == ""  # only the bad field speaks
    browser.find_element(By.ID, "register-file-imzML").send_keys(str(pair["imzML"]))
    browser.find_element(By.ID, "register-file-ibd").send_keys(str(pair["ibd"]))
    browser.find_element(By.ID, "register-submit").click()
    until(browser, lambda d: d.find_element(By.ID, "register-submit").is_enabled())
    assert _error(browser, "raster_width") == message
    assert not browser.find_element(By.ID, "register-done").is_displayed()
    with pytest.raises(T.NotFound):
        admin.find(place["project"], "tom-bad-001")
    storage = service.data_dir / "storage"
    assert not (storage / place["project"] / "tom-bad-001").exists()
    assert not list(storage.glob(".staging/*"))  # no upload was kept: the check refused before any


def test_tom_registers_a_measurement_and_finds_it_everywhere(commons, browser, place, pair):
    from selenium.webdriver.common.by import By

    service, portal, admin = commons
    _fill(browser, portal, place, MEASUREMENT, pixel_size_um="25", raster_width="12", raster_height="9")
    browser.find_element(By.ID, "register-file-imzML").send_keys(str(pair["imzML"]))
    # the header fills what was left empty, and says so
    until(browser, lambda d: d.find_element(By.ID, "register-mass_range_high").get_attribute("value") == "1000")
    assert browser.find_element(By.ID, "register-from-file-mass_range_high").text == "From the imzML: check it."
    assert "108 spectra on a grid of 12 × 9 pixels" in browser.find_element(By.ID, "register-header-imzML").text
    browser.find_element(By.ID, "register-file-ibd").send_keys(str(pair["ibd"]))
    browser.find_element(By.ID, "register-submit").click()
    link = until(browser, lambda d: d.find_elements(By.ID, "register-done-link"), timeout=60)[0]
    assert MEASUREMENT in link.text
    assert browser.find_element(By.ID, "register-progress-ibd").get_attribute("value") == "1"

    files = {f["properties"]["data_format"]: f["properties"] for f in admin.nodes("data_file", place["project"])
             if f["submitter_id"].startswith(MEASUREMENT + ".")}
    for fmt, path in pair.items():
        assert files[fmt]["md5sum"] == hashlib.md5(path.read_bytes()).hexdigest()
        assert (service.data_dir / "storage" / place["project"] / MEASUREMENT / path.name).read_bytes() == path.read_bytes()

    browser.get(f"{portal.url}/explore?tab=file&search={MEASUREMENT}")
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#explore-table td")) > 0
          and "slide7.ibd" in d.find_element(By.ID, "explore-table").text
          and "slide7.imzML" in d.find_element(By.ID, "explore-table").text)

    browser.get(f"{portal.url}/browse/{place['project']}/experiment/{place['experiment']}")
    until(browser, lambda d: d.find_elements(By.ID, "experiments-measurements")
          and MEASUREMENT in d.find_element(By.ID, "experiments-measurements").text)
    browser.find_element(By.ID, "experiments-measurements").find_element(By.LINK_TEXT, MEASUREMENT).click()
    until(browser, lambda d: d.current_url.endswith(f"/measurement/{place['project']}/{MEASUREMENT}"))
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#measurement-tic .heatmaplayer image"), timeout=60)
    assert "Traceback" not in browser.page_source
