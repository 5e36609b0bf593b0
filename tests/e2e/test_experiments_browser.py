"""The experiments browser as a person uses it: real headless Chromium, a real portal and
metadata service over a demo commons (scale 0.1), driven as tests/e2e/test_explorer_browser.py
drives the explorer (its portal process and helpers are reused)."""
from __future__ import annotations

import base64

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from tests.e2e.browser import demo_commons, signed_in_chromium, until

SCREENSHOT = "/tmp/measurement.png"
ION_SCREENSHOT = "/tmp/measurement-ion.png"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    """(service, portal, admin client) over a demo commons at scale 0.1."""
    with demo_commons(tmp_path_factory.mktemp("experiments") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def browser(commons, tmp_path_factory):
    """A headless Chromium (Debian's, through its own chromedriver) signed in as ana."""
    with signed_in_chromium(commons, tmp_path_factory.mktemp("chrome-profile"), "ana") as driver:
        yield driver


@pytest.fixture(scope="module")
def imaged(commons) -> dict:
    """The demo measurement with an imzML image: its node, experiment, program and raster."""
    _, _, admin = commons
    image = next(f for f in admin.nodes("data_file") if f["properties"]["data_format"] == "imzML")
    measurement = admin.get(image["links"][0]["target_id"])
    project = admin.find(measurement["project_id"], measurement["project_id"])
    link = {each["name"]: each["target_submitter_id"] for each in measurement["links"] + project["links"]}
    return {"project": measurement["project_id"], "measurement": measurement["submitter_id"],
            "experiment": link["experiments"], "program": link["programs"],
            "width": measurement["properties"]["raster_width"], "height": measurement["properties"]["raster_height"]}


def _click_link(driver, container_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    link = until(driver, lambda d: d.find_element(By.ID, container_id).find_elements(By.LINK_TEXT, text))[0]
    link.click()


def _figure_title(driver, graph_id: str) -> str:
    from selenium.webdriver.common.by import By

    titles = driver.find_elements(By.CSS_SELECTOR, f"#{graph_id} .gtitle")
    return titles[0].text if titles else ""


def _click_pixel(driver, x: int, y: int, width: int, height: int) -> None:
    """Click the middle of imzML pixel (x, y) on the TIC heatmap (x right, y down from 1)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    area = driver.find_element(By.CSS_SELECTOR, "#measurement-tic .nsewdrag")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", area)
    box = area.rect
    dx = ((x - 0.5) / width - 0.5) * box["width"]
    dy = ((y - 0.5) / height - 0.5) * box["height"]
    ActionChains(driver).move_to_element_with_offset(area, round(dx), round(dy)).click().perform()


def _plotted_y(driver, graph_id: str) -> np.ndarray:
    """The y values of the graph's first trace as the page holds them: a list, or Plotly's typed
    array ({dtype, bdata}) as Dash sends numpy arrays."""
    values = driver.execute_script(
        "return document.querySelector(arguments[0] + ' .js-plotly-plot').data[0].y;", f"#{graph_id}")
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(float)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def test_from_program_to_a_pixels_spectrum(commons, browser, imaged):
    from selenium.webdriver.common.by import By

    service, portal, _ = commons
    browser.find_element(By.LINK_TEXT, "Experiments").click()  # the header's nav link
    until(browser, lambda d: d.find_elements(By.ID, f"experiments-program-card-{imaged['program']}"))

    _click_link(browser, f"experiments-program-card-{imaged['program']}", imaged["project"])
    until(browser, lambda d: d.current_url.endswith(f"/browse/{imaged['project']}"))
    _click_link(browser, "experiments-experiments", imaged["experiment"])
    until(browser, lambda d: d.current_url.endswith(f"/experiment/{imaged['experiment']}"))
    _click_link(browser, "experiments-measurements", imaged["measurement"])
    until(browser, lambda d: d.current_url.endswith(f"/measurement/{imaged['project']}/{imaged['measurement']}"))

    crumbs = until(browser, lambda d: d.find_elements(By.ID, "measurement-breadcrumbs"))[0].text
    assert [crumb.strip() for crumb in crumbs.split("›")] == [
        "Experiments", imaged["program"], imaged["project"], imaged["experiment"], imaged["measurement"]]
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#measurement-tic .heatmaplayer image"))
    assert _figure_title(browser, "measurement-tic").startswith("Total ion current")
    assert _figure_title(browser, "measurement-mean").startswith("Mean spectrum")
    first = until(browser, lambda d: _figure_title(d, "measurement-pixel"))

    x, y = 3, imaged["height"] - 2  # near the bottom-left corner, on bare slide: not the brightest pixel
    assert first != f"Spectrum at pixel ({x}, {y})"
    _click_pixel(browser, x, y, imaged["width"], imaged["height"])
    until(browser, lambda d: _figure_title(d, "measurement-pixel") == f"Spectrum at pixel ({x}, {y})")

    files = service.data_dir / "storage" / imaged["project"] / imaged["measurement"]
    with ImzMLParser(str(files / f"{imaged['measurement']}.imzML")) as parser:
        _, expected = parser.getspectrum(parser.coordinates.index((x, y, 1)))
    assert np.allclose(_plotted_y(browser, "measurement-pixel"), expected)
    assert browser.find_elements(By.CSS_SELECTOR, "#measurement-tic .shapelayer path")  # the pixel, outlined
    assert "Traceback" not in browser.page_source
    browser.set_window_size(1400, 1900)  # the whole page in the picture
    browser.execute_script("window.scrollTo(0, 0);")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#measurement-tic .heatmaplayer image"))
    browser.save_screenshot(SCREENSHOT)


def test_a_typed_mz_shows_its_ion_image_beside_the_tic_image(commons, browser, imaged):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _, portal, _ = commons
    browser.get(f"{portal.url}/measurement/{imaged['project']}/{imaged['measurement']}")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#measurement-tic .heatmaplayer image"))
    browser.find_element(By.ID, "measurement-ion-mz").send_keys("760.585", Keys.ENTER)
    until(browser, lambda d: _figure_title(d, "measurement-ion").startswith("Ion image: m/z 760.5850 ± 0.25 Da"))
    assert browser.find_elements(By.CSS_SELECTOR, "#measurement-ion .heatmaplayer image")
    ion = browser.find_element(By.CSS_SELECTOR, "#measurement-ion .nsewdrag").rect
    tic = browser.find_element(By.CSS_SELECTOR, "#measurement-tic .nsewdrag").rect
    assert abs(ion["y"] - tic["y"]) < 40 and ion["x"] > tic["x"] + tic["width"]   # beside it, on the same row

    tolerance = browser.find_element(By.ID, "measurement-ion-tolerance")
    tolerance.clear()
    tolerance.send_keys("50 Da", Keys.ENTER)
    problem = until(browser, lambda d: d.find_element(By.ID, "measurement-ion-problem").text)
    assert problem == "tolerance (Da) must be a number above 0 and at most 10 Da, not '50'"
    tolerance.clear()
    tolerance.send_keys("50 ppm", Keys.ENTER)
    until(browser, lambda d: _figure_title(d, "measurement-ion").startswith("Ion image: m/z 760.5850 ± 50 ppm"))
    assert browser.find_element(By.ID, "measurement-ion-problem").text == ""

    peak = browser.find_element(By.CSS_SELECTOR, "#measurement-peaks button")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", peak)
    peak.click()
    until(browser, lambda d: _figure_title(d, "measurement-ion").startswith(f"Ion image: m/z {peak.text} ± 50 ppm"))
    assert "Traceback" not in browser.page_source
    browser.set_window_size(1400, 1900)
    browser.execute_script("document.getElementById('measurement-previews').scrollIntoView();")
    browser.save_screenshot(ION_SCREENSHOT)
