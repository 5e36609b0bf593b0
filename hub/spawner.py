"""The local spawner of the labcommons hub (loaded by jupyterhub_config.py; the auth-state hook is hub/sso.py's).

Everything runs as one OS user on a single machine, so each hub user gets a notebook directory
of their own under <data dir>/notebooks/<user> rather than a home directory.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import TraitError, Unicode, validate


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

    def get_env(self):
        env = super().get_env()
        self.user_dir()
        # the venv's scripts first, so the notebook finds the venv's python and kernels
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
        return env
