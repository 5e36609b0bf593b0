"""The local spawner of the labcommons hub (loaded by jupyterhub_config.py; the auth-state hook is hub/sso.py's).

Everything runs as one OS user on a single machine, so each hub user gets a notebook directory
of their own under <data dir>/notebooks/<user> rather than a home directory, and each server runs
in a bubblewrap sandbox: without one, a notebook could read what the same OS user can, among it
the service's signing key and admin token, the hub's secrets and other users' notebooks under the
data dir, and other servers' tokens in /proc.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Enum, List, TraitError, Unicode, validate

from ground import bwrap

CHECKOUT = Path(__file__).resolve().parents[1]  # the labcommons packages the server imports


class LabcommonsLocalSpawner(SimpleLocalProcessSpawner):
    """A single-user server as a local process, in the user's own notebook directory."""

    notebooks_root = Unicode(
        config=True,
        help="Directory holding one notebook directory per user (<data dir>/notebooks).",
    )

    @validate("notebooks_root")
    def _absolute(self, proposal):
        if not os.path.isabs(proposal.value):
            raise TraitError(f"LabcommonsLocalSpawner.notebooks_root must be absolute, not {proposal.value!r}")
        return proposal.value

    def user_dir(self) -> Path:
        """The user's notebook directory, made private on first use."""
        path = Path(self.notebooks_root) / self.user.name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    sandbox = Enum(("auto", "on", "off"), "auto", config=True, help=(
        "on: every server in a bubblewrap sandbox, and no server where bubblewrap cannot run; "
        "auto: sandboxed where bubblewrap runs, else a warning in the hub's log; off: none."))
    hidden_dir = Unicode("", config=True, help=(
        "A directory servers must not see (the data dir), but for the user's own notebook directory "
        "and readable_dirs."))
    readable_dirs = List(Unicode(), config=True,
                         help="Directories under hidden_dir servers may read (the storage root).")

    async def start(self):
        # the server's command line is handed to shell_cmd: the sandbox, made for this user
        self.shell_cmd = self.sandbox_command()
        return await super().start()

    def sandbox_command(self) -> list[str]:
        """bwrap with the host read-only; a private /tmp, /proc and process ids; hidden_dir an
        empty tmpfs but for the storage root (read-only) and the user's notebook directory
        (read-write), with the python environment and the checkout visible wherever they are;
        then `sh -c`. [] when there is no sandbox."""
        if self.sandbox == "off":
            return []
        path, why_not = bwrap.find()
        if path is None:
            if self.sandbox == "on":
                raise RuntimeError(f"LABCOMMONS_HUB_SANDBOX is on, but {why_not}")
            self.log.warning("%s: %s's server runs without a sandbox and can read the data directory "
                             "(set LABCOMMONS_HUB_SANDBOX=on to refuse instead)", why_not, self.user.name)
            return []
        argv = [path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--unshare-pid", "--die-with-parent"]
        for needed in dict.fromkeys((sys.prefix, sys.base_prefix, str(CHECKOUT))):  # may lie under /tmp
            argv += ["--ro-bind", needed, needed]
        if self.hidden_dir:
            argv += ["--tmpfs", self.hidden_dir]
            argv += [arg for d in self.readable_dirs if os.path.isdir(d) for arg in ("--ro-bind", d, d)]
        own = str(self.user_dir())
        return argv + ["--bind", own, own, "--chdir", own, "--", "/bin/sh", "-c"]

    def get_env(self):
        env = super().get_env()
        self.user_dir()
        # the venv's scripts first, so the notebook finds the venv's python and kernels
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
        return env
