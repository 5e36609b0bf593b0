"""Fixtures for the hub tests: one real commons with a real JupyterHub.

- hub_commons: (service, portal, hub, admin client), one for the session (a hub start costs
               seconds), as child processes on loopback over a demo
               commons (scale 0.1): the metadata service, the portal (the OAuth2 provider) and
               JupyterHub with its configurable-http-proxy and the local spawner.
- signed_in:   signed_in(user) -> a requests.Session signed in to the portal as a demo user.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from labcommons.demo.accounts import PASSWORDS_FILE, read_passwords
from labcommons.demo import create_demo
from tests.e2e.browser import Portal
from tests.e2e.conftest import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "hub" / "jupyterhub_config.py"
READY_SECONDS = 60


@dataclass
class Hub:
    process: subprocess.Popen
    url: str
    log: Path
    token: str

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=30,
                                headers={"Authorization": f"token {self.token}"}, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def hub_environment(service: ServiceProcess) -> None:
    """Free ports for the hub, its API and the proxy's API, in the env every child inherits."""
    service.env.update(LABCOMMONS_HUB_PORT=str(free_port()), LABCOMMONS_HUB_API_PORT=str(free_port()),
                       LABCOMMONS_HUB_PROXY_API_PORT=str(free_port()), LABCOMMONS_HUB_IDLE_TIMEOUT_SECONDS="600")


def start_hub(service: ServiceProcess, portal: Portal) -> Hub:
    env = dict(service.env, LABCOMMONS_PORTAL_URL=portal.url)
    url = f"http://127.0.0.1:{env['LABCOMMONS_HUB_PORT']}"
    log = service.data_dir.parent / "hub.log"
    with log.open("ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], env=env,
                                   cwd=service.data_dir.parent, stdout=sink, stderr=subprocess.STDOUT)
    hub = Hub(process, url, log, "")
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"hub exited:\n{log.read_text()}"
        try:
            if requests.get(f"{url}/hub/api/", timeout=2).ok:
                hub.token = (service.data_dir / "hub" / "portal-service-token").read_text().strip()
                return hub
        except requests.RequestException:
            pass
        time.sleep(0.2)
    hub.stop()
    raise AssertionError(f"hub not ready in {READY_SECONDS}s:\n{log.read_text()}")


@contextmanager
def commons_with_hub(data_dir: Path, prepare=None, **env: str):
    """(service, portal, hub, admin client) as child processes on loopback over data_dir: the
    metadata service (with env added to every child's environment), prepare(admin, data_dir)
    run on it, the portal, and JupyterHub."""
    service = ServiceProcess(data_dir)
    hub_environment(service)
    service.env.update(env)
    service.start()
    admin = service.client()
    portal = hub = None
    try:
        if prepare:
            prepare(admin, data_dir)
        portal = Portal(service)
        hub = start_hub(service, portal)
        yield service, portal, hub, admin
    finally:
        if hub is not None:
            hub.stop()
        admin.close()
        if portal is not None:
            portal.stop()
        service.terminate()


def demo(admin, data_dir: Path) -> None:
    """A demo commons at scale 0.1, its accounts' passwords in the data dir."""
    create_demo(admin, data_dir / "storage", scale=0.1, passwords_path=data_dir / PASSWORDS_FILE)


@pytest.fixture(scope="session")
def hub_commons(tmp_path_factory):
    with commons_with_hub(tmp_path_factory.mktemp("hub") / "data", demo) as commons:
        yield commons


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, html[:500]
    return match.group(1)


@pytest.fixture(scope="session")
def signed_in(hub_commons):
    service, portal, _, _ = hub_commons
    passwords = read_passwords(service.data_dir / PASSWORDS_FILE)
    sessions = []

    def make(user: str, password: str | None = None) -> requests.Session:
        session = requests.Session()
        form = session.get(f"{portal.url}/signin", timeout=30).text
        answer = session.post(f"{portal.url}/signin", timeout=30, data={
            "csrf_token": csrf_token(form), "username": user, "password": password or passwords[user]})
        assert answer.ok and "/signin" not in answer.url, answer.text[:500]
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()
