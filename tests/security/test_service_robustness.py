"""Hostile input cannot stop the metadata service: idle and reset sockets, running out of file
descriptors, unset or absurdly nested arguments, a failing handler, a full disk. Each test
attacks a real service on loopback and then checks it still serves."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from metadata.client import ERRORS, MetadataClient
from metadata.idl import metadata_thrift as T
from metadata.server import Server
from metadata.service import MetadataService
from metadata.store.base import Write
from metadata.store.embedded import EmbeddedStore
from tests.e2e.conftest import free_port
from tests.need import need

CAP = 64
FIRST_CALL_SECONDS = 2
DEEP = 100_000


@pytest.fixture
def settings(settings):
    """A small connection cap, so the attacks below reach it with a few hundred sockets."""
    return dataclasses.replace(settings, max_connections=CAP, first_call_timeout_seconds=FIRST_CALL_SECONDS)


def _sockets(port: int, count: int) -> list[socket.socket]:
    """`count` connections that send nothing (those the server's backlog cannot hold time out)."""
    opened = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(1)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        opened.append(sock)
    return opened


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a client that crashed or was killed would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_400_idle_sockets_do_not_lock_out_a_signed_in_client(server, admin):
    idle = _sockets(server.bound_port(), 400)
    try:
        assert len(idle) >= CAP  # more than the cap: the oldest were closed to make room
        assert admin.health().status == "ok"
        assert len(server.connections) <= CAP
    finally:
        for sock in idle:
            sock.close()
    assert admin.whoami().user == "local-admin"


def test_a_socket_without_a_call_is_closed_soon_and_a_signed_in_one_stays(server, admin):
    connection = _connected(admin)
    silent = socket.create_connection(("127.0.0.1", server.bound_port()))
    silent.settimeout(FIRST_CALL_SECONDS * 5)
    started = time.monotonic()
    assert silent.recv(1) == b""  # closed by the server
    assert time.monotonic() - started < FIRST_CALL_SECONDS * 3
    silent.close()
    assert admin.health().status == "ok" and admin._client is connection  # idle as long, still open


def test_over_the_cap_a_newcomer_is_refused_clearly_then_served(server, client_for):
    holders = [client_for(f"user-{i}") for i in range(CAP)]
    for holder in holders:  # each holds a connection that carried a valid token
        holder.whoami()
    newcomer = client_for("newcomer")
    with pytest.raises(T.InternalError) as refused:
        newcomer.whoami()
    assert refused.value.code == "too_many_connections"
    assert f"connection limit ({CAP}); try again" in refused.value.message
    holders[0].close()
    deadline = time.monotonic() + 10
    while len(server.connections) >= CAP and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the closed connection
    assert newcomer.whoami().user == "newcomer"


def test_running_out_of_file_descriptors_backs_off_and_keeps_serving(tmp_path):
    # no cap to protect it: the service may hold 1000 connections but only 80 open files
    data_dir, port = tmp_path / "data", free_port()
    env = dict(os.environ, LABCOMMONS_DATA_DIR=str(data_dir), LABCOMMONS_PORT=str(port),
               LABCOMMONS_MAX_CONNECTIONS="1000")
    log = tmp_path / "service.log"

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (80, 80))

    with log.open("wb") as sink:
        service = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "metadata", "serve"], env=env,
                                   stdout=sink, stderr=subprocess.STDOUT, preexec_fn=few_files)
    try:
        client = _wait_for(data_dir, port, service, log)
        idle = _sockets(port, 400)
        try:
            _until(lambda: "backing off" in log.read_text(), "the service never ran out of descriptors")
            assert service.poll() is None, log.read_text()
        finally:
            for sock in idle:
                sock.close()
        assert client.health().status == "ok"  # the same service, serving again
        assert service.poll() is None
    finally:
        service.terminate()
        service.wait(30)


def _wait_for(data_dir: Path, port: int, service: subprocess.Popen, log: Path) -> MetadataClient:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert service.poll() is None, log.read_text()
        try:
            client = MetadataClient("127.0.0.1", port, (data_dir / "admin.token").read_text(), 10)
            client.health()
            return client
        except Exception:
            time.sleep(0.1)
    raise AssertionError(f"the service did not answer:\n{log.read_text()}")


def _until(condition, failure: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def test_reset_connections_leave_no_tracebacks_in_the_log(server, admin, caplog):
    caplog.set_level(logging.DEBUG)
    port = server.bound_port()
    for sock in _sockets(port, 20):
        _reset(sock)  # before any call
    for sock in _sockets(port, 20):
        sock.sendall(b"\x80\x01\x00\x01\x00\x00\x00\x06health")  # half a call, then a reset
        _reset(sock)
    garbage = socket.create_connection(("127.0.0.1", port))
    garbage.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not Thrift at all
    garbage.settimeout(5)
    assert garbage.recv(100) == b""  # closed by the server
    garbage.close()
    assert admin.health().status == "ok"
    _until(lambda: len(server.connections) <= 1, "the reset connections were never released")
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("call, args, field", [
    ("facets", (T.FacetRequest(kind="case", fields=None),), "request.fields"),
    ("list_runs", (None,), "query"),
    ("submit", (None,), "request"),
    ("delete_nodes", ("test-proj", None), "ids"),
    ("launch", (T.LaunchRequest(template="ims-qc", input_ids=None, parameters={}),), "request.input_ids"),
])
def test_unset_arguments_are_refused_by_name_and_the_connection_stays(admin, call, args, field):
    connection = _connected(admin)
    with pytest.raises(T.ValidationError) as refused:
        admin._call(call, *args)
    assert refused.value.message.startswith(f"{field}: ")
    assert [issue.field for issue in refused.value.issues] == [field]
    assert admin.health().status == "ok" and admin._client is connection  # no reconnect was needed


@pytest.mark.parametrize("name", T.Metadata.thrift_services)
def test_every_method_answers_unset_arguments_with_a_typed_error(admin, name):
    arity = len(getattr(T.Metadata, f"{name}_args").thrift_spec) - 1
    if not arity:
        return
    connection = _connected(admin)
    try:
        admin._call(name, *[None] * arity)
    except ERRORS as error:
        assert not isinstance(error, T.InternalError), error  # refused by name, not failed inside
    assert admin.health().status == "ok" and admin._client is connection


def _connected(client: MetadataClient):
    """The client's connection, made by a first call (a later call must still use it)."""
    client.health()
    return client._client


def test_json_nested_100000_deep_is_refused_naming_the_field_and_the_limit(admin, project):
    connection = _connected(admin)
    deep_list = "[" * DEEP + "]" * DEEP
    bodies = {"body": deep_list,
              "body ": json.dumps({"type": "case", "submitter_id": "c-1", "species": "human"})[:-1]
              + ', "genotype": ' + deep_list + "}"}
    for body in bodies.values():
        with pytest.raises(T.ValidationError) as refused:
            admin.submit(project, body=body)
        assert refused.value.message.startswith("body: ") and "at most 64" in refused.value.message
    with pytest.raises(T.ValidationError) as refused:
        admin.facets("case", ["species"], filter='{"AND": ' + deep_list + "}")
    assert refused.value.message.startswith("filter: ") and "at most 64" in refused.value.message
    assert admin.health().status == "ok" and admin._client is connection


class _Failing(MetadataService):
    """A handler with a bug planted in one method (test-only)."""

    def whoami(self, who):
        raise KeyError("planted")


@pytest.fixture
def failing_server(settings):
    server = Server(settings, handler_class=_Failing)
    server.write_admin_token()
    with _serving(server):
        yield server


@contextmanager
def _serving(server: Server):
    server.listen()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=30)


def test_an_unexpected_exception_is_a_typed_internal_error_with_a_logged_reference(failing_server, caplog):
    token = failing_server.settings.admin_token_path.read_text()
    with MetadataClient("127.0.0.1", failing_server.bound_port(), token) as client:
        connection = _connected(client)
        with pytest.raises(T.InternalError) as failed:
            client.whoami()
        assert failed.value.code == "internal" and "whoami" in failed.value.message
        reference = failed.value.message.split("reference ")[1].split(",")[0]
        assert client.health().status == "ok" and client._client is connection
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info and "planted" in caplog.text
    assert "planted" not in failed.value.message  # internals stay in the log


# -- a full disk ----------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs mounted for the test (needs root, as in CI)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        need("a small filesystem (mount -t tmpfs, as root)", result.stderr.strip())
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the filesystem to its last byte; the filler's path."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                out.write(b"\0")
        except OSError:
            pass
    return filler


def _case(submitter_id: str) -> dict:
    return {"type": "case", "submitter_id": submitter_id, "species": "human", "genotype": "g" * 2000}


def test_a_full_disk_refuses_writes_as_storage_full_and_recovers_losing_nothing(small_disk, settings):
    settings = dataclasses.replace(settings, data_dir=small_disk / "data")
    server = Server(settings)
    server.write_admin_token()
    with _serving(server):
        with MetadataClient("127.0.0.1", server.bound_port(), settings.admin_token_path.read_text()) as admin:
            admin.submit("P", [{"type": "program", "submitter_id": "P"}])
            admin.submit("p1", [{"type": "project", "submitter_id": "p1", "programs": {"submitter_id": "P"}}])
            admin.submit("p1", [_case("before")])
            filler = _fill(small_disk)
            with pytest.raises(T.InternalError) as full:
                admin.submit("p1", [_case(f"full-{i}") for i in range(200)])
            assert full.value.code == "storage_full" and "free space" in full.value.message
            assert admin.health().status == "storage_full"
            assert admin.find("p1", "before")["properties"]["species"] == "human"  # reads work
            filler.unlink()
            admin.submit("p1", [_case("after")])
            assert admin.health().status == "ok"
    again = Server(settings)
    again.write_admin_token()
    with _serving(again):
        with MetadataClient("127.0.0.1", again.bound_port(), settings.admin_token_path.read_text()) as admin:
            assert {c["submitter_id"] for c in admin.nodes("case")} == {"before", "after"}


def test_a_checkpoint_on_a_full_disk_does_not_leave_the_store_invalidated(small_disk):
    # checkpoint after every write: on a full disk DuckDB invalidates the database when one fails
    path = small_disk / "store.duckdb"
    store = EmbeddedStore(path, checkpoint_wal_bytes=0)
    store.apply([Write(_node("first"), None)], set())
    filler = _fill(small_disk)
    os.truncate(filler, filler.stat().st_size - 64 * 1024)  # room for the log, not for a checkpoint
    written = {"first"}
    for i in range(50):
        try:
            store.apply([Write(_node(f"n-{i}"), None)], set())
            written.add(f"n-{i}")
        except Exception as error:
            assert type(error).__name__ == "StorageFull", error
        if store.storage_full:
            break
    assert store.storage_full and "n-0" in written  # committed to the log; its checkpoint failed
    assert store.counts()["case"] == len(written)  # reads work: the database was not left invalid
    filler.unlink()
    store.apply([Write(_node("after"), None)], set())
    assert not store.storage_full
    store.close()
    reopened = EmbeddedStore(path)
    assert {n.submitter_id for n in reopened.list("case", None, 100).nodes} == written | {"after"}
    reopened.close()


def _node(submitter_id: str):
    from metadata.store.base import StoredNode
    return StoredNode(f"id-{submitter_id}", "case", "p1", submitter_id, 1, {"genotype": "g" * 3000}, [],
                      "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "test", "test")
