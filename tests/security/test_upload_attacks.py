"""The resumable upload API (/api/uploads, /api/register/*), the imzML header route and reader,
and prefix lookups, attacked through a real portal process over a real service: other users'
upload ids, read-only and expired tokens, byte counts that are not plain numbers, bodies that are
not JSON objects, concurrent chunks at one offset, a full disk mid-upload, hostile XML headers;
and step reuse offered files a step linked out of its run's folder (pure functions)."""
from __future__ import annotations

import hashlib
import io
import re
import subprocess
import threading
import time
import tracemalloc

import fsspec
import pytest
import requests

from ims.header import HeaderError, read_header
from labcommons.demo.imzml import write_imzml_pair
from metadata.client import MetadataClient
from portal.objects import ObjectStore
from portal.registration import resumable
from tests.need import need
from tests.security.live_portal import TIMEOUT, live_portal
from workflow_templates.engines import reuse


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    with live_portal(tmp_path_factory.mktemp("uploads") / "data") as live:
        projects = sorted(p["submitter_id"] for p in live.admin.nodes("project"))
        live.ours, live.theirs = projects[0], projects[1]
        yield live


def bearer(commons, user: str, access: str = "write", ttl: int = 0, project: str = "") -> dict:
    token = commons.admin.create_token(user, ["technician"], {project or commons.ours: access}, ttl).token
    return {"Authorization": f"Bearer {token}"}


def create(commons, who: dict, length: int = 10, name: str = "a.ibd") -> requests.Response:
    return requests.post(f"{commons.url}/api/uploads", params={"project": commons.ours, "file_name": name},
                         headers={**who, "Upload-Length": str(length)}, timeout=TIMEOUT)


def patch(commons, who: dict, upload_id: str, offset, body: bytes) -> requests.Response:
    return requests.patch(f"{commons.url}/api/uploads/{upload_id}", headers={**who, "Upload-Offset": str(offset)},
                          data=body, timeout=TIMEOUT)


def refused_at(answer: requests.Response, status: int, field: str) -> str:
    """The message of a JSON refusal naming `field` (never a dropped connection or an HTML 500)."""
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    return answer.json()["fields"][field][0]


def test_another_users_read_only_or_expired_token_gets_nothing_of_an_upload(commons):
    eve, upload_id = bearer(commons, "eve"), None
    upload_id = create(commons, eve).json()["upload_id"]
    mallory = bearer(commons, "mallory", project=commons.theirs)
    made_up = "0" * 32
    for method, suffix in (("HEAD", ""), ("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/complete")):
        theirs, none = (requests.request(method, f"{commons.url}/api/uploads/{i}{suffix}", timeout=TIMEOUT,
                                         headers={**mallory, "Upload-Offset": "0"}, data=b"x" * 10)
                        for i in (upload_id, made_up))
        assert theirs.status_code == none.status_code == 404, method
        if method != "HEAD":
            assert theirs.json()["error"].replace(upload_id, made_up) == none.json()["error"]
    read_only = bearer(commons, "eve", access="read")
    assert "no write access" in refused_at(create(commons, read_only), 403, "project")
    assert "no write access" in refused_at(patch(commons, read_only, upload_id, 0, b"x"), 403, "project")
    expired = bearer(commons, "eve", ttl=1)
    time.sleep(1.5)
    assert "Bearer" in refused_at(patch(commons, expired, upload_id, 0, b"x"), 401, "Authorization")
    assert requests.head(f"{commons.url}/api/uploads/{upload_id}", headers=eve,
                         timeout=TIMEOUT).headers["Upload-Offset"] == "0"  # nothing of theirs arrived


@pytest.mark.parametrize("raw", ["\u00b2", "9" * 5000, "-1", "+5", "1e3", "0x10", "1_000", "1" * 21])
def test_a_byte_count_that_is_not_plain_digits_is_refused_naming_its_header(commons, raw):
    # '²' passes str.isdigit and then failed int(); 5,000 digits failed int() too: both were a 500
    eve = bearer(commons, "eve")
    upload_id = create(commons, eve).json()["upload_id"]
    assert "at most 20 digits" in refused_at(patch(commons, eve, upload_id, raw, b"x"), 400, "Upload-Offset")
    answer = requests.post(f"{commons.url}/api/uploads", params={"project": commons.ours, "file_name": "a.ibd"},
                           headers={**eve, "Upload-Length": raw}, timeout=TIMEOUT)
    assert "at most 20 digits" in refused_at(answer, 400, "Upload-Length")


@pytest.mark.parametrize("route, body, field", [
    ("/api/uploads/{id}/complete", b'["md5sum"]', "body"),
    ("/api/register/check", b'[1]', "body"),
    ("/api/register/check", b'{"project": "{ours}", "values": "abc"}', "values"),
    ("/api/register/commit", b'"x"', "body"),
    ("/api/register/commit", b'{"project": "{ours}", "values": [1], "uploads": []}', "values"),
    ("/api/register/commit", b'{"project": "{ours}", "values": {}, "uploads": "abc"}', "uploads"),
    ("/api/register/commit", b'[[[[', "body"),
])
def test_a_body_that_is_not_the_json_object_asked_for_is_refused_naming_the_field(commons, route, body, field):
    eve = bearer(commons, "eve")
    path = route.replace("{id}", create(commons, eve).json()["upload_id"])
    answer = requests.post(commons.url + path, data=body.replace(b"{ours}", commons.ours.encode()), timeout=TIMEOUT,
                           headers={**eve, "Content-Type": "application/json"})
    assert refused_at(answer, 400, field).startswith(f"{field}: give")


def test_concurrent_chunks_at_one_offset_keep_exactly_one(commons):
    # each PATCH found offset 0 free, and two were told 204 with different offsets
    eve, mib = bearer(commons, "eve"), 1024 * 1024
    upload_id = create(commons, eve, 8 * mib).json()["upload_id"]
    answers: list[requests.Response] = []
    senders = [threading.Thread(target=lambda n=n: answers.append(patch(commons, eve, upload_id, 0,
                                                                         bytes([n]) * mib * (n + 1))))
               for n in range(6)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    kept = [a for a in answers if a.status_code == 204]
    said = [(a.status_code, a.text[:200]) for a in answers]
    assert len(kept) == 1 and all(a.status_code in (409, 423) and a.json()["fields"] for a in answers if a not in kept), said
    status = requests.head(f"{commons.url}/api/uploads/{upload_id}", headers=eve, timeout=TIMEOUT)
    assert status.headers["Upload-Offset"] == kept[0].headers["Upload-Offset"]


def test_a_full_disk_mid_upload_is_refused_as_storage_full_keeping_nothing(commons):
    # the OSError was answered as "the metadata service is unreachable" (503)
    staging = commons.service.data_dir / "storage" / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(staging)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        need("a small filesystem (mount -t tmpfs, as root)", mounted.stderr.strip())
    try:
        eve = bearer(commons, "eve")
        upload_id = create(commons, eve, 4 * 1024 * 1024).json()["upload_id"]
        full = patch(commons, eve, upload_id, 0, b"x" * (3 * 1024 * 1024))
        assert "storage is full" in refused_at(full, 507, "storage")
        assert [p.name for p in (staging / upload_id).rglob("*") if p.is_file() and p.suffix != ".lock"] \
            == ["resumable.json"]  # nothing of the chunk kept (the lock file is the upload's own)
        assert patch(commons, eve, upload_id, 0, b"x" * 1024).headers["Upload-Offset"] == "1024"  # and goes on
    finally:
        subprocess.run(["umount", "-l", str(staging)], check=False)


def send(commons, who: dict, name: str, body: bytes) -> str:
    """A whole file through the resumable API; its upload id, completed."""
    upload_id = create(commons, who, len(body), name).json()["upload_id"]
    assert patch(commons, who, upload_id, 0, body).status_code == 204
    done = requests.post(f"{commons.url}/api/uploads/{upload_id}/complete", headers=who, timeout=TIMEOUT,
                         json={"md5sum": hashlib.md5(body).hexdigest()})
    assert done.ok, done.text
    return upload_id


def test_files_for_a_measurement_whose_id_leads_out_of_the_project_are_refused(commons, tmp_path):
    # the service takes any text as a measurement's submitter_id; committing files to '../theirs/evil'
    # made the storage key escape the project (the store refused it, but as a 500)
    eve = bearer(commons, "eve")
    token = eve["Authorization"].split()[1]
    model = next(commons.admin.nodes("measurement", commons.ours))
    links: dict[str, list] = {}
    for link in model["links"]:
        links.setdefault(link["name"], []).append({"id": link["target_id"]})
    evil = f"../{commons.theirs}/evil"
    with MetadataClient("127.0.0.1", commons.service.port, token) as client:
        client.submit(commons.ours, [{"type": "measurement", **model["properties"], "submitter_id": evil,
                                      **{name: targets[0] if len(targets) == 1 else targets
                                         for name, targets in links.items()}}])
    write_imzml_pair(tmp_path, "slide", 6, 5, seed=1)
    ids = [send(commons, eve, name, (tmp_path / name).read_bytes()) for name in ("slide.imzML", "slide.ibd")]
    answer = requests.post(f"{commons.url}/api/register/commit", headers=eve, timeout=TIMEOUT,
                           json={"project": commons.ours, "measurement": evil, "uploads": ids})
    assert "cannot name a storage folder" in refused_at(answer, 400, "measurement")
    assert not list((commons.service.data_dir / "storage" / commons.theirs).rglob("*evil*"))


def test_a_flood_of_new_uploads_costs_linear_time(tmp_path):
    # every creation swept first, reading every upload's record: 1,000 creations took 54 s
    store = ObjectStore(fsspec.filesystem("file"), str(tmp_path), "file")
    who = {"user": "eve", "project": "p", "file_name": "a.ibd"}
    started = time.monotonic()
    for _ in range(2000):
        resumable.create(store, who, 10, 1 << 40)
    assert time.monotonic() - started < 20


# -- the imzML header: read by the registration form from whatever a writer sends ----------------

HEAD = b'<?xml version="1.0"?>'


def _groups(levels: int) -> bytes:
    """referenceableParamGroups each referring ten times to the one before: 10**levels params."""
    body = b'<referenceableParamGroup id="g0">' + b'<cvParam accession="MS:1000521"/>' * 10 + \
        b'</referenceableParamGroup>'
    for i in range(1, levels + 1):
        body += f'<referenceableParamGroup id="g{i}">'.encode() + \
            f'<referenceableParamGroupRef ref="g{i - 1}"/>'.encode() * 10 + b'</referenceableParamGroup>'
    return HEAD + b"<mzML><referenceableParamGroupList>" + body + b"</referenceableParamGroupList></mzML>"


BOMBS = {
    "entity expansion": (HEAD + b'<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
                         b"<mzML>&b;</mzML>", "DOCTYPE"),
    "external entity": HEAD + b'<!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]><mzML>&e;</mzML>',
    "nesting 1,000,000 deep": HEAD + b"<mzML>" + b"<a>" * 1_000_000,
    "a 64 MB attribute": HEAD + b'<mzML a="' + b"x" * (64 << 20) + b'"/>',
    "a 64 MB comment": HEAD + b"<mzML><!--" + b"x" * (64 << 20) + b"--></mzML>",
    "500,000 attributes": HEAD + b"<mzML " + b" ".join(b'a%d="x"' % i for i in range(500_000)) + b"/>",
    "a million params in one element": HEAD + b"<mzML><run>" + b'<cvParam accession="MS:1"/>' * 1_000_000,
    "param groups multiplying to 10**9": _groups(8),
    # the spectra have a lean path of their own in the reader, with the same bounds
    "nesting 1,000,000 deep in a spectrum": HEAD + b"<mzML><run><spectrumList><spectrum>" + b"<a>" * 1_000_000,
    "a million params in one array": HEAD + b"<mzML><run><spectrumList><spectrum><binaryDataArray>"
                                     + b'<cvParam accession="MS:1"/>' * 1_000_000,
    "an unknown encoding": b'<?xml version="1.0" encoding="x-unknown"?><mzML/>',
    "a multi-byte encoding expat cannot take": b'<?xml version="1.0" encoding="utf-7"?><mzML/>',
}
BOMBS = {name: body if isinstance(body, tuple) else (body, "") for name, body in BOMBS.items()}


@pytest.mark.parametrize("name", BOMBS)
def test_a_hostile_imzml_header_is_refused_at_little_cost(name):
    # before: nesting and params grew memory ~100x the input, groups multiplied it 10x per level,
    # a 20 MB attribute took 167 s (expat rescans an unfinished token), an encoding was a 500
    body, said = BOMBS[name]
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(HeaderError) as refused:
            read_header(io.BytesIO(body))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5 and peak < 16 << 20, (time.monotonic() - started, peak)
    assert said in str(refused.value)


def test_the_header_route_refuses_a_hostile_header_at_the_files_field(commons):
    tom = commons.signed_in("tom")
    token = re.search(r'data-csrf="([^"]+)"', tom.get(f"{commons.url}/register", timeout=TIMEOUT).text).group(1)
    for body in (BOMBS["an unknown encoding"][0], BOMBS["a 64 MB attribute"][0][:8 << 20]):
        answer = tom.post(f"{commons.url}/register/header", params={"project": commons.ours, "file_name": "s.imzML"},
                          data=body, headers={"X-CSRFToken": token}, timeout=TIMEOUT)
        assert refused_at(answer, 400, "file-imzML").startswith("s.imzML: ")


def test_an_id_prefix_finds_nothing_in_a_project_the_caller_cannot_read(commons):
    theirs = next(commons.admin.nodes("case", commons.theirs))["id"]
    token = commons.admin.create_token("eve", ["analyst"], {commons.ours: "read"}).token
    with MetadataClient("127.0.0.1", commons.service.port, token) as eve:
        for length in (4, 8, 36):
            assert theirs not in {n["id"] for n in eve.by_id_prefix(theirs[:length], 50)}
        assert eve.by_id_prefix(theirs, 50) == []
    assert [n["id"] for n in commons.admin.by_id_prefix(theirs, 50)] == [theirs]


# -- step reuse: a record naming files a step linked out of its run's folder -----------------------

def _record(folder, path: str, content: bytes) -> dict:
    return {"folder": str(folder), "files": [{"path": path, "sha256": hashlib.sha256(content).hexdigest(),
                                             "size": len(content)}]}


def test_reuse_takes_no_file_a_step_linked_out_of_its_runs_folder(tmp_path):
    storage = tmp_path / "storage"
    secret = storage / "theirs" / "secret.txt"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(b"their data")
    old = storage / "ours" / "runs" / "r1"
    (old / "out").mkdir(parents=True)
    (old / "out" / "copy.txt").symlink_to(secret)        # a linked file
    (old / "linked").symlink_to(secret.parent)           # a linked directory
    for path in ("out/copy.txt", "linked/secret.txt", "../../theirs/secret.txt"):
        assert reuse.verified(_record(old, path, b"their data"), storage) is None
    assert reuse.verified(_record(storage / "theirs", "secret.txt", b"their data"), tmp_path / "other") is None


def test_reuse_never_writes_through_a_directory_a_step_turned_into_a_link(tmp_path):
    old, new, elsewhere = tmp_path / "runs" / "r1", tmp_path / "runs" / "r2", tmp_path / "theirs"
    (old / "out").mkdir(parents=True)
    (old / "out" / "data.txt").write_text("ours")
    elsewhere.mkdir()
    new.mkdir()
    (new / "out").symlink_to(elsewhere)
    with pytest.raises(OSError, match="leads out of the run's folder"):
        reuse.materialise([(old / "out" / "data.txt", "out/data.txt")], old, new, None)
    assert list(elsewhere.iterdir()) == []
