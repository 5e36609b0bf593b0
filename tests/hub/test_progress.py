"""Spawn progress through the portal (GET /jupyter/progress): the hub's own event stream for a
real spawn, relayed as the portal's hub service and cleaned, ending with ready or failed; refused
before any stream for someone without a session or a grant."""
from __future__ import annotations

import pytest
import requests

from portal.notebooks.progress import HUB_SLOW, hub_events, server_sent_events
from portal.notebooks.jupyter import Hub
from tests.hub.conftest import csrf_token
from tests.stored import with_spectra

pytestmark = pytest.mark.e2e
STREAM_SECONDS = 150


@pytest.fixture(scope="module")
def measurement(hub_commons) -> dict:
    _, _, _, admin = hub_commons
    node = with_spectra(admin)  # one without has nothing to open
    return {"kind": "measurement", "project": node["project_id"], "submitter_id": node["submitter_id"]}


def account(admin, name: str, grants: dict) -> str:
    admin.save_account(name, f"{name}-password-123", ["analyst"], grants)
    return f"{name}-password-123"


def start(portal, session, context: dict) -> None:
    """What the page does first: POST /jupyter/start (the hub answers at once, 202)."""
    token = csrf_token(session.get(f"{portal.url}/account", timeout=30).text)
    answer = session.post(f"{portal.url}/jupyter/start", json=context, timeout=60,
                          headers={"X-CSRFToken": token, "Origin": portal.url})
    assert answer.status_code == 200 and answer.json()["started"], answer.text[:500]


def progress(portal, session, context: dict) -> list[dict]:
    """The events of the portal's stream, read as EventSource would, until the portal ends it."""
    with session.get(f"{portal.url}/jupyter/progress", params=context, stream=True,
                     timeout=(10, STREAM_SECONDS), headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, response.text[:500]
        assert response.headers["Content-Type"].startswith("text/event-stream")
        response.encoding = "utf-8"
        return [e for e in server_sent_events(response.iter_lines(decode_unicode=True)) if e is not None]


def test_a_spawn_streams_the_hubs_events_in_order_ending_with_ready(hub_commons, signed_in, measurement):
    service, portal, hub, admin = hub_commons
    session = signed_in("uma", account(admin, "uma", {measurement["project"]: "read"}))
    start(portal, session, measurement)
    events = progress(portal, session, measurement)
    # the hub's own messages, from the request to the ready server, as plain text
    assert [e["message"] for e in events] == ["Server requested", "Spawning server...", "Server ready at /user/uma/"]
    assert [e["progress"] for e in events] == [0, 50, 100]
    assert events[-1]["ready"] and not any(e.get("failed") for e in events)
    assert all(set(e) <= {"progress", "message", "ready", "failed"} for e in events)  # no html_message, no url
    assert hub.api("GET", "/users/uma").json()["servers"][""]["ready"]
    # asked again once running, the stream says ready at once
    assert progress(portal, session, measurement) == [events[-1]]


def test_a_failed_spawn_ends_with_failed_and_the_hubs_message_and_retry_works(hub_commons, signed_in,
                                                                             measurement):
    service, portal, hub, admin = hub_commons
    session = signed_in("vic", account(admin, "vic", {measurement["project"]: "read"}))
    # a file where the user's notebook directory goes: the spawner cannot make it, so the spawn fails
    blocker = service.data_dir / "notebooks" / "vic"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    try:
        start(portal, session, measurement)
        events = progress(portal, session, measurement)
    finally:
        blocker.unlink()
    assert events[-1]["failed"] and not any(e.get("ready") for e in events)
    assert events[-1]["message"].startswith("Spawn failed:") and "File exists" in events[-1]["message"]
    status = session.get(f"{portal.url}/jupyter/status", params=measurement, timeout=30)
    assert status.status_code == 503 and "Retry" in status.json()["error"]  # the polling fallback agrees
    start(portal, session, measurement)  # what Retry does, now that the directory can be made
    assert progress(portal, session, measurement)[-1]["ready"]


def test_without_a_session_the_stream_is_refused(hub_commons, measurement):
    _, portal, _, _ = hub_commons
    answer = requests.get(f"{portal.url}/jupyter/progress", params=measurement, timeout=30, allow_redirects=False,
                          headers={"Accept": "text/event-stream"})
    assert answer.status_code == 302 and "/signin" in answer.headers["Location"]
    assert not answer.headers.get("Content-Type", "").startswith("text/event-stream")


def test_a_node_the_user_cannot_read_is_refused_with_the_services_reason(hub_commons, signed_in, measurement):
    _, portal, hub, admin = hub_commons
    session = signed_in("wes", account(admin, "wes", {}))
    answer = session.get(f"{portal.url}/jupyter/progress", params=measurement, timeout=30)
    assert answer.status_code == 404 and measurement["project"] in answer.json()["error"]  # unreadable: not there
    missing = session.get(f"{portal.url}/jupyter/progress", params=dict(measurement, kind="case"), timeout=30)
    assert missing.status_code == 404 and "nothing to open" in missing.json()["error"]
    assert hub.api("GET", "/users/wes").status_code == 404  # the hub was never asked



def test_the_relay_ends_at_its_time_limit_while_the_spawn_goes_on(hub_commons, signed_in, measurement):
    """A stream holds a portal thread, so it ends at its limit (here 0 s: after the hub's first
    write, an event or a keepalive)."""
    service, portal, hub, admin = hub_commons
    session = signed_in("xan", account(admin, "xan", {measurement["project"]: "read"}))
    start(portal, session, measurement)
    events = list(hub_events(Hub(hub.url, hub.token), "xan", seconds=0))
    assert len(events) == 2 and events[0] in (None, {"progress": 0, "message": "Server requested"})
    assert events[1] == {"progress": 100, "failed": True, "message": HUB_SLOW}
    assert progress(portal, session, measurement)[-1]["ready"]  # the spawn itself went on
