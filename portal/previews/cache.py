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

Ion images are kept as `<data dir>/cache/previews/ions/<key>.npy`, one per pair and query, keyed
the same way and, besides, by both data_file nodes' recorded checksums (sha256, else md5sum) and
the query (m/z, tolerance, unit), so an entry is never shared by two pairs or two windows.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ground.storage import open_checked
from ims import images
from ims.images import Window
from portal.previews import imzml
from portal.previews.imzml import Preview

FORMAT = 1  # bump when Preview's arrays change meaning
ION_FORMAT = 1  # bump when ion images change meaning
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MD5 = re.compile(r"^[0-9a-f]{32}$")
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
    return Path(directory) / f"{_key(imzml_path, content_sha256, *_stamp(ibd_path))}.npz"


def ion_image(preview: Preview, paths: tuple[Path, Path], checksums: tuple[str, str], query: Window,
              directory: Path) -> np.ndarray:
    """The cached ion image of a checked pair (its Preview read first) for a query, computed and
    stored on first use; checksums are the two data_file nodes' (see recorded_checksum)."""
    path = ion_entry(directory, paths, checksums, query)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # not there yet, or not an entry we wrote
        pass
    image = images.ion_image(preview, paths[1], query)
    _write(path, lambda handle: np.save(handle, image, allow_pickle=False))
    return image


def ion_entry(directory: Path, paths: tuple[Path, Path], checksums: tuple[str, str], query: Window) -> Path:
    """Where the ion image of this checked pair, with these checksums, for this query is kept."""
    key = _key(ION_FORMAT, paths[0], checksums[0], *_stamp(paths[1]), checksums[1], query.key())
    return Path(directory) / "ions" / f"{key}.npy"


def recorded_checksum(properties: dict) -> str:
    """A data_file node's sha256, else its md5sum, when it looks like one; else ""."""
    for field, pattern in (("sha256", SHA256), ("md5sum", MD5)):
        if pattern.match(str(properties.get(field) or "")):
            return f"{field}:{properties[field]}"
    return ""


def _stamp(ibd_path: Path) -> tuple:
    """The ibd's checked path, size and modification time (hashing gigabytes per visit costs too much)."""
    ibd = os.stat(ibd_path)
    return ibd_path, ibd.st_size, ibd.st_mtime_ns


def _key(*parts) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


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
    """Store a Preview atomically."""
    _write(path, lambda handle: np.savez(
        handle, format=FORMAT, tic=result.tic, index=result.index, origin=np.array(result.origin), mz=result.mz,
        mean=result.mean, binned=result.binned, spans=result.spans, dtypes=np.array(result.dtypes)))


def _write(path: Path, write) -> None:
    """write(handle) to a temporary file in path's directory, then os.replace it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
