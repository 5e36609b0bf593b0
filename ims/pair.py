"""Whether an imzML and an ibd belong together, checked before anything is written.

    report = check_pair(imzml, ibd)      # binary streams (a local file, an fsspec/S3 object) or paths
    report.problems                      # [] when they belong together, else one sentence per difference
    report.header                        # the imzML's ims.header.Header (None when it was refused)
    require_pair(imzml, ibd)             # the same report, or PairMismatch(problems) when any
    check_ibd(header, ibd, size=None, digests=None) -> list[str]   # when the header is already read
    needed(header)                       # the digests of the ibd a check compares ("sha1",) or ()
    Digests(("md5", *needed(header)))    # them and others, computed where the ibd is read anyway

What is compared (file names never are: a pair may be named anything):
- the ibd's first 16 bytes against the imzML's UUID (IMS:1000080);
- the ibd's bytes against the imzML's stored SHA-1 (IMS:1000091), MD5 (IMS:1000090) or SHA-256;
- the ibd's size against the end of every spectrum's arrays (a truncated ibd), and against what
  the spectra use at all (an ibd much larger than its imzML addresses is another file).

The ibd is read once, in chunks, from its start; nothing seeks, so a stream from an object store
does. Given its `size` and the digest of the checksum the imzML records, computed where the bytes
were read anyway (an upload's receiving or sending, with Digests), only its first 16 bytes are
read. A caller about to read the whole ibd for another reason may check everything else first
(`checksum=False`: 16 bytes) and then call again with the digests it computed on the way.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from ims.header import Header, HeaderError, checksum_name, read_header

CHUNK_BYTES = 1 << 20
# the ibd checksums the imzML 1.1 specification defines (IMS:1000090, IMS:1000091), worth computing
# wherever an ibd is read anyway; SHA-256 (Cardinal's own term) is computed when a check needs it
STANDARD_DIGESTS = ("md5", "sha1")
# an ibd may carry some bytes no spectrum uses; more than this share (and this many bytes) is another file
SPARE_SHARE, SPARE_BYTES = 0.01, 4096


class PairMismatch(ValueError):
    """An imzML and an ibd that do not belong together; `problems` says each difference."""

    def __init__(self, problems: list[str]):
        super().__init__("the imzML and the ibd do not belong together: " + "; ".join(problems))
        self.problems = problems


@dataclass
class PairReport:
    """What was compared and what differed."""
    header: Header | None
    ibd_bytes: int | None = None
    checked: list[str] = field(default_factory=list)   # "UUID", "SHA-1", "size", ...
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Digests:
    """Several digests (hashlib names: md5, sha1, sha256) of one stream, fed as it is read once."""

    def __init__(self, algorithms):
        self._hashers = {name: hashlib.new(name) for name in dict.fromkeys(algorithms)}

    def update(self, chunk: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}


def needed(header: Header) -> tuple[str, ...]:
    """The digests of the ibd a check of this imzML compares: the checksum it records, if any."""
    return (header.checksum[0],) if header.checksum else ()


def check_pair(imzml, ibd, size: int | None = None, digests: Mapping[str, str] | None = None,
               checksum: bool = True) -> PairReport:
    """Read the imzML's header and compare the ibd with it; a refused imzML is reported as problems."""
    with ExitStack() as stack:
        try:
            header = read_header(_opened(imzml, stack))
        except HeaderError as refused:
            return PairReport(None, problems=[f"imzML: {p}" for p in refused.problems])
        report = PairReport(header)
        report.problems = check_ibd(header, _opened(ibd, stack), size, digests, report, checksum)
        return report


def require_pair(imzml, ibd, size: int | None = None, digests: Mapping[str, str] | None = None) -> PairReport:
    """check_pair, raising PairMismatch when anything differs."""
    report = check_pair(imzml, ibd, size, digests)
    if report.problems:
        raise PairMismatch(report.problems)
    return report


def check_ibd(header: Header, ibd, size: int | None = None, digests: Mapping[str, str] | None = None,
              report: PairReport | None = None, checksum: bool = True) -> list[str]:
    """Every difference between an ibd (a binary stream) and what the imzML's header says of it;
    with checksum=False, all but the checksum (left for a later call given the digests)."""
    report = report or PairReport(header)
    algorithm = header.checksum[0] if header.checksum and checksum else None
    known = (digests or {}).get(algorithm) if algorithm else None
    hashed = algorithm if known is None else None
    whole = size is None or hashed is not None
    start, read_size, digest = _read(ibd, hashed, whole)
    report.ibd_bytes = read_size if whole else size
    if report.ibd_bytes < 16:
        return [f"size: the ibd is {report.ibd_bytes} bytes long, too short to start with its 16-byte UUID"]
    return _uuid(header, start, report) + _checksum(header, known or digest, report) + _size(header, report)


def _read(stream, algorithm: str | None, whole: bool) -> tuple[bytes, int, str | None]:
    """(first 16 bytes, bytes read, hex digest or None); reads on only when the size or a digest needs it."""
    hasher = hashlib.new(algorithm) if algorithm else None
    start, total = b"", 0
    while chunk := stream.read(CHUNK_BYTES if whole else 16 - len(start)):
        start += chunk[:16 - len(start)]
        if hasher:
            hasher.update(chunk)
        total += len(chunk)
        if not whole and len(start) == 16:
            break
    return start, total, hasher.hexdigest() if hasher else None


def _uuid(header: Header, start: bytes, report: PairReport) -> list[str]:
    report.checked.append("UUID")
    if start.hex() == header.uuid:
        return []
    return [f"UUID: the ibd starts with {_dashed(start.hex())}, but the imzML names {_dashed(header.uuid)}: "
            "this ibd was written with another imzML"]


def _checksum(header: Header, digest: str | None, report: PairReport) -> list[str]:
    if header.checksum is None or digest is None:
        return []
    algorithm, recorded = header.checksum
    report.checked.append(checksum_name(algorithm))
    if digest == recorded:
        return []
    return [f"{checksum_name(algorithm)}: the imzML records {recorded} for its ibd, but the ibd's bytes give "
            f"{digest}: the ibd was changed, damaged or belongs to another imzML"]


def _size(header: Header, report: PairReport) -> list[str]:
    report.checked.append("size")
    size, ends = report.ibd_bytes, header.extents.ends()
    needed = header.expected_ibd_bytes()
    if size < needed:
        beyond = np.flatnonzero(ends > size)
        first = int(beyond[0])
        pixel = (int(header.extents["x"][first]), int(header.extents["y"][first]))
        return [f"size: the ibd is {size} bytes, but the imzML's spectra need {needed}: spectrum {first + 1} "
                f"(x={pixel[0]}, y={pixel[1]}) ends at byte {ends[first]} and {len(beyond)} of {len(ends)} spectra "
                "lie past the ibd's end; the ibd is truncated"]
    spare = size - needed
    if spare > max(SPARE_BYTES, SPARE_SHARE * needed):
        return [f"size: the ibd is {size} bytes, {spare} more than the {needed} its imzML's spectra use; "
                "it is not the ibd this imzML describes"]
    return []


def _dashed(digits: str) -> str:
    """A UUID's 32 hex digits in its usual 8-4-4-4-12 form."""
    if len(digits) != 32:
        return digits or "nothing"
    return "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


def _opened(source, stack: ExitStack):
    """A binary stream: the one given, or the path opened (and closed with the stack)."""
    if hasattr(source, "read"):
        return source
    return stack.enter_context(open(source, "rb"))
