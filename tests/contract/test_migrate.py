"""`labcommons migrate --to elasticsearch`: an embedded commons (graph, accounts, cohorts, audit) is
copied into Elasticsearch (the es_server fixture: noida-db, or LABCOMMONS_TEST_ES_URL), verified by
counts and checksums, and served from there."""
from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import threading
import uuid

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from labcommons import migrate as migration
from labcommons.cli import main
from ground.settings import Settings
from metadata.client import MetadataClient
from metadata.server import Server
from tests.contract.test_service_exploration import graph
from tests.stored import folder_url

PROGRAM, PROJECT = "MIG", "mig-proj"
PASSWORD = "correct horse battery"


def running(settings: Settings) -> tuple[Server, threading.Thread]:
    server = Server(settings)
    server.write_admin_token()
    server.listen()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return server, thread


def stop(server: Server, thread: threading.Thread) -> None:
    server.stop()
    thread.join(timeout=30)


@pytest.fixture
def embedded(tmp_path) -> Settings:
    """A stopped embedded commons holding every kind of node: graph, account, cohort, audit entries."""
    settings = Settings(data_dir=tmp_path / "data", port=0)
    server, thread = running(settings)
    with MetadataClient("127.0.0.1", server.bound_port(), settings.admin_token_path.read_text()) as admin:
        admin.submit(PROGRAM, [{"type": "program", "submitter_id": PROGRAM}])
        admin.submit(PROJECT, [{"type": "project", "submitter_id": PROJECT, "programs": {"submitter_id": PROGRAM}}])
        admin.submit(PROJECT, graph(folder_url(settings, PROJECT)))
        admin.save_account("ana", PASSWORD, ["analyst"], {PROJECT: "read"})
        admin.save_cohort("livers", "case", {"IN": {"organs": ["liver"]}}, PROJECT)
    stop(server, thread)
    return settings


@pytest.fixture
def target(es_server):
    """(url, a fresh index prefix); its indices are deleted afterwards."""
    prefix = f"migrate-{uuid.uuid4().hex[:12]}"
    yield es_server.url, prefix
    with Elasticsearch(es_server.url) as es:
        if names := migration.target_indices(es, prefix):
            es.indices.delete(index=",".join(names))


def migrate(settings: Settings, target, *extra):
    url, prefix = target
    env = {"LABCOMMONS_DATA_DIR": str(settings.data_dir), "LABCOMMONS_ES_URL": url}
    return CliRunner().invoke(main, ["migrate", "--to", "elasticsearch", "--index-prefix", prefix, *extra], env=env)


def said(result) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_migrate_copies_everything_verifies_it_and_the_service_runs_on_it(embedded, target):
    result = migrate(embedded, target)
    assert result.exit_code == 0, result.output
    for name in ("case", "data_file", "_account", "_cohort", "_audit", "(edges)", "(docs: file)"):
        assert name in result.output
    assert "MISMATCH" not in result.output and "counts and checksums match" in said(result)

    url, prefix = target
    cluster = dataclasses.replace(embedded, store="elasticsearch", es_url=url, es_index_prefix=prefix)
    server, thread = running(cluster)
    try:
        with MetadataClient("127.0.0.1", server.bound_port(), cluster.admin_token_path.read_text()) as admin:
            assert admin.hits("file")[0] == 3 and admin.facets("case", ["species"]).total == 3
            assert [c.name for c in admin.cohorts()] == ["livers"]
            signed_in = admin.sign_in("ana", PASSWORD)  # the account, with its password hash, came along
            assert signed_in.identity.grants == {PROJECT: "read"}
    finally:
        stop(server, thread)


def test_a_target_holding_nodes_is_refused_unless_forced(embedded, target):
    assert migrate(embedded, target).exit_code == 0
    again = migrate(embedded, target)
    assert again.exit_code == 1 and "already holds" in said(again) and "--force" in said(again)
    forced = migrate(embedded, target, "--force")
    assert forced.exit_code == 0, forced.output


def test_a_running_service_is_refused_with_a_clear_message(embedded, target):
    # another process holds the DuckDB file, as the metadata service does while it runs
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; db = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.read()", str(embedded.database_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = migrate(embedded, target)
    finally:
        holder.communicate("")
    assert result.exit_code == 1
    assert "locked by another process" in said(result) and "Stop it" in said(result)


def test_a_copy_that_differs_exits_non_zero(embedded, target, monkeypatch):
    copy = migration.copy_nodes

    def lossy(source, store, types, advance):
        copy(source, store, types, advance)
        leaf = next(n for n in store.list("data_file", None, 1000).nodes   # a file no run used
                    if not any(e.parent_id == n.id for e in store.edges(n.id)))
        store.delete([leaf.id])  # as if a batch had been lost

    monkeypatch.setattr(migration, "copy_nodes", lossy)
    result = migrate(embedded, target)
    assert result.exit_code == 1
    assert "MISMATCH" in result.output and "differs from the source in: data_file, (edges)" in said(result)


def test_a_missing_source_is_named(tmp_path, target):
    result = migrate(Settings(data_dir=tmp_path / "nothing"), target)
    assert result.exit_code == 1 and "no embedded store at" in said(result)


def test_an_unreachable_target_is_named_without_its_credentials(embedded):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    result = migrate(embedded, (f"http://elastic:s3cret@127.0.0.1:{port}", "x"))
    assert result.exit_code == 1
    assert f"cannot reach Elasticsearch at http://127.0.0.1:{port}" in said(result) and "s3cret" not in result.output


def test_write_order_puts_parents_first_and_refuses_cycles():
    parents = {"file": {"measurement"}, "measurement": {"sample", "experiment"}, "sample": {"case"},
               "case": set(), "experiment": set(), "account": set()}
    order = migration.write_order(parents)
    assert all(order.index(p) < order.index(child) for child, ps in parents.items() for p in ps)
    with pytest.raises(migration.MigrateError, match="cycle"):
        migration.write_order({"a": {"b"}, "b": {"a"}})


def test_checksums_ignore_order_but_not_content():
    one, two, three = migration.Tally(), migration.Tally(), migration.Tally()
    for tally, items in ((one, "abc"), (two, "cba"), (three, "abd")):
        for item in items:
            tally.add(item)
    assert one.checksum == two.checksum != three.checksum
    assert migration.Row("x", one, three, checksummed=False).ok and not migration.Row("x", one, three).ok
