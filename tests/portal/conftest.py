"""Fixtures for the portal's in-process tests.

- demo:       the demo commons (scale 0.1) submitted to the `server` fixture's service.
- app:        the portal (create_app) talking to `server`, with the demo accounts (ana, tom, ada)
              created in the service and their passwords in the data dir's demo-passwords.txt.
- portal:     a Flask test client of `app`, signed in as nobody.
- sign_in:    sign_in(client, user="ana", password=None) -> the response of a real form POST
              (CSRF token read from the form; the demo password from demo-passwords.txt).
- tom:        a Flask test client signed in as the demo technician (write access), over `demo`.
- place:      {project, experiment, sample}: where in the demo commons a new measurement can go.
- dash_call:  dash_call(client, output, inputs, state=()) -> the JSON a Dash callback answers
              (None for "no update"), posted to /_dash-update-component as the page's script
              would (same Origin). A wildcard (ALL) input or state is a list of such dicts.
"""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from labcommons.demo import create_demo
from labcommons.demo.accounts import PASSWORDS_FILE, ensure_demo_accounts, read_passwords
from portal import create_app

ORIGIN = "http://localhost"


@pytest.fixture
def demo(server, admin):
    create_demo(admin, server.settings.storage_root, scale=0.1,
                passwords_path=server.settings.data_dir / PASSWORDS_FILE)


@pytest.fixture
def app(server, admin):
    projects = [node["submitter_id"] for node in admin.nodes("project")]
    ensure_demo_accounts(admin, server.settings.data_dir / PASSWORDS_FILE, projects)
    settings = dataclasses.replace(server.settings, port=server.bound_port())
    return create_app({"SETTINGS": settings, "TESTING": True})


@pytest.fixture
def portal(app):
    return app.test_client()


def demo_passwords(data_dir) -> dict[str, str]:
    return read_passwords(data_dir / PASSWORDS_FILE)


def csrf_token(client, path: str = "/signin") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.fixture
def sign_in(server):
    def sign_in(client, user: str = "ana", password: str | None = None, next_path: str = ""):
        password = demo_passwords(server.settings.data_dir)[user] if password is None else password
        query = f"?next={next_path}" if next_path else ""
        return client.post("/signin" + query, data={"csrf_token": csrf_token(client), "username": user,
                                                    "password": password})
    return sign_in


@pytest.fixture
def tom(portal, sign_in, demo):
    assert sign_in(portal, "tom").status_code == 302
    return portal


@pytest.fixture
def place(admin, demo) -> dict:
    sample = next(admin.nodes("sample"))
    experiment = next(admin.nodes("experiment", sample["project_id"]))
    return {"project": sample["project_id"], "experiment": experiment["submitter_id"],
            "sample": sample["submitter_id"]}


@pytest.fixture
def dash_call():
    def call(client, output: str, inputs: list[dict], state: list[dict] = (), origin: str = ORIGIN,
             changed: int = 0):
        """Find the callback whose output names `output`, post to it as if inputs[changed] changed,
        return its response JSON."""
        deps = client.get("/_dash-dependencies").get_json()
        spec = next(d for d in deps if output in d["output"])
        outputs = [_prop(o) for o in spec["output"].strip(".").split("...")]
        body = {"output": spec["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": inputs, "state": list(state),
                "changedPropIds": [_changed(inputs[changed])] if inputs else []}
        response = client.post("/_dash-update-component", json=body, headers={"Origin": origin})
        assert response.status_code in (200, 204), response.get_data(as_text=True)[:2000]
        answer = response.get_json() if response.status_code == 200 else None
        return answer if answer and answer.get("response") else None
    return call


def _prop(text: str) -> dict:
    target, _, prop = text.rpartition(".")
    prop = prop.split("@")[0]  # allow_duplicate outputs carry a hash suffix
    return {"id": target, "property": prop}


def _changed(first) -> str:
    """The prop id Dash names as the trigger (for a wildcard input, its first component)."""
    item = first[0] if isinstance(first, list) else first
    id_ = item["id"] if isinstance(item["id"], str) else json.dumps(item["id"], sort_keys=True, separators=(",", ":"))
    return f"{id_}.{item['property']}"
