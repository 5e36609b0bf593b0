"""Starving the portal, as an attacker would, against a real portal process: idle and silent
sockets, slowloris headers, slow readers of large downloads and exports, and anonymous bodies
sent to fill the temp directory. Signed-in users must be served throughout, and refused bodies
must never be read. The portal runs as 2 processes sharing its socket, each with 2 worker threads, a
limit of 64 connections and a 2-second header deadline, so each attack needs only a few dozen
sockets on loopback.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.security.live_portal import closed_by_server, cookie_header, live_portal, raw_request

WORKERS, THREADS, CONNECTIONS, HEADER_SECONDS = 2, 2, 64, 2
PROMPT_SECONDS = 5.0  # generous for a loaded CI machine; the old portal never answered
BIG_FILE_BYTES = 48 * 1024 * 1024  # past waitress's 16 MiB output buffer: a thread would wait on it


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    root = tmp_path_factory.mktemp("starvation")
    (root / "tmp").mkdir()
    env = {"LABCOMMONS_PORTAL_WORKERS": str(WORKERS), "LABCOMMONS_PORTAL_THREADS": str(THREADS),
           "LABCOMMONS_PORTAL_MAX_CONNECTIONS": str(CONNECTIONS),
           "LABCOMMONS_PORTAL_HEADER_SECONDS": str(HEADER_SECONDS), "TMPDIR": str(root / "tmp")}
    with live_portal(root / "data", **env) as live:
        live.tmp = root / "tmp"
        yield live


@pytest.fixture(scope="module")
def ana(commons):
    return commons.signed_in("ana")


def assert_prompt(session, url: str) -> None:
    """A signed-in page load and the sign-in page answer within PROMPT_SECONDS each."""
    for path in ("/signin", "/explore?tab=file"):
        session.close()  # a new connection each time, as a user arriving now would open
        started = time.monotonic()
        answer = session.get(url + path, timeout=PROMPT_SECONDS, headers={"Connection": "close"})
        assert answer.status_code == 200, (path, answer.status_code)
        assert time.monotonic() - started < PROMPT_SECONDS


def test_idle_and_silent_sockets_do_not_lock_out_signed_in_users(commons, ana):
    silent = [raw_request(commons) for _ in range(5 * CONNECTIONS)]  # waitress's default limit was 100
    slowloris = [raw_request(commons, "GET /signin HTTP/1.1\nHost: x\n") for _ in range(CONNECTIONS)]
    try:
        assert_prompt(ana, commons.url)
        # at the limit the oldest idle sockets were closed to make room; the rest go at the deadline
        for sock in silent + slowloris:
            assert closed_by_server(sock, HEADER_SECONDS + 3)
    finally:
        for sock in silent + slowloris:
            sock.close()


def test_a_slowloris_trickling_header_bytes_is_cut_off_at_the_deadline(commons, ana):
    sock = raw_request(commons, "GET /signin HTTP/1.1\n")
    started = time.monotonic()
    try:
        while time.monotonic() - started < HEADER_SECONDS + 4:
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # each byte is activity; the deadline still counts
            except (BrokenPipeError, ConnectionResetError):
                break
            if closed_by_server(sock, 0.3):
                break
        assert time.monotonic() - started < HEADER_SECONDS + 3, "the trickling connection was kept"
    finally:
        sock.close()
    assert_prompt(ana, commons.url)


def large_file(commons) -> str:
    """A data file ana may read, its stored bytes replaced by BIG_FILE_BYTES (sparse: no disk used)."""
    node = next(commons.admin.nodes("data_file"))
    path = Path(node["properties"]["storage_url"].removeprefix("file://"))
    with path.open("r+b") as handle:
        handle.truncate(BIG_FILE_BYTES)
    return node["id"]


def slow_readers(commons, session, requests_: list[str]) -> tuple[list[socket.socket], list[int], threading.Event]:
    """Sockets that sent these requests and read 1 KB every 100 ms (10 KB/s) until stopped."""
    cookie = cookie_header(session)
    socks = [raw_request(commons, f"GET {path} HTTP/1.1\nHost: x\nCookie: {cookie}\n{extra}\n", 4096)
             for path, extra in (r.split("|") for r in requests_)]
    received, stop = [0] * len(socks), threading.Event()

    def read(index: int, sock: socket.socket) -> None:
        sock.settimeout(1)
        while not stop.is_set():
            try:
                received[index] += len(sock.recv(1024))
            except OSError:
                return
            time.sleep(0.1)

    for index, sock in enumerate(socks):
        threading.Thread(target=read, args=(index, sock), daemon=True).start()
    return socks, received, stop


def test_slow_readers_of_downloads_and_exports_hold_no_worker_thread(commons, ana):
    file_id = large_file(commons)
    download = f"/files/{file_id}/download"
    wanted = ([f"{download}|Range: bytes=1000-\n"] * (2 * THREADS) + [f"{download}|"] * THREADS
              + ["/export/table.tsv?tab=file|", "/export/manifest.json?tab=case|"] * THREADS)
    socks, received, stop = slow_readers(commons, ana, wanted)
    try:
        time.sleep(1.5)  # every reader has its response started and its kernel buffers full
        assert_prompt(ana, commons.url)
        assert all(received), received  # and each slow reader is still being served
    finally:
        stop.set()
        for sock in socks:
            sock.close()


def temp_files(pid: int, tmp: Path) -> int:
    """Bytes in files under tmp that the portal's processes (the parent and the children serving)
    have open (waitress's spooled bodies are unlinked at once, so only /proc shows them)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(_open_under(int(p), tmp) for p in [pid, *children])


def _open_under(pid: int, tmp: Path) -> int:
    total = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith(str(tmp)):
                total += fd.stat().st_size
        except OSError:
            continue
    return total


def attack_with_a_body(commons, head: str, body_bytes: int) -> tuple[str, int, int]:
    """Send head, read the answer it gets before any body, then send up to body_bytes of body
    while watching the portal's temp files: (the status line, bytes of body the portal let in,
    the most bytes seen in its temp files)."""
    sock = raw_request(commons, head)
    sock.settimeout(5)
    try:
        status = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    except OSError:
        status = ""  # no answer without the body: the old portal read it first
    sent, most, chunk = 0, 0, b"\0" * (1024 * 1024)
    try:
        while sent < body_bytes:
            most = max(most, temp_files(commons.portal.process.pid, commons.tmp))
            sent += sock.send(chunk)
    except OSError:
        pass  # the portal closed the connection without reading the body
    most = max(most, temp_files(commons.portal.process.pid, commons.tmp))
    sock.close()
    return status, sent, most


UPLOAD = "POST /register/uploads?project={project}&file_name=run.ibd HTTP/1.1\nHost: x\n"


@pytest.mark.parametrize("user,extra,status", [
    ("", "Content-Length: 100000000\n", "401"),                 # anonymous: not signed in
    ("ana", "Content-Length: 100000000\n", "403"),              # analyst: no write grant
    ("", "Transfer-Encoding: chunked\n", "411"),                # no declared length
])
def test_a_refused_upload_body_is_never_read(commons, user, extra, status):
    project = next(commons.admin.nodes("project"))["submitter_id"]
    cookie = f"Cookie: {cookie_header(commons.signed_in(user))}\n" if user else ""
    line, sent, spooled = attack_with_a_body(commons, UPLOAD.format(project=project) + cookie + extra + "\n",
                                             100_000_000)
    assert status in line, line
    assert spooled == 0 and sent < 100_000_000 // 4  # the portal read none of it: its socket buffers filled


def test_an_anonymous_body_to_any_other_route_is_refused_unread(commons):
    head = "POST /register/commit HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 50000000\n\n"
    line, sent, spooled = attack_with_a_body(commons, head, 50_000_000)
    assert "401" in line and spooled == 0 and sent < 50_000_000 // 4
    sign_in = "POST /signin HTTP/1.1\nHost: x\nContent-Length: 5000000\n\n"  # public, but only a small form
    line, sent, spooled = attack_with_a_body(commons, sign_in, 5_000_000)
    assert "413" in line and spooled == 0


def test_a_signed_in_upload_with_a_write_grant_still_works(commons):
    tom = commons.signed_in("tom")
    project = next(p["submitter_id"] for p in commons.admin.nodes("project"))  # tom writes every demo project
    page = tom.get(f"{commons.url}/register", timeout=30).text
    token = page.split('data-csrf="', 1)[1].split('"', 1)[0]
    body = b"\1" * (2 * 1024 * 1024)  # past waitress's 512 KB in-memory buffer: spooled, then staged
    answer = tom.post(f"{commons.url}/register/uploads", params={"project": project, "file_name": "run.ibd"},
                      data=body, headers={"X-CSRFToken": token, "Content-Type": "application/octet-stream"},
                      timeout=60)
    assert answer.status_code == 201, answer.text
    assert answer.json()["file_size"] == len(body)


def serving_processes(commons) -> list[int]:
    pid = commons.portal.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_killed_serving_process_is_replaced_while_the_others_serve(commons, ana):
    """Last in this module: it kills one of the processes serving the portal."""
    before = serving_processes(commons)
    assert len(before) == WORKERS
    os.kill(before[0], 9)
    assert_prompt(ana, commons.url)  # the other process serves meanwhile; the socket stays open
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(set(serving_processes(commons)) - {before[0]}) < WORKERS:
        time.sleep(0.1)
    after = serving_processes(commons)
    assert len(after) == WORKERS and before[0] not in after and before[1] in after
    assert "was killed by SIGKILL" in commons.portal.log.read_text()
    assert_prompt(ana, commons.url)
