"""Where a data_file's bytes are: its storage_url checked to be a file:// URL inside the storage
root, so that metadata (which technicians write) cannot make the portal read any other file."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

LOCAL_HOSTS = ("", "localhost")


class NotReadable(Exception):
    """A file the portal will not or cannot read; the message says why, for people."""


def resolve(storage_url: str, root: Path) -> Path:
    """The real path of a file:// URL inside root (symlinks followed, then checked again)."""
    path = _local_path(storage_url)
    root = Path(root).resolve()
    if not _inside(Path(os.path.normpath(path)), root):  # before touching the file system
        raise NotReadable(f"{storage_url} is outside the storage root; the portal reads only files stored there")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise NotReadable(f"{storage_url} is not in the storage root (the file is missing)") from None
    if not _inside(real, root):
        raise NotReadable(f"{storage_url} links outside the storage root; the portal reads only files stored there")
    if not real.is_file():
        raise NotReadable(f"{storage_url} is not a regular file")
    return real


def _local_path(storage_url: str) -> Path:
    """The absolute path a file:// URL names; NotReadable for any other URL."""
    parts = urlsplit(storage_url or "")
    if parts.scheme.lower() != "file":
        shown = storage_url if storage_url else "an empty storage_url"
        raise NotReadable(f"{shown} is not a file:// URL; previews are made only from files in the storage root")
    if parts.netloc.lower() not in LOCAL_HOSTS or parts.query or parts.fragment:
        raise NotReadable(f"{storage_url} does not name a local file (file:///path/in/the/storage/root)")
    text = unquote(parts.path)
    if "\x00" in text or not text.startswith("/"):
        raise NotReadable(f"{storage_url} does not name a file by an absolute path")
    return Path(text)


def _inside(path: Path, root: Path) -> bool:
    return path != root and path.is_relative_to(root)


def open_checked(path: Path):
    """Open a resolved path for reading without following a symlink put there since it was checked."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def project_dir(root: Path, project_id: str) -> Path:
    """The folder holding every file of a project (run outputs included): <root>/<project_id>."""
    if not project_id or project_id in (".", "..") or "/" in project_id or "\x00" in project_id:
        raise NotReadable(f"{project_id!r} is not a project id that names a folder")
    return Path(root) / project_id


def run_dir(root: Path, project_id: str, run_id: str) -> Path:
    """The folder of one run's outputs and logs, under its project: <root>/<project_id>/runs/<run_id>."""
    return project_dir(root, project_id) / "runs" / run_id
