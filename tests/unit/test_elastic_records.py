"""The Elasticsearch builders of the records index (metadata/store/elastic_records.py), as pure functions."""
from __future__ import annotations

from metadata.store import elastic_records as ER
from metadata.store.record_index import RecordQuery, check, encode_record_cursor

AT = "2025-01-02T03:04:05.678+00:00"


def test_a_query_is_one_filtered_search_sorted_by_date_then_id_after_the_cursor():
    cursor = encode_record_cursor(AT, "id-9", True)
    body = ER.records_query(check(RecordQuery("workflow_run", {"status": ["queued", "running"], "created_by": "ann"},
                                              ["p1"], since="2025-01-01", limit=10, cursor=cursor, total=True)))
    assert body == {
        "query": {"bool": {"filter": [
            {"term": {"type": "workflow_run"}}, {"terms": {"project_id": ["p1"]}},
            {"terms": {"record.created_by": ["ann"]}}, {"terms": {"record.status": ["queued", "running"]}},
            {"range": {"record.at": {"gte": "2025-01-01T00:00:00.000+00:00"}}}]}},
        "sort": [{"record.at": "desc"}, {"id": "desc"}], "size": 11, "track_total_hits": True,
        "search_after": [1735787045678, "id-9"]}


def test_node_documents_of_declared_types_carry_their_record_fields():
    doc = {"id": "a1", "type": "_audit", "project_id": "~audit", "submitter_id": "k", "version": 1,
           "props": {"at": AT, "user": "ann", "action": "set_grant", "target": "bob", "outcome": "ok",
                     "detail_json": '{"arguments": ["p9", "read"]}'},
           "created_at": "x", "updated_at": "x", "created_by": "", "updated_by": ""}
    [(action, written)] = ER.with_records([({"create": {}}, doc)])
    assert written["record"] == {"at": AT, "user": "ann", "action": "set_grant", "outcome": "ok", "target": "bob",
                                 "argument": "p9"}
    assert ER.record_field({**doc, "type": "case"}) == {}


def test_the_next_cursor_points_after_the_last_hit_kept():
    query = check(RecordQuery("workflow_run", limit=1))
    hits = {"hits": [{"_source": {"id": i, "record": {"at": AT}}} for i in ("b", "a")], "total": {"value": 2}}
    docs, total, cursor, cursors = ER.records_page(hits, query)
    assert [d["id"] for d in docs] == ["b"] and total == -1 and cursors == [cursor]
    assert cursor == encode_record_cursor(AT, "b", True)
