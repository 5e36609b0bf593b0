"""Each step in the sandbox of ground/sandbox.py: an unprivileged user without capabilities, a private
/tmp, and of the storage only its run's project folders (read-only) and output directory; bubblewrap
where it works, a logged fallback where it does not."""
from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from ground import bwrap, sandbox, settings

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_user() -> tuple[int, int] | None:
    """Who steps run as: LABCOMMONS_SANDBOX_UID/GID when the engine is root, else the engine's user."""
    return bwrap.user(*settings.load().sandbox_user)


@dataclass(frozen=True)
class Sight:
    """What a run's steps see besides their own directories: read (its project folders), write
    (its output directory), hidden (the storage root, the runs directory, the data dir)."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    user: tuple[int, int] | None = None

    def view(self, step_dir: Path, cwd: Path) -> sandbox.View:
        """The step's view: its directory read-only (the script), its tmp/ as /tmp, its work dir."""
        host = tuple(dict.fromkeys(map(str, (PROJECT_ROOT, sys.prefix, sys.base_prefix))))
        read_only, read_write = (*bwrap.present(self.read), str(step_dir)), (*self.write, str(cwd))
        closed = bwrap.closed((*host, *read_only, *read_write), self.user)
        return sandbox.View(read_only=read_only, read_write=read_write, hidden=bwrap.present(self.hidden),
                            host=host, closed=tuple(closed), tmp=str(step_dir / "tmp"), cwd=str(cwd))


@functools.lru_cache(maxsize=4)
def bwrap_path(user: tuple[int, int] | None = None) -> bwrap.Found | None:
    """bwrap if the sandbox runs here as user; checked once per process."""
    found, why_not = bwrap.find(user)
    if found is None:
        log.warning("%s: steps run without a sandbox, as the engine's user, seeing what it sees "
                    "(install bubblewrap to sandbox them)", why_not)
    return found


def sandboxed(argv: list[str], step_dir: Path, enabled: bool = True,
              sight: Sight | None = None) -> tuple[list[str], bool]:
    """argv in the step's sandbox; (argv, True) when sandboxed, else (argv, False)."""
    sight = sight or Sight()
    found = bwrap_path(sight.user) if enabled else None
    if found is None:
        return argv, False
    view = sight.view(step_dir, step_dir / "work")
    return sandbox.command(found.path, view, argv, sight.user, nested=found.nested), True


def host_path(path: str, tmp_dir: Path, work_dir: Path, isolated: bool) -> Path:
    """Where a step's path (absolute under /tmp, or relative to its work dir) is on the host."""
    if path.startswith("/tmp/") and isolated:
        return tmp_dir / path[len("/tmp/"):]
    if path.startswith("/"):
        return Path(path)
    return work_dir / path


def confined(path: Path, allowed: list[Path]) -> bool:
    """Whether path, links followed, stays inside one of the allowed directories: what the engine
    (which may be root) reads of a step's outputs, so a step's symlink cannot make it read elsewhere."""
    real = path.resolve()
    return any(real == d.resolve() or real.is_relative_to(d.resolve()) for d in allowed)
