"""Fixtures for the store contract suite: every test runs on each store.

- es_server: session-wide Elasticsearch: LABCOMMONS_TEST_ES_URL if set, else the noida-db stand-in
             started here on a free loopback port (waited on by polling it, stopped at session end).
             If the stand-in cannot start, tests needing it fail when CI=true and skip otherwise.
- stores:    a StoreOpener for this test's data: open() a new instance, reopen() close and open
             again on the same data; parametrized "embedded" / "elasticsearch". Elasticsearch
             tests each get their own index prefix, and their indices are deleted afterwards.
- store:     stores.open().
- settings:  overrides tests/conftest.py's so the service tests here run on each store.

Markers:
- standin_differs(reason): where noida-db departs from Elasticsearch's documented behaviour; the
  test is xfail(strict) on the stand-in only.
- store_bug(store_name, reason): a known bug of that store; xfail(strict) on it only.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import stat
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from ground.settings import Settings
from tests.conftest import NO_TRIGGERS
from tests.need import need
from metadata.store.base import Store
from metadata.store.elastic import ElasticStore, indices
from metadata.store.embedded import EmbeddedStore

STANDIN_START_SECONDS = 30


def pytest_configure(config):
    config.addinivalue_line("markers", "standin_differs(reason): xfail on the noida-db stand-in only")
    config.addinivalue_line("markers", "store_bug(store_name, reason): xfail on that store only")


@dataclass
class EsServer:
    url: str
    standin: bool


class StandInUnavailable(RuntimeError):
    """noida-db could not be started or did not answer."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _standin_binary() -> Path:
    """The noida-db executable shipped inside its wheel; the wheel may lose its exec bit."""
    try:
        path = Path(str(files("noida_db").joinpath("noida-db")))
    except ModuleNotFoundError as exc:
        raise StandInUnavailable(f"the noida-db package is not installed: {exc}") from None
    if not path.is_file():
        raise StandInUnavailable(f"no noida-db binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _start_standin(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """Start noida-db's Elasticsearch on a free port; return once it answers HTTP."""
    port = _free_port()
    log = (data_dir / "noida-db.log").open("wb")
    command = [str(_standin_binary()), "start", "--only", "elasticsearch", "--data-dir", str(data_dir / "data"),
               "--host", "127.0.0.1", "--elasticsearch-port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STANDIN_START_SECONDS
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            tail = (data_dir / "noida-db.log").read_text(errors="replace")[-2000:]
            raise StandInUnavailable(f"noida-db did not answer on {url} (exit {process.returncode}): {tail}")
        time.sleep(0.05)  # poll interval, not a wait for readiness
    return process, url


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C, as noida-db expects; kill it if it does not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def es_server(tmp_path_factory):
    if url := os.environ.get("LABCOMMONS_TEST_ES_URL"):
        yield EsServer(url, standin=False)
        return
    try:
        process, url = _start_standin(tmp_path_factory.mktemp("noida-db"))
    except (StandInUnavailable, OSError) as exc:
        need("the Elasticsearch stand-in noida-db", f"it could not start: {exc}")
    yield EsServer(url, standin=True)
    _stop(process)


@dataclass
class StoreOpener:
    """Opens store instances over one test's data; closes whatever is left open."""
    kind: str
    open_one: object
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = self.open_one()
        self.opened.append(store)
        return store

    def reopen(self) -> Store:
        """Close the newest instance, then open a new one on the same data, as a restart would."""
        self.opened.pop().close()
        return self.open()

    def close(self) -> None:
        while self.opened:
            self.opened.pop().close()


def _xfail_by_marker(request, kind: str, server: EsServer | None) -> None:
    if server and server.standin and (mark := request.node.get_closest_marker("standin_differs")):
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=f"noida-db stand-in: {mark.args[0]}"))
    for mark in request.node.iter_markers("store_bug"):
        if mark.args[0] == kind:
            request.node.add_marker(pytest.mark.xfail(strict=True, reason=f"{kind} store bug: {mark.args[1]}"))


@pytest.fixture(params=["embedded", "elasticsearch"])
def stores(request, tmp_path):
    server = request.getfixturevalue("es_server") if request.param == "elasticsearch" else None
    _xfail_by_marker(request, request.param, server)
    if server is None:
        opener = StoreOpener("embedded", lambda: EmbeddedStore(tmp_path / "metadata.duckdb"))
    else:
        prefix = f"contract-{uuid.uuid4().hex[:12]}"
        opener = StoreOpener("elasticsearch", lambda: ElasticStore(server.url, prefix))
    yield opener
    opener.close()
    if server is not None:
        names = indices(prefix)
        with Elasticsearch(server.url) as es:
            es.indices.delete(index=",".join([names.nodes, names.keys, names.journal]), ignore_unavailable=True)


@pytest.fixture
def store(stores) -> Store:
    return stores.open()


@pytest.fixture(params=["embedded", "elasticsearch"])
def settings(request, tmp_path):
    """The service tests of this folder run on each store (overrides tests/conftest.py's)."""
    base = Settings(data_dir=tmp_path / "data", port=0, triggers_dir=NO_TRIGGERS)
    if request.param == "embedded":
        yield base
        return
    server = request.getfixturevalue("es_server")
    _xfail_by_marker(request, request.param, server)
    prefix = f"service-{uuid.uuid4().hex[:12]}"
    yield dataclasses.replace(base, store="elasticsearch", es_url=server.url, es_index_prefix=prefix)
    names = indices(prefix)
    with Elasticsearch(server.url) as es:
        es.indices.delete(index=",".join([names.nodes, names.keys, names.journal]), ignore_unavailable=True)
