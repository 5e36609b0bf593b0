"""Elasticsearch builders for the records index (metadata/store/record_index.py): pure functions
making the mappings, documents and searches that ElasticStore's adapter methods send.

A declared type's node document carries `record`: `at` (a date) and each key (a keyword). It is
written with the node, in the same bulk operation, so a write's journal and rollback cover it as
they cover the node. A query is one search on the nodes index: filters on type, project and keys,
a range on `record.at`, sorted by (record.at, id), paged with search_after.
"""
from __future__ import annotations

from metadata.store.base import StoredNode
from metadata.store.record_index import (INDEXES, KEY_NAMES, SIGNATURE, Checked, date_of, encode_record_cursor,
                                         keys_of, millis)

KEYWORD = {"type": "keyword"}
BACKFILL_PAGE = 1000


def records_mapping() -> dict:
    """The `record` object added to the nodes index's mapping, with the declaration's signature."""
    fields = {"at": {"type": "date"}, **{name: KEYWORD for name in KEY_NAMES}}
    return {"properties": {"record": {"properties": fields}}, "_meta": {"records": SIGNATURE}}


def _node(doc: dict) -> StoredNode:
    return StoredNode(doc["id"], doc["type"], doc["project_id"], doc["submitter_id"], doc["version"], doc["props"],
                      [], doc["created_at"], doc["updated_at"], doc["created_by"], doc["updated_by"])


def record_field(doc: dict) -> dict:
    """{"record": ...} for a node document of a declared type, else {}."""
    index = INDEXES.get(doc["type"])
    if index is None:
        return {}
    node = _node(doc)
    return {"record": {"at": date_of(index, node), **keys_of(index, node)}}


def with_records(ops: list[tuple]) -> list[tuple]:
    """Node write operations whose documents carry their record fields."""
    return [(action, {**doc, **record_field(doc)}) for action, doc in ops]


def records_query(query: Checked) -> dict:
    """One page of records (and one more, to tell whether another follows)."""
    where = [{"term": {"type": query.type}}]
    if query.projects is not None:
        where.append({"terms": {"project_id": list(query.projects)}})
    where += [{"terms": {f"record.{name}": list(values)}} for name, values in query.where]
    bounds = {op: value for op, value in (("gte", query.since), ("lt", query.before)) if value}
    if bounds:
        where.append({"range": {"record.at": bounds}})
    order = "desc" if query.newest_first else "asc"
    body = {"query": {"bool": {"filter": where}}, "sort": [{"record.at": order}, {"id": order}],
            "size": query.limit + 1, "track_total_hits": query.total}
    if query.after:
        body["search_after"] = [millis(query.after[0]), query.after[1]]
    return body


def records_page(hits: dict, query: Checked) -> tuple[list[dict], int, str, list[str]]:
    """(node documents, total or -1, next cursor or "", the cursor after each) from a records search's hits."""
    docs = [hit["_source"] for hit in hits["hits"]]
    more, docs = len(docs) > query.limit, docs[:query.limit]
    cursors = [encode_record_cursor(doc["record"]["at"], doc["id"], query.newest_first) for doc in docs]
    return docs, hits["total"]["value"] if query.total else -1, cursors[-1] if more else "", cursors


def backfill_query(after: str = "") -> dict:
    """A page of the declared types' node documents in id order, to (re)write their record fields."""
    body = {"query": {"bool": {"filter": [{"terms": {"type": sorted(INDEXES)}}]}}, "sort": [{"id": "asc"}],
            "size": BACKFILL_PAGE, "track_total_hits": False, "seq_no_primary_term": True}
    if after:
        body["search_after"] = [after]
    return body


def backfill_ops(index: str, hits: list[dict]) -> list[tuple]:
    """Partial updates giving each document its record fields, each only if unchanged since read."""
    return [({"update": {"_index": index, "_id": hit["_id"], "if_seq_no": hit["_seq_no"],
                         "if_primary_term": hit["_primary_term"]}}, {"doc": record_field(hit["_source"])})
            for hit in hits]
