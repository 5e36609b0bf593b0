"""The Elasticsearch store's builders, against the bodies they must produce (no server)."""
from __future__ import annotations

import pytest

from metadata.errors import Clash
from metadata.store import elastic_journal, elastic_queries
from metadata.store.base import LinkRef, StoredNode, Write

NAMES = elastic_queries.indices("lc")
PARENT = LinkRef("cases", "id-case", "case", "case-1")


def sample(version: int = 1, **props) -> StoredNode:
    links = [PARENT, LinkRef("other", "id-case", "case", "case-1")]
    return StoredNode("id-s", "sample", "p1", "s-1", version, props, links, "t0", "t1", "alice", "bob")


def hit(source: dict, seq_no: int = 7, term: int = 2) -> dict:
    return {"_id": source["id"], "_source": source, "_seq_no": seq_no, "_primary_term": term, "found": True}


def test_index_names_follow_the_prefix():
    assert NAMES == elastic_queries.Indices("lc-nodes", "lc-keys", "lc-journal")


def test_nodes_mapping_keeps_props_unindexed_and_links_as_keywords():
    keyword = {"type": "keyword"}
    assert elastic_queries.nodes_mappings() == {"dynamic": "strict", "properties": {
        "id": keyword, "type": keyword, "project_id": keyword, "submitter_id": keyword, "parent_ids": keyword,
        "created_at": keyword, "updated_at": keyword, "created_by": keyword, "updated_by": keyword,
        "write_id": keyword, "version": {"type": "long"}, "props": {"type": "object", "enabled": False},
        "links": {"properties": {"name": keyword, "target_id": keyword, "target_type": keyword,
                                 "target_submitter_id": keyword}}}}
    assert elastic_queries.keys_mappings()["properties"] == {
        "node_id": keyword, "project_id": keyword, "submitter_id": keyword, "write_id": keyword}
    assert elastic_queries.journal_mappings()["properties"]["state"] == {"type": "object", "enabled": False}


def test_node_doc_round_trips_and_lists_each_parent_once():
    doc = elastic_queries.node_doc(sample(a={"b.c": [1]}), "w1")
    assert doc["parent_ids"] == ["id-case"] and doc["write_id"] == "w1"
    assert doc["links"][0] == {"name": "cases", "target_id": "id-case", "target_type": "case",
                               "target_submitter_id": "case-1"}
    assert elastic_queries.node_from_doc(doc) == sample(a={"b.c": [1]})


def test_list_query_first_page():
    assert elastic_queries.list_query("case", None, 10) == {
        "query": {"bool": {"filter": [{"term": {"type": "case"}}]}},
        "sort": [{"project_id": "asc"}, {"submitter_id": "asc"}], "size": 11, "track_total_hits": True}


def test_list_query_after_a_cursor_within_projects():
    assert elastic_queries.list_query("case", ["p1", "p2"], 3, ("p1", "s9")) == {
        "query": {"bool": {"filter": [{"term": {"type": "case"}}, {"terms": {"project_id": ["p1", "p2"]}}]}},
        "sort": [{"project_id": "asc"}, {"submitter_id": "asc"}], "size": 4, "track_total_hits": True,
        "search_after": ["p1", "s9"]}


def test_list_query_of_no_projects_matches_nothing():
    assert elastic_queries.list_query("case", [], 3)["query"] == {"match_none": {}}


def test_children_query_pages_in_type_then_id_order():
    assert elastic_queries.children_query(["a", "b"], ["a"], ["case", "id-9"], size=50) == {
        "query": {"bool": {"filter": [{"terms": {"parent_ids": ["a", "b"]}}],
                           "must_not": [{"ids": {"values": ["a"]}}]}},
        "sort": [{"type": "asc"}, {"id": "asc"}], "size": 50, "track_total_hits": False,
        "search_after": ["case", "id-9"]}


def test_counts_query_is_a_terms_aggregation_on_type():
    assert elastic_queries.counts_query() == {"size": 0, "track_total_hits": False, "aggs": {
        "types": {"terms": {"field": "type", "size": elastic_queries.TYPES_MAX}}}}


def test_write_ops_create_with_op_type_create_and_update_on_the_checked_seq_no():
    stored = elastic_queries.node_doc(sample(), "w0")
    stored.update(created_at="t-orig", created_by="carol")
    new = StoredNode("id-new", "case", "p1", "c-2", 1, {}, [], "t2", "t2", "bob", "bob")
    writes = [Write(new, None), Write(sample(2, x=1), 1)]
    ops = elastic_journal.write_node_ops("lc-nodes", writes, {"id-s": hit(stored)}, "w1")
    assert ops[0] == ({"create": {"_index": "lc-nodes", "_id": "id-new"}}, elastic_queries.node_doc(new, "w1"))
    meta, doc = ops[1]
    assert meta == {"index": {"_index": "lc-nodes", "_id": "id-s", "if_seq_no": 7, "if_primary_term": 2}}
    assert (doc["version"], doc["props"], doc["write_id"]) == (2, {"x": 1}, "w1")
    assert (doc["created_at"], doc["created_by"]) == ("t-orig", "carol")  # kept as stored


def test_key_ops_claim_project_slash_submitter_id():
    assert elastic_journal.create_key_ops("lc-keys", [sample()], "w1") == [
        ({"create": {"_index": "lc-keys", "_id": "p1/s-1"}},
         {"node_id": "id-s", "project_id": "p1", "submitter_id": "s-1", "write_id": "w1"})]


def test_delete_ops_remove_nodes_if_unchanged_and_their_keys():
    assert elastic_journal.delete_ops(NAMES, [hit(elastic_queries.node_doc(sample(), "w0"))]) == [
        ({"delete": {"_index": "lc-nodes", "_id": "id-s", "if_seq_no": 7, "if_primary_term": 2}},),
        ({"delete": {"_index": "lc-keys", "_id": "p1/s-1"}},)]


def test_apply_journal_holds_prior_nodes_and_claimed_keys():
    stored = elastic_queries.node_doc(sample(), "w0")
    new = StoredNode("id-new", "case", "p1", "c-2", 1, {})
    journal = elastic_journal.apply_journal([Write(new, None), Write(sample(2), 1)], {"id-s": hit(stored)}, 123)
    assert journal == {"kind": "apply", "started_at": 123, "state": {"docs": [
        {"index": "nodes", "id": "id-new", "prior": None}, {"index": "nodes", "id": "id-s", "prior": stored},
        {"index": "keys", "id": "p1/c-2", "prior": None}]}}


def test_rollback_undoes_only_what_is_still_this_writes_own():
    prior = elastic_queries.node_doc(sample(), "w0")
    docs = [{"index": "nodes", "id": "created", "prior": None}, {"index": "nodes", "id": "updated", "prior": prior},
            {"index": "nodes", "id": "deleted", "prior": prior}, {"index": "nodes", "id": "theirs", "prior": prior},
            {"index": "keys", "id": "p1/never-written", "prior": None}]
    current = {("nodes", "created"): hit({"id": "created", "write_id": "w1"}, 3),
               ("nodes", "updated"): hit({"id": "updated", "write_id": "w1"}, 4),
               ("nodes", "theirs"): hit({"id": "theirs", "write_id": "w2"}, 5)}
    assert elastic_journal.rollback_ops(NAMES, "w1", docs, current) == [
        ({"delete": {"_index": "lc-nodes", "_id": "created", "if_seq_no": 3, "if_primary_term": 2}},),
        ({"index": {"_index": "lc-nodes", "_id": "updated", "if_seq_no": 4, "if_primary_term": 2}}, prior),
        ({"create": {"_index": "lc-nodes", "_id": "deleted"}}, prior)]


def test_bulk_failures_ignore_deletes_of_missing_documents():
    response = {"errors": True, "items": [
        {"delete": {"_id": "a", "status": 404, "result": "not_found"}},
        {"create": {"_id": "b", "status": 201}},
        {"create": {"_id": "c", "status": 409, "error": {"type": "version_conflict_engine_exception"}}}]}
    assert elastic_journal.bulk_failures(response) == [
        {"op": "create", "id": "c", "status": 409, "error": {"type": "version_conflict_engine_exception"}}]


def test_chunks_flatten_operations_without_splitting_one():
    ops = [({"delete": {"_id": str(i)}},) if i % 2 else ({"index": {"_id": str(i)}}, {"n": i}) for i in range(5)]
    assert elastic_journal.chunks(ops, size=2) == [
        [{"index": {"_id": "0"}}, {"n": 0}, {"delete": {"_id": "1"}}],
        [{"index": {"_id": "2"}}, {"n": 2}, {"delete": {"_id": "3"}}],
        [{"index": {"_id": "4"}}, {"n": 4}]]


def test_edges_into_keep_only_links_to_the_parents():
    child = elastic_queries.node_doc(sample(), "w")
    child["links"].append({"name": "x", "target_id": "elsewhere", "target_type": "case", "target_submitter_id": "e"})
    assert [e.link_name for e in elastic_queries.edges_into([child], {"id-case"})] == ["cases", "other"]


@pytest.mark.parametrize("expected, stored, message", [
    (1, 2, "changed by someone else since version 1"),
    (1, None, "changed by someone else since version 1"),
    (None, 1, "created meanwhile by another submission: s-1"),
])
def test_stale_clash_names_the_first_write_planned_on_another_state(expected, stored, message):
    prior = {} if stored is None else {"id-s": hit(elastic_queries.node_doc(sample(stored), "w0"))}
    clash = elastic_journal.stale_clash([Write(sample(2), expected)], prior)
    assert isinstance(clash, Clash) and clash.code == "stale" and message in clash.message
    same = {"id-s": hit(elastic_queries.node_doc(sample(1), "w0"))}
    assert elastic_journal.stale_clash([Write(sample(2), 1)], same) is None
