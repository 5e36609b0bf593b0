"""A private /tmp for each step: bubblewrap where it works, a logged fallback where it does not."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from ground import bwrap

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bwrap binary if it can create namespaces here; checked once per process."""
    path, why_not = bwrap.find()
    if path is None:
        log.warning("%s: steps share the host's /tmp (install bubblewrap to give each step a private /tmp)", why_not)
    return path


def _wrap(bwrap: str, tmp_dir: Path, argv: list[str]) -> list[str]:
    return [bwrap, "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--bind", str(tmp_dir), "/tmp", "--unshare-pid", "--die-with-parent",
            "--", *argv]


def sandboxed(argv: list[str], tmp_dir: Path, enabled: bool = True) -> tuple[list[str], bool]:
    """argv run with `tmp_dir` as its /tmp; (argv, True) when sandboxed, else (argv, False)."""
    bwrap = bwrap_path() if enabled else None
    if bwrap is None:
        return argv, False
    return _wrap(bwrap, tmp_dir, argv), True


def host_path(path: str, tmp_dir: Path, work_dir: Path, isolated: bool) -> Path:
    """Where a step's path (absolute under /tmp, or relative to its work dir) is on the host."""
    if path.startswith("/tmp/") and isolated:
        return tmp_dir / path[len("/tmp/"):]
    if path.startswith("/"):
        return Path(path)
    return work_dir / path
