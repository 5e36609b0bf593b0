"""Shared pieces of the browser tests: Debian's Chromium, the portal as a child process, sign-in.

Selenium is always given Debian's chromedriver, so it never tries to download a browser.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


from labcommons.demo import create_demo
from labcommons.demo.accounts import PASSWORDS_FILE, read_passwords
from tests.e2e.conftest import ServiceProcess, free_port
from tests.need import need

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WAIT_SECONDS = 90  # a bound for failures only (every wait polls): a loaded machine starts the portal slowly


def require_chromium() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    need("Debian's chromium and chromium-driver", f"{CHROMIUM} or {CHROMEDRIVER} is missing; apt-get install them")


class Portal:
    """`labcommons portal serve` as a child process, over the service's data dir (extra_env: more
    variables for the portal, e.g. its LABCOMMONS_PORTAL_* limits)."""

    def __init__(self, service: ServiceProcess, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = service.data_dir.parent / "portal.log"
        env = dict(service.env, LABCOMMONS_PORTAL_PORT=str(self.port), **(extra_env or {}))
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "portal", "serve"],
                                            env=env, stdout=sink, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"portal exited:\n{self.log.read_text()}"
            try:
                with urllib.request.urlopen(self.url + "/signin", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"portal not ready in {WAIT_SECONDS}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def sign_in(driver, portal: Portal, data_dir: Path, user: str) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By

    passwords = read_passwords(data_dir / PASSWORDS_FILE)
    driver.get(portal.url + "/explore?tab=case")
    assert "/signin" in driver.current_url  # pages need a signed-in session
    driver.find_element(By.ID, "signin-username").send_keys(user)
    driver.find_element(By.ID, "signin-password").send_keys(passwords[user])
    driver.find_element(By.ID, "signin-submit").click()
    try:
        until(driver, lambda d: "/explore" in d.current_url and d.find_elements(By.CSS_SELECTOR, "#explore-table"))
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{user} not signed in to the explorer: at {driver.current_url}, showing:\n{body}\n"
                             f"console: {driver.get_log('browser')}") from None


@contextlib.contextmanager
def signed_in_chromium(commons, profile: Path, user: str, downloads: Path | None = None):
    """A headless Chromium signed in as user on demo_commons' portal; quit afterwards.
    With downloads, files land there and driver.downloads names it."""
    service, portal = commons[:2]
    driver = chromium(profile, downloads)
    driver.downloads = downloads
    try:
        sign_in(driver, portal, service.data_dir, user)
        yield driver
    finally:
        driver.quit()


def until(driver, condition, timeout: float = WAIT_SECONDS):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


@contextlib.contextmanager
def demo_commons(data_dir: Path):
    """(service, portal, admin client) as child processes over a demo commons at scale 0.1."""
    require_chromium()
    service = ServiceProcess(data_dir).start()
    admin = service.client()
    create_demo(admin, data_dir / "storage", scale=0.1, passwords_path=data_dir / PASSWORDS_FILE)
    portal = Portal(service)
    try:
        yield service, portal, admin
    finally:
        admin.close()
        portal.stop()
        service.terminate()


def chromium(profile: Path, downloads: Path | None = None):
    """Debian's headless Chromium through its own chromedriver (selenium downloads nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}", "--window-size=1400,1100"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # driver.get_log("browser"): the console
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def click(driver, by, value):
    """Click an element once it is there, scrolled into view first (as a person would see it)."""
    element = until(driver, lambda d: d.find_elements(by, value))[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()
    return element


def pick(driver, select_id: str, text: str) -> None:
    """Choose an option of a portal Select (a native select) by its label, or the start of it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    element = until(driver, lambda d: [e for e in d.find_elements(By.ID, select_id) if e.is_enabled()])[0]
    option = until(driver, lambda d: [o for o in element.find_elements(By.TAG_NAME, "option") if text in o.text])[0]
    Select(element).select_by_visible_text(option.text)
