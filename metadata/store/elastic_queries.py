"""The Elasticsearch store's pure builders: the mappings of its indices, the documents it writes
for nodes and keys, and the searches it sends (graph, then flattened documents), with the readers
of their answers. The adapter (elastic.py) sends them; tests compare them with expected bodies.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metadata.filters import MISSING, Field, record_field, to_es
from metadata.store.base import EdgeRow, FacetCounts, LinkRef, NumericSummary, StoredNode

if TYPE_CHECKING:
    from metadata.flatten import DocumentSpec

SCAN_PAGE = 1000     # hits per search_after page when reading every child of a node
TYPES_MAX = 1000     # terms buckets for counts(); the dictionary has far fewer types
KEEP_ON_UPDATE = ("type", "project_id", "submitter_id", "created_at", "created_by")
KEYWORD = {"type": "keyword"}
TERMS_IDS = 10_000   # values per terms clause, well below index.max_terms_count (65,536)
STRING_MAX = 8191    # keyword values longer than this are kept in _source but not indexed (32,766-byte terms)
MAX_BINS = 10_000    # histogram bins, below search.max_buckets (65,536)
CELL_VALUES = 1000   # values per field of a tiered-access cell count
RECORD_VALUES = 10_000  # values of a record field (samples.organ) a facet ranks by documents
MAPPING_VERSION = 1  # bump when documents_mappings changes, so existing indices are rebuilt
ES_TYPES = {"integer": "long", "number": "double", "boolean": "boolean", "date": "date"}


# -- the graph: nodes, keys and the journal's index ------------------------------------------

@dataclass(frozen=True)
class Indices:
    nodes: str
    keys: str
    journal: str

    def documents(self, kind: str) -> str:
        """The index of one kind of flattened document."""
        return f"{self.nodes.removesuffix('-nodes')}-doc-{kind}"

    def named(self, key: str) -> str:
        """An index by the name a journal gives it: nodes, keys, journal or doc:<kind>."""
        return self.documents(key[4:]) if key.startswith("doc:") else getattr(self, key)


def indices(prefix: str) -> Indices:
    return Indices(f"{prefix}-nodes", f"{prefix}-keys", f"{prefix}-journal")


def nodes_mappings() -> dict:
    link = {"properties": {name: KEYWORD for name in ("name", "target_id", "target_type", "target_submitter_id")}}
    fields = {name: KEYWORD for name in ("id", "type", "project_id", "submitter_id", "parent_ids", "created_at",
                                         "updated_at", "created_by", "updated_by", "write_id")}
    return {"dynamic": "strict", "properties": {
        **fields, "version": {"type": "long"}, "props": {"type": "object", "enabled": False}, "links": link}}


def keys_mappings() -> dict:
    names = ("node_id", "project_id", "submitter_id", "write_id")
    return {"dynamic": "strict", "properties": {name: KEYWORD for name in names}}


def journal_mappings() -> dict:
    return {"dynamic": "strict", "properties": {
        "kind": KEYWORD, "started_at": {"type": "long"}, "state": {"type": "object", "enabled": False}}}


def key_id(project_id: str, submitter_id: str) -> str:
    return f"{project_id}/{submitter_id}"


def node_key(node: StoredNode) -> str:
    return key_id(node.project_id, node.submitter_id)


def node_doc(node: StoredNode, write_id: str) -> dict:
    """The nodes-index document of a node, stamped with the write that makes it."""
    return {"id": node.id, "type": node.type, "project_id": node.project_id, "submitter_id": node.submitter_id,
            "version": node.version, "props": node.props, "links": [vars(link) for link in node.links],
            "parent_ids": sorted({link.target_id for link in node.links}),
            "created_at": node.created_at, "updated_at": node.updated_at,
            "created_by": node.created_by, "updated_by": node.updated_by, "write_id": write_id}


def updated_doc(stored: dict, node: StoredNode, write_id: str) -> dict:
    """The document an update writes: identity and creation fields stay as stored, as in DuckDB."""
    return {**node_doc(node, write_id), **{name: stored[name] for name in KEEP_ON_UPDATE}}


def key_doc(node: StoredNode, write_id: str) -> dict:
    return {"node_id": node.id, "project_id": node.project_id, "submitter_id": node.submitter_id,
            "write_id": write_id}


def node_from_doc(doc: dict) -> StoredNode:
    return StoredNode(doc["id"], doc["type"], doc["project_id"], doc["submitter_id"], doc["version"],
                      doc["props"], [LinkRef(**link) for link in doc["links"]], doc["created_at"],
                      doc["updated_at"], doc["created_by"], doc["updated_by"])


def list_query(type_name: str, project_ids: list[str] | None, limit: int,
               after: tuple[str, str] | None = None) -> dict:
    """One page of a type in (project_id, submitter_id) order, one extra hit to tell if more follow."""
    if project_ids is not None and not project_ids:
        query = {"match_none": {}}
    else:
        where = [{"term": {"type": type_name}}]
        if project_ids is not None:
            where.append({"terms": {"project_id": list(project_ids)}})
        query = {"bool": {"filter": where}}
    body = {"query": query, "sort": [{"project_id": "asc"}, {"submitter_id": "asc"}],
            "size": limit + 1, "track_total_hits": True}
    if after:
        body["search_after"] = list(after)
    return body


def id_prefix_query(prefix: str, types: list[str], project_ids: list[str] | None, limit: int) -> dict:
    """Nodes of these types whose id starts with prefix, in id order (None: every project)."""
    if not types or project_ids == []:
        return {"query": {"match_none": {}}, "size": 0}
    where = [{"prefix": {"id": prefix}}, {"terms": {"type": list(types)}}]
    if project_ids is not None:
        where.append({"terms": {"project_id": list(project_ids)}})
    return {"query": {"bool": {"filter": where}}, "sort": [{"id": "asc"}], "size": limit}


def children_query(parent_ids: list[str], exclude_ids: list[str], after: list | None = None,
                   size: int = SCAN_PAGE) -> dict:
    """Nodes linking to any of parent_ids, other than exclude_ids, in (type, id) order."""
    body = {"query": {"bool": {"filter": [{"terms": {"parent_ids": list(parent_ids)}}],
                               "must_not": [{"ids": {"values": list(exclude_ids)}}]}},
            "sort": [{"type": "asc"}, {"id": "asc"}], "size": size, "track_total_hits": False}
    if after:
        body["search_after"] = list(after)
    return body


def counts_query() -> dict:
    return {"size": 0, "track_total_hits": False,
            "aggs": {"types": {"terms": {"field": "type", "size": TYPES_MAX}}}}


def edges_into(children: list[dict], parent_ids: set[str]) -> list[EdgeRow]:
    """The edges from child documents to any of parent_ids, in the children's order."""
    return [EdgeRow(child["id"], child["type"], link["name"], link["target_id"], link["target_type"])
            for child in children for link in child["links"] if link["target_id"] in parent_ids]


def graph_settings(replicas: int | None = None) -> dict:
    """Settings of the graph indices (and the replicas of every index); None: the cluster's default."""
    return {} if replicas is None else {"number_of_replicas": replicas}


def typed_children_query(parent_ids: list[str], child_type: str, size: int, after: str | None = None) -> dict:
    """Nodes of one type linking to any of parent_ids, with their links, in id order."""
    body = {"query": {"bool": {"filter": [{"terms": {"parent_ids": list(parent_ids)}},
                                          {"term": {"type": child_type}}]}},
            "sort": [{"id": "asc"}], "size": size, "_source": ["id", "links"], "track_total_hits": False}
    if after is not None:
        body["search_after"] = [after]
    return body


def children_by_parent(children: list[dict], parent_ids: set[str], link_name: str) -> dict[str, list[str]]:
    """parent id -> ids of the children (documents with id and links) linking to it through link_name."""
    found: dict[str, list[str]] = {}
    for child in children:
        for link in child["links"]:
            if link["name"] == link_name and link["target_id"] in parent_ids:
                found.setdefault(link["target_id"], []).append(child["id"])
    return {parent: sorted(set(ids)) for parent, ids in found.items()}


# -- flattened documents ---------------------------------------------------------------------

def field_mapping(found: Field) -> dict:
    """The mapping of one document field; a list needs none of its own (every ES field takes arrays)."""
    if found.nested is not None:
        return {"type": "nested", "properties": {name: field_mapping(sub) for name, sub in found.nested.items()}}
    if found.kind == "text":  # searched as text; sorted and counted on its keyword sub-field
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": STRING_MAX}}}
    if found.kind == "keyword":
        return {"type": "keyword", "ignore_above": STRING_MAX}
    return {"type": ES_TYPES[found.kind]}


def documents_meta(signature: str, complete: bool) -> dict:
    """The mapping's _meta: which flattening (and mapping builder) made the index, and whether it is filled."""
    return {"signature": signature, "mapping_version": MAPPING_VERSION, "complete": complete}


def documents_mappings(spec: "DocumentSpec", signature: str) -> dict:
    """The strict mapping of one kind's index; write_id stamps each document with the write that made it."""
    properties = {name: field_mapping(found) for name, found in spec.fields.items()}
    if "write_id" in properties:
        raise ValueError(f"{spec.kind} documents: the field name write_id is reserved by the Elasticsearch store")
    return {"dynamic": "strict", "_meta": documents_meta(signature, complete=False),
            "properties": {**properties, "write_id": KEYWORD}}


def documents_settings(shards: int = 1, replicas: int | None = None) -> dict:
    """One shard by default: terms buckets and their sum_other_doc_count are then exact, not per-shard
    estimates (more shards spread a large index, and make facet counts approximate)."""
    return {"number_of_shards": shards, **graph_settings(replicas)}


def agg_field(fields: dict[str, Field], name: str) -> str:
    """The field a terms aggregation or a sort reads for a document field."""
    found = fields.get(name)
    if found is None:
        raise ValueError(f"unknown field {name!r}; fields are {', '.join(sorted(fields))}")
    if found.nested is not None:
        raise ValueError(f"{name} is a list of records: it has no values to count or sort by")
    return f"{name}.keyword" if found.kind == "text" else name


def numeric_field(fields: dict[str, Field], name: str) -> str:
    """name, if it is an integer or number field (stats and histograms read nothing else)."""
    numeric = sorted(n for n, f in fields.items() if f.nested is None and f.kind in ("integer", "number"))
    if name not in numeric:
        raise ValueError(f"{name!r} is not a numeric field; numeric fields are {', '.join(numeric)}")
    return name


def facets_query(fields: dict[str, Field], requests: list[tuple[str, object]], size: int) -> dict:
    """One search for every facet: per request a filter aggregation (its own where) around the field's
    terms, and a missing count; aggregations are named by position, as a field may come twice."""
    if size < 1:
        raise ValueError(f"facet size must be at least 1, got {size}")
    aggs = {}
    for i, (name, where) in enumerate(requests):
        counts = record_facet_aggs(fields, name) if name not in fields else field_facet_aggs(fields, name, size)
        aggs[f"f{i}"] = {"filter": to_es(where), "aggs": counts}
    return {"size": 0, "track_total_hits": False, "query": {"match_all": {}}, "aggs": aggs}


def field_facet_aggs(fields: dict[str, Field], name: str, size: int) -> dict:
    """A field's `size` largest terms and its missing count."""
    target = agg_field(fields, name)
    terms = {"field": target, "size": size}
    if fields[name].kind == "date":
        terms["format"] = "yyyy-MM-dd"  # as the embedded store's DATE column reads
    return {"values": {"terms": terms}, "missing": {"missing": {"field": target}}}


def record_facet_aggs(fields: dict[str, Field], name: str) -> dict:
    """A record field's (samples.organ) values counted in documents, not records (reverse_nested), all
    of them up to RECORD_VALUES so they can be ranked by documents; documents with no such value."""
    member, path = record_field(fields, name), name.partition(".")[0]
    if member is None:
        holder = fields.get(path)
        if holder is None or holder.nested is None:
            agg_field(fields, name)  # raises: an unknown field
        raise ValueError(f"{name!r} is not a field of the records of {path}; "
                         f"theirs: {', '.join(sorted(holder.nested))}")
    terms = {"field": name, "size": RECORD_VALUES, **({"format": "yyyy-MM-dd"} if member.kind == "date" else {})}
    values = {"terms": terms, "aggs": {"documents": {"reverse_nested": {}}}}
    none = {"bool": {"must_not": [{"nested": {"path": path, "query": {"exists": {"field": name}}}}]}}
    return {"records": {"nested": {"path": path}, "aggs": {"values": values}}, "missing": {"filter": none}}


def bucket_key(bucket: dict, kind: str) -> str:
    """A terms bucket's value as text, written as the embedded store writes it: 30.0 for a number,
    30 for an integer, true/false for a boolean (Elasticsearch's key is 1/0 there)."""
    key = bucket["key"]
    if kind == "number":
        return str(float(key))
    if kind == "integer":
        return str(int(key))
    if kind == "boolean":
        return bucket.get("key_as_string") or json.dumps(bool(key))
    return bucket.get("key_as_string", str(key))


def with_missing(buckets: list[tuple[str, int]], other: int, missing: int, size: int) -> FacetCounts:
    """The `size` largest buckets with the "no value" bucket ranked among them, by count, then value as text
    (Elasticsearch's own order for keywords; the embedded store's for every kind)."""
    ranked = sorted(buckets + ([(MISSING, missing)] if missing else []), key=lambda b: (-b[1], b[0]))
    return FacetCounts(ranked[:size], other + sum(count for _, count in ranked[size:]))


def facet_counts_from(fields: dict[str, Field], aggs: dict, requests: list[tuple[str, object]],
                      size: int) -> dict[str, FacetCounts]:
    """FacetCounts per field from the aggregations facets_query asked for."""
    counts = {}
    for i, (name, _) in enumerate(requests):
        found = aggs[f"f{i}"]
        if "records" in found:  # a record field: documents per value, every value at hand
            kind, values = record_field(fields, name).kind, found["records"]["values"]
            buckets = [(bucket_key(b, kind), b["documents"]["doc_count"]) for b in values["buckets"]]
            counts[name] = with_missing(buckets, 0, found["missing"]["doc_count"], size)
            continue
        buckets = [(bucket_key(b, fields[name].kind), b["doc_count"]) for b in found["values"]["buckets"]]
        counts[name] = with_missing(buckets, found["values"]["sum_other_doc_count"],
                                    found["missing"]["doc_count"], size)
    return counts


def cells_query(fields: dict[str, Field], names: list[str], where) -> dict:
    """One level of terms (and a missing bucket) per field, each under the one before."""
    return {"size": 0, "track_total_hits": False, "query": to_es(where), "aggs": _cell_level(fields, names)}


def _cell_level(fields: dict[str, Field], names: list[str]) -> dict:
    target, inner = agg_field(fields, names[0]), _cell_level(fields, names[1:]) if names[1:] else None
    terms = {"field": target, "size": CELL_VALUES}
    if fields[names[0]].kind == "date":
        terms["format"] = "yyyy-MM-dd"  # as the embedded store's DATE column reads
    values, missing = {"terms": terms}, {"missing": {"field": target}}
    if inner:
        values["aggs"], missing["aggs"] = inner, inner
    return {"values": values, "missing": missing}


def cells_from(fields: dict[str, Field], names: list[str], aggs: dict, prefix: tuple = ()) -> dict[tuple, int]:
    """{(value, ...): count} from the aggregations cells_query asked for."""
    kind, cells = fields[names[0]].kind, {}
    branches = [(bucket_key(b, kind), b) for b in aggs["values"]["buckets"]] + [(MISSING, aggs["missing"])]
    for value, branch in branches:
        if branch["doc_count"] and names[1:]:
            cells.update(cells_from(fields, names[1:], branch, prefix + (value,)))
        elif branch["doc_count"]:
            cells[prefix + (value,)] = branch["doc_count"]
    return cells


def count_query(where) -> dict:
    return {"query": to_es(where)}


def stats_query(name: str, where) -> dict:
    """count/min/max/avg/sum of a numeric field's values, and how many documents have none."""
    return {"size": 0, "track_total_hits": False, "query": to_es(where),
            "aggs": {"stats": {"stats": {"field": name}}, "missing": {"missing": {"field": name}}}}


def histogram_query(name: str, where, edges: list[float]) -> dict:
    """A range per bin, [low, high); the last bin is open-ended, so it holds the maximum too."""
    ranges = [{"from": low, "to": high} for low, high in zip(edges[:-2], edges[1:-1])] + [{"from": edges[-2]}]
    return {"size": 0, "track_total_hits": False, "query": to_es(where),
            "aggs": {"bins": {"range": {"field": name, "ranges": ranges}}}}


def numeric_summary(aggs: dict) -> NumericSummary:
    stats, missing = aggs["stats"], aggs["missing"]["doc_count"]
    if not stats["count"]:
        return NumericSummary(0, missing)
    return NumericSummary(stats["count"], missing, stats["min"], stats["max"], stats["avg"], stats["sum"])


def check_bins(edges: list[float]) -> list[float]:
    if len(edges) - 1 > MAX_BINS:
        raise ValueError(f"the histogram would have {len(edges) - 1} bins; at most {MAX_BINS}: widen the bins")
    return edges


def histogram_bins(aggs: dict, edges: list[float]) -> list[tuple[float, float, int]]:
    counts = [bucket["doc_count"] for bucket in aggs["bins"]["buckets"]]
    return [(float(low), float(high), count) for low, high, count in zip(edges[:-1], edges[1:], counts)]


def check_window(offset: int, limit: int, window: int) -> None:
    """Refuse a page Elasticsearch would refuse (from + size > index.max_result_window), saying why."""
    if offset < 0 or limit < 0:
        raise ValueError(f"offset and limit must not be negative, got offset {offset}, limit {limit}")
    if offset + limit > window:
        raise ValueError(f"hits: offset {offset} + limit {limit} reaches past the first {window} hits, as far as "
                         "pages go (index.max_result_window); narrow the filter or sort the other way, or "
                         "export the manifest for every file")


def hits_query(fields: dict[str, Field], where, sort: list[tuple[str, bool]], limit: int, offset: int) -> dict:
    """One page in sort order, documents without a value last, ties broken by id; the total exact."""
    keys = [{agg_field(fields, name): {"order": "desc" if descending else "asc", "missing": "_last"}}
            for name, descending in sort]
    return {"query": to_es(where), "sort": keys + [{"id": "asc"}], "from": offset, "size": limit,
            "track_total_hits": True, "_source": {"excludes": ["write_id"]}}


def ids_query(query: dict, size: int, after: str | None = None) -> dict:
    """One page of matching document ids, in id order (for search_after)."""
    body = {"query": query, "sort": [{"id": "asc"}], "size": size, "_source": False, "track_total_hits": False}
    if after is not None:
        body["search_after"] = [after]
    return body


def join_query(field_name: str, ids: list[str]) -> dict:
    """Documents whose field holds one of ids, in terms clauses small enough for index.max_terms_count."""
    if not ids:
        return {"match_none": {}}
    clauses = [{"terms": {field_name: ids[i:i + TERMS_IDS]}} for i in range(0, len(ids), TERMS_IDS)]
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}


def manifest_query(fields: tuple[str, ...], query: dict, limit: int, after: str | None) -> dict:
    """One page of manifest rows in id order, one extra hit to tell if more follow; the total exact."""
    body = {"query": query, "sort": [{"id": "asc"}], "size": limit + 1, "_source": list(fields),
            "track_total_hits": True}
    if after is not None:
        body["search_after"] = [after]
    return body


def manifest_row(source: dict, fields: tuple[str, ...]) -> dict:
    return {name: source.get(name) for name in fields}


def unstamped_query(stamp: str) -> dict:
    """Documents a rebuild did not write: their root is gone."""
    return {"bool": {"must_not": [{"term": {"write_id": stamp}}]}}
