"""The local spawner of the labcommons hub (loaded by jupyterhub_config.py; the auth-state hook is hub/sso.py's).

Everything runs as one OS user on a single machine, so each hub user gets a notebook directory
of their own under <data dir>/notebooks/<user> rather than a home directory, and each server runs
in a bubblewrap sandbox (ground/sandbox.py) as an unprivileged user without capabilities: without
one, a notebook could read what the hub's OS user can, among it the service's signing key and admin
token, the hub's secrets, other users' notebooks and every project's raw files, and other servers'
tokens in /proc. Of the storage root it sees the folders of the projects its user may read when it
starts (a revoked grant takes effect at the next start; the admin page offers to stop the server).
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from thriftpy2.transport import TTransportException
from traitlets import Enum, Int, TraitError, Unicode, validate

from ground import bwrap, sandbox, storage
from metadata.client import ERRORS, MetadataClient

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
        "auto: sandboxed where bubblewrap runs, else (a hub not run as root) a warning in the hub's log; "
        "off: none."))
    hidden_dir = Unicode("", config=True, help=(
        "A directory servers must not see (the data dir), but for the user's own notebook directory "
        "and the folders of the projects the user may read."))
    storage_root = Unicode("", config=True, help=(
        "The storage root (under hidden_dir): a server sees the folders <storage_root>/<project> of the "
        "projects its user may read when it starts, learnt from the metadata service."))
    service_host = Unicode("127.0.0.1", config=True, help="The metadata service, asked which projects a user may read.")
    service_port = Int(9090, config=True, help="The metadata service's port.")
    sandbox_uid = Int(65534, config=True, help="Who servers run as when the hub is root (LABCOMMONS_SANDBOX_UID).")
    sandbox_gid = Int(65534, config=True, help="Their group when the hub is root (LABCOMMONS_SANDBOX_GID).")

    @validate("sandbox_uid", "sandbox_gid")
    def _unprivileged(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"LabcommonsLocalSpawner.{proposal.trait.name} must be an unprivileged id, "
                             f"not {proposal.value}")
        return proposal.value

    async def start(self):
        # the server's command line is handed to shell_cmd: the sandbox, made for this user now
        projects = await asyncio.to_thread(self.readable_projects) if self.sandbox != "off" else []
        self.shell_cmd = self.sandbox_command(projects)
        return await super().start()

    def readable_projects(self) -> list[str] | None:
        """The projects the user may read, from the service with the user's own token (fresh at
        every spawn: the authenticator refreshes it first); None: all (admins and workers)."""
        token = self.environment.get("LABCOMMONS_TOKEN", "")
        if not token:
            return []
        try:
            with MetadataClient(self.service_host, self.service_port, token, timeout_seconds=30) as client:
                identity = client.whoami()
        except (*ERRORS, TTransportException, OSError) as error:
            raise RuntimeError(f"cannot learn which projects {self.user.name} may read from the metadata "
                               f"service at {self.service_host}:{self.service_port}: {error}") from None
        if {"admin", "worker"} & set(identity.roles):
            return None
        return sorted(identity.grants)

    def sandbox_command(self, projects: list[str] | None = ()) -> list[str]:
        """bwrap (ground/sandbox.py) as the sandbox user: the host read-only; a private /tmp, /proc
        and process ids; hidden_dir empty but for the folders of `projects` (None: the whole
        storage root) read-only and the user's notebook directory read-write; the python
        environment and the checkout visible wherever they are; then `sh -c`. [] when there is
        no sandbox."""
        if self.sandbox == "off":
            return []
        user = bwrap.user(self.sandbox_uid, self.sandbox_gid)
        found, why_not = bwrap.find(user)
        if found is None:
            if self.sandbox == "on":
                raise RuntimeError(f"LABCOMMONS_HUB_SANDBOX is on, but {why_not}")
            if os.geteuid() == 0:  # unsandboxed, a server would run as root: the whole host, every secret
                raise RuntimeError(f"{why_not}; the hub runs as root, and a notebook server without a sandbox "
                                   "would run as root too: install bubblewrap, or run the hub as an "
                                   "unprivileged user")
            self.log.warning("%s: %s's server runs without a sandbox and can read the data directory "
                             "(set LABCOMMONS_HUB_SANDBOX=on to refuse instead)", why_not, self.user.name)
            return []
        own = self.user_dir()
        bwrap.give(own, user, recursive=True)  # files made by root (an earlier version's servers) included
        view = self.view(str(own), self.project_dirs(projects))
        view = dataclasses.replace(view, closed=tuple(bwrap.closed(view.host + view.read_only + view.read_write, user)))
        return sandbox.command(found.path, view, ["/bin/sh", "-c"], user, nested=found.nested)

    def view(self, own: str, readable: list[str]) -> sandbox.View:
        """What the server sees: its own directory, the readable folders, its python and checkout."""
        host = tuple(dict.fromkeys((sys.prefix, sys.base_prefix, str(CHECKOUT))))
        hidden = bwrap.present([self.hidden_dir] if self.hidden_dir else [])
        return sandbox.View(read_only=tuple(readable), read_write=(own,), hidden=hidden, host=host, cwd=own)

    def project_dirs(self, projects: list[str] | None) -> list[str]:
        """The storage folders of projects that exist (all of the storage root for None)."""
        if not self.storage_root or not os.path.isdir(self.storage_root):
            return []
        if projects is None:
            return [self.storage_root]
        folders = (storage.project_dir(Path(self.storage_root), p) for p in projects)
        return [str(folder) for folder in folders if folder.is_dir()]

    def get_env(self):
        env = super().get_env()
        self.user_dir()
        # the venv's scripts first, so the notebook finds the venv's python and kernels
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
        return env
