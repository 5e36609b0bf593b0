"""Uploaded data files: checked names, bodies streamed into a staging area with their MD5 and
size computed on the way (an ibd's SHA-1 too: the checksum an imzML records for it, which
registration then compares without reading the ibd again), and the staged record that
registration later claims.

A staged upload lives under `.staging/<upload id>/` in the object store: the bytes, and
`upload.json` naming who uploaded it, for which project, with its checksum and size. Nothing
that fails here leaves bytes behind.
"""
from __future__ import annotations

import base64
import binascii
import errno
import json
import re
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field

from werkzeug.exceptions import ClientDisconnected

from ims.pair import Digests, STANDARD_DIGESTS
from portal.objects import ObjectStore

CHUNK_BYTES = 1024 * 1024
STAGING = ".staging"
# extension (lower case) -> the dictionary's data_format
FORMATS = {".imzml": "imzML", ".ibd": "ibd"}
MAX_NAME_BYTES = 255
HEX_MD5 = re.compile(r"^[0-9a-f]{32}$")
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class UploadRefused(Exception):
    """An upload the portal will not keep; the message names the field and what is allowed."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


@dataclass(frozen=True)
class Staged:
    """One staged upload, as recorded next to its bytes."""
    upload_id: str
    user: str
    project: str
    file_name: str
    data_format: str
    md5sum: str
    file_size: int
    digests: dict = field(default_factory=dict)   # hashlib name -> hex, computed on receipt (an ibd's)


def data_format(file_name: str) -> str:
    """The data_format of an acceptable file name; UploadRefused naming what is wrong otherwise."""
    shown = repr(file_name)
    if not file_name:
        raise UploadRefused("file_name", "file_name: give the file's name, e.g. slide1.imzML")
    if "/" in file_name or "\\" in file_name:
        raise UploadRefused("file_name", f"file_name: {shown} contains a path separator; give the name only")
    if ".." in file_name or file_name.startswith("."):
        raise UploadRefused("file_name", f"file_name: {shown} may not contain '..' or start with '.'")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in file_name):  # Cf: right-to-left overrides, zero widths
        raise UploadRefused("file_name", f"file_name: {shown} contains control or invisible formatting characters")
    if len(file_name.encode()) > MAX_NAME_BYTES:
        raise UploadRefused("file_name", f"file_name: longer than {MAX_NAME_BYTES} bytes")
    extension = "." + file_name.rpartition(".")[2].lower() if "." in file_name else ""
    if extension not in FORMATS:
        allowed = ", ".join(f".{f}" for f in FORMATS.values())
        raise UploadRefused("file_name", f"file_name: {shown} is not an allowed kind of file; allowed: {allowed}")
    return FORMATS[extension]


def storage_full(error: BaseException) -> UploadRefused | None:
    """The refusal for a write the storage had no room for (the API and the form say it alike)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return UploadRefused("storage", "storage: the portal's storage is full; nothing of this request was kept. "
                                        "Try again later, or ask an administrator to free space", 507)
    return None


def expected_md5(headers) -> str | None:
    """The checksum the client expects, from Content-MD5 (base64, RFC 1864) or X-Expected-MD5 (hex)."""
    if raw := headers.get("Content-MD5", "").strip():
        try:
            digest = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 16:
            raise UploadRefused("md5sum", "Content-MD5: give the base64 of the 16-byte MD5 digest")
        return digest.hex()
    if raw := headers.get("X-Expected-MD5", "").strip().lower():
        if not HEX_MD5.match(raw):
            raise UploadRefused("md5sum", "md5sum: the expected MD5 must be 32 lower-case hex digits")
        return raw
    return None


def receive(stream, sink, length: int, expected: str | None, algorithms: tuple[str, ...] = ()) -> tuple[dict, int]:
    """Copy exactly `length` bytes from stream to sink in chunks; (digests: md5 and `algorithms`,
    hashlib name -> hex; size). Refused when the body ends early or its MD5 is not the expected one."""
    digests, size = Digests(("md5", *algorithms)), 0
    try:
        while size < length:
            chunk = stream.read(min(CHUNK_BYTES, length - size))
            if not chunk:
                break
            sink.write(chunk)
            digests.update(chunk)
            size += len(chunk)
    except ClientDisconnected:
        pass  # counted as cut off below
    if size < length:
        raise UploadRefused("file", f"the upload was cut off: {size} of {length} bytes arrived (Content-Length); "
                                    "nothing was kept, send the file again")
    found = digests.hexdigests()
    if expected and found["md5"] != expected:
        raise UploadRefused("md5sum", f"md5sum: the file's MD5 is {found['md5']}, not the expected {expected}; "
                                      "nothing was kept, check the file and send it again")
    return found, size


def digested(data_format: str) -> tuple[str, ...]:
    """The digests computed on receipt besides the MD5: an ibd's checksums an imzML may record."""
    return tuple(a for a in STANDARD_DIGESTS if a != "md5") if data_format == "ibd" else ()


def staged_record(upload_id: str, who: dict, data_format: str, digests: dict, size: int) -> Staged:
    """The record of a staged upload: the MD5 as md5sum, the other digests beside it."""
    others = {name: hexdigest for name, hexdigest in digests.items() if name != "md5"}
    return Staged(upload_id, who["user"], who["project"], who["file_name"], data_format, digests["md5"], size,
                  others)


def stage(store: ObjectStore, stream, length: int, expected: str | None, who: dict) -> Staged:
    """Stream one body into a new staging entry; on any failure remove the entry and re-raise."""
    upload_id = uuid.uuid4().hex
    fmt = data_format(who["file_name"])
    try:
        with store.open_write(f"{STAGING}/{upload_id}/{who['file_name']}") as sink:
            digests, size = receive(stream, sink, length, expected, digested(fmt))
        staged = staged_record(upload_id, who, fmt, digests, size)
        store.write_text(f"{STAGING}/{upload_id}/upload.json", json.dumps(asdict(staged)))
        return staged
    except BaseException:
        store.remove(f"{STAGING}/{upload_id}")
        raise


def read_record(store: ObjectStore, upload_id: str, name: str, kind: type, missing: Exception):
    """The record `name` beside an upload's bytes, as `kind`; `missing` raised for a malformed id or
    an absent or unreadable record (the same refusal whatever the reason)."""
    if not UPLOAD_ID.match(upload_id or ""):
        raise missing
    try:
        return kind(**json.loads(store.read_text(f"{STAGING}/{upload_id}/{name}")))
    except (OSError, ValueError, TypeError):
        raise missing from None


def claim(store: ObjectStore, upload_id: str, user: str, project: str) -> Staged:
    """A staged upload of this user for this project; UploadRefused for any other id."""
    missing = UploadRefused("uploads", f"uploads: {upload_id!r} is not a file you uploaded to project "
                                       f"{project!r}; upload the file again")
    staged = read_record(store, upload_id, "upload.json", Staged, missing)
    if staged.user != user or staged.project != project:
        raise missing
    return staged


def staged_key(staged: Staged) -> str:
    return f"{STAGING}/{staged.upload_id}/{staged.file_name}"


def discard(store: ObjectStore, staged: Staged) -> None:
    store.remove(f"{STAGING}/{staged.upload_id}")
