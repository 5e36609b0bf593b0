"""What registration reads from an imzML (ims.header) and checks of a pair (ims.pair).

- `for_form(stream, type_def)`: when the technician chooses an imzML, the page sends it to
  `POST /register/header` (read as it streams, kept nowhere) and fills the measurement's empty
  fields with the values its header gives; the technician checks and corrects them.
- `verified(store, staged, values, type_def)`: at commit, before anything is moved or written, the
  staged ibd is checked against the staged imzML's header (UUID, stored checksum, sizes); a pair
  that does not belong together is refused naming each difference. Values a client did not send
  at all (a script, `labcommons upload`) are taken from the header; values sent, even empty, stay.
"""
from __future__ import annotations

from ims.header import Header, HeaderError, checksum_name, measurement_values, read_header
from ims.pair import check_ibd
from portal.objects import ObjectStore
from portal.registration import uploads
from portal.registration.uploads import Staged, UploadRefused

FILE_FIELD = "file-imzML"   # where the form shows a refused imzML


class PairRefused(Exception):
    """A staged pair that does not belong together: one sentence per difference."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def read(stream, file_name: str) -> Header:
    """The header of the imzML in stream; UploadRefused at the imzML's field when it is refused."""
    try:
        return read_header(stream)
    except HeaderError as refused:
        raise UploadRefused(FILE_FIELD, f"{file_name}: " + "; ".join(refused.problems)) from None


def for_form(header: Header, type_def: dict) -> dict:
    """What the page shows: the values for the form's fields, a summary, and the notes."""
    return {"values": form_values(header, type_def), "summary": summary(header), "notes": header.notes}


def form_values(header: Header, type_def: dict) -> dict[str, str]:
    """The header's values the form has a field (and, for an enum, a choice) for, as the form's text."""
    return {name: _text(value) for name, value in measurement_values(header, type_def["properties"]).items()}


def summary(header: Header) -> list[str]:
    """A few lines about the file that no field holds."""
    width, height = header.grid
    checksum = checksum_name(header.checksum[0]) if header.checksum else "no checksum"
    return [f"{header.spectra:,} spectra on a grid of {width} × {height} pixels, {header.storage}",
            f"m/z {header.mz_type}, intensities {header.intensity_type}",
            f"ibd UUID {header.uuid}, {checksum}, at least {header.expected_ibd_bytes():,} bytes"]


def verified(store: ObjectStore, staged: list[Staged], values: dict, type_def: dict) -> dict:
    """The values with those the imzML's header gives where the client sent none; PairRefused
    when the staged ibd does not belong to the staged imzML."""
    imzml = next(s for s in staged if s.data_format == "imzML")
    ibd = next(s for s in staged if s.data_format == "ibd")
    try:
        with store.open_read(uploads.staged_key(imzml)) as source:
            header = read_header(source)
    except HeaderError as refused:
        raise PairRefused([f"files: {imzml.file_name}: {p}" for p in refused.problems]) from None
    with store.open_read(uploads.staged_key(ibd)) as source:
        # the digests computed on receipt: only the first 16 bytes are read, unless the imzML
        # records a checksum not among them (SHA-256)
        problems = check_ibd(header, source, size=ibd.file_size, digests={**ibd.digests, "md5": ibd.md5sum})
    if problems:
        raise PairRefused([f"files: {ibd.file_name} does not belong to {imzml.file_name}: {p}" for p in problems])
    return form_values(header, type_def) | values


def _text(value) -> str:
    """A value as the form shows it: 20.0 as 20."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
