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

Both kinds share one bound in bytes (the setting preview_cache_bytes): past it, the least recently
used entries go, by modification time, which a read sets to now (at most once a minute). Several
portal processes read and write one directory without a lock, so removal must not break a reader:
an entry is removed by unlink, and a reader that has opened it reads it whole all the same (POSIX
keeps an unlinked file while it is open; np.load reads an .npz's arrays through the one open
file); a reader that comes after finds nothing and computes the entry again. A writer's temporary
file is never removed while young, and the entry just written never. A process looks over the
directory (one listing) only after it has written a PRUNE_SHARE-th of the bound since it last
looked, so the directory may pass the bound by that much per portal process.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
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
PRUNE_SHARE = 20               # a process prunes after writing this share of the bound since it last looked
STALE_TEMPORARY_SECONDS = 3600  # a writer's temporary file older than this was left by a crash
TOUCH_SECONDS = 60             # an entry read is marked as used at most this often
_WRITTEN: dict[Path, int] = {}  # per cache directory, bytes this process wrote since it last pruned


def cache_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "cache" / "previews"


def preview(imzml_path: Path, ibd_path: Path, sha256: str, directory: Path, bound: int = 0) -> Preview:
    """The cached Preview of a checked imzML/ibd pair, computed and stored on first use; the
    directory then pruned to `bound` bytes (0: no bound)."""
    path = entry(directory, imzml_path, sha256 if SHA256.match(sha256 or "") else file_sha256(imzml_path), ibd_path)
    cached = load(path)
    if cached is not None:
        _touch(path)
        return cached
    result = imzml.compute(imzml_path, ibd_path)
    save(result, path)
    written(directory, path, bound)
    return result


def entry(directory: Path, imzml_path: Path, content_sha256: str, ibd_path: Path) -> Path:
    """Where the Preview of this checked pair, with this content, is kept."""
    return Path(directory) / f"{_key(imzml_path, content_sha256, *_stamp(ibd_path))}.npz"


def ion_image(preview: Preview, paths: tuple[Path, Path], checksums: tuple[str, str], query: Window,
              directory: Path, bound: int = 0) -> np.ndarray:
    """The cached ion image of a checked pair (its Preview read first) for a query, computed and
    stored on first use; checksums are the two data_file nodes' (see recorded_checksum). The
    directory is then pruned to `bound` bytes (0: no bound)."""
    path = ion_entry(directory, paths, checksums, query)
    try:
        image = np.load(path, allow_pickle=False)
        _touch(path)
        return image
    except (OSError, ValueError, EOFError):  # not there yet, or not an entry we wrote
        pass
    image = images.ion_image(preview, paths[1], query)
    _write(path, lambda handle: np.save(handle, image, allow_pickle=False))
    written(directory, path, bound)
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


# -- the bound ---------------------------------------------------------------------------------

def written(directory: Path, path: Path, bound: int) -> None:
    """After this process wrote the entry at path: prune the directory to `bound` bytes once the
    process has written a PRUNE_SHARE-th of it since it last looked (its first write looks at once)."""
    if bound <= 0:
        return
    try:
        size = path.stat().st_size
    except OSError:  # pruned already by another process
        return
    directory = Path(directory)
    due = _WRITTEN.get(directory, bound) + size   # threads race here harmlessly: a look more or less
    if due < bound // PRUNE_SHARE:
        _WRITTEN[directory] = due
        return
    _WRITTEN[directory] = 0
    prune(directory, bound, keep=path)


def prune(directory: Path, bound: int, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used entries (previews and ion images; oldest modification
    time first) until the directory holds at most `bound` bytes, never `keep`; the paths removed.
    A reader that has an entry open reads it whole all the same (see the module's docstring)."""
    entries = sorted(_entries(Path(directory)))
    total, removed = sum(size for _, _, size in entries), []
    for _, path, size in entries:
        if total <= bound:
            break
        if path != keep:
            path.unlink(missing_ok=True)   # another process may have pruned it first
            total -= size
            removed.append(path)
    return removed


def _entries(directory: Path):
    """(modification time, path, size) of each entry; a crashed writer's old temporary file removed."""
    for folder in (directory, directory / "ions"):
        try:
            listing = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for item in listing:
            try:
                info = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not item.is_file(follow_symlinks=False):
                continue
            if item.name.startswith("."):   # a writer's temporary file: left alone unless left long ago
                if time.time() - info.st_mtime > STALE_TEMPORARY_SECONDS:
                    Path(item.path).unlink(missing_ok=True)
                continue
            yield info.st_mtime_ns, Path(item.path), info.st_size


def _touch(path: Path) -> None:
    """Mark an entry read as just used: its modification time (access times are often not kept),
    at most once in TOUCH_SECONDS (least recently used to the minute, for fewer inode writes)."""
    try:
        if time.time() - path.stat().st_mtime > TOUCH_SECONDS:
            os.utime(path)
    except OSError:  # pruned meanwhile: the caller has what it read
        pass
