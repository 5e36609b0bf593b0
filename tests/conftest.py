"""Shared fixtures.

- settings:     Settings for a fresh data dir under tmp_path, the service on a free port.
- server:       a real metadata service (thriftpy2 over loopback TCP) on `settings`, in a thread;
                bound before the fixture returns, stopped (drained, store closed) after the test.
- admin:        a MetadataClient holding the server's local-admin token.
- client_for:   factory: client_for(user, roles, grants) -> a client with a freshly minted token.
- project:      an empty project "test-proj" under program "TEST", created through the service.
- cli:          run the `labcommons` CLI in-process (click's CliRunner) against `server`.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ground.settings import Settings
from metadata.client import MetadataClient
from metadata.server import Server

# pytest-xdist's workers start with COLUMNS=80 and LINES=24, which the CLI's consoles would take
# as the terminal's size for good when labcommons.cli is imported; a test sets COLUMNS itself
for _fixed in ("COLUMNS", "LINES"):
    os.environ.pop(_fixed, None)

PROJECT = "test-proj"
PROGRAM = "TEST"


# The service tests run without trigger rules (the shipped one launches ims-qc whenever a
# measurement's files are registered); tests of triggers and workflows give their own.
NO_TRIGGERS = Path(__file__).resolve().parent / "no-triggers"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=0, triggers_dir=NO_TRIGGERS)


@pytest.fixture
def server(settings):
    server = Server(settings)
    server.write_admin_token()
    server.listen()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(timeout=30)


@pytest.fixture
def admin(server):
    with MetadataClient("127.0.0.1", server.bound_port(), server.settings.admin_token_path.read_text()) as client:
        yield client


@pytest.fixture
def client_for(server):
    clients = []

    def make(user: str, roles=("analyst",), grants=None) -> MetadataClient:
        token, _ = server.tokens.mint(user, list(roles), dict(grants or {}))
        client = MetadataClient("127.0.0.1", server.bound_port(), token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def project(admin) -> str:
    admin.submit(PROGRAM, [{"type": "program", "submitter_id": PROGRAM}])
    admin.submit(PROJECT, [{"type": "project", "submitter_id": PROJECT, "programs": {"submitter_id": PROGRAM}}])
    return PROJECT


@pytest.fixture
def cli(server, monkeypatch):
    """invoke(*args) -> click Result, talking to `server` with the local-admin token."""
    from labcommons.cli import main

    monkeypatch.setenv("LABCOMMONS_DATA_DIR", str(server.settings.data_dir))
    monkeypatch.setenv("LABCOMMONS_PORT", str(server.bound_port()))
    monkeypatch.delenv("LABCOMMONS_TOKEN", raising=False)
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(main, list(args), catch_exceptions=False, **kw)
