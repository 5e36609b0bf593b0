"""How the portal is served: large responses handed to the server's file wrapper, the precheck
that refuses bodies from their headers, and the LABCOMMONS_PORTAL_* limits. (The attacks on a
live portal are in tests/security/test_portal_starvation.py.)"""
from __future__ import annotations

import os

import pytest

from portal.intake import Request, precheck
from portal.registration.pages import upload_precheck
from ground.settings import SettingsError, load
from portal.server import Limits, connection_limit, limits
from tests.stored import with_spectra


class Recorder:
    """A wsgi.file_wrapper that notes where the file stood when it was handed over."""
    made: list["Recorder"] = []

    def __init__(self, file, block_size=8192):
        self.file, self.position = file, file.tell()
        Recorder.made.append(self)

    def __iter__(self):
        yield self.file.read()

    def close(self):
        self.file.close()


def handed_over(client, path: str, **headers):
    Recorder.made.clear()
    response = client.get(path, headers=headers, environ_overrides={"wsgi.file_wrapper": Recorder})
    return response, Recorder.made


def test_a_download_and_its_range_are_handed_to_the_servers_file_wrapper(portal, sign_in, admin, demo):
    sign_in(portal, "ana")
    file_id = next(admin.nodes("data_file"))["id"]
    whole, made = handed_over(portal, f"/files/{file_id}/download")
    assert whole.status_code == 200 and [m.position for m in made][-1:] == [0]
    part, made = handed_over(portal, f"/files/{file_id}/download", Range="bytes=100-199")
    assert part.status_code == 206 and made[-1].position == 100 and part.headers["Content-Length"] == "100"


def test_an_export_is_written_out_then_handed_to_the_servers_file_wrapper(portal, sign_in, demo):
    sign_in(portal, "ana")
    response, made = handed_over(portal, "/export/manifest.tsv?tab=file")
    assert response.status_code == 200 and made and made[-1].position == 0
    assert int(response.headers["Content-Length"]) == len(response.get_data()) > 0


SESSION = {"user": "ana", "roles": ["analyst"], "grants": {"p1": "write", "p2": "read"}, "token": "t"}


def check(path: str, length: int | None, session=None, query: str = "", limit: int = 1000):
    refusal = precheck(Request("POST", path, query, length, session), limit, lambda r: upload_precheck(r, limit))
    return refusal and (refusal.status, refusal.field)


@pytest.mark.parametrize("path,length,session,query,expected", [
    ("/register/uploads", 10, None, "project=p1", (401, "session")),
    ("/register/uploads", 10, SESSION, "project=p2", (403, "project")),
    ("/register/uploads", 10, SESSION, "project=p1", None),
    ("/register/uploads", 5000, SESSION, "project=p1", (413, "file")),
    ("/register/uploads", None, SESSION, "project=p1", (411, "Content-Length")),
    ("/register/header", 10, SESSION, "project=p2", (403, "project")),  # an imzML, as an upload
    ("/register/header", 5000, SESSION, "project=p1", (413, "file")),
    ("/register/commit", 10, None, "", (401, "session")),
    ("/register/commit", 5000, SESSION, "", (413, "Content-Length")),
    ("/register/commit", 10, SESSION, "", None),
    ("/signin", 200, None, "", None),
    ("/signin", 100_000, None, "", (413, "Content-Length")),
    ("/anything", 0, None, "", None),
])
def test_the_precheck_refuses_from_the_headers(path, length, session, query, expected):
    assert check(path, length, session, query) == expected


def test_an_admin_may_upload_to_any_project():
    assert check("/register/uploads", 10, dict(SESSION, roles=["admin"], grants={}), "project=p9") is None


def test_limits_come_from_the_settings_and_bad_values_are_named():
    assert limits(load({"LABCOMMONS_PORTAL_THREADS": "3", "LABCOMMONS_PORTAL_WORKERS": "2"})) == Limits(threads=3, workers=2)
    assert limits(load({})).workers == (os.cpu_count() or 1)  # default: one process per core
    with pytest.raises(SettingsError, match="LABCOMMONS_PORTAL_HEADER_SECONDS: 0 is too small"):
        load({"LABCOMMONS_PORTAL_HEADER_SECONDS": "0"})
    with pytest.raises(SettingsError, match="LABCOMMONS_PORTAL_WORKERS: -1 is not allowed"):
        load({"LABCOMMONS_PORTAL_WORKERS": "-1"})
    with pytest.raises(SettingsError, match="LABCOMMONS_PORTAL_PORT: 70000 is not a port number"):
        load({"LABCOMMONS_PORTAL_PORT": "70000"})
    assert connection_limit(10000, 1024) == (1024 - 256) // 3 and connection_limit(50, 1 << 20) == 50


def test_progress_streams_take_at_most_their_share_of_the_threads(app, portal, sign_in, admin, demo):
    sign_in(portal, "ana")
    node = with_spectra(admin)  # one without is refused before any stream
    context = {"kind": "measurement", "project": node["project_id"], "submitter_id": node["submitter_id"]}
    slots = app.extensions["labcommons_progress_streams"]
    taken = 0
    while slots.acquire(blocking=False):  # every slot held by streams still running
        taken += 1
    try:
        assert taken == 2  # a quarter of the default 8 threads
        refused = portal.get("/jupyter/progress", query_string=context)
        assert refused.status_code == 503 and "too many progress streams" in refused.get_json()["error"]
    finally:
        for _ in range(taken):
            slots.release()
    finished = portal.get("/jupyter/progress", query_string=context)  # no hub here: it says so, and ends
    assert finished.status_code == 200 and b'"failed": true' in finished.get_data()
    finished.close()  # as the server closes a finished response
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)  # the finished stream gave its slot back
    slots.release()
    slots.release()
