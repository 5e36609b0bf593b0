"""`labcommons upload` and `lc.upload(...)`: an imzML + ibd pair sent through the portal's
registration API (portal/registration/api.py), as gen3-client users know it.

Checked before a byte is sent: the ibd must belong to the imzML (ims.pair: the UUID and sizes,
from the ibd's first 16 bytes), and a new measurement's fields left out are filled from the
imzML's header as the portal's form fills them (the technician's own values win). The checksum
the imzML records for its ibd (SHA-1, MD5) is computed while the ibd is sent, with the MD5 the
upload carries, so the ibd is read once: before the commit, ims.pair decides again with that
digest, and a pair that differs is discarded from the portal and never registered (registration
makes the same check again at commit).

All or nothing: a new measurement's fields are checked first (the service's dry run), then each
file is sent in chunks, its MD5 computed on the way (each chunk's travels as Content-MD5, the
whole file's is checked when the upload completes), and only when both files are complete does
one commit register the measurement (or attach to an existing one) and its data files.

Resumable: each file's upload id is kept beside it (`.<file>.labcommons-upload`, with the
portal, project, size and modification time it belongs to). A rerun of the same command asks
the portal how far that upload got and sends only the rest; the bytes before are read again
locally, not sent, to carry the digests. A broken connection, or a 423 while the portal still
receives a chunk sent before a timeout, is retried (`retries` times, after a doubling pause) from
the portal's offset in the same way. The checkpoints go after the commit.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from ims.header import Header, measurement_values
from ims.pair import Digests, check_ibd, check_pair, needed
from labcommons.cli_output import ProgressBar

CHUNK_BYTES = 8 * 1024 * 1024
READ_BYTES = 1024 * 1024
RETRIES = 3
TIMEOUT_SECONDS = 300
CHECKPOINT = ".{name}.labcommons-upload"


class UploadError(RuntimeError):
    """An upload or registration the portal refused or could not finish; the message says why."""


class Busy(UploadError):
    """423: the portal is still receiving an earlier chunk of this upload (one sent before a timeout)."""


@dataclass(frozen=True)
class Checkpoint:
    """What a rerun needs to find a file's upload again, and to know the file has not changed."""
    portal: str
    project: str
    upload_id: str
    size: int
    mtime_ns: int

    @staticmethod
    def path(file: Path) -> Path:
        return file.with_name(CHECKPOINT.format(name=file.name))

    @classmethod
    def load(cls, file: Path, portal: str, project: str) -> "Checkpoint | None":
        """The file's checkpoint if it is for this portal, project and unchanged file."""
        try:
            found = cls(**json.loads(cls.path(file).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        stat = file.stat()
        same = (found.portal, found.project, found.size, found.mtime_ns) == (portal, project, stat.st_size,
                                                                            stat.st_mtime_ns)
        return found if same else None

    def save(self, file: Path) -> None:
        """Beside the file; where that folder is read-only, a rerun starts over (a retry still resumes)."""
        try:
            self.path(file).write_text(json.dumps(asdict(self)))
        except OSError:
            pass


class Portal:
    """The registration API at one address, called with one token over one kept-alive connection."""

    def __init__(self, url: str, token: str, timeout: float = TIMEOUT_SECONDS):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, ok=(200, 201, 204), **kwargs) -> requests.Response:
        """One request; UploadError with the portal's message unless the status is in `ok`."""
        answer = self.http.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if answer.status_code not in ok:
            raise (Busy if answer.status_code == 423 else UploadError)(refusal(answer))
        return answer


def refusal(answer: requests.Response) -> str:
    """The portal's message in a refusal (every field's, then the general ones)."""
    try:
        body = answer.json()
    except ValueError:
        return f"the portal answered {answer.status_code} {answer.reason}"
    messages = [m for ms in (body.get("fields") or {}).values() for m in ms] + list(body.get("general") or [])
    return "; ".join(messages) or body.get("error") or f"the portal answered {answer.status_code}"


@dataclass
class Sent:
    """One file's upload: its id, MD5 and size, where this run started and how much it sent, and
    the digests of its bytes computed on the way (md5 and those the pair check needs)."""
    file: Path
    upload_id: str
    md5sum: str
    size: int
    resumed_at: int
    bytes_sent: int
    digests: dict


def upload(portal: Portal, project: str, imzml, ibd, measurement: str = "", fields: dict | None = None,
           progress: bool = False, chunk_bytes: int = CHUNK_BYTES, retries: int = RETRIES,
           properties: dict | None = None) -> dict:
    """Register the pair with a new measurement (`fields`, completed from the imzML's header with
    what the measurement type's `properties` allow) or an existing one (`measurement`, its
    submitter id); the portal's answer (registered, project, href, created) and the files sent."""
    if bool(measurement) == bool(fields):
        raise UploadError("give either an existing measurement's submitter id or the fields of a new one")
    header = belonging(Path(imzml), Path(ibd))
    if fields:
        fields = measurement_values(header, properties) | fields
        check(portal, project, fields)
    sent = [send(portal, project, Path(imzml), chunk_bytes, progress, retries),
            send(portal, project, Path(ibd), chunk_bytes, progress, retries, needed(header))]
    whole(portal, header, sent)
    body = {"project": project, "uploads": [s.upload_id for s in sent]}
    body.update({"measurement": measurement} if measurement else {"values": fields})
    answer = portal.call("POST", "/api/register/commit", json=body).json()
    for each in sent:
        Checkpoint.path(each.file).unlink(missing_ok=True)
    return {**answer, "files": [asdict(s) | {"file": str(s.file)} for s in sent]}


def belonging(imzml: Path, ibd: Path) -> Header:
    """The imzML's header, once the ibd is shown to belong to it but for the checksum (UUID and
    sizes: its first 16 bytes; the checksum is computed while it is sent, see `whole`);
    UploadError naming each difference otherwise (nothing sent)."""
    report = check_pair(imzml, ibd, size=ibd.stat().st_size, checksum=False)
    if report.problems:
        raise UploadError(_differ(imzml, ibd, "nothing was sent", report.problems))
    return report.header


def whole(portal: Portal, header: Header, sent: list[Sent]) -> None:
    """The pair checked in full (ims.pair), with the digests computed while the ibd (sent last)
    was read for sending: only its first 16 bytes are read again. On a difference the uploads are
    discarded from the portal and UploadError names it (nothing registered)."""
    ibd = sent[-1]
    with ibd.file.open("rb") as stream:
        problems = check_ibd(header, stream, size=ibd.file.stat().st_size, digests=ibd.digests)
    if problems:
        for each in sent:
            portal.call("DELETE", f"/api/uploads/{each.upload_id}", ok=(204, 404))
            Checkpoint.path(each.file).unlink(missing_ok=True)
        raise UploadError(_differ(sent[0].file, ibd.file, "the files sent were discarded, nothing was registered",
                                  problems))


def _differ(imzml: Path, ibd: Path, outcome: str, problems: list[str]) -> str:
    return f"{ibd.name} does not belong to {imzml.name} ({outcome}):\n  " + "\n  ".join(problems)


def check(portal: Portal, project: str, fields: dict) -> None:
    """Refuse a new measurement's fields before any byte is sent, every problem named."""
    answer = portal.call("POST", "/api/register/check", json={"project": project, "values": fields}).json()
    problems = [m for ms in (answer.get("fields") or {}).values() for m in ms] + list(answer.get("general") or [])
    if problems:
        raise UploadError("the measurement's fields are refused (nothing was sent):\n  " + "\n  ".join(problems))


def send(portal: Portal, project: str, file: Path, chunk_bytes: int, progress: bool, retries: int,
         algorithms: tuple[str, ...] = ()) -> Sent:
    """Send one file from the portal's offset on (a new upload, or the checkpoint's), and complete
    it; its MD5 and the other `algorithms`' digests computed from the same reads."""
    upload_id, at = start(portal, project, file)
    algorithms = ("md5", *algorithms)
    started, digests = at, _digests_of(file, at, algorithms)
    with ProgressBar(file.name, file.stat().st_size, show=progress, in_bytes=True, done=at) as advance:
        shown = _Shown(advance, at)
        for attempt in range(retries + 1):
            try:
                at = _chunks(portal, upload_id, file, at, digests, chunk_bytes, shown)
                break
            except (requests.ConnectionError, requests.Timeout, Busy):
                if attempt == retries:
                    raise UploadError(f"{file.name}: the connection to the portal broke at byte {at}; run the same "
                                      "command again to send the rest") from None
                time.sleep(2 ** attempt)
                at, digests = _resume_point(portal, upload_id, file, at, digests, algorithms)
                shown.position = at
    found = digests.hexdigests()
    staged = portal.call("POST", f"/api/uploads/{upload_id}/complete", json={"md5sum": found["md5"]}).json()
    return Sent(file, upload_id, staged["md5sum"], staged["file_size"], started, at - started, found)


def start(portal: Portal, project: str, file: Path) -> tuple[str, int]:
    """(upload id, offset): the checkpoint's upload where the portal has it, else a new one."""
    size = file.stat().st_size
    if found := Checkpoint.load(file, portal.url, project):
        answer = portal.call("GET", f"/api/uploads/{found.upload_id}", ok=(200, 404))
        if answer.status_code == 200:
            return found.upload_id, int(answer.headers["Upload-Offset"])
    answer = portal.call("POST", "/api/uploads", params={"project": project, "file_name": file.name},
                         headers={"Upload-Length": str(size)})
    upload_id = answer.json()["upload_id"]
    Checkpoint(portal.url, project, upload_id, size, file.stat().st_mtime_ns).save(file)
    return upload_id, 0


def _chunks(portal: Portal, upload_id: str, file: Path, at: int, digests: Digests, chunk_bytes: int,
            advance) -> int:
    """Send the file from `at` to its end, chunk by chunk, feeding the digests; the offset reached."""
    with file.open("rb") as source:
        source.seek(at)
        while chunk := source.read(chunk_bytes):
            digest = base64.b64encode(hashlib.md5(chunk).digest()).decode()
            answer = portal.call("PATCH", f"/api/uploads/{upload_id}", data=_Counted(chunk, advance),
                                 headers={"Upload-Offset": str(at), "Content-MD5": digest,
                                          "Content-Type": "application/offset+octet-stream"})
            digests.update(chunk)
            at = int(answer.headers["Upload-Offset"])
    return at


def _resume_point(portal: Portal, upload_id: str, file: Path, at: int, digests: Digests, algorithms):
    """After a broken connection: the portal's offset, and the digests of the bytes before it."""
    reached = int(portal.call("GET", f"/api/uploads/{upload_id}").headers["Upload-Offset"])
    return (at, digests) if reached == at else (reached, _digests_of(file, reached, algorithms))


def _digests_of(file: Path, length: int, algorithms) -> Digests:
    """The digests fed the file's first `length` bytes (read locally, never sent)."""
    digests = Digests(algorithms)
    with file.open("rb") as source:
        while length > 0 and (block := source.read(min(READ_BYTES, length))):
            digests.update(block)
            length -= len(block)
    return digests


class _Shown:
    """The progress bar moved only past what it showed already (a chunk sent again after a break)."""

    def __init__(self, advance, at: int):
        self.advance, self.shown, self.position = advance, at, at

    def __call__(self, n: int) -> None:
        self.position += n
        if self.position > self.shown:
            self.advance(self.position - self.shown)
            self.shown = self.position


class _Counted:
    """A chunk as a request body that moves the progress bar as it is read out to the socket."""

    def __init__(self, data: bytes, advance):
        self.data, self.at, self.advance = data, 0, advance

    def __len__(self) -> int:
        return len(self.data)

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else self.at + size
        block, self.at = self.data[self.at:end], min(end, len(self.data))
        self.advance(len(block))
        return block


def load_fields(path: Path) -> dict:
    """A new measurement's fields from a JSON object (the form's names: submitter_id, experiment, ...)."""
    try:
        fields = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise UploadError(f"--new: {path} is not a readable JSON file ({error})") from None
    if not isinstance(fields, dict) or not fields.get("submitter_id"):
        raise UploadError(f"--new: {path} must hold a JSON object with at least submitter_id "
                          "(and the measurement's fields, experiment and sample)")
    return fields

