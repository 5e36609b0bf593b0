"""A local notebook server runs in a bubblewrap sandbox: code in its kernel sees its own notebook
directory and the storage folders its user may read (ada, an admin: all of them), and neither the
commons' keys and tokens, nor the hub's secrets, nor other users' notebooks, nor other processes.
Checked by running code in a real kernel of a real server, over the server's REST and websocket
API as the portal's hub service; the attacks are tests/security/test_sandbox.py's."""
from __future__ import annotations

import json
import os
import uuid

import pytest
import requests
import websocket

from ground import bwrap
from ground.settings import Settings
from tests.hub.test_handoff import open_in_jupyter
from tests.need import need
from tests.stored import with_spectra

pytestmark = pytest.mark.e2e

PROBE = """
import json, os
from pathlib import Path
import labcommons
data, own = Path(os.environ["LABCOMMONS_DATA_DIR"]), Path.cwd()
storage = data / "storage"
print(json.dumps({
    "data_dir": sorted(p.name for p in data.iterdir()),
    "own_writable": os.access(own, os.W_OK), "own": str(own),
    "storage_files": sum(1 for _ in storage.rglob("*.imzML")), "storage_writable": os.access(storage, os.W_OK),
    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "tmp": os.listdir("/tmp"),
    "whoami": labcommons.connect().whoami().user,
}))
"""


def run_in_kernel(hub, user: str, code: str) -> str:
    """Execute code in a new kernel of the user's running server; its stdout."""
    base = f"{hub.url}/user/{user}/api"
    headers = {"Authorization": f"token {hub.token}"}
    kernel = requests.post(f"{base}/kernels", json={"name": "python3"}, headers=headers, timeout=60)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    socket = websocket.create_connection(f"{base.replace('http', 'ws', 1)}/kernels/{kernel_id}/channels",
                                         header=[f"Authorization: token {hub.token}"], timeout=60)
    try:
        msg_id = uuid.uuid4().hex
        socket.send(json.dumps({
            "header": {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False}}))
        out = []
        while True:
            message = json.loads(socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                out.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(message["content"]["traceback"]))
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return "".join(out)   # idle comes after all the request's output (execute_reply may not)
    finally:
        socket.close()
        requests.delete(f"{base}/kernels/{kernel_id}", headers=headers, timeout=60)


def need_sandbox() -> None:
    """Fail (CI) or skip unless the sandbox runs here as the hub and the worker would run it (one
    probe: each starts a sandbox)."""
    found, why_not = bwrap.find(bwrap.user(*Settings().sandbox_user))
    if found is None:
        need("bubblewrap", why_not)


def test_a_notebook_sees_its_own_directory_and_the_storage_root_only(hub_commons, signed_in):
    need_sandbox()
    service, portal, hub, admin = hub_commons
    measurement = with_spectra(admin)  # one without has nothing to open
    context = {"kind": "measurement", "project": measurement["project_id"], "submitter_id": measurement["submitter_id"]}
    open_in_jupyter(portal, signed_in("ada"), context)   # ada's server, started as a person starts it
    seen = json.loads(run_in_kernel(hub, "ada", PROBE))

    # the data dir shows only what the server needs: no keys, tokens, hub state or database
    assert seen["data_dir"] == ["notebooks", "storage"], seen["data_dir"]
    assert os.path.exists(service.data_dir / "admin.token")   # there on the host all the same
    assert seen["own"] == str((service.data_dir / "notebooks" / "ada").resolve()) and seen["own_writable"]
    assert seen["storage_files"] > 0 and not seen["storage_writable"]
    assert len(seen["processes"]) < 10, seen["processes"]    # its own processes, not the hub's or others'
    assert seen["whoami"] == "ada"                             # the service is reached as ever
    others = json.loads(run_in_kernel(hub, "ada", "import json, os; print(json.dumps(os.listdir("
                                      f"{str((service.data_dir / 'notebooks').resolve())!r})))"))
    assert others == ["ada"]                                   # no other user's notebooks


def spawner(tmp_path, sandbox: str):
    from types import SimpleNamespace

    from hub.spawner import LabcommonsLocalSpawner
    return LabcommonsLocalSpawner(user=SimpleNamespace(name="ada", url="/user/ada/"), sandbox=sandbox,
                                  notebooks_root=str(tmp_path / "notebooks"), hidden_dir=str(tmp_path),
                                  storage_root=str(tmp_path / "storage"))


def test_where_bubblewrap_cannot_run_on_refuses_and_auto_warns(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(bwrap, "find", lambda user=None: (None, "bubblewrap (bwrap) is not installed"))
    with pytest.raises(RuntimeError, match="LABCOMMONS_HUB_SANDBOX is on, but bubblewrap .* not installed"):
        spawner(tmp_path, "on").sandbox_command()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert spawner(tmp_path, "auto").sandbox_command() == []
    assert "ada's server runs without a sandbox" in caplog.text
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # a root hub never starts a server unsandboxed
    with pytest.raises(RuntimeError, match="the hub runs as root"):
        spawner(tmp_path, "auto").sandbox_command()
    assert spawner(tmp_path, "off").sandbox_command() == []


def test_the_sandbox_hides_the_data_dir_but_for_the_readable_projects_and_the_users_own(tmp_path, monkeypatch):
    monkeypatch.setattr(bwrap, "find", lambda user=None: (bwrap.Found("/usr/bin/bwrap"), ""))
    for project in ("p1", "p2"):
        (tmp_path / "storage" / project).mkdir(parents=True)
    argv = spawner(tmp_path, "on").sandbox_command(["p1", "absent"])
    own, storage = str(tmp_path / "notebooks" / "ada"), tmp_path / "storage"
    assert argv[0] == "/usr/bin/bwrap" and argv[-3:] == ["--", "/bin/sh", "-c"]
    outer = argv[:argv.index("--")]
    hidden = outer.index(str(tmp_path))
    assert outer[hidden - 1] == "--tmpfs" and outer.index("/tmp") < hidden   # /tmp first, then the data dir
    binds = [outer[i:i + 3] for i in range(hidden, len(outer)) if outer[i] in ("--ro-bind", "--bind")]
    assert binds == [["--ro-bind", str(storage / "p1"), str(storage / "p1")], ["--bind", own, own]]
    inner = argv[argv.index("/usr/bin/bwrap", 1):]
    assert {"--unshare-user", "--disable-userns", "--new-session"} <= set(inner) and "ALL" in inner
    assert ("setpriv" in argv) == (os.geteuid() == 0) and "--unshare-pid" in outer
    everything = spawner(tmp_path, "on").sandbox_command(None)   # admins: the whole storage root
    assert ["--ro-bind", str(storage), str(storage)] == everything[everything.index(str(storage)) - 1:][:3]
