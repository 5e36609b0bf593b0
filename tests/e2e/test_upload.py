"""`labcommons upload` and `lc.upload` against a real portal (waitress, with its precheck) served
on loopback over a real metadata service: a CLI upload killed midway and resumed, a checksum
mismatch, the Python call, a token without write access, and CSRF with bearer tokens."""
from __future__ import annotations

import builtins
import dataclasses
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

import labcommons
from labcommons.demo.accounts import PASSWORDS_FILE, ensure_demo_accounts, read_passwords
from labcommons.demo.imzml import write_imzml_pair
from metadata.idl import metadata_thrift as T
from portal import create_app, intake
from portal.server import Limits, make_server
from portal.registration.resumable import MAX_CHUNK_BYTES

MIB = 1024 * 1024


@pytest.fixture
def place(admin, project) -> dict:
    """A project with an experiment and a sample a new measurement can link to."""
    admin.submit(project, [{"type": "case", "submitter_id": "c1", "species": "mouse"},
                           {"type": "sample", "submitter_id": "s1", "organ": "kidney", "preparation": "FFPE",
                            "cases": {"submitter_id": "c1"}},
                           {"type": "experiment", "submitter_id": "e1", "protocol": "MALDI imaging"}])
    return {"project": project, "experiment": "e1", "sample": "s1"}


@pytest.fixture
def portal_url(server):
    """The portal served by waitress (one process, its precheck) on a free loopback port."""
    settings = dataclasses.replace(server.settings, port=server.bound_port())
    app = create_app({"SETTINGS": settings})
    served = make_server(app, "127.0.0.1", 0, Limits(threads=4), intake.for_app(app))
    threading.Thread(target=served.run, daemon=True).start()
    yield f"http://127.0.0.1:{served.effective_port}"
    served.close()


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    """A real imzML + ibd pair (about 2 MiB of ibd) under names that do not match."""
    write_imzml_pair(tmp_path / "instrument", "slide", 20, 18, seed=3)
    imzml, ibd = tmp_path / "instrument" / "slide.imzML", tmp_path / "instrument" / "slide.ibd"
    return imzml, ibd.rename(ibd.with_name("slide-raw.ibd"))


def fields_file(tmp_path: Path, place: dict, submitter_id: str) -> Path:
    path = tmp_path / "fields.json"
    path.write_text(json.dumps({"submitter_id": submitter_id, "experiment": place["experiment"],
                                "sample": place["sample"], "instrument": "timsTOF fleX", "ionisation": "MALDI",
                                "polarity": "positive"}))
    return path


def run_cli(server, token: str, *args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, LABCOMMONS_DATA_DIR=str(server.settings.data_dir), LABCOMMONS_TOKEN=token,
               LABCOMMONS_PORT=str(server.bound_port()))
    return subprocess.Popen([sys.executable, "-m", "labcommons.cli", "upload", "--no-progress", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def nothing_staged(server) -> bool:
    staging = server.settings.storage_root / ".staging"
    return not staging.exists() or not list(staging.iterdir())


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class Proxy:
    """A TCP forwarder on loopback counting the bytes clients send; `stall_after` stops forwarding
    (and reading) once that many have gone through, as a network that hangs midway."""

    def __init__(self, target: str):
        self.target = ("127.0.0.1", int(target.rsplit(":", 1)[1]))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent, self.stall_after, self.stalled = 0, None, threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(65536):
                if counted:
                    data = self._allowed(data)
                sink.sendall(data)
                if counted and self.stalled.is_set():
                    return  # read no more: the client's writes back up, as on a hung network
        except OSError:
            pass

    def _allowed(self, data: bytes) -> bytes:
        with self.lock:
            if self.stall_after is not None and self.sent + len(data) >= self.stall_after:
                data = data[:self.stall_after - self.sent]
                self.stalled.set()
            self.sent += len(data)
            return data

    def cut(self) -> None:
        """Drop every connection and count afresh, forwarding everything from now on."""
        for each in self.sockets:
            each.close()
        self.sockets, self.sent, self.stall_after = [], 0, None
        self.stalled.clear()


def test_a_cli_upload_killed_midway_resumes_sending_only_the_rest(tmp_path, server, client_for, place, pair,
                                                                 portal_url):
    imzml, ibd = pair
    token = client_for("tom", ["technician"], {place["project"]: "write"}).token
    proxy = Proxy(portal_url)
    proxy.stall_after = imzml.stat().st_size + int(1.5 * MIB)  # the imzML, then the ibd's first chunk and a half
    args = ("-p", place["project"], "--imzml", str(imzml), "--ibd", str(ibd), "--new",
            str(fields_file(tmp_path, place, "up-1")), "--portal", proxy.url, "--chunk-mib", "1")
    first = run_cli(server, token, *args)
    while not proxy.stalled.wait(0.05):
        assert first.poll() is None, first.communicate()
    first.kill()  # SIGKILL: no clean-up, as a closed laptop
    first.wait()
    proxy.cut()

    checkpoint = json.loads((ibd.parent / f".{ibd.name}.labcommons-upload").read_text())
    bearer = {"Authorization": f"Bearer {token}"}
    reached = int(requests.head(f"{portal_url}/api/uploads/{checkpoint['upload_id']}", headers=bearer)
                  .headers["Upload-Offset"])
    assert reached == MIB  # the chunk cut off midway is not counted
    with pytest.raises(T.NotFound):  # nothing registered while a file is incomplete
        server_measurement(server, place, "up-1")

    second = run_cli(server, token, *args)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    rest = ibd.stat().st_size - reached
    assert rest <= proxy.sent < rest + 64 * 1024  # only the rest, plus a few small requests
    assert f"resumed at byte {reached}" in out and "registered measurement up-1" in out
    files = {f["data_format"]: f for f in server_files(server, place, "up-1")}
    assert files["ibd"]["md5sum"] == md5(ibd) and files["imzML"]["md5sum"] == md5(imzml)
    assert files["ibd"]["file_name"] == "slide-raw.ibd"
    stored = server.settings.storage_root / place["project"] / "up-1" / "slide-raw.ibd"
    assert md5(stored) == md5(ibd)
    assert not (ibd.parent / f".{ibd.name}.labcommons-upload").exists()
    assert nothing_staged(server)


def test_a_connection_broken_midway_is_resumed_in_the_same_run(tmp_path, server, client_for, place, pair,
                                                                portal_url):
    imzml, ibd = pair
    token = client_for("tom", ["technician"], {place["project"]: "write"}).token
    proxy = Proxy(portal_url)
    proxy.stall_after = imzml.stat().st_size + int(1.5 * MIB)
    run = run_cli(server, token, "-p", place["project"], "--imzml", str(imzml), "--ibd", str(ibd), "--new",
                  str(fields_file(tmp_path, place, "up-3")), "--portal", proxy.url, "--chunk-mib", "1",
                  "--retries", "2")
    while not proxy.stalled.wait(0.05):
        assert run.poll() is None, run.communicate()
    proxy.cut()  # the network drops every connection; the client asks the offset and goes on
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    rest = ibd.stat().st_size - MIB
    assert rest <= proxy.sent < rest + 64 * 1024
    assert [f["md5sum"] for f in server_files(server, place, "up-3")] == [md5(imzml), md5(ibd)]


def server_measurement(server, place, submitter_id):
    from metadata.client import MetadataClient
    with MetadataClient("127.0.0.1", server.bound_port(), server.settings.admin_token_path.read_text()) as admin:
        return admin.find(place["project"], submitter_id)


def server_files(server, place, measurement):
    from metadata.client import MetadataClient
    with MetadataClient("127.0.0.1", server.bound_port(), server.settings.admin_token_path.read_text()) as admin:
        return [admin.find(place["project"], f"{measurement}.{fmt}")["properties"] for fmt in ("imzML", "ibd")]


def test_a_checksum_mismatch_is_refused_and_nothing_is_registered(server, client_for, place, portal_url):
    bearer = {"Authorization": f"Bearer {client_for('tom', ['technician'], {place['project']: 'write'}).token}"}
    api = f"{portal_url}/api/uploads"
    created = requests.post(api, params={"project": place["project"], "file_name": "x.ibd"},
                            headers={**bearer, "Upload-Length": "6"})
    assert created.status_code == 201
    upload = f"{api}/{created.json()['upload_id']}"
    wrong_chunk = requests.patch(upload, data=b"abc", headers={**bearer, "Upload-Offset": "0",
                                                                "X-Expected-MD5": "0" * 32})
    assert wrong_chunk.status_code == 400 and "md5sum: the file's MD5 is" in wrong_chunk.json()["error"]
    assert requests.head(upload, headers=bearer).headers["Upload-Offset"] == "0"
    assert requests.patch(upload, data=b"abc", headers={**bearer, "Upload-Offset": "0"}).status_code == 204
    late = requests.patch(upload, data=b"abc", headers={**bearer, "Upload-Offset": "0"})
    assert late.status_code == 409 and late.headers["Upload-Offset"] == "3"
    assert requests.patch(upload, data=b"def", headers={**bearer, "Upload-Offset": "3"}).status_code == 204
    refused = requests.post(f"{upload}/complete", json={"md5sum": "0" * 32}, headers=bearer)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith(f"md5sum: the file's MD5 as received is {hashlib.md5(b'abcdef').hexdigest()}")
    assert requests.head(upload, headers=bearer).status_code == 404
    assert nothing_staged(server)
    assert not (server.settings.storage_root / place["project"]).exists()


def test_the_python_call_attaches_files_to_an_existing_measurement(server, client_for, place, pair, portal_url):
    imzml, ibd = pair
    tom = client_for("tom", ["technician"], {place["project"]: "write"})
    written = tom.submit(place["project"], [{"type": "measurement", "submitter_id": "bulk-7", "instrument": "x",
                                             "ionisation": "MALDI", "polarity": "negative",
                                             "experiments": {"submitter_id": "e1"},
                                             "samples": {"submitter_id": "s1"}}])
    lc = labcommons.connect("127.0.0.1", server.bound_port(), tom.token, portal_url=portal_url)
    answer = lc.upload(place["project"], imzml, ibd, measurement=written.entities[0].id, progress=False,
                       chunk_bytes=512 * 1024)
    assert answer["registered"] == "bulk-7" and answer["href"] == f"/measurement/{place['project']}/bulk-7"
    assert [f["md5sum"] for f in server_files(server, place, "bulk-7")] == [md5(imzml), md5(ibd)]
    again = pytest.raises(labcommons.uploading.UploadError, lc.upload, place["project"], imzml, ibd,
                          measurement="bulk-7", progress=False)
    assert "'bulk-7' has its imzML data file already" in str(again.value)
    assert nothing_staged(server)


class Counted:
    """A binary file object that counts the bytes read through it into `tally`."""

    def __init__(self, raw, tally: list):
        self._raw, self._tally = raw, tally

    def read(self, *args) -> bytes:
        data = self._raw.read(*args)
        self._tally.append(len(data))
        return data

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer)
        self._tally.append(count or 0)
        return count

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._raw.close()


def count_reads(monkeypatch, name: str) -> dict[str, list[int]]:
    """Every file named `name` opened for binary reading in this process (the client's, and the
    in-process portal's through fsspec) wrapped in Counted: its real path -> the sizes read."""
    real, tallies = builtins.open, {}

    def opening(file, mode="r", *args, **kwargs):
        opened = real(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and Path(file).name == name and "r" in mode and "b" in mode:
            return Counted(opened, tallies.setdefault(os.path.realpath(file), []))
        return opened
    monkeypatch.setattr(builtins, "open", opening)
    monkeypatch.setattr(io, "open", opening)   # pathlib's Path.open
    return tallies


def test_the_ibd_is_read_once_for_its_checksum_and_its_upload(server, client_for, place, pair, portal_url,
                                                               monkeypatch):
    imzml, ibd = pair
    tallies = count_reads(monkeypatch, ibd.name)
    tom = client_for("tom", ["technician"], {place["project"]: "write"})
    lc = labcommons.connect("127.0.0.1", server.bound_port(), tom.token, portal_url=portal_url)
    given = {"submitter_id": "up-9", "experiment": "e1", "sample": "s1", "instrument": "x", "ionisation": "MALDI"}
    answer = lc.upload(place["project"], imzml, ibd, fields=given, progress=False, chunk_bytes=512 * 1024)
    read = {path: sum(sizes) for path, sizes in tallies.items()}   # before this test reads the file itself
    staged = [path for path in read if "/.staging/" in path]
    # the client: every byte once (sending, with its MD5 and the SHA-1 the imzML records), and the
    # 16-byte UUID before sending and again at the final check; the portal's commit: the UUID only
    assert read[os.path.realpath(ibd)] == ibd.stat().st_size + 2 * 16
    assert len(staged) == 1 and read[staged[0]] == 16
    sha1 = hashlib.sha1(ibd.read_bytes()).hexdigest()
    assert answer["registered"] == "up-9" and answer["files"][1]["digests"] == {"md5": md5(ibd), "sha1": sha1}


def test_a_changed_ibd_is_caught_by_its_checksum_sent_and_discarded_never_registered(
        tmp_path, server, client_for, place, pair, portal_url):
    imzml, ibd = pair
    changed = bytearray(ibd.read_bytes())
    changed[len(changed) // 2] ^= 0xFF   # the same UUID and size: only the SHA-1 tells
    ibd.write_bytes(bytes(changed))
    tom = client_for("tom", ["technician"], {place["project"]: "write"})
    lc = labcommons.connect("127.0.0.1", server.bound_port(), tom.token, portal_url=portal_url)
    given = {"submitter_id": "up-8", "experiment": "e1", "sample": "s1", "instrument": "x", "ionisation": "MALDI"}
    refused = pytest.raises(labcommons.uploading.UploadError, lc.upload, place["project"], imzml, ibd, fields=given,
                            progress=False)
    assert "slide-raw.ibd does not belong to slide.imzML (the files sent were discarded, nothing was " \
           "registered)" in str(refused.value) and "SHA-1: the imzML records" in str(refused.value)
    assert nothing_staged(server) and not (ibd.parent / f".{ibd.name}.labcommons-upload").exists()
    with pytest.raises(T.NotFound):
        server_measurement(server, place, "up-8")


def test_a_wrong_pair_is_refused_before_a_byte_is_sent_and_fields_left_out_come_from_the_header(
        tmp_path, server, client_for, place, pair, portal_url):
    imzml, ibd = pair
    write_imzml_pair(tmp_path / "other", "other", 4, 4, seed=5)
    tom = client_for("tom", ["technician"], {place["project"]: "write"})
    lc = labcommons.connect("127.0.0.1", server.bound_port(), tom.token, portal_url=portal_url)
    given = {"submitter_id": "up-4", "experiment": "e1", "sample": "s1", "instrument": "timsTOF fleX",
             "ionisation": "MALDI"}
    wrong = pytest.raises(labcommons.uploading.UploadError, lc.upload, place["project"], imzml,
                          tmp_path / "other" / "other.ibd", fields=given, progress=False)
    assert "other.ibd does not belong to slide.imzML (nothing was sent)" in str(wrong.value)
    assert "UUID" in str(wrong.value) and nothing_staged(server)
    assert not (tmp_path / "other" / ".other.ibd.labcommons-upload").exists()   # no upload was started
    assert lc.upload(place["project"], imzml, ibd, fields=given, progress=False)["registered"] == "up-4"
    stored = server_measurement(server, place, "up-4")["properties"]
    assert (stored["raster_width"], stored["raster_height"], stored["polarity"]) == (20, 18, "positive")
    assert stored["instrument"] == "timsTOF fleX"   # what the technician gave wins


def test_a_token_without_write_access_is_refused_naming_the_project(tmp_path, server, client_for, place, pair,
                                                                   portal_url):
    imzml, ibd = pair
    reader = client_for("rita", ["analyst"], {place["project"]: "read"}).token
    done = run_cli(server, reader, "-p", place["project"], "--imzml", str(imzml), "--ibd", str(ibd), "--new",
                   str(fields_file(tmp_path, place, "up-2")), "--portal", portal_url)
    _, err = done.communicate(timeout=120)
    assert done.returncode == 1
    assert f"rita has no write access to project '{place['project']}'" in " ".join(err.split())
    assert nothing_staged(server)


def test_bearer_routes_ignore_the_session_cookie_and_forms_keep_csrf(server, admin, place, portal_url):
    """Why the API may skip CSRF: it never reads the cookie a browser would add by itself."""
    ensure_demo_accounts(admin, server.settings.data_dir / PASSWORDS_FILE, [place["project"]])
    browser = requests.Session()
    form = browser.get(f"{portal_url}/signin").text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    password = read_passwords(server.settings.data_dir / PASSWORDS_FILE)["tom"]
    browser.post(f"{portal_url}/signin", data={"csrf_token": csrf, "username": "tom", "password": password})
    assert "labcommons_portal" in browser.cookies  # tom is signed in, with write access
    forged = browser.post(f"{portal_url}/api/uploads", params={"project": place["project"], "file_name": "x.ibd"},
                          headers={"Upload-Length": "3"})
    assert forged.status_code == 401 and "Authorization: give your token" in forged.json()["error"]
    body = browser.post(f"{portal_url}/api/register/commit", json={"project": place["project"], "uploads": []})
    assert body.status_code == 401
    token = admin.create_token("tom", ["technician"], {place["project"]: "write"}).token
    no_csrf = browser.post(f"{portal_url}/register/commit", json={"project": place["project"]},
                           headers={"Authorization": f"Bearer {token}"})
    assert no_csrf.status_code == 400 and "did not come from this site" in no_csrf.text
    anonymous = requests.post(f"{portal_url}/register/uploads", params={"project": place["project"],
                              "file_name": "x.ibd"}, data=b"abc", headers={"Authorization": f"Bearer {token}"})
    assert anonymous.status_code == 401  # the form's upload takes a session, never a bearer token


def test_the_precheck_refuses_api_bodies_from_the_headers():
    def check(method, length, bearer):
        found = intake.precheck(intake.Request(method, "/api/uploads/ab", "", length, None, bearer), 1000,
                                lambda r: None, lambda r: api_precheck(r, 1000))
        return found and (found.status, found.field)

    from portal.registration.api import precheck as api_precheck
    assert check("PATCH", 10, False) == (401, "Authorization")
    assert check("PATCH", MAX_CHUNK_BYTES, True) is None
    assert check("PATCH", MAX_CHUNK_BYTES + 1, True) == (413, "Content-Length")
    assert check("POST", 1001, True) == (413, "Content-Length")
    assert check("PATCH", None, True) == (411, "Content-Length")


def test_stale_uploads_are_swept(server, client_for, place, portal_url):
    from portal.objects import ObjectStore
    from portal.registration import resumable

    bearer = {"Authorization": f"Bearer {client_for('tom', ['technician'], {place['project']: 'write'}).token}"}
    created = requests.post(f"{portal_url}/api/uploads", params={"project": place["project"], "file_name": "a.ibd"},
                            headers={**bearer, "Upload-Length": "10"}).json()
    requests.patch(f"{portal_url}/api/uploads/{created['upload_id']}", data=b"12345",
                   headers={**bearer, "Upload-Offset": "0"})
    store = ObjectStore.from_settings(server.settings)
    assert resumable.sweep(store, now=time.time()) == []
    assert resumable.sweep(store, now=time.time() + resumable.EXPIRY_SECONDS + 1) == [created["upload_id"]]
    assert nothing_staged(server)
