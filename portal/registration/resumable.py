"""Resumable uploads (the shape of tus.io's core protocol, with an S3-multipart-style completion):
an upload id for a declared length, an offset the portal reports, chunks appended at that
offset, and a completion that checks the whole file's MD5 and turns the upload into an ordinary
staged upload (uploads.Staged), which /register/commit claims like the form's.

Layout, under `.staging/<upload id>/` in the object store:
  resumable.json         who, which project, the file's name and declared length, when it expires
  parts/<offset>         one received chunk each (20 digits), written whole or not at all
  <file name>            the assembled file, once complete (then `upload.json` as for the form)

Why parts rather than one growing file: an S3 object cannot be appended to, and a part written
under a temporary name and moved into place is never half there, so the offset (the end of the
chain of parts from 0) only ever counts whole chunks whose MD5 was checked. The portal serves
a request only once its body is in (waitress buffers it), so a transfer cut off midway loses at
most the chunk in flight; the client asks the offset and sends the rest. Completion reads the
parts once, in order, into the staged file, computing the MD5 on the way (an ibd's SHA-1 too,
for registration's pair check), and removes them.

An upload unfinished (or finished and never committed) for EXPIRY_SECONDS since its last chunk
is removed by the sweep that a new upload runs first, at most once per SWEEP_SECONDS: a sweep
reads every upload's record, so one per upload made a flood of creations cost quadratic time
(1,000 creations took 54 s, each slower than the last).
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from portal.objects import ObjectStore
from portal.registration import uploads
from portal.registration.uploads import STAGING, Staged, UploadRefused

MAX_CHUNK_BYTES = 64 * 1024 * 1024
EXPIRY_SECONDS = 24 * 3600
SWEEP_SECONDS = 300
RECORD = "resumable.json"
LOCK = "receiving.lock"  # held while a chunk or the completion is received
_sweep_lock = threading.Lock()
PARTS = "parts"
_last_sweep = [0.0]             # time.monotonic() of this process's last sweep


class OffsetConflict(UploadRefused):
    """A chunk or a completion sent for another offset than the upload's; says the offset."""

    def __init__(self, message: str, reached: int):
        super().__init__("Upload-Offset", message, 409)
        self.offset = reached


@dataclass(frozen=True)
class Upload:
    """One resumable upload, as recorded next to its parts."""
    upload_id: str
    user: str
    project: str
    file_name: str
    data_format: str
    length: int
    expires_at: int

    def key(self, name: str = "") -> str:
        return f"{STAGING}/{self.upload_id}" + (f"/{name}" if name else "")


def create(store: ObjectStore, who: dict, length: int, limit: int) -> Upload:
    """A new upload of `length` bytes for who's user, project and file_name; stale ones go first."""
    fmt = uploads.data_format(who["file_name"])
    if length < 1:
        raise UploadRefused("Upload-Length", "Upload-Length: give the file's size in bytes (at least 1)")
    if length > limit:
        raise UploadRefused("Upload-Length", f"Upload-Length: {length} bytes is more than the allowed {limit} bytes", 413)
    _sweep_when_due(store)
    upload = Upload(uuid.uuid4().hex, who["user"], who["project"], who["file_name"], fmt, length,
                    int(time.time()) + EXPIRY_SECONDS)
    try:
        _save(store, upload)
    except BaseException:  # a full disk: no half-written record the sweep could not read
        store.remove(upload.key())
        raise
    return upload


def _sweep_when_due(store: ObjectStore) -> None:
    with _sweep_lock:
        due = time.monotonic() - _last_sweep[0] >= SWEEP_SECONDS
        if due:
            _last_sweep[0] = time.monotonic()
    if due:
        sweep(store)


def _save(store: ObjectStore, upload: Upload) -> None:
    store.write_text(upload.key(RECORD), json.dumps(asdict(upload)))


def find(store: ObjectStore, upload_id: str, user: str) -> Upload:
    """The caller's upload; the same refusal for an unknown, expired or someone else's id."""
    missing = UploadRefused("upload_id", f"upload_id: {upload_id!r} is not an upload of yours in progress "
                                         "(it finished, expired or never existed); start the upload again", 404)
    upload = uploads.read_record(store, upload_id, RECORD, Upload, missing)
    if upload.user != user or upload.expires_at <= time.time():
        raise missing
    return upload


def staged_of(store: ObjectStore, upload: Upload) -> Staged | None:
    """The staged upload a completed upload became, or None."""
    try:
        return Staged(**json.loads(store.read_text(upload.key("upload.json"))))
    except (OSError, ValueError, TypeError):
        return None


def offset(store: ObjectStore, upload: Upload) -> int:
    """How many bytes have arrived: the end of the chain of parts that starts at 0 (all, once complete)."""
    if staged_of(store, upload) is not None:
        return upload.length
    sizes = store.listing(upload.key(PARTS))
    reached = 0
    while f"{reached:020d}" in sizes and sizes[f"{reached:020d}"] > 0:
        reached += sizes[f"{reached:020d}"]
    return reached


@contextlib.contextmanager
def _alone(store: ObjectStore, upload: Upload):
    """One chunk or completion of an upload at a time, across the portal's processes: two PATCHes
    sent for the same offset would each find it free and both be told their chunk was kept (423,
    as tus servers lock)."""
    with store.exclusive(upload.key(LOCK)) as alone:
        if not alone:
            raise UploadRefused("Upload-Offset", "Upload-Offset: another request of this upload is being received; "
                                                 "when it ends, ask the offset (HEAD) and send from there", 423)
        yield


def append(store: ObjectStore, upload: Upload, at: int, stream, length: int, expected: str | None) -> int:
    """Receive one chunk sent for offset `at`; the new offset. Refused (409) when `at` is not the
    offset, when it would pass the declared length, or when its MD5 is not the expected one; 423
    while another chunk of the upload is being received."""
    with _alone(store, upload):
        return _append(store, upload, at, stream, length, expected)


def _append(store: ObjectStore, upload: Upload, at: int, stream, length: int, expected: str | None) -> int:
    now = offset(store, upload)
    if at == now and length == 0:
        return now
    if at != now:
        raise OffsetConflict(f"Upload-Offset: the upload is at byte {now}, not {at}; send from there", now)
    if length > upload.length - now:
        raise UploadRefused("Content-Length", f"Content-Length: {length} bytes would pass the declared length "
                                              f"{upload.length} (the upload is at byte {now})")
    temporary = upload.key(f"{PARTS}/tmp-{uuid.uuid4().hex}")
    try:
        with store.open_write(temporary) as sink:
            uploads.receive(stream, sink, length, expected)
        store.move(temporary, upload.key(f"{PARTS}/{at:020d}"))
    except BaseException:
        store.remove(temporary)
        raise
    _save(store, Upload(**{**asdict(upload), "expires_at": int(time.time()) + EXPIRY_SECONDS}))
    return now + length


def complete(store: ObjectStore, upload: Upload, md5sum: str) -> Staged:
    """Assemble the parts into the staged file, checking the whole MD5; a mismatch removes the
    upload. The result is claimed by /register/commit like any staged upload."""
    if not uploads.HEX_MD5.match(md5sum or ""):
        raise UploadRefused("md5sum", "md5sum: give the whole file's MD5 as 32 lower-case hex digits")
    with _alone(store, upload):
        return _complete(store, upload, md5sum)


def _complete(store: ObjectStore, upload: Upload, md5sum: str) -> Staged:
    if (done := staged_of(store, upload)) is not None:  # completed before: the client asks again after a break
        _same(store, upload, done.md5sum, md5sum)
        return done
    if (reached := offset(store, upload)) != upload.length:
        raise OffsetConflict(f"Upload-Offset: {reached} of {upload.length} bytes have arrived; "
                             "send the rest before completing", reached)
    parts = PartsReader(store, upload)
    try:
        with store.open_write(upload.key(upload.file_name)) as sink:
            received, size = uploads.receive(parts, sink, upload.length, None, uploads.digested(upload.data_format))
    finally:
        parts.close()
    _same(store, upload, received["md5"], md5sum)
    store.remove(upload.key(PARTS))
    staged = uploads.staged_record(upload.upload_id, {"user": upload.user, "project": upload.project,
                                                      "file_name": upload.file_name}, upload.data_format, received, size)
    store.write_text(upload.key("upload.json"), json.dumps(asdict(staged)))
    return staged


def _same(store: ObjectStore, upload: Upload, received: str, expected: str) -> bool:
    """True when the MD5s agree; otherwise the upload is removed and refused."""
    if received == expected:
        return True
    store.remove(upload.key())
    raise UploadRefused("md5sum", f"md5sum: the file's MD5 as received is {received}, not the expected "
                                  f"{expected}; nothing was kept, check the file and send it again")


class PartsReader:
    """The parts, in order, read as one stream (what uploads.receive reads)."""

    def __init__(self, store: ObjectStore, upload: Upload):
        self.store, self.upload, self.at, self.source = store, upload, 0, None

    def read(self, size: int) -> bytes:
        while True:
            if self.source is None:
                if self.at >= self.upload.length:
                    return b""
                self.source = self.store.open_read(self.upload.key(f"{PARTS}/{self.at:020d}"))
            chunk = self.source.read(size)
            if chunk:
                self.at += len(chunk)
                return chunk
            self.close()

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


def cancel(store: ObjectStore, upload: Upload) -> None:
    """Remove the upload and everything received (tus's termination)."""
    store.remove(upload.key())


def sweep(store: ObjectStore, now: float | None = None) -> list[str]:
    """Remove the resumable uploads whose expiry has passed; their ids."""
    now = time.time() if now is None else now
    removed = []
    for upload_id in store.listing(STAGING):
        try:
            record = json.loads(store.read_text(f"{STAGING}/{upload_id}/{RECORD}"))
        except (OSError, ValueError):
            continue  # the form's staged uploads, or one being created
        if record.get("expires_at", 0) <= now:
            store.remove(f"{STAGING}/{upload_id}")
            removed.append(upload_id)
    return removed
