"""A private /tmp for each step: bubblewrap where it works, a logged fallback where it does not."""
from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bwrap binary if it can create namespaces here; checked once per process."""
    path = shutil.which("bwrap")
    if path is None:
        log.warning("bubblewrap (bwrap) is not installed: steps share the host's /tmp; "
                    "install the Debian package bubblewrap to give each step a private /tmp")
        return None
    try:
        probe = subprocess.run(_wrap(path, Path("/"), ["true"]), capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        probe = subprocess.CompletedProcess([], 1, b"", str(error).encode())
    if probe.returncode != 0:
        log.warning("bubblewrap cannot create namespaces here (%s): steps share the host's "
                    "/tmp", probe.stderr.decode(errors="replace").strip())
        return None
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
