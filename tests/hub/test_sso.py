"""Single sign-on as a person meets it: a portal session opens JupyterHub without a second
sign-in, and the spawned single-user server holds the user's own metadata-service token."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import requests

from metadata.client import MetadataClient

pytestmark = pytest.mark.e2e


def wait_ready(hub, user: str, seconds: float = 90) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        server = hub.api("GET", f"/users/{user}").json().get("servers", {}).get("", {})
        if server.get("ready"):
            return server
        time.sleep(0.5)
    raise AssertionError(f"{user}'s server not ready in {seconds}s:\n{hub.log.read_text()[-3000:]}")


def server_environment(user: str, data_dir: Path) -> dict[str, str]:
    """The environment of the user's single-user server process (same OS user here) of the hub
    over the commons in data_dir (other hubs may run on the machine meanwhile)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"jupyterhub.singleuser" not in (proc / "cmdline").read_bytes():
                continue
            pairs = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
        if env.get("JUPYTERHUB_USER") == user and \
                Path(env.get("LABCOMMONS_DATA_DIR", "")).resolve() == data_dir.resolve():
            return env
    raise AssertionError(f"no single-user server process for {user}")


def test_a_portal_session_signs_in_to_the_hub_and_the_server_gets_the_users_token(hub_commons, signed_in):
    service, portal, hub, _ = hub_commons
    session = signed_in("ana")
    # the hub's login sends the browser to the portal, which answers at once: no second sign-in
    landed = session.get(f"{hub.url}/hub/login?next=%2Fhub%2Fhome", timeout=60)
    assert landed.ok, landed.text[:500]
    assert landed.url.startswith(f"{hub.url}/hub/home"), landed.url
    assert any(r.url.startswith(f"{portal.url}/oauth/authorize") for r in landed.history)
    user = hub.api("GET", "/users/ana").json()
    assert user["name"] == "ana" and user["auth_state"]["oauth_user"]["labcommons_token"]

    assert hub.api("POST", "/users/ana/server").status_code in (201, 202)
    wait_ready(hub, "ana")
    env = server_environment("ana", service.data_dir)
    assert env["LABCOMMONS_PORT"] == str(service.port)
    with MetadataClient(env["LABCOMMONS_HOST"], int(env["LABCOMMONS_PORT"]), env["LABCOMMONS_TOKEN"]) as client:
        assert client.whoami().user == "ana"
    # a running server asks the hub for the user's current token (the hub renews it past auth_refresh_age)
    user = requests.get(f"{env['JUPYTERHUB_API_URL']}/users/ana", timeout=30,
                        headers={"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}"}).json()
    assert user.get("auth_state"), user
    other = requests.get(f"{env['JUPYTERHUB_API_URL']}/users/tom", timeout=30,
                         headers={"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}"})
    assert other.status_code in (403, 404)  # only the user's own
    with MetadataClient(env["LABCOMMONS_HOST"], int(env["LABCOMMONS_PORT"]),
                        user["auth_state"]["oauth_user"]["labcommons_token"]) as client:
        assert client.whoami().user == "ana"
    notebooks = service.data_dir / "notebooks" / "ana"
    assert env["HOME"] == str(notebooks.resolve()) and notebooks.is_dir()


def test_the_idle_culler_runs_as_a_hub_service_with_the_configured_timeout(hub_commons):
    _, _, hub, _ = hub_commons
    culler = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).startswith(
        b"%s\0-m\0jupyterhub_idle_culler" % sys.executable.encode())]
    assert any(f"/proc/{hub.process.pid}" == f"/proc/{_parent(p)}" and b"--timeout=600" in _cmdline(p)
               for p in culler)


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def _parent(proc: Path) -> int:
    return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
