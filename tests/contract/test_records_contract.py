"""Store.query (metadata/store/record_index.py), checked on every store through the Store API alone:
records of a reserved type by indexed keys, projects and time, ordered by (date, id), keyset-paged."""
from __future__ import annotations

import dataclasses

import pytest

from metadata.errors import Clash
from metadata.store.base import StoredNode, Write
from metadata.store.record_index import RecordQuery


def at(day: int, ms: int = 0) -> str:
    return f"2025-01-{day:02d}T00:00:00.{ms:03d}+00:00"


def run(sid: str, day: int, status: str = "failed", project: str = "p1", user: str = "alice", ms: int = 0) -> StoredNode:
    return StoredNode(id=f"id-{sid}", type="workflow_run", project_id=project, submitter_id=sid, version=1,
                      props={"template": "qc", "status": status, "attempt": 1}, created_at=at(day, ms),
                      updated_at=at(day, ms), created_by=user, updated_by=user)


def audit(sid: str, day: int, user: str, **props) -> StoredNode:
    return StoredNode(id=f"id-{sid}", type="_audit", project_id="~audit", submitter_id=sid, version=1,
                      props={"at": at(day), "user": user, "action": "submit", "target": "p1", "detail_json": "{}",
                             "client": "", "outcome": "ok", **props}, created_at=at(28), updated_at=at(28))


@pytest.fixture
def runs(store):
    """Eight runs over eight days: statuses and projects mixed, two on the same millisecond."""
    made = [run("r1", 1), run("r2", 2, "succeeded"), run("r3", 3, project="p2"), run("r4", 4, user="bob"),
            run("r5", 5, "queued"), run("r6", 6), run("r7", 6, project="p2"), run("r8", 8, "running")]
    store.apply([Write(n, None) for n in made], set())
    return made


def sids(page) -> list[str]:
    return [n.submitter_id for n in page.nodes]


def everything(store, query: RecordQuery) -> list[str]:
    """Every page of a query, followed by its cursors."""
    found = []
    while True:
        page = store.query(query)
        found += sids(page)
        if not page.next_cursor:
            return found
        query = dataclasses.replace(query, cursor=page.next_cursor)


def test_query_filters_by_key_and_project_newest_first_with_the_total(store, runs):
    page = store.query(RecordQuery("workflow_run", {"status": "failed"}, ["p1"], total=True))
    assert sids(page) == ["r6", "r4", "r1"] and page.total == 3 and page.next_cursor == ""
    assert store.query(RecordQuery("workflow_run", {"status": "failed"})).total == -1  # not asked


def test_query_takes_any_of_several_values_and_the_nodes_own_creator(store, runs):
    open_runs = store.query(RecordQuery("workflow_run", {"status": ["queued", "running"]}, newest_first=False))
    assert sids(open_runs) == ["r5", "r8"]
    assert sids(store.query(RecordQuery("workflow_run", {"created_by": "bob"}))) == ["r4"]
    assert store.query(RecordQuery("workflow_run", {"status": []})).nodes == []
    assert store.query(RecordQuery("workflow_run", projects=[])).nodes == []


def test_query_pages_by_cursor_through_ties_on_the_date(store, runs):
    newest = everything(store, RecordQuery("workflow_run", limit=3))
    assert newest == ["r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1"]  # r6, r7 tie on the date: id decides
    assert everything(store, RecordQuery("workflow_run", limit=2, newest_first=False)) == newest[::-1]
    first = store.query(RecordQuery("workflow_run", {"status": "failed"}, limit=2, total=True))
    assert sids(first) == ["r7", "r6"] and first.total == 5 and first.next_cursor


def test_query_returns_whole_nodes(store, runs):
    node = store.query(RecordQuery("workflow_run", {"created_by": "bob"})).nodes[0]
    assert node == runs[3]


def test_query_bounds_the_time_since_inclusive_before_exclusive(store, runs):
    page = store.query(RecordQuery("workflow_run", since="2025-01-03", before=at(6)))
    assert sids(page) == ["r5", "r4", "r3"]
    assert sids(store.query(RecordQuery("workflow_run", since="2025-01-06T00:00:00Z"))) == ["r8", "r7", "r6"]


def test_query_follows_updates_and_deletes(store, runs):
    done = dataclasses.replace(runs[4], version=2, props={**runs[4].props, "status": "succeeded"})
    store.apply([Write(done, 1)], set())
    assert sids(store.query(RecordQuery("workflow_run", {"status": "queued"}))) == []
    succeeded = store.query(RecordQuery("workflow_run", {"status": "succeeded"}, total=True))
    assert "r5" in sids(succeeded) and succeeded.total == 2
    store.delete([runs[7].id])
    assert store.query(RecordQuery("workflow_run", {"status": "running"}, total=True)).total == 0
    assert store.query(RecordQuery("workflow_run", total=True)).total == 7


def test_a_refused_batch_leaves_the_records_as_they_were(store, runs):
    moved = dataclasses.replace(runs[0], version=2, props={**runs[0].props, "status": "succeeded"})
    with pytest.raises(Clash):
        store.apply([Write(moved, 1), Write(run("r2", 9), None)], set())  # r2 is taken
    failed = store.query(RecordQuery("workflow_run", {"status": "failed"}, total=True))
    assert "r1" in sids(failed) and failed.total == 5


def test_pages_are_exact_when_records_were_written_out_of_date_order(store):
    """A page is read within a window of dates (DuckDB), widened when too few lie in it: records
    written in no order of their dates, and unevenly spread, still page exactly as sorted."""
    days = [(7 * i) % 3 + 1 if i < 45 else (7 * i) % 8 + 20 for i in range(60)]  # most early, a few late
    made = [run(f"s{i:02d}", day, "failed" if i % 3 else "queued", user=f"u{i}", ms=i) for i, day in enumerate(days)]
    store.apply([Write(n, None) for n in made[::-1]], set())  # the latest written first
    newest = [n.submitter_id for n in sorted(made, key=lambda n: n.created_at, reverse=True) if n.props["status"] == "failed"]
    assert everything(store, RecordQuery("workflow_run", {"status": "failed"}, limit=4)) == newest
    assert everything(store, RecordQuery("workflow_run", {"status": "failed"}, limit=3, newest_first=False)) == newest[::-1]
    assert store.query(RecordQuery("workflow_run", {"status": "failed"}, ["p1"], total=True)).total == 40


def test_query_orders_by_a_declared_date_property_and_derived_keys(store):
    store.apply([Write(n, None) for n in (
        audit("a1", 3, "ann"), audit("a2", 1, "ann", action="set_grant", target="carl",
                                     detail_json='{"arguments": ["p9", "read"]}'), audit("a3", 2, "bea"))], set())
    assert sids(store.query(RecordQuery("_audit", {"user": "ann"}))) == ["a1", "a2"]  # by `at`, not created_at
    assert sids(store.query(RecordQuery("_audit", {"argument": "p9"}))) == ["a2"]
    assert sids(store.query(RecordQuery("_audit", before="2025-01-03"))) == ["a3", "a2"]


def test_query_keys_hold_booleans_as_text(store):
    note = StoredNode(id="n1", type="_notification", project_id="~ann", submitter_id="n1", version=1,
                      props={"subject": "s", "body": "b", "link": "", "status": "failed", "read": False},
                      created_at=at(1), updated_at=at(1))
    store.apply([Write(note, None)], set())
    assert sids(store.query(RecordQuery("_notification", {"read": False}, ["~ann"]))) == ["n1"]
    assert sids(store.query(RecordQuery("_notification", {"read": "true"}, ["~ann"]))) == []


@pytest.mark.parametrize("query, named", [
    (RecordQuery("case"), "type: 'case' is not a queryable record type"),
    (RecordQuery("workflow_run", {"worker": "w1"}), "where: 'worker' is not an indexed key of workflow_run"),
    (RecordQuery("workflow_run", limit=0), "limit: give 1 to 1000"),
    (RecordQuery("workflow_run", since="yesterday"), "since: 'yesterday' is not an ISO date"),
    (RecordQuery("workflow_run", cursor="bm90IG91cnM="), "cursor: 'bm90IG91cnM=' is not a cursor"),
])
def test_query_refuses_what_it_cannot_answer_naming_the_field(store, query, named):
    with pytest.raises(ValueError, match=named):
        store.query(query)


def test_a_cursor_of_the_other_order_is_refused(store, runs):
    cursor = store.query(RecordQuery("workflow_run", limit=1)).next_cursor
    with pytest.raises(ValueError, match="cursor: .* for this order"):
        store.query(RecordQuery("workflow_run", limit=1, newest_first=False, cursor=cursor))


def test_a_reopened_store_answers_queries(stores, runs):
    reopened = stores.reopen()
    assert sids(reopened.query(RecordQuery("workflow_run", {"status": "failed"}, ["p2"]))) == ["r7", "r3"]


def test_a_database_file_from_before_the_index_is_indexed_on_open(tmp_path):
    """A file whose nodes were written before records were indexed (no side tables, no signature)."""
    from metadata.store.embedded import EmbeddedStore
    store = EmbeddedStore(tmp_path / "old.duckdb", columnar=False)
    store.apply([Write(run("r1", 1), None), Write(run("r2", 2, "queued"), None)], set())
    cur = store._cursor()
    for type_name in ("workflow_run", "_audit"):
        cur.execute(f'DROP TABLE "rec_{type_name.strip("_")}"')
    cur.execute("DROP TABLE records_meta")
    store.close()
    reopened = EmbeddedStore(tmp_path / "old.duckdb", columnar=False)
    assert sids(reopened.query(RecordQuery("workflow_run", {"status": "queued"}))) == ["r2"]
    reopened._cursor().execute('DROP TABLE "tally_rec_workflow_run"')  # a file from before the tally
    reopened.close()
    again = EmbeddedStore(tmp_path / "old.duckdb", columnar=False)
    assert again.query(RecordQuery("workflow_run", {"status": "queued"}, total=True)).total == 1
    again.close()


def test_each_record_of_a_page_has_the_cursor_after_it(store, runs):
    page = store.query(RecordQuery("workflow_run", limit=3))
    assert len(page.cursors) == 3 and page.cursors[-1] == page.next_cursor
    assert sids(store.query(RecordQuery("workflow_run", limit=2, cursor=page.cursors[0]))) == sids(page)[1:]
