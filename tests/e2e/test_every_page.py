"""Every page as each demo role meets it, in headless Chromium against a real portal and service:
the same header links for a role on every page, no severe console error, and no serious or
critical accessibility violation as axe-core (npm, installed by `make` into .venv/node) finds them.

One browser session per role visits every page in turn; the problems of all pages are reported
together, so one run shows what to fix."""
from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

import pytest

from portal.header import links_for
from tests.e2e.browser import chromium, demo_commons, sign_in, until
from tests.need import need

pytestmark = pytest.mark.e2e
AXE = Path(sys.prefix) / "node" / "node_modules" / "axe-core" / "axe.min.js"
ROLES = {"ana": ("analyst",), "tom": ("technician",), "ada": ("admin",)}
USER_LINKS = ["shell-notifications", "shell-user", "shell-signout"]
EVERYONE = ["/explore", "/browse", "/runs", "/launch", "/parameter-sets", "/account", "/notifications",
            "/no-such-page", "/admin/users"]  # an analyst's /admin/users is the 403 page
WRITERS = ["/register", "/register/bulk"]
ADMINS = ["/admin/audit", "/admin/triggers", "/admin/tier-access"]
SERIOUS = ("serious", "critical")
SAYS = {"/no-such-page": "There is no page at /no-such-page."}  # the 404 page says where you are
# axe-core run on the whole page; the result reduced to what a report needs (nothing set aside:
# the portal's own controls, portal/controls.py, replace Dash's Checklist, RadioItems and Dropdown)
RUN_AXE = """
const [serious, done] = arguments;
axe.run(document, {resultTypes: ["violations"]}).then(result => done(result.violations
  .filter(v => serious.includes(v.impact))
  .map(v => v.id + " (" + v.impact + "): " + v.help + " at " + v.nodes.slice(0, 3).map(n => n.html.slice(0, 200)).join(" | "))
)).catch(error => done(["axe failed: " + error]));
"""


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    """(service, portal, admin client, the pages under another page: a project, an experiment, a
    measurement with files, its file's provenance, a run) over a demo commons."""
    if not AXE.exists():
        need("axe-core", f"{AXE} is missing; `make .venv/.installed` installs it (npm, into .venv/node)")
    with demo_commons(tmp_path_factory.mktemp("every-page") / "data") as (service, portal, admin):
        yield service, portal, admin, deep_pages(admin)


@pytest.fixture(scope="module")
def accessible() -> set:
    """The pages (address, title) axe has checked so far, for any role."""
    return set()


def deep_pages(admin) -> list[str]:
    """Pages that sit under another: an experiment, a measurement with its files, a file's
    provenance, a run (the shipped trigger queued one for each of the demo's measurements)."""
    image = next(f for f in admin.nodes("data_file") if f["properties"]["data_format"] == "imzML")
    measurement = admin.get(image["links"][0]["target_id"])
    project = measurement["project_id"]
    experiment = next(link["target_submitter_id"] for link in measurement["links"] if link["name"] == "experiments")
    quote = urllib.parse.quote
    run = admin.runs(limit=1).runs[0]
    return [f"/browse/{quote(project)}", f"/browse/{quote(project)}/experiment/{quote(experiment)}",
            f"/measurement/{quote(project)}/{quote(measurement['submitter_id'])}", f"/lineage/{image['id']}",
            f"/runs/{run.id}"]


def pages_for(user: str, deep: list[str]) -> list[str]:
    roles = ROLES[user]
    return EVERYONE + deep + (WRITERS if "admin" in roles or "technician" in roles else []) + (
        ADMINS if "admin" in roles else [])


@pytest.mark.parametrize("user", sorted(ROLES))
def test_every_page_shows_the_roles_header_and_is_accessible(commons, accessible, tmp_path, user):
    service, portal, _, deep = commons
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, user)
        expected = [f"shell-{link.name}" for link in links_for(ROLES[user])] + USER_LINKS
        axe = AXE.read_text()
        problems = [problem for path in pages_for(user, deep)
                    for problem in check_page(driver, portal.url + path, expected, axe, accessible)]
    finally:
        driver.quit()
    assert not problems, f"{user}:\n" + "\n".join(problems)


def check_page(driver, url: str, expected: list[str], axe: str, accessible: set) -> list[str]:
    """The page's problems: its header's links, what it must say, severe console errors, and
    serious axe violations (unless a page of that address and title was checked already)."""
    path = urllib.parse.urlsplit(url).path
    driver.get(url)
    settled(driver)
    links = driver.execute_script("return Array.from(document.querySelectorAll('header [id^=shell-]'), e => e.id);")
    problems = [f"{path}: header {links} is not {expected}"] if links != expected else []
    if path in SAYS and SAYS[path] not in driver.execute_script("return document.querySelector('main').innerText;"):
        problems.append(f"{path}: the page does not say {SAYS[path]!r}")
    problems += [f"{path}: console: {entry['message']}" for entry in driver.get_log("browser")
                 if entry["level"] == "SEVERE" and not expected_refusal(path, entry["message"])]
    page = (path, driver.title)  # the same page for every role is checked once; ana's 403 is not ada's page
    if page not in accessible:
        accessible.add(page)
        problems += [f"{path}: {violation}" for violation in axe_violations(driver, axe)]
    return problems


def axe_violations(driver, axe: str) -> list[str]:
    """axe-core's serious and critical violations on the page."""
    driver.execute_script(axe)
    driver.set_script_timeout(60)
    return driver.execute_async_script(RUN_AXE, list(SERIOUS))


def expected_refusal(path: str, message: str) -> bool:
    """The 404 and 403 pages are loaded with their status, which Chromium logs as an error."""
    return (" 404 " in message and path == "/no-such-page") or (" 403 " in message and path.startswith("/admin/"))


def settled(driver) -> None:
    """Wait until the header is there and no Dash component is still loading."""
    until(driver, lambda d: d.execute_script(
        "return document.querySelector('#shell-signout') !== null && document.readyState === 'complete'"
        " && !document.querySelector('[data-dash-is-loading=true]')"
        " && (!document.querySelector('#_pages_content') || document.querySelector('#_pages_content').children.length > 0);"))


def test_a_new_token_wraps_in_its_card_and_its_copy_button_copies(commons, tmp_path):
    from selenium.webdriver.common.by import By

    service, portal, _, _ = commons
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, "tom")
        driver.get(portal.url + "/account")
        driver.find_element(By.ID, "account-token-name").send_keys("my laptop")
        driver.find_element(By.ID, "account-create-submit").click()
        box = until(driver, lambda d: d.find_elements(By.ID, "account-new-token"))[0]
        assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth;", box)
        driver.find_element(By.ID, "account-token-copy").click()
        until(driver, lambda d: d.find_element(By.ID, "account-token-value-status").text)
        assert driver.find_element(By.ID, "account-token-value-status").text in ("Copied.", "Selected: press Ctrl+C to copy.")
        assert axe_violations(driver, AXE.read_text()) == []  # with a token listed (its Revoke button) too
    finally:
        driver.quit()


def test_moving_between_dash_pages_redraws_the_header(commons, tmp_path):
    """A header link to another Dash page swaps the page without a load, and the header is asked
    for again (its unread count as it is now: tests/portal/test_notifications.py)."""
    from selenium.webdriver.common.by import By

    service, portal, _, _ = commons
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, "tom")
        settled(driver)
        driver.execute_script("""window.asked = []; const fetch_ = window.fetch;
            window.fetch = (url, init) => { window.asked.push(String(init && init.body)); return fetch_(url, init); };""")
        driver.find_element(By.ID, "shell-runs").click()
        until(driver, lambda d: d.execute_script("return location.pathname;") == "/runs" and d.execute_script(
            "return window.asked.some(body => body.includes('site-header.children'));"))
        assert driver.execute_script("return window.asked !== undefined;")  # no page load on the way
        until(driver, lambda d: d.find_elements(By.ID, "shell-signout"))
    finally:
        driver.quit()


PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
# what stands out of a 390 px page: the page wider than the screen, or a header link off it
OFF_SCREEN = """
const width = document.documentElement.clientWidth, out = [];
if (document.documentElement.scrollWidth > width) out.push("the page is " + document.documentElement.scrollWidth + " px wide");
document.querySelectorAll("header [id^=shell-]").forEach(e => {
  const box = e.getBoundingClientRect();
  if (box.left < 0 || box.right > width) out.push(e.id + " ends at " + Math.round(box.right) + " px");
});
return out;
"""


def test_on_a_phone_every_page_fits_the_screen(commons, tmp_path):
    """At 390 px (a phone, as Chromium emulates one) the header wraps onto lines, panels stack and
    wide tables scroll inside their card: no page is wider than the screen, no header link off it."""
    service, portal, _, deep = commons
    driver = chromium(tmp_path / "profile")
    try:
        sign_in(driver, portal, service.data_dir, "ada")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        problems = []
        for path in ["/explore", "/runs", "/register", "/admin/users"] + deep:
            driver.get(portal.url + path)
            settled(driver)
            problems += [f"{path}: {problem}" for problem in driver.execute_script(OFF_SCREEN)]
    finally:
        driver.quit()
    assert not problems, "\n".join(problems)
