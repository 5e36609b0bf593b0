"""bubblewrap (bwrap): the sandbox of workflow steps on the local engine and of notebook servers
on the local hub. One probe, since installing it is not enough: some hosts (containers without
user namespaces) refuse to create the namespaces it needs."""
from __future__ import annotations

import shutil
import subprocess


def find() -> tuple[str | None, str]:
    """(the bwrap binary, "") when it can create namespaces here, else (None, why not)."""
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap (bwrap) is not installed; install the Debian package bubblewrap"
    probe_argv = [path, "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--", "true"]
    try:
        probe = subprocess.run(probe_argv, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"bubblewrap cannot run here ({error})"
    if probe.returncode != 0:
        return None, f"bubblewrap cannot create namespaces here ({probe.stderr.decode(errors='replace').strip()})"
    return path, ""
