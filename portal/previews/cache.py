"""Previews computed once per imzML/ibd pair and kept as `<data dir>/cache/previews/<key>.npz`.

The key is the SHA-256 of the imzML's checked path and of its content's SHA-256 (the data_file
node's `sha256`, else computed from the file), and of the ibd's checked path, size and
modification time (an ibd may be gigabytes: hashing it per visit costs too much), so a
re-uploaded file gets a new entry, and two measurements sharing an imzML with different ibds
(a wrong pair and the correct one) never share one. The path is
part of it because `sha256` is metadata, which technicians write: a node in one project claiming
the checksum of another project's file must not be shown that file's preview. Entries are written to a
temporary file and renamed into place, so a reader never sees half an entry; an entry from an
older layout (FORMAT) or an unreadable one is computed again.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from portal.previews import imzml
from portal.previews.imzml import Preview
from ground.storage import open_checked

FORMAT = 1  # bump when Preview's arrays change meaning
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK_BYTES = 1 << 20


def cache_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "cache" / "previews"


def preview(imzml_path: Path, ibd_path: Path, sha256: str, directory: Path) -> Preview:
    """The cached Preview of a checked imzML/ibd pair, computed and stored on first use."""
    path = entry(directory, imzml_path, sha256 if SHA256.match(sha256 or "") else file_sha256(imzml_path), ibd_path)
    cached = load(path)
    if cached is not None:
        return cached
    result = imzml.compute(imzml_path, ibd_path)
    save(result, path)
    return result


def entry(directory: Path, imzml_path: Path, content_sha256: str, ibd_path: Path) -> Path:
    """Where the Preview of this checked pair, with this content, is kept."""
    ibd = os.stat(ibd_path)
    parts = (imzml_path, content_sha256, ibd_path, ibd.st_size, ibd.st_mtime_ns)
    key = hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()
    return Path(directory) / f"{key}.npz"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open_checked(path) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def load(path: Path) -> Preview | None:
    """The Preview stored at path; None when there is none, or it is stale or damaged."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if int(stored["format"]) != FORMAT:
                return None
            return Preview(tic=stored["tic"], index=stored["index"], origin=tuple(stored["origin"].tolist()),
                           mz=stored["mz"], mean=stored["mean"], binned=bool(stored["binned"]),
                           spans=stored["spans"], dtypes=tuple(stored["dtypes"].tolist()))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # missing, or not an entry we wrote
        return None


def save(result: Preview, path: Path) -> None:
    """Store a Preview atomically: a temporary file in the same directory, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False)
    try:
        with handle:
            np.savez(handle, format=FORMAT, tic=result.tic, index=result.index, origin=np.array(result.origin),
                     mz=result.mz, mean=result.mean, binned=result.binned, spans=result.spans,
                     dtypes=np.array(result.dtypes))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
