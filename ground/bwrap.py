"""bubblewrap (bwrap): the sandbox of workflow steps on the local engine and of notebook servers on
the local hub (the command is ground.sandbox's). One probe, since installing it is not enough: some
hosts (containers without user namespaces) refuse the namespaces it needs; and the few host facts
a view needs (who runs inside, which directories that user cannot pass)."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ground import sandbox


def user(uid: int, gid: int) -> tuple[int, int] | None:
    """Who a sandboxed program runs as: (uid, gid) when the caller is root, else None (the caller,
    unprivileged already)."""
    return (uid, gid) if os.geteuid() == 0 else None


@dataclass(frozen=True)
class Found:
    """bwrap, and whether the inner, unprivileged one runs here: where the host allows no user
    namespace to an unprivileged user, the sandboxed program cannot make one either, and the
    sandbox is the outer bwrap and setpriv alone."""

    path: str
    nested: bool = True


def find(as_user: tuple[int, int] | None = None) -> tuple[Found | None, str]:
    """(bwrap, "") when the sandbox runs here as as_user, else (None, why not)."""
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap (bwrap) is not installed; install the Debian package bubblewrap"
    if as_user is not None and shutil.which(sandbox.SETPRIV) is None:
        return None, "setpriv is not installed (the Debian package util-linux); the sandbox drops root with it"
    why_not = _probe(path, as_user, nested=True)
    if not why_not:
        return Found(path), ""
    if as_user is not None and not _probe(path, as_user, nested=False):
        return Found(path, nested=False), ""
    return None, why_not


def _probe(path: str, as_user: tuple[int, int] | None, nested: bool) -> str:
    """"" when a sandbox starts here, else why not."""
    argv = sandbox.command(path, sandbox.View(), ["true"], as_user, nested=nested)
    try:
        probe = subprocess.run(argv, capture_output=True, timeout=20, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap cannot run here ({error})"
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here ({probe.stderr.decode(errors='replace').strip()})"
    return ""


def closed(paths, as_user: tuple[int, int] | None) -> list[str]:
    """The highest directory above each path that as_user cannot pass (mode without x for it): the
    sandbox shows it empty, with the paths bound back inside."""
    if as_user is None:
        return []
    found = []
    for path in paths:
        for parent in reversed(Path(path).parents):
            if not _passable(parent, *as_user):
                found.append(str(parent))
                break
    return sorted(set(found))


def present(paths) -> tuple[str, ...]:
    """The paths that exist here: one missing has nothing to hide, and bwrap cannot bind it."""
    return tuple(str(p) for p in paths if os.path.exists(p))


def _passable(directory: Path, uid: int, gid: int) -> bool:
    try:
        st = directory.stat()
    except OSError:
        return True  # missing: bwrap makes it inside the sandbox
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == gid:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def give(path: Path, as_user: tuple[int, int] | None, recursive: bool = False) -> None:
    """Make path (and, recursive, what is under it) the sandbox user's when the caller is root, so a
    sandboxed program can write it. Links are never followed, and a file with other hard links is
    left as it is (it may be someone else's, linked in)."""
    if as_user is None:
        return
    paths = [Path(top) / name for top, dirs, files in os.walk(path) for name in dirs + files] if recursive else []
    for each in [Path(path), *paths]:
        st = each.lstat()
        if (st.st_uid, st.st_gid) != as_user and (not each.is_file() or each.is_symlink() or st.st_nlink == 1):
            os.chown(each, *as_user, follow_symlinks=False)
