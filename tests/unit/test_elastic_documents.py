"""The Elasticsearch store's builders for flattened documents, against the bodies they must produce (no server)."""
from __future__ import annotations

import pytest

from metadata.filters import Field, parse
from metadata.flatten import DocumentSpec
from metadata.store import elastic, elastic_journal, elastic_queries
from metadata.store.base import FacetCounts, NumericSummary, StoredNode, Write, decode_id_cursor, encode_id_cursor

NAMES = elastic_queries.indices("lc")
KEYWORD = {"type": "keyword", "ignore_above": elastic_queries.STRING_MAX}
FIELDS = {"id": Field("id", "keyword"), "species": Field("species", "keyword"),
          "organs": Field("organs", "keyword", multi=True), "age": Field("age", "number"),
          "count": Field("count", "integer"), "alive": Field("alive", "boolean"), "seen": Field("seen", "date"),
          "notes": Field("notes", "text"),
          "samples": Field("samples", "keyword", True, {"organ": Field("organ", "keyword"),
                                                        "weight": Field("weight", "number")})}
LIVER = {"term": {"organs": "liver"}}


def spec(fields=None) -> DocumentSpec:
    return DocumentSpec("case", "case", "Cases", (), (), (), dict(fields or FIELDS))


def hit(source: dict, seq_no: int = 7, term: int = 2) -> dict:
    return {"_id": source["id"], "_source": source, "_seq_no": seq_no, "_primary_term": term, "found": True}


# -- indices and mappings -----------------------------------------------------------------

def test_each_kind_has_its_own_index_and_journals_name_them():
    assert NAMES.documents("case") == "lc-doc-case"
    assert [NAMES.named(k) for k in ("nodes", "keys", "journal", "doc:file")] == [
        "lc-nodes", "lc-keys", "lc-journal", "lc-doc-file"]


def test_field_mappings_follow_the_field_kinds():
    mapped = {name: elastic_queries.field_mapping(found) for name, found in FIELDS.items()}
    assert mapped == {
        "id": KEYWORD, "species": KEYWORD, "organs": KEYWORD, "age": {"type": "double"}, "count": {"type": "long"},
        "alive": {"type": "boolean"}, "seen": {"type": "date"},
        "notes": {"type": "text", "fields": {"keyword": KEYWORD}},
        "samples": {"type": "nested", "properties": {"organ": KEYWORD, "weight": {"type": "double"}}}}


def test_documents_mapping_is_strict_and_carries_the_signature():
    mappings = elastic_queries.documents_mappings(spec({"id": FIELDS["id"]}), "abc123")
    assert mappings == {"dynamic": "strict",
                        "_meta": {"signature": "abc123", "mapping_version": elastic_queries.MAPPING_VERSION,
                                  "complete": False},
                        "properties": {"id": KEYWORD, "write_id": {"type": "keyword"}}}
    assert elastic_queries.documents_settings() == {"number_of_shards": 1}
    assert elastic_queries.documents_settings(3, 2) == {"number_of_shards": 3, "number_of_replicas": 2}
    assert elastic_queries.graph_settings() == {} and elastic_queries.graph_settings(0) == {"number_of_replicas": 0}


def test_a_field_named_write_id_is_refused():
    with pytest.raises(ValueError, match="write_id is reserved"):
        elastic_queries.documents_mappings(spec({"write_id": Field("write_id", "keyword")}), "s")


# -- facets -------------------------------------------------------------------------------

def test_facets_query_filters_each_field_by_its_own_where():
    organs = parse({"=": {"organs": "liver"}}, FIELDS)
    body = elastic_queries.facets_query(FIELDS, [("species", organs), ("organs", None), ("notes", None)], 5)
    assert body == {"size": 0, "track_total_hits": False, "query": {"match_all": {}}, "aggs": {
        "f0": {"filter": LIVER, "aggs": {"values": {"terms": {"field": "species", "size": 5}},
                                         "missing": {"missing": {"field": "species"}}}},
        "f1": {"filter": {"match_all": {}}, "aggs": {"values": {"terms": {"field": "organs", "size": 5}},
                                                     "missing": {"missing": {"field": "organs"}}}},
        "f2": {"filter": {"match_all": {}}, "aggs": {"values": {"terms": {"field": "notes.keyword", "size": 5}},
                                                     "missing": {"missing": {"field": "notes.keyword"}}}}}}


def test_facets_query_formats_dates_as_days():
    terms = elastic_queries.facets_query(FIELDS, [("seen", None)], 3)["aggs"]["f0"]["aggs"]["values"]["terms"]
    assert terms == {"field": "seen", "size": 3, "format": "yyyy-MM-dd"}


def test_a_record_field_facet_counts_documents_through_reverse_nested():
    aggs = elastic_queries.facets_query(FIELDS, [("samples.organ", None)], 3)["aggs"]["f0"]["aggs"]
    assert aggs == {
        "records": {"nested": {"path": "samples"}, "aggs": {"values": {
            "terms": {"field": "samples.organ", "size": elastic_queries.RECORD_VALUES},
            "aggs": {"documents": {"reverse_nested": {}}}}}},
        "missing": {"filter": {"bool": {"must_not": [
            {"nested": {"path": "samples", "query": {"exists": {"field": "samples.organ"}}}}]}}}}


def test_a_record_field_facet_ranks_values_by_documents_not_records():
    """Three liver samples in one case rank below kidney in two cases; the rest is other."""
    records = {"values": {"sum_other_doc_count": 0, "buckets": [
        {"key": "liver", "doc_count": 3, "documents": {"doc_count": 1}},
        {"key": "kidney", "doc_count": 2, "documents": {"doc_count": 2}},
        {"key": "brain", "doc_count": 1, "documents": {"doc_count": 1}}]}}
    aggs = {"f0": {"records": records, "missing": {"doc_count": 4}}}
    counts = elastic_queries.facet_counts_from(FIELDS, aggs, [("samples.organ", None)], 2)
    assert counts == {"samples.organ": FacetCounts([("__missing__", 4), ("kidney", 2)], other=2)}


@pytest.mark.parametrize("name, size, message", [("nope", 5, "unknown field 'nope'"),
                                                 ("samples", 5, "list of records"),
                                                 ("samples.nope", 5, "not a field of the records of samples"),
                                                 ("nope.organ", 5, "unknown field 'nope.organ'"),
                                                 ("species", 0, "at least 1")])
def test_facets_query_refuses(name, size, message):
    with pytest.raises(ValueError, match=message):
        elastic_queries.facets_query(FIELDS, [(name, None)], size)


@pytest.mark.parametrize("bucket, kind, text", [
    ({"key": "liver"}, "keyword", "liver"), ({"key": 30}, "number", "30.0"), ({"key": 2.5}, "number", "2.5"),
    ({"key": 3}, "integer", "3"), ({"key": 1, "key_as_string": "true"}, "boolean", "true"),
    ({"key": False}, "boolean", "false"),
    ({"key": 1704067200000, "key_as_string": "2024-01-01"}, "date", "2024-01-01")])
def test_bucket_keys_read_as_the_embedded_store_writes_them(bucket, kind, text):
    assert elastic_queries.bucket_key(bucket, kind) == text


def test_the_missing_bucket_ranks_by_count_then_value_and_the_rest_is_other():
    buckets = [("liver", 5), ("kidney", 2), ("brain", 2)]
    assert elastic_queries.with_missing(buckets, 0, 2, 10) == FacetCounts(
        [("liver", 5), ("__missing__", 2), ("brain", 2), ("kidney", 2)])
    assert elastic_queries.with_missing(buckets, 4, 3, 2) == FacetCounts([("liver", 5), ("__missing__", 3)], other=8)
    assert elastic_queries.with_missing(buckets, 0, 0, 10) == FacetCounts(sorted(buckets, key=lambda b: (-b[1], b[0])))


def test_facet_counts_are_read_by_position():
    aggs = {"f0": {"values": {"buckets": [{"key": "a", "doc_count": 3}], "sum_other_doc_count": 1},
                   "missing": {"doc_count": 0}},
            "f1": {"values": {"buckets": [{"key": 40, "doc_count": 2}], "sum_other_doc_count": 0},
                   "missing": {"doc_count": 1}}}
    counts = elastic_queries.facet_counts_from(FIELDS, aggs, [("species", None), ("age", None)], 1)
    assert counts == {"species": FacetCounts([("a", 3)], 1), "age": FacetCounts([("40.0", 2)], 1)}


# -- numbers --------------------------------------------------------------------------------

def test_stats_then_a_range_per_bin_with_the_last_one_open():
    assert elastic_queries.stats_query("age", None) == {
        "size": 0, "track_total_hits": False, "query": {"match_all": {}},
        "aggs": {"stats": {"stats": {"field": "age"}}, "missing": {"missing": {"field": "age"}}}}
    body = elastic_queries.histogram_query("age", parse({"=": {"organs": "liver"}}, FIELDS), [0.0, 10.0, 20.0, 30.0])
    assert body == {"size": 0, "track_total_hits": False, "query": LIVER, "aggs": {"bins": {"range": {
        "field": "age", "ranges": [{"from": 0.0, "to": 10.0}, {"from": 10.0, "to": 20.0}, {"from": 20.0}]}}}}


def test_numeric_summary_and_bins():
    aggs = {"stats": {"count": 3, "min": 1.0, "max": 30.0, "avg": 12.0, "sum": 36.0}, "missing": {"doc_count": 2}}
    assert elastic_queries.numeric_summary(aggs) == NumericSummary(3, 2, 1.0, 30.0, 12.0, 36.0)
    empty = {"stats": {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}, "missing": {"doc_count": 4}}
    assert elastic_queries.numeric_summary(empty) == NumericSummary(0, 4)
    ranges = {"bins": {"buckets": [{"doc_count": 2}, {"doc_count": 0}, {"doc_count": 1}]}}
    assert elastic_queries.histogram_bins(ranges, [0, 10, 20, 30]) == [(0.0, 10.0, 2), (10.0, 20.0, 0), (20.0, 30.0, 1)]


def test_numeric_field_and_bin_limits():
    assert elastic_queries.numeric_field(FIELDS, "count") == "count"
    with pytest.raises(ValueError, match="numeric fields are age, count"):
        elastic_queries.numeric_field(FIELDS, "species")
    with pytest.raises(ValueError, match="at most"):
        elastic_queries.check_bins(list(range(elastic_queries.MAX_BINS + 2)))


# -- hits and manifests --------------------------------------------------------------------

def test_hits_query_sorts_missing_last_with_an_id_tiebreak():
    body = elastic_queries.hits_query(FIELDS, None, [("age", True), ("notes", False)], 50, 100)
    assert body == {"query": {"match_all": {}},
                    "sort": [{"age": {"order": "desc", "missing": "_last"}},
                             {"notes.keyword": {"order": "asc", "missing": "_last"}}, {"id": "asc"}],
                    "from": 100, "size": 50, "track_total_hits": True, "_source": {"excludes": ["write_id"]}}


def test_pages_past_the_result_window_are_refused():
    elastic_queries.check_window(9_950, 50, 10_000)
    with pytest.raises(ValueError, match=r"offset 9951 \+ limit 50 .* first 10000 hits.*max_result_window"):
        elastic_queries.check_window(9_951, 50, 10_000)
    with pytest.raises(ValueError, match="negative"):
        elastic_queries.check_window(-1, 50, 10_000)


def test_ids_and_manifest_queries_page_by_id():
    assert elastic_queries.ids_query(LIVER, 100, "id-9") == {"query": LIVER, "sort": [{"id": "asc"}], "size": 100,
                                                     "_source": False, "track_total_hits": False,
                                                     "search_after": ["id-9"]}
    assert elastic_queries.manifest_query(("id", "file_name"), LIVER, 10, None) == {
        "query": LIVER, "sort": [{"id": "asc"}], "size": 11, "_source": ["id", "file_name"], "track_total_hits": True}
    assert elastic_queries.manifest_row({"id": "a", "extra": 1}, ("id", "md5sum")) == {"id": "a", "md5sum": None}


def test_join_query_splits_ids_into_terms_clauses(monkeypatch):
    assert elastic_queries.join_query("case_id", []) == {"match_none": {}}
    assert elastic_queries.join_query("case_id", ["a", "b"]) == {"terms": {"case_id": ["a", "b"]}}
    monkeypatch.setattr(elastic_queries, "TERMS_IDS", 2)
    assert elastic_queries.join_query("case_id", ["a", "b", "c"]) == {"bool": {"should": [
        {"terms": {"case_id": ["a", "b"]}}, {"terms": {"case_id": ["c"]}}], "minimum_should_match": 1}}


def test_manifest_cursors_round_trip_and_foreign_ones_are_refused():
    assert decode_id_cursor(encode_id_cursor("id-7")) == "id-7"
    assert decode_id_cursor("") is None
    for foreign in ("not-a-cursor!", encode_id_cursor("x")[:-4], "eyJhIjogMX0="):
        with pytest.raises(ValueError, match="not a cursor this service returned"):
            decode_id_cursor(foreign)


# -- the graph as the flattener reads it -----------------------------------------------------

def test_typed_children_query_and_grouping():
    assert elastic_queries.typed_children_query(["p1", "p2"], "sample", 1000, "id-3") == {
        "query": {"bool": {"filter": [{"terms": {"parent_ids": ["p1", "p2"]}}, {"term": {"type": "sample"}}]}},
        "sort": [{"id": "asc"}], "size": 1000, "_source": ["id", "links"], "track_total_hits": False,
        "search_after": ["id-3"]}
    link = lambda name, target: {"name": name, "target_id": target}  # noqa: E731
    children = [{"id": "s2", "links": [link("cases", "c1")]}, {"id": "s1", "links": [link("cases", "c1")]},
                {"id": "s3", "links": [link("cases", "c9"), link("other", "c2")]}]
    assert elastic_queries.children_by_parent(children, {"c1", "c2"}, "cases") == {"c1": ["s1", "s2"]}


# -- writing documents ---------------------------------------------------------------------

def plan() -> elastic_journal.DocumentPlan:
    """c1 rewritten (stored), c2 new, c3 gone (stored), c4 gone (never stored)."""
    stored = {"c1": hit({"id": "c1", "n": 1, "write_id": "w0"}, 4, 1), "c3": hit({"id": "c3", "write_id": "w0"}, 5, 1)}
    return elastic_journal.DocumentPlan({"case": [{"id": "c1", "n": 2}, {"id": "c2", "n": 0}]}, {"case": {"c3", "c4"}},
                                {"case": stored})


def test_document_ops_are_conditional_on_what_the_plan_read():
    assert elastic_journal.document_ops(NAMES, plan(), "w1") == [
        ({"index": {"_index": "lc-doc-case", "_id": "c1", "if_seq_no": 4, "if_primary_term": 1}},
         {"id": "c1", "n": 2, "write_id": "w1"}),
        ({"create": {"_index": "lc-doc-case", "_id": "c2"}}, {"id": "c2", "n": 0, "write_id": "w1"}),
        ({"delete": {"_index": "lc-doc-case", "_id": "c3", "if_seq_no": 5, "if_primary_term": 1}},)]


def test_the_journal_holds_every_document_as_it_was():
    entries = elastic_journal.documents_journal(plan())
    assert entries == [{"index": "doc:case", "id": "c1", "prior": {"id": "c1", "n": 1, "write_id": "w0"}},
                       {"index": "doc:case", "id": "c2", "prior": None},
                       {"index": "doc:case", "id": "c3", "prior": {"id": "c3", "write_id": "w0"}},
                       {"index": "doc:case", "id": "c4", "prior": None}]
    node = StoredNode("c2", "case", "p1", "c-2", 1, {}, [])
    journal = elastic_journal.apply_journal([Write(node, None)], {}, 9, entries)
    assert journal["state"]["docs"][2:] == entries and journal["started_at"] == 9


def test_rollback_restores_documents_through_their_journal_name():
    docs = elastic_journal.documents_journal(plan())
    current = {("doc:case", "c1"): hit({"id": "c1", "n": 2, "write_id": "w1"}, 8, 1),
               ("doc:case", "c2"): hit({"id": "c2", "n": 0, "write_id": "w1"}, 9, 1)}
    assert elastic_journal.rollback_ops(NAMES, "w1", docs, current) == [
        ({"index": {"_index": "lc-doc-case", "_id": "c1", "if_seq_no": 8, "if_primary_term": 1}},
         {"id": "c1", "n": 1, "write_id": "w0"}),
        ({"delete": {"_index": "lc-doc-case", "_id": "c2", "if_seq_no": 9, "if_primary_term": 1}},),
        ({"create": {"_index": "lc-doc-case", "_id": "c3"}}, {"id": "c3", "write_id": "w0"})]


def test_a_rebuild_stamps_its_documents_and_removes_the_unstamped():
    assert elastic_journal.rebuild_ops("lc-doc-case", [{"id": "c1"}], "r1") == [
        ({"index": {"_index": "lc-doc-case", "_id": "c1"}}, {"id": "c1", "write_id": "r1"})]
    assert elastic_queries.unstamped_query("r1") == {"bool": {"must_not": [{"term": {"write_id": "r1"}}]}}


def test_the_client_verifies_https_against_a_given_ca(tmp_path):
    bundle = tmp_path / "ca.crt"
    with elastic.client("https://es.example:9200", bundle) as es:
        assert es.transport.node_pool.all()[0].config.ca_certs == str(bundle)
    with elastic.client("https://es.example:9200") as es:
        assert es.transport.node_pool.all()[0].config.ca_certs is None  # the system's (certifi) bundle
