"""Project access as people meet it, in headless Chromium against a real portal and service over
a demo commons: an analyst without a grant sees nothing of a project anywhere (explorer counts and
rows, experiments browser, a download link); an admin grants read access on the admin page; the
analyst then sees it. And every admin page refuses a non-admin."""
from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.e2e.browser import chromium, demo_commons, sign_in, until

pytestmark = pytest.mark.e2e
ADMIN_PAGES = ["/admin/users", "/admin/audit", "/admin/tier-access", "/admin/audit.tsv", "/admin/audit.json"]


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    """(service, portal, admin client, the project ana may not read) over a demo commons."""
    with demo_commons(tmp_path_factory.mktemp("admin") / "data") as (service, portal, admin):
        project = sorted(node["submitter_id"] for node in admin.nodes("project"))[0]
        admin.set_grant("ana", project, "")  # ana's demo grant on it is taken away
        yield service, portal, admin, project


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    browser = chromium(tmp_path_factory.mktemp("chrome-profile"))
    try:
        yield browser
    finally:
        browser.quit()


def as_user(driver, commons, user: str) -> None:
    """A fresh session for this user, after signing out with the header's button."""
    service, portal, _, _ = commons
    driver.get(portal.url + "/explore")
    if "/signin" not in driver.current_url:
        sign_out(driver)
    sign_in(driver, portal, service.data_dir, user)


def sign_out(driver) -> None:
    """Click the header's Sign out (found again if the header is redrawn under the click: `until`
    retries on a stale element), then wait for the sign-in form."""
    from selenium.webdriver.common.by import By

    until(driver, lambda d: (found := d.find_elements(By.ID, "shell-signout")) and found[0].click() is None)
    until(driver, lambda d: "/signin" in d.current_url and d.find_elements(By.ID, "signin-submit"))


def explorer_total(driver, portal, filter_: dict | None = None) -> int:
    from selenium.webdriver.common.by import By

    query = {"tab": "case", **({"filter": json.dumps(filter_)} if filter_ else {})}
    driver.get(portal.url + "/explore?" + urllib.parse.urlencode(query))
    until(driver, lambda d: d.find_elements(By.ID, "explore-total") and d.find_element(By.ID, "explore-total").text)
    return int(driver.find_element(By.ID, "explore-total").text.split()[0].replace(",", ""))


def project_facet(driver) -> set[str]:
    """The project_id facet's values (of a view with no filter: a ticked value is always listed)."""
    from selenium.webdriver.common.by import By

    def listed(d) -> list[str]:  # read whole each time: the facets are drawn again as the view's callbacks answer
        facets = d.find_elements(By.ID, "explore-facet-project_id")
        return facets and [value.text for value in facets[0].find_elements(By.CLASS_NAME, "choice-label")]
    return set(until(driver, listed))


def page_text(driver, portal, path: str, ready_id: str) -> str:
    from selenium.webdriver.common.by import By

    driver.get(portal.url + path)
    until(driver, lambda d: d.find_elements(By.ID, ready_id))
    return driver.find_element(By.TAG_NAME, "body").text


def fetch_status(driver, path: str) -> int:
    """The status the browser gets for a URL with its own session cookie."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => done(r.status), () => done(-1));", path)


def a_file_of(admin, project: str) -> str:
    return next(f["id"] for f in admin.nodes("data_file", project))


def grant_on_admin_page(driver, portal, user: str, project: str, access: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(portal.url + "/admin/users")
    Select(until(driver, lambda d: d.find_elements(By.ID, f"admin-grant-{user}-project"))[0]).select_by_visible_text(project)
    Select(driver.find_element(By.ID, f"admin-grant-{user}-access")).select_by_visible_text(access)
    driver.find_element(By.ID, f"admin-grant-{user}-submit").click()
    return until(driver, lambda d: d.find_elements(By.ID, "admin-message"))[0].text


def test_an_analyst_sees_a_project_only_once_an_admin_grants_it(commons, driver):
    service, portal, admin, project = commons
    only_project = {"IN": {"project_id": [project]}}
    cases = admin.hits("case", only_project, limit=1)[0]
    download = f"/files/{a_file_of(admin, project)}/download"
    assert cases > 0

    as_user(driver, commons, "ana")
    assert explorer_total(driver, portal, only_project) == 0
    assert explorer_total(driver, portal) == admin.hits("case", limit=1)[0] - cases
    assert project not in project_facet(driver)
    refused = page_text(driver, portal, f"/browse/{project}", "experiments-page")
    assert f"ana has no read access to project '{project}'" in refused
    assert fetch_status(driver, download) == 404  # a file she may not read is not there for her

    as_user(driver, commons, "ada")
    assert grant_on_admin_page(driver, portal, "ana", project, "read") == f"ana may now read {project}."

    as_user(driver, commons, "ana")
    assert explorer_total(driver, portal, only_project) == cases
    assert explorer_total(driver, portal) == admin.hits("case", limit=1)[0]
    assert project in project_facet(driver)
    assert "no read access" not in page_text(driver, portal, f"/browse/{project}", "experiments-page")
    assert fetch_status(driver, download) == 200


def test_every_admin_page_refuses_a_non_admin(commons, driver):
    from selenium.webdriver.common.by import By

    _, portal, _, _ = commons
    as_user(driver, commons, "tom")
    assert not driver.find_elements(By.ID, "shell-admin")  # no Admin link in the header
    for path in ADMIN_PAGES:
        assert fetch_status(driver, path) == 403, path
        driver.get(portal.url + path)
        assert driver.find_element(By.TAG_NAME, "h1").text == "Administrators only", path
