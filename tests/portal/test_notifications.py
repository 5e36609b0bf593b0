"""Notifications in the portal: when a run someone launched ends, it is listed on their
notifications page with a link to the run, counted in the header, and can be marked read."""
import json

import pytest

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T
from tests.portal.conftest import csrf_token


@pytest.fixture
def ended_run(server, admin, tom) -> T.Run:
    """A run tom launched, failed by a worker."""
    return end_ims_qc(server, admin, status="failed", message="step convert failed")


def end_ims_qc(server, admin, **report) -> T.Run:
    """An ims-qc run tom launched, ended by a worker with this report (RunUpdate's fields)."""
    image = next(f for f in admin.nodes("data_file") if f["properties"]["data_format"] == "imzML")
    token, _ = server.tokens.mint("tom", ["technician"], {image["project_id"]: "write"})
    worker_token, _ = server.tokens.mint("worker", ["worker"], {})
    with MetadataClient("127.0.0.1", server.bound_port(), token) as as_tom, \
            MetadataClient("127.0.0.1", server.bound_port(), worker_token) as worker:
        run = as_tom.launch("ims-qc", [image["links"][0]["target_id"]]).run
        worker.claim_runs("w", 1)
        return worker.update_run(T.RunUpdate(run_id=run.id, **report))


def test_an_ended_run_is_listed_linked_and_counted_until_read(tom, ended_run):
    page = tom.get("/notifications").get_data(as_text=True)
    assert f'href="/runs/{ended_run.id}"' in page and "failed" in page and 'class="unread' in page
    layout = json.dumps(tom.get("/_dash-layout").get_json())
    assert "Notifications (1)" in layout
    response = tom.post("/notifications/read", data={"csrf_token": csrf_token(tom, "/notifications"),
                                                     "id": _ids(page)})
    assert response.status_code == 302
    page = tom.get("/notifications").get_data(as_text=True)
    assert 'class="read' in page and "notifications-mark-read" not in page
    assert "Notifications (1)" not in json.dumps(tom.get("/_dash-layout").get_json())


def test_moving_to_another_dash_page_redraws_the_headers_count(tom, demo, server, admin, dash_call):
    layout = json.dumps(tom.get("/_dash-layout").get_json())  # the page was loaded before the run ended
    assert "Notifications (1)" not in layout
    end_ims_qc(server, admin, status="failed", message="step convert failed")
    where = [{"id": "_pages_location", "property": "pathname", "value": "/runs"}]
    loaded = dash_call(tom, "site-header.children", where,
                       state=[{"id": "header-path", "property": "data", "value": None}])
    assert "site-header" not in loaded["response"] and loaded["response"]["header-path"]["data"] == "/runs"
    moved = dash_call(tom, "site-header.children", where,
                      state=[{"id": "header-path", "property": "data", "value": "/explore"}])
    assert "Notifications (1)" in json.dumps(moved) and '"shell-signout"' in json.dumps(moved)


def test_marking_read_needs_the_forms_csrf_token(tom, ended_run):
    assert tom.post("/notifications/read", data={"id": ["x"]}).status_code == 400


def test_another_user_sees_none_of_them_and_cannot_mark_them(portal, sign_in, demo, ended_run, server, tom):
    page = tom.get("/notifications").get_data(as_text=True)
    ids = _ids(page)
    tom.post("/signout", data={"csrf_token": csrf_token(tom, "/notifications")})
    sign_in(portal, "ana")
    assert "notifications-none" in portal.get("/notifications").get_data(as_text=True)
    response = portal.post("/notifications/read", data={"csrf_token": csrf_token(portal, "/account"),
                                                        "id": ids})
    assert response.status_code == 400 and "not one of your notifications" in response.get_data(as_text=True)


def _ids(page: str) -> list[str]:
    import re
    return re.findall(r'name="id" value="([^"]+)"', page)


def test_a_run_that_failed_qc_says_so_in_its_notification_and_mail(server, admin, tom):
    end_ims_qc(server, admin, status="succeeded", outcome="failed",
               failed_checks=["peaks_mean 0.2222 (minimum 1)", "spectra 0 (minimum 1)"])
    page = tom.get("/notifications").get_data(as_text=True)
    assert "succeeded, QC failed: Mean peaks per spectrum 0.222 (minimum 1); Spectra 0 (minimum 1)" in page
    [mail] = (server.settings.data_dir / "outbox").glob("*.eml")
    body = mail.read_text()
    assert "\nQC failed: peaks_mean 0.2222 (minimum 1)\nQC failed: spectra 0 (minimum 1)\n" in body
