"""Attacks on the sandbox, from inside: code in the kernel of a real local notebook server (signed in
through the portal as an analyst with a grant on one project) and a real workflow step of a run in
one project try to unmount the masking mounts and read the commons' secrets, remount the host
writable, regain capabilities through a user namespace, trace or signal host processes, and read
a project they have no grant on (tests/security/attacks.py). Each must fail, and nothing leak."""
from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ground import bwrap
from tests.hub.conftest import csrf_token, hub_commons, signed_in  # noqa: F401 -- the real commons and hub
from tests.hub.test_handoff import open_in_jupyter
from tests.hub.test_sandbox import need_sandbox, run_in_kernel
from tests.stored import with_spectra
from workflow_templates.engines.local import LocalEngine

ATTACKS = Path(__file__).resolve().with_name("attacks.py")
NO_CAPS = "0000000000000000"


def attack_code(given: dict) -> str:
    """Kernel code that runs the attacks as a child process and prints what they gave."""
    return (f"import subprocess, sys; print(subprocess.run([sys.executable, {str(ATTACKS)!r}, "
            f"{json.dumps(given)!r}], capture_output=True, text=True, check=True).stdout)")


def assert_held(result: dict, data_dir: Path, marker: Path, secrets: list[str]) -> None:
    """Every escape failed, the process is no one in particular, and no secret came out."""
    tries, seen = result["tries"], result["seen"]
    for name in ("umount_data", "umount_tmp", "umount_storage", "remount", "remount_data", "write_host",
                 "unshare", "unshare_root", "unshare_mount", "secret", "foreign"):
        assert tries[name]["code"] != 0, (name, tries[name])
    assert not marker.exists()                                          # nothing written on the host
    text = json.dumps(result)
    assert not any(secret in text for secret in secrets)                # no key, token or hub secret
    assert seen["uid"] != 0 and seen["euid"] != 0 and seen["gid"] != 0 and 0 not in seen["groups"]
    assert set(seen["caps"].values()) == {NO_CAPS}, seen["caps"]       # no capability, none to gain
    assert seen["no_new_privs"] == "1"
    assert seen["data_dir"] and not {"secret.key", "admin.token", "hub", "metadata.duckdb"} & set(seen["data_dir"])
    assert seen["ptrace"] == {"1": 1, **{str(p): 3 for p in seen["kill"]}}  # EPERM on its init, ESRCH beyond
    assert len(seen["ptrace_bwrap"]) == 2 and set(seen["ptrace_bwrap"].values()) == {1}, seen["ptrace_bwrap"]
    assert set(seen["kill"].values()) == {"ProcessLookupError"}, seen["kill"]
    assert not any("jupyterhub" in c and "-f" in c or "metadata serve" in c for c in seen["processes"].values())
    assert len(seen["processes"]) < 12, seen["processes"]              # the sandbox's own processes only


def secrets_of(data_dir: Path) -> list[str]:
    files = [data_dir / "secret.key", data_dir / "admin.token", *sorted((data_dir / "hub").glob("*"))]
    values = [f.read_text(errors="replace").strip() for f in files if f.is_file() and f.stat().st_size < 4096]
    return [v for v in values if len(v) >= 16]  # keys and tokens, not the pid files


def two_projects(admin, storage: Path) -> tuple[str, str]:
    """(a project with measurements, another project), each folder holding a probe file."""
    ids = sorted(p["submitter_id"] for p in admin.nodes("project"))
    with_data = with_spectra(admin)["project_id"]  # a measurement there opens in Jupyter
    other = next(p for p in ids if p != with_data)
    for project in (with_data, other):
        (storage / project).mkdir(exist_ok=True)
        (storage / project / "sandbox-probe.txt").write_text(f"raw data of {project}")
    return with_data, other


def test_a_notebook_server_holds_against_its_kernel(hub_commons, signed_in):  # noqa: F811
    need_sandbox()
    service, portal, hub, admin = hub_commons
    data = service.data_dir.resolve()
    granted, foreign = two_projects(admin, data / "storage")
    user, password = f"eve{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin.save_account(user, password, ["analyst"], {granted: "read"})
    measurement = with_spectra(admin, granted)
    open_in_jupyter(portal, signed_in(user, password), {"kind": "measurement", "project": granted,
                                                        "submitter_id": measurement["submitter_id"]})
    foreign_file = data / "storage" / foreign / "sandbox-probe.txt"
    marker = Path(f"/var/tmp/labcommons-escaped-{uuid.uuid4().hex}")
    given = {"data_dir": str(data), "storage": str(data / "storage"), "foreign": str(foreign_file),
             "host_pids": [hub.process.pid, service.process.pid, os.getpid()], "marker": str(marker)}
    result = json.loads(run_in_kernel(hub, user, attack_code(given)))

    assert_held(result, data, marker, secrets_of(data))
    assert result["seen"]["storage"] == [granted]                     # exactly the projects it may read
    assert foreign_file.exists() and f"raw data of {foreign}" not in json.dumps(result)
    assert result["seen"]["data_dir"] == ["notebooks", "storage"]


def test_a_revoked_grant_is_gone_when_the_server_next_starts(hub_commons, signed_in):  # noqa: F811
    """Revoked on the admin page, which offers to stop the user's server: the next server lacks it."""
    need_sandbox()
    service, portal, hub, admin = hub_commons
    data = service.data_dir.resolve()
    kept, revoked = two_projects(admin, data / "storage")
    user, password = f"rex{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin.save_account(user, password, ["analyst"], {kept: "read", revoked: "read"})
    session = signed_in(user, password)
    context = {"kind": "measurement", "project": kept,
               "submitter_id": with_spectra(admin, kept)["submitter_id"]}
    listing = f"import os; print(sorted(os.listdir({str(data / 'storage')!r})))"
    open_in_jupyter(portal, session, context)
    assert run_in_kernel(hub, user, listing).strip() == repr(sorted([kept, revoked]))

    # the administrator revokes on the admin page, which offers to stop the server, and stops it
    ada = signed_in("ada")
    page = ada.get(f"{portal.url}/admin/users", timeout=30).text
    answer = ada.post(f"{portal.url}/admin/users/{user}/grants/{revoked}/revoke", timeout=30,
                      data={"csrf_token": csrf_token(page)})
    assert answer.ok and f"{user} no longer has access to {revoked}." in answer.text
    assert f'action="/admin/users/{user}/server/stop"' in answer.text
    stopped = ada.post(f"{portal.url}/admin/users/{user}/server/stop", timeout=30,
                       data={"csrf_token": csrf_token(answer.text)})
    assert stopped.ok and f"{user}&#39;s notebook server is stopping" in stopped.text, stopped.text[:2000]
    assert revoked not in next(a for a in admin.accounts() if a.user == user).grants
    deadline = time.monotonic() + 60
    while hub.api("GET", f"/users/{user}").json()["servers"] and time.monotonic() < deadline:
        time.sleep(0.3)
    open_in_jupyter(portal, session, context)
    assert run_in_kernel(hub, user, listing).strip() == repr([kept])


STEP = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: attack}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: python, command: [python, %s, '%s']}
"""


def test_a_workflow_step_holds_against_its_program(tmp_path, monkeypatch):
    need_sandbox()
    monkeypatch.setenv("LABCOMMONS_SECRET_KEY", "the-signing-key-in-the-workers-environment")
    data = tmp_path / "data"
    storage = data / "storage"
    for project in ("granted", "foreign"):
        (storage / project / "m1").mkdir(parents=True)
        (storage / project / "m1" / "a.imzML").write_text(f"spectra of {project}")
    (data / "secret.key").write_text("the-signing-key-" + uuid.uuid4().hex)
    (data / "secret.key").chmod(0o600)
    output = storage / "granted" / "runs" / "r1" / "outputs"
    output.mkdir(parents=True)
    marker = Path(f"/var/tmp/labcommons-escaped-{uuid.uuid4().hex}")
    given = {"data_dir": str(data.resolve()), "storage": str(storage.resolve()),
             "foreign": str((storage / "foreign" / "m1" / "a.imzML").resolve()),
             "host_pids": [os.getpid(), os.getppid()], "marker": str(marker)}
    engine = LocalEngine(storage, storage / "work", hidden=(data,))
    handle = engine.start(textwrap.dedent(STEP % (ATTACKS, json.dumps(given))), run_id="r1",
                          sees={"read": [storage / "granted"], "write": [output]})
    assert handle.wait(120) == "Succeeded", handle.status()["message"]
    node = handle.status()["nodes"][handle.status()["root"]]
    result = json.loads(node["outputs"]["result"])

    assert_held(result, data, marker, [(data / "secret.key").read_text(), "the-signing-key-in-the-workers-environment"])
    assert not any(name.startswith(("LABCOMMONS_", "JUPYTERHUB_")) for name in result["seen"]["environment"])
    assert result["seen"]["storage"] == ["granted", "work"]  # its project; the runs dir holds only its own
    assert result["seen"]["data_dir"] == ["storage"] and "spectra of foreign" not in json.dumps(result)


def test_a_step_cannot_make_the_engine_read_for_it(tmp_path):
    """An output that links out of the step's directories is refused, not read by the engine."""
    need_sandbox()
    secret = tmp_path / "secret.key"
    secret.write_text("the-signing-key")
    secret.chmod(0o600)
    engine = LocalEngine(tmp_path / "storage", tmp_path / "runs")
    handle = engine.start(textwrap.dedent(f"""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {{name: link}}
        spec:
          entrypoint: main
          templates:
          - name: main
            container: {{image: alpine, command: [sh, -c, "ln -s {secret} /tmp/out"]}}
            outputs:
              parameters: [{{name: v, valueFrom: {{path: /tmp/out}}}}]
              artifacts: [{{name: a, path: /tmp/out}}]
        """))
    assert handle.wait(60) == "Error"
    assert "leads out of the step's directories" in handle.status()["message"] + json.dumps(handle.status())
    assert "the-signing-key" not in json.dumps(handle.status())
    assert not any(p.is_file() and p.read_text() == "the-signing-key"
                   for p in (tmp_path / "storage").rglob("*"))



WORKER_STEP = """
import json, os, pathlib, sys
storage, imzml, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
def read(path):
    try:
        return open(path).read()
    except OSError as error:
        return type(error).__name__
(out / "seen.json").write_text(json.dumps({
    "storage": sorted(os.listdir(storage)), "input": imzml.read_bytes().decode(), "uid": os.getuid(),
    "foreign": read(storage / "other-project" / "m.imzML"), "key": read(storage.parent / "secret.key"),
    "notebooks": read(storage.parent / "notebooks" / "ana" / "private.ipynb")}))
"""


@pytest.fixture
def settings(settings, tmp_path):
    """The service's settings with one template whose step reports what it sees of the storage."""
    from tests.workflows.runs.conftest import template
    document = template()
    document["metadata"]["name"] = "what-it-sees"
    step = document["spec"]["templates"][1]["container"]
    step["command"] = ["python", "-c", WORKER_STEP]
    step["args"] = [str(settings.storage_root.resolve()), "{{workflow.parameters.imzml}}",
                    "{{workflow.parameters.output-dir}}"]
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "what-it-sees.yaml").write_text(yaml.safe_dump(document))
    return dataclasses.replace(settings, templates_dir=tmp_path / "templates")


def test_a_workers_step_sees_its_runs_project_only(settings, admin, project):
    """A run launched by the worker in one project: its step reads its input, and neither another
    project's file, nor the data dir's key, nor a user's notebook."""
    need_sandbox()
    from metadata import templates
    from tests.workflows.runs.conftest import submit_measurement
    from workflow_templates.worker import Worker

    storage = settings.storage_root
    (storage / project).mkdir(parents=True)
    (storage / project / "m.imzML").write_text("<imzML/> of the run's project")
    (storage / "other-project").mkdir()
    (storage / "other-project" / "m.imzML").write_text("raw data of another project")
    (settings.data_dir / "notebooks" / "ana").mkdir(parents=True)
    (settings.data_dir / "notebooks" / "ana" / "private.ipynb").write_text("ana's private notebook")
    bwrap.give(settings.data_dir / "notebooks" / "ana", bwrap.user(*settings.sandbox_user), recursive=True)
    (storage / project / "m.ibd").write_bytes(b"\0" * 10)
    submit_measurement(admin, project, "m", [{
        "type": "data_file", "submitter_id": f"m.{fmt}", "file_name": f"m.{fmt}", "data_format": fmt,
        "file_size": 10, "md5sum": "0" * 32, "storage_url": (storage / project / f"m.{fmt}").resolve().as_uri(),
        "measurements": {"submitter_id": "m"}} for fmt in ("imzML", "ibd")])
    run = admin.launch("what-it-sees", [admin.find(project, "m")["id"]]).run
    worker = Worker(admin, templates.load(settings.templates_dir), storage, name="w-sandbox", capacity=1)
    deadline = time.monotonic() + 60
    while admin.run(run.id).status not in ("succeeded", "failed") and time.monotonic() < deadline:
        worker.tick()
        time.sleep(0.1)
    done = admin.run(run.id)
    assert done.status == "succeeded", f"{done.status}: {done.message}"
    seen = json.loads(next(worker.output_dir(done).glob("seen.json")).read_text())
    assert seen["input"] == "<imzML/> of the run's project" and seen["uid"] != 0
    assert project in seen["storage"] and "other-project" not in seen["storage"]
    assert {seen["foreign"], seen["key"], seen["notebooks"]} <= {"FileNotFoundError", "PermissionError"}
