"""The explorer as a person uses it: real headless Chromium, a real portal and metadata service.

The metadata service and the portal run as child processes on free ports over a demo commons
(scale 0.1); Chromium is Debian's, driven through its own chromedriver (selenium never
downloads a browser). Each check compares what the page shows with what the service answers
when asked straight.
"""
from __future__ import annotations

import csv
import json
import urllib.parse
import urllib.request

import pytest

from metadata.client import MetadataClient
from tests.e2e.browser import Portal, demo_commons, pick, signed_in_chromium, until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    """(service, portal, admin client) over a demo commons at scale 0.1."""
    with demo_commons(tmp_path_factory.mktemp("explorer") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def browser(commons, tmp_path_factory):
    """A headless Chromium signed in as ana (analyst); downloads land in browser.downloads."""
    with signed_in_chromium(commons, tmp_path_factory.mktemp("chrome-profile"), "ana",
                            tmp_path_factory.mktemp("downloads")) as driver:
        yield driver


# -- page helpers ----------------------------------------------------------------------------

def _facet_counts(driver, field: str) -> dict[str, int]:
    """What a term facet lists: value label -> count."""
    from selenium.webdriver.common.by import By

    facet = driver.find_element(By.ID, f"explore-facet-{field}")
    return {option.find_element(By.CLASS_NAME, "choice-label").text:
            int(option.find_element(By.CLASS_NAME, "choice-count").text.replace(",", ""))
            for option in facet.find_elements(By.CLASS_NAME, "choice")}


def _ticked(driver, field: str) -> set[str]:
    from selenium.webdriver.common.by import By

    facet = driver.find_element(By.ID, f"explore-facet-{field}")
    return {box.get_attribute("value") for box in facet.find_elements(By.CSS_SELECTOR, "input[type=checkbox]")
            if box.is_selected()}


def _tick(driver, field: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    facet = driver.find_element(By.ID, f"explore-facet-{field}")
    facet.find_element(By.CSS_SELECTOR, f"input[value='{value}']").click()


def _total(driver) -> int:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.ID, "explore-total").text
    return int(text.split()[0].replace(",", "")) if text else -1


def _column(driver, column: str) -> list[str]:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, f"#explore-table td[data-dash-column='{column}']")
    return [cell.text for cell in cells]


def _url_filter(driver) -> dict | None:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query)
    return json.loads(query["filter"][0]) if "filter" in query else None


def _open(driver, portal: Portal, query: dict) -> None:
    from selenium.webdriver.common.by import By

    driver.get(portal.url + "/explore?" + urllib.parse.urlencode(query))
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#explore-table, #explore-problem"))


def _settled(driver, total: int) -> None:
    """Wait until the page shows this total (the table has been redrawn)."""
    until(driver, lambda d: _total(d) == total)


# -- the tests -------------------------------------------------------------------------------

def test_a_facet_value_narrows_the_other_facets_and_the_table(commons, browser):
    _, portal, admin = commons
    _open(browser, portal, {"tab": "case"})
    everything = admin.facets("case", ["species", "sex"])
    _settled(browser, everything.total)
    assert _facet_counts(browser, "species") == {b.value: b.count for b in everything.facets[0].buckets}

    _tick(browser, "species", "human")
    until(browser, lambda d: _url_filter(d) == {"IN": {"species": ["human"]}})
    humans = admin.facets("case", ["species", "sex"], {"IN": {"species": ["human"]}})
    _settled(browser, humans.total)
    assert humans.total < everything.total
    # the other facet narrows; the species facet still offers its unselected values
    until(browser, lambda d: _facet_counts(d, "sex") == {b.value: b.count for b in humans.facets[1].buckets})
    assert set(_facet_counts(browser, "species")) == {"human", "mouse", "rat"}
    assert _ticked(browser, "species") == {"human"}
    assert set(_column(browser, "species")) == {"human"}
    chips = browser.find_element("id", "explore-chips").text
    assert "Species is human" in chips
    browser.save_screenshot("/tmp/explorer.png")


def test_a_range_slider_bounds_the_rows_and_its_chip_removes_the_bound(commons, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _, portal, admin = commons
    _open(browser, portal, {"tab": "case"})
    _settled(browser, admin.hits("case", limit=1)[0])
    upper = browser.find_elements(By.CSS_SELECTOR, "#explore-facet-age_years [role=slider]")[-1]
    upper.click()
    upper.send_keys(Keys.END, *[Keys.ARROW_LEFT] * 200)  # 200 steps of 0.1 years below the oldest
    until(browser, lambda d: "<=" in json.dumps(_url_filter(d)))
    bound = _url_filter(browser)["<="]["age_years"]
    younger = admin.hits("case", {"<=": {"age_years": bound}}, limit=1)[0]
    _settled(browser, younger)
    assert younger < admin.hits("case", limit=1)[0]
    chip = until(browser, lambda d: [c for c in d.find_elements(By.CLASS_NAME, "chip") if "Age (years) ≤" in c.text])
    chip[0].find_element(By.CLASS_NAME, "chip-remove").click()
    until(browser, lambda d: _url_filter(d) is None)
    _settled(browser, admin.hits("case", limit=1)[0])


def test_a_copied_link_reproduces_the_view(commons, browser):
    _, portal, admin = commons
    view = {"tab": "case", "filter": json.dumps({"IN": {"sex": ["female"]}}), "sort": "-age_years"}
    _open(browser, portal, view)
    total, docs = admin.hits("case", {"IN": {"sex": ["female"]}}, sort=[("age_years", True)], limit=50)
    _settled(browser, total)
    _tick(browser, "species", "mouse")
    until(browser, lambda d: "species" in json.dumps(_url_filter(d)))
    expected = {"AND": [{"IN": {"sex": ["female"]}}, {"IN": {"species": ["mouse"]}}]}
    mice, _ = admin.hits("case", expected, limit=1)
    _settled(browser, mice)
    copied, shown = browser.current_url, _column(browser, "submitter_id")

    browser.get("about:blank")
    browser.get(copied)  # a fresh page load of the copied link
    _settled(browser, mice)
    until(browser, lambda d: _column(d, "submitter_id") == shown)
    assert _ticked(browser, "species") == {"mouse"} and _ticked(browser, "sex") == {"female"}
    ages = [float(a) for a in _column(browser, "age_years") if a]
    assert ages == sorted(ages, reverse=True)


def test_a_saved_cohort_reopens_its_view(commons, browser):
    from selenium.webdriver.common.by import By

    _, portal, admin = commons
    _open(browser, portal, {"tab": "file"})
    formats = admin.facets("file", ["data_format"]).facets[0].buckets
    chosen = formats[0].value
    _tick(browser, "data_format", chosen)
    selected, _ = admin.hits("file", {"IN": {"data_format": [chosen]}}, limit=1)
    _settled(browser, selected)
    browser.find_element(By.ID, "explore-cohorts-toggle").click()  # the cohorts fold opens
    browser.find_element(By.ID, "explore-cohort-name").send_keys("e2e cohort")
    browser.find_element(By.ID, "explore-cohort-save").click()
    until(browser, lambda d: "Saved cohort" in d.find_element(By.ID, "explore-cohort-message").text)
    with _as_ana(admin) as ana:
        saved = [c for c in ana.cohorts() if c.name == "e2e cohort"]
    assert saved and json.loads(saved[0].filter_json) == {"IN": {"data_format": [chosen]}}

    _open(browser, portal, {"tab": "case"})
    browser.find_element(By.ID, "explore-cohorts-toggle").click()
    pick(browser, "explore-cohort-list", "e2e cohort")
    browser.find_element(By.ID, "explore-cohort-open").click()
    until(browser, lambda d: "tab=file" in d.current_url and _url_filter(d) == {"IN": {"data_format": [chosen]}})
    _settled(browser, selected)
    assert _ticked(browser, "data_format") == {chosen}


def _as_ana(admin) -> MetadataClient:
    """A client for ana straight to the service (a private cohort is seen by its owner only)."""
    issued = admin.create_token("ana", ["analyst"], {}, 600)
    return MetadataClient(admin.host, admin.port, issued.token)


def test_the_exported_manifest_holds_the_files_the_service_names(commons, browser):
    from selenium.webdriver.common.by import By

    _, portal, admin = commons
    view = {"IN": {"species": ["human"]}}
    _open(browser, portal, {"tab": "case", "filter": json.dumps(view)})
    _settled(browser, admin.hits("case", view, limit=1)[0])
    link = browser.find_element(By.LINK_TEXT, "Manifest (TSV)")
    assert "/export/manifest.tsv?" in link.get_attribute("href")
    link.click()
    path = until(browser, lambda d: [p for p in d.downloads.glob("*manifest*.tsv")])[0]
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream, delimiter="\t"))
    expected = list(admin.manifest("case", view))
    assert expected, "the demo's human cases have files"
    assert [row["id"] for row in rows] == [entry["id"] for entry in expected]
    assert rows[0]["md5sum"] == expected[0]["md5sum"] and rows[0]["case"] == expected[0]["case"]


def test_a_broken_link_shows_the_services_message_and_a_way_back(commons, browser):
    from selenium.webdriver.common.by import By

    _, portal, _ = commons
    _open(browser, portal, {"tab": "case", "filter": json.dumps({"IN": {"orgn": ["liver"]}})})
    problem = until(browser, lambda d: d.find_elements(By.ID, "explore-problem"))[0]
    assert "unknown field 'orgn'" in problem.text and "did you mean" in problem.text
    assert "Traceback" not in browser.page_source
    problem.find_element(By.LINK_TEXT, "reset view").click()
    until(browser, lambda d: _url_filter(d) is None and not d.find_elements(By.ID, "explore-problem"))

    _open(browser, portal, {"tab": "case", "page": "99"})
    problem = until(browser, lambda d: d.find_elements(By.ID, "explore-problem"))[0]
    assert "past the end" in problem.text


def _chips(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [chip.text for chip in driver.find_elements(By.CSS_SELECTOR, "#explore-chips .chip-text")]


def _shows(driver, total: int, chips: list[str], tab: str, page: int = 1) -> bool:
    """The page shows this view: total, chips, selected tab and table page (all redrawn)."""
    from selenium.webdriver.common.by import By

    selected = driver.find_elements(By.CSS_SELECTOR, "#explore-tabs .tab--selected")
    return (_total(driver) == total and _chips(driver) == chips and selected and selected[0].text == tab
            and f"page {page} of" in driver.find_element(By.ID, "explore-total").text)


def test_back_and_forward_restore_the_view(commons, browser):
    """Remove a chip, turn the table's page, change tab: Back undoes each, Forward redoes it, and
    the page shows exactly the view its address names (not just the address)."""
    from selenium.webdriver.common.by import By

    _, portal, admin = commons
    project = next(admin.nodes("project"))["submitter_id"]  # female rats enough for two pages of females
    admin.submit(project, [{"type": "case", "submitter_id": f"back-forward-{i}", "species": "rat", "sex": "female"}
                           for i in range(50)])
    two = {"AND": [{"IN": {"sex": ["female"]}}, {"IN": {"species": ["mouse"]}}]}
    _open(browser, portal, {"tab": "case", "filter": json.dumps(two)})
    both, females = admin.hits("case", two, limit=1)[0], admin.hits("case", two["AND"][0], limit=1)[0]
    assert 0 < both < females and females > 50
    until(browser, lambda d: _shows(d, both, ["Sex is female", "Species is mouse"], "Cases"))
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#explore-chips .chip-remove"))[1].click()
    until(browser, lambda d: _url_filter(d) == two["AND"][0] and _shows(d, females, ["Sex is female"], "Cases"))

    browser.back()
    until(browser, lambda d: _url_filter(d) == two and _shows(d, both, ["Sex is female", "Species is mouse"], "Cases"))
    assert _ticked(browser, "species") == {"mouse"} and _ticked(browser, "sex") == {"female"}
    browser.forward()
    until(browser, lambda d: _url_filter(d) == two["AND"][0] and _shows(d, females, ["Sex is female"], "Cases"))
    assert _ticked(browser, "species") == set()

    browser.find_element(By.CSS_SELECTOR, "#explore-table button.next-page").click()
    until(browser, lambda d: "page=2" in d.current_url and _shows(d, females, ["Sex is female"], "Cases", page=2))
    second = _column(browser, "submitter_id")
    browser.back()
    until(browser, lambda d: "page=" not in d.current_url and _shows(d, females, ["Sex is female"], "Cases"))
    assert _column(browser, "submitter_id") != second
    browser.forward()
    until(browser, lambda d: _shows(d, females, ["Sex is female"], "Cases", page=2)
          and _column(d, "submitter_id") == second)

    female_files = admin.hits("file", two["AND"][0], limit=1)[0]
    browser.find_element(By.ID, "explore-tab-file").click()  # the sex clause carries over to files
    until(browser, lambda d: "tab=file" in d.current_url and _shows(d, female_files, ["Sex is female"], "Files"))
    browser.back()
    until(browser, lambda d: "tab=case" in d.current_url and _shows(d, females, ["Sex is female"], "Cases", page=2))
    browser.forward()
    until(browser, lambda d: "tab=file" in d.current_url and _shows(d, female_files, ["Sex is female"], "Files"))
