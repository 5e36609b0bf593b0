"""The object store that holds data files: a directory (file://, the default) or an
S3-compatible bucket (s3://, through fsspec's s3fs), addressed by keys relative to its root.

Keys are built by the portal from checked names only (see portal/registration/uploads.py); `_path` refuses
any other shape, so no key can leave the root. A stored file's key starts with its project's id
(<project>/<measurement>/<file>); readers find it with ground.storage.object_key, which checks that.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from pathlib import Path

import fsspec

_held: set[str] = set()   # keys locked in this process, on a store without file locks (S3)
_held_lock = threading.Lock()


class ObjectStore:
    """One storage root: local directory or S3 bucket/prefix, with the few operations uploads need."""

    def __init__(self, fs, root: str, scheme: str):
        self.fs, self.root, self.scheme = fs, root.rstrip("/"), scheme

    @classmethod
    def from_settings(cls, settings) -> "ObjectStore":
        """The store named by settings.storage_url (s3://bucket/prefix), else the local storage root."""
        if settings.storage_url.startswith("s3://"):
            fs = fsspec.filesystem("s3", endpoint_url=settings.s3_endpoint_url or None,
                                   use_listings_cache=False)
            return cls(fs, settings.storage_url[len("s3://"):], "s3")
        root = Path(settings.storage_root).resolve()
        return cls(fsspec.filesystem("file"), str(root), "file")

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"not a storage key: {key!r}")
        return f"{self.root}/{key}"

    def url(self, key: str) -> str:
        """The storage_url a data_file node records for this key."""
        if self.scheme == "file":
            return Path(self._path(key)).as_uri()
        return f"s3://{self._path(key)}"

    def open_write(self, key: str):
        path = self._path(key)
        if self.scheme == "file":
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return self.fs.open(path, "wb")

    def open_read(self, key: str):
        return self.fs.open(self._path(key), "rb")

    def write_text(self, key: str, text: str) -> None:
        """Write a small object whole: a reader meanwhile sees the old text or the new, never a part
        (a temporary file renamed over it in a directory; an S3 PUT is atomic as it is)."""
        if self.scheme != "file":
            with self.open_write(key) as sink:
                sink.write(text.encode())
            return
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with open(temporary, "wb") as sink:
                sink.write(text.encode())
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)

    @contextlib.contextmanager
    def exclusive(self, key: str):
        """Yields whether the caller alone holds `key`'s lock until the block ends, without waiting.
        In a directory, a file lock: it holds across the portal's processes and threads and goes with
        a process that dies. On S3, only within this process (several processes over one bucket
        would need a lock service)."""
        if self.scheme != "file":
            with _held_lock:
                taken = key not in _held
                _held.add(key)
            try:
                yield taken
            finally:
                if taken:
                    with _held_lock:
                        _held.discard(key)
            return
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read_text(self, key: str) -> str:
        with self.open_read(key) as source:
            return source.read().decode()

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key))

    def size(self, key: str) -> int:
        return int(self.fs.size(self._path(key)))

    def listing(self, key: str) -> dict[str, int]:
        """The names directly under a prefix and their sizes; empty when there is nothing."""
        try:
            entries = self.fs.ls(self._path(key), detail=True)
        except FileNotFoundError:
            return {}
        return {entry["name"].rstrip("/").rpartition("/")[2]: int(entry.get("size") or 0) for entry in entries}

    def move(self, source: str, target: str) -> None:
        """Move one object (a rename on a directory; copy then delete on S3)."""
        target_path = self._path(target)
        if self.scheme == "file":
            os.makedirs(os.path.dirname(target_path), exist_ok=True)
        self.fs.mv(self._path(source), target_path)

    def remove(self, key: str) -> None:
        """Remove one object or a whole prefix; nothing to remove is fine."""
        path = self._path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
        if self.scheme == "file":
            _remove_empty_parents(Path(path).parent, Path(self.root))


def _remove_empty_parents(directory: Path, root: Path) -> None:
    """Local directories left empty by a removal, up to (not including) the root."""
    while directory != root and directory.is_relative_to(root):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
