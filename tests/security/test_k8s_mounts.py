"""Attacks on the raw files a notebook pod on Kubernetes mounts (hub/kubespawner.py's mount hook):
the hook runs as the hub runs it, against a real portal serving /api/whoami over HTTP on loopback
and a real metadata service; KubeSpawner builds the pod without a cluster (tests/hub/test_kubespawner.py).
A project the user cannot read must never reach the pod; a spawn without a trusted answer fails."""
from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import socket
import threading

import pytest
from kubespawner import KubeSpawner
from werkzeug.serving import make_server

from metadata.auth import Tokens
from portal import create_app
from tests.hub.test_kubespawner import (Hub, User, kubernetes_mode, load_hub_module, no_cluster,  # noqa: F401
                                        pod_manifest, settings as hub_settings, validate_pod)
from tests.portal.test_whoami import personal_token

GRANTED, FOREIGN = "proj-granted", "proj-foreign"


@pytest.fixture
def portal_url(server, monkeypatch):
    """The portal over HTTP on loopback, where the hub's hook asks (LABCOMMONS_PORTAL_INTERNAL_URL)."""
    app = create_app({"SETTINGS": dataclasses.replace(server.settings, port=server.bound_port()), "TESTING": True})
    http_server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{http_server.server_port}"
    monkeypatch.setenv("LABCOMMONS_PORTAL_INTERNAL_URL", url)
    yield url
    http_server.shutdown()
    thread.join(timeout=30)


def spawns(token: str, *, between=None, times: int = 1) -> list[dict]:
    """The pods of `times` spawns of one spawner (the hub keeps one per user across its servers),
    calling between() after each but the last; made in one event loop, as in the hub."""
    async def run():
        spawner = KubeSpawner(config=hub_settings(), user=User(token), hub=Hub(), _mock=True)
        pods = []
        for n in range(times):
            pods.append(await pod_manifest(spawner, pre_spawn=True))
            if between and n < times - 1:
                between()
        return pods
    return asyncio.run(run())


def spawn_refused(token: str, reason: str, hook=None) -> None:
    """The spawn fails with the reason, and nothing of the storage claim was added to the spawner."""
    async def run():
        spawner = KubeSpawner(config=hub_settings(), user=User(token), hub=Hub(), _mock=True)
        with pytest.raises(RuntimeError, match=reason):
            await (hook(spawner) if hook else spawner.run_pre_spawn_hook())
        assert not [v for v in spawner.volumes if v.get("name") == "labcommons-storage"]
        assert not [m for m in spawner.volume_mounts if m.get("name") == "labcommons-storage"]
    asyncio.run(run())


def storage_of(pod: dict) -> tuple[list, list]:
    (container,) = pod["spec"]["containers"]
    return ([v for v in pod["spec"]["volumes"] if v["name"] == "labcommons-storage"],
            [m for m in container["volumeMounts"] if m["name"] == "labcommons-storage"])


def test_a_project_the_user_cannot_read_never_appears_in_the_pod(portal_url, server, admin):
    token, _ = personal_token(server, admin, "ana", {GRANTED: "read"})
    (pod,) = spawns(token)
    validate_pod(pod)  # the mounts are valid for the Kubernetes schema the deploy tests use
    volumes, mounts = storage_of(pod)
    assert volumes == [{"name": "labcommons-storage", "persistentVolumeClaim": {
        "claimName": "labcommons-storage-notebooks", "readOnly": True}}]
    assert mounts == [{"name": "labcommons-storage", "mountPath": f"/var/lib/labcommons/storage/{GRANTED}",
                       "subPath": GRANTED, "readOnly": True}]
    assert FOREIGN not in json.dumps(pod)


def test_a_revoked_grant_is_gone_when_the_server_next_starts(portal_url, server, admin):
    token, _ = personal_token(server, admin, "ana", {GRANTED: "read", FOREIGN: "read"})
    before, pod = spawns(token, between=lambda: admin.set_grant("ana", FOREIGN, ""), times=2)
    assert {m["subPath"] for m in storage_of(before)[1]} == {GRANTED, FOREIGN}
    assert [m["subPath"] for m in storage_of(pod)[1]] == [GRANTED]
    assert FOREIGN not in json.dumps(pod)


@pytest.mark.parametrize("kind", ["forged", "revoked", "missing"])
def test_a_bad_token_gets_no_server_and_no_mount(kind, portal_url, server, admin):
    token, token_id = personal_token(server, admin, "ana", {GRANTED: "read"})
    if kind == "forged":  # claims every project, signed with another key
        token, _ = Tokens("not-the-commons-key-" + "x" * 32).mint("ana", ["admin"], {FOREIGN: "write"})
    elif kind == "revoked":  # signed out everywhere: the portal's grant has ended
        admin.sign_out_everywhere("ana")
    else:
        token = ""
    spawn_refused(token, "no notebook server for ana")


def test_an_unreachable_portal_refuses_the_spawn(monkeypatch, server, admin):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("LABCOMMONS_PORTAL_INTERNAL_URL", f"http://127.0.0.1:{port}")
    token, _ = personal_token(server, admin, "ana", {GRANTED: "read"})
    spawn_refused(token, "did not answer")


def test_the_charts_hub_without_the_portals_address_refuses_every_spawn(monkeypatch):
    monkeypatch.delenv("LABCOMMONS_PORTAL_INTERNAL_URL", raising=False)
    # the hook as the chart's hub has it: hub/kubespawner.py alone, the address from hub.extraEnv
    spawn_refused("tok-ana", "LABCOMMONS_PORTAL_INTERNAL_URL is not set", hook=load_hub_module()["mount_projects"])


class Answer(http.server.BaseHTTPRequestHandler):
    """A portal (misconfigured, or not the portal) answering a fixed body."""
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("body", [{"projects": [f"../{FOREIGN}"]}, {"projects": [GRANTED, "."]},
                                  {"projects": "everything"}, {"user": "ana"}, "not json"])
def test_an_answer_that_is_not_a_list_of_project_ids_refuses_the_spawn(body, monkeypatch):
    handler = type("Fixed", (Answer,), {"body": (body if isinstance(body, str) else json.dumps(body)).encode()})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as fake:
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        monkeypatch.setenv("LABCOMMONS_PORTAL_INTERNAL_URL", f"http://127.0.0.1:{fake.server_port}")
        try:
            spawn_refused("tok-ana", "cannot learn which projects they may read")
        finally:
            fake.shutdown()
