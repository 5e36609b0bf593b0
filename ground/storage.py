"""Where a file's bytes are, and the checks that make raw data follow grants.

Every stored file belongs to a project and lies under that project's own prefix: the folder
<storage root>/<project_id>/ (run outputs and logs in <project_id>/runs/<run_id>/), or the
prefix <bucket>/<prefix>/<project_id>/ of an S3-compatible store. Metadata says where a file is
(`storage_url`), and technicians write metadata, so nothing is read on its word alone:

- the service refuses a storage_url outside the submitting project's prefix (Layout.problem,
  a check of the text only: the service may not see the files);
- every reader resolves the URL with the node's project (resolve: links followed, then the real
  path checked to lie in the project's folder) and opens it with open_checked (no link followed
  at the last step, and the opened file's own path checked again where /proc tells it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

LOCAL_HOSTS = ("", "localhost")
RUNS = "runs"  # a project's folder of workflow runs (so no measurement may take that name)
OLD_RUN_FOLDERS = ("runs", "work")  # where runs kept outputs and logs before: <root>/runs, <root>/work


class NotReadable(Exception):
    """A file the portal will not or cannot read; the message says why, for people."""


def project_dir(root: Path, project_id: str) -> Path:
    """The folder holding every file of a project (run outputs included): <root>/<project_id>."""
    return Path(root) / _folder_name(project_id, "a project id")


def run_dir(root: Path, project_id: str, run_id: str) -> Path:
    """The folder of one run's outputs and logs, under its project: <root>/<project_id>/runs/<run_id>."""
    return project_dir(root, project_id) / RUNS / _folder_name(run_id, "a run id")


def _folder_name(name: str, what: str) -> str:
    """name, when it names one folder (the service's own ids always do: a project id is letters,
    digits, - and _; a run id a UUID); never a way up or down the tree."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise NotReadable(f"{name!r} is not {what} that names a folder")
    return name


def resolve(storage_url: str, root: Path, project_id: str) -> Path:
    """The real path of a file:// URL in the project's folder of root (links followed, then checked)."""
    path, folder = in_project(storage_url, Path(root).resolve(), project_id)
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise NotReadable(f"{storage_url} is not in the storage root (the file is missing)") from None
    if not _inside(real, folder):
        raise NotReadable(f"{storage_url} links outside the folder of project {project_id} in the storage root; "
                          "a project's files are read only from its own folder")
    if not real.is_file():
        raise NotReadable(f"{storage_url} is not a regular file")
    return real


def in_project(storage_url: str, root: Path, project_id: str) -> tuple[Path, Path]:
    """(the path a file:// URL names, the project's folder), the path checked by its text alone to
    lie in the folder (before the file system is touched, and where the service cannot see it)."""
    path, folder = _local_path(storage_url), project_dir(root, project_id)
    if not _inside(Path(os.path.normpath(path)), folder):
        raise NotReadable(f"{storage_url} is outside the folder of project {project_id} in the storage root "
                          f"({folder}/); a project's files are read only from its own folder"
                          + _older_run_hint(Path(os.path.normpath(path)), root))
    return path, folder


def _older_run_hint(path: Path, root: Path) -> str:
    """What to know when a URL names a run's file in the layout before files followed projects."""
    if not any(_inside(path, root / old) for old in OLD_RUN_FOLDERS):
        return ""
    return (". It belongs to a run made before runs were kept in their project's folder: such files are "
            "no longer served (docs/workflows.md, 'Runs made before files followed projects')")


def object_key(storage_url: str, bucket_root: str, project_id: str) -> str:
    """The key (below bucket_root, "bucket/prefix") of an s3:// URL in the project's prefix."""
    parts = urlsplit(storage_url or "")
    prefix = f"{bucket_root.strip('/')}/{_folder_name(project_id, 'a project id')}/"
    path = parts.netloc + parts.path
    key = path[len(prefix):]
    if (parts.scheme != "s3" or parts.query or parts.fragment or not bucket_root or not path.startswith(prefix)
            or any(part in ("", ".", "..") for part in key.split("/"))):
        raise NotReadable(f"{storage_url} is outside the prefix of project {project_id} in the storage root "
                          f"(s3://{prefix}); a project's files are read only from its own prefix")
    return f"{project_id}/{key}"


def open_checked(path: Path):
    """Open a resolved path for reading without following a symlink put there since it was checked,
    and make sure (where /proc tells) that the file opened is the one at that path."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        opened = str(path)  # no /proc here: O_NOFOLLOW is the check
    if opened != str(path):  # a folder on the way was swapped for a link after the check
        os.close(fd)
        raise NotReadable(f"{path.name} moved while it was opened; try again")
    return os.fdopen(fd, "rb")


@dataclass(frozen=True)
class Layout:
    """The storage root as the service knows it: what storage_url a project's files may have."""

    root: Path              # the directory (resolved, as file:// URLs name it)
    bucket_root: str = ""   # "bucket/prefix" when an S3-compatible store is configured

    @classmethod
    def from_settings(cls, settings) -> "Layout":
        return cls(Path(settings.storage_root).resolve(), settings.storage_url.removeprefix("s3://").strip("/"))

    def problem(self, storage_url: str, project_id: str) -> str | None:
        """Why a project's file cannot have this storage_url (naming what it may be), or None."""
        try:
            if urlsplit(storage_url).scheme.lower() == "s3":
                object_key(storage_url, self.bucket_root, project_id)
            else:
                in_project(storage_url, self.root, project_id)
            return None
        except (NotReadable, ValueError):
            return f"{storage_url!r} is not in the storage of project {project_id}; give {self.allowed(project_id)}"

    def allowed(self, project_id: str) -> str:
        """The storage_urls a project's files may have, for messages."""
        local = f"{project_dir(self.root, project_id).as_uri()}/..."
        return local + (f" or s3://{self.bucket_root}/{project_id}/..." if self.bucket_root else "")


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
