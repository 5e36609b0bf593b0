"""The Elasticsearch store: the graph in three indices, and flattened documents in one index per
kind, written through the official client.

Indices (created with explicit, strict mappings at start if missing):
- `<prefix>-nodes`: one document per node, _id = node id; `parent_ids` makes children a term query;
  `props` is kept but not indexed (facet documents live in their own indices).
- `<prefix>-keys`: one document per (project_id, submitter_id), _id = "project/submitter", written
  with op_type=create, so Elasticsearch itself refuses a second node under a taken key.
- `<prefix>-journal`: one document per write in flight, holding the documents it replaces.
- `<prefix>-doc-<kind>` (made by use_documents): one flattened document per root node, _id = root
  id, with a strict mapping built from the DocumentSpec (keyword -> keyword, text -> text with a
  .keyword sub-field, integer -> long, number -> double, boolean, date; lists as arrays; lists of
  records -> nested) and one shard. Its mapping's _meta holds the flattening's signature and
  whether the index was filled; an index of another signature, or one whose filling was cut short,
  is deleted, created again and filled from the graph.

A write (apply, delete) runs under one in-process lock (the service is the only writer): read-only
checks first (parents exist, stored versions match, keys free), then the journal document, then
the key documents (op_type=create), then the node documents in bulk (each conditional on the
_seq_no/_primary_term read for the check) with refresh=wait_for, then the journal is deleted.
Every document a write makes carries its write_id. On any failure the write is rolled back before
Clash (or the error) is raised: each journaled document that is still this write's own is put back
as it was, conditionally on its _seq_no. A journal left by a crash is rolled back by the next
start, or by the next write in this process if the rollback itself failed.

What this gives, compared with the DuckDB store:
- the same outcome for the writer: a batch is written whole or, once apply/delete has returned or
  raised (or after the next start, if the process died), not at all;
- key uniqueness and optimistic versions, enforced by Elasticsearch (op_type=create, if_seq_no),
  so they hold even against a second writer, and a rollback never undoes another writer's change;
- get/get_many/find are real-time (GET); list/edges/counts search, and every write returns only
  after a refresh made it searchable, so a reader sees a write once it has returned.
What it does not give:
- isolation: Elasticsearch has no multi-document transaction, so a reader may see part of a batch
  while it is being written, and the written part of a failed batch until its rollback (and,
  after a crash, until the next start); pages of list and edges are not one snapshot;
- the parent_gone and has_children checks are check-then-write, sound only because writes are
  serialized by one process's lock: with two services writing, a child could be created under a
  parent being deleted. And opening a store rolls back every journaled write, including one another
  process has in flight. Run one metadata service per index prefix, the only process opening it.
- beyond the cluster's defaults: a batch's journal and bulk bodies must fit http.max_content_length
  (100 MB); a delete names at most index.max_terms_count (65,536) ids; counts() is exact up to
  TYPES_MAX node types; a submitter_id must fit a keyword term (32,766 bytes) and a key's _id
  (512 bytes).

Flattened documents are kept current inside each write, as in the DuckDB store. Before writing
anything, apply and delete work out the documents they change: Flattener.affected on the stored
versions of the nodes they replace or delete (read from the graph as stored), and on the new nodes
(read from a view that overlays the batch on the stored graph: mget for nodes, a search for
children, refreshed by every earlier write), then Flattener.documents from that view. Those
documents, and what they replace, go into the write's journal; they are written after the nodes,
each conditional on the _seq_no read, with refresh=wait_for. reindex (and filling a new index)
pages through the roots with search_after, builds 500 at a time, stamps each document with the
rebuild's id, then removes the documents left unstamped (their roots are gone).
What this gives:
- documents share their write's fate: a batch that fails, is refused, or is cut short by a crash
  leaves (after its rollback, or the next start) every document as it was; once apply/delete has
  returned, the documents are searchable and equal to what reindex would build;
- exact numbers: facet buckets, `other` (sum_other_doc_count) and missing counts are exact on one
  shard; hits and manifest totals count every match (track_total_hits); facet counts for all fields
  come from one search, so they agree with each other;
- the embedded store's answers: buckets ranked by count, then value as text ("__missing__" among
  them), numbers written as it writes them (30.0 for a number field, 30 for an integer); histogram
  edges from base.histogram_edges (a range aggregation: a value on an edge counts in the bin it
  starts, the maximum in the last bin); manifests keyset-paged by id with no cap (search_after),
  from a joined kind by every matching id of that kind.
What it does not give:
- isolation, as for nodes: a reader may see a batch's nodes before its documents, or the documents
  of a failed batch until its rollback; a rebuild after a change of shape empties the index first,
  so until it ends queries see part of the documents (reindex rewrites in place: no gap);
- numeric_stats is two searches (stats, then the bins), which a write in between can set apart;
- hits reach only the first index.max_result_window (10,000) matches: offset + limit beyond it is
  a ValueError (the manifest reads every file);
- sorting on a list field uses its smallest value ascending and its largest descending (Elasticsearch's
  default; the embedded store compares whole lists); numeric facet values of equal count at the
  `size` cut are chosen in numeric order, then ranked as text;
- sorts on the fields of records (samples.organ) are refused with a ValueError; facets on them count
  documents (a nested terms aggregation, reverse_nested per value), ranked among at most
  RECORD_VALUES (10,000) distinct values: beyond that, the rarest values go uncounted;
- keyword values over STRING_MAX (8,191) characters are stored but not indexed: no filter, facet
  or sort sees them (Elasticsearch counts them as missing);
- limits: a manifest from a joined kind sends every matching id (terms clauses of TERMS_IDS) on
  each page, so they must fit http.max_content_length (some 2 million ids) and each page costs a
  scan of them; a write's journal holds every document it rewrites whole (an experiment over
  100,000 files journals 100,000 documents), within the same http.max_content_length; histograms
  have at most MAX_BINS bins; a field may not be named write_id (the store's own stamp).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from elasticsearch import BadRequestError, Elasticsearch

from metadata.store.elastic_stats import queue_body, queue_from, recent_body, recent_from, rows_from, stats_body
from metadata.store.run_stats_sql import StatsWindow
from metadata.errors import Clash
from metadata.filters import Field, to_es
from metadata.store.base import (EdgeRow, FacetCounts, NumericSummary, Page, Store, StoredNode, Write,
                                 children_clash_message, decode_cursor, decode_id_cursor, edges_of, encode_cursor,
                                 encode_id_cursor, histogram_edges)
from metadata.store.elastic_journal import (BulkError, DocumentPlan, _conflict, apply_journal, bulk_failures, chunks,
                                            create_key_ops, delete_journal, delete_ops, document_ops,
                                            documents_clash, documents_journal, journal_query, parents_clash,
                                            rebuild_ops, rollback_ops, stale_clash, taken_clash, write_clash,
                                            write_node_ops)
from metadata.store.elastic_queries import (Indices, SCAN_PAGE, TERMS_IDS, cells_from, cells_query, check_bins,
                                            check_window, children_by_parent, children_query, count_query,
                                            counts_query, documents_mappings, documents_meta, documents_settings,
                                            edges_into, facet_counts_from, facets_query, graph_settings,
                                            histogram_bins, histogram_query, hits_query, id_prefix_query, ids_query,
                                            indices, join_query, journal_mappings, key_id, keys_mappings, list_query,
                                            manifest_query, manifest_row, node_from_doc, node_key, nodes_mappings,
                                            numeric_field, numeric_summary, stats_query, typed_children_query,
                                            unstamped_query)
from metadata.store import elastic_records as ER
from metadata.store.record_index import SIGNATURE, RecordQuery, check, empty

if TYPE_CHECKING:
    from metadata.flatten import DocumentSpec, Flattening

log = logging.getLogger("labcommons.metadata.store")

MGET_IDS = 1000      # ids per mget request
ID_PAGE = 10_000     # hits per search_after page when collecting ids (the default index.max_result_window)
ROOTS_PER_BUILD = 500  # roots per Flattener.documents call during a rebuild


def client(url: str, ca_certs: Path | None = None) -> Elasticsearch:
    """The official client; with ca_certs, HTTPS is verified against that CA bundle (a cluster's own CA)."""
    return Elasticsearch(url, request_timeout=30, **({"ca_certs": str(ca_certs)} if ca_certs else {}))


class ElasticStore(Store):
    name = "elasticsearch"

    def __init__(self, url: str, index_prefix: str = "labcommons", shards: int = 1, replicas: int | None = None,
                 ca_certs: Path | None = None):
        """`shards` applies to document indices made from now on, `replicas` to every index made from now on
        (change replicas of existing indices through the cluster: docs/deploy.md); `ca_certs` verifies HTTPS."""
        self._es = client(url, ca_certs)
        self._names = indices(index_prefix)
        self._shards, self._replicas = shards, replicas
        self._write_lock = threading.Lock()
        self._pending: list[tuple[str, dict]] = []  # journals whose rollback failed; retried first
        self._flattening: Flattening | None = None  # set by use_documents
        self._windows: dict[str, int] = {}  # kind -> its index's max_result_window
        self._create_indices()
        self._recover()
        self._use_records()

    @property
    def indices(self) -> Indices:
        return self._names

    def _create_indices(self) -> None:
        names = self._names
        for index, mappings in ((names.nodes, nodes_mappings()), (names.keys, keys_mappings()),
                                (names.journal, journal_mappings())):
            if self._es.indices.exists(index=index):
                continue
            try:
                self._es.indices.create(index=index, mappings=mappings, settings=graph_settings(self._replicas))
            except BadRequestError as exc:  # another process created it between exists and create
                if exc.error != "resource_already_exists_exception":
                    raise

    # -- reads --------------------------------------------------------------------------

    def _mget(self, index: str, ids) -> dict[str, dict]:
        """Found documents by _id (real-time), each hit with _source, _seq_no and _primary_term."""
        ids, found = list(dict.fromkeys(ids)), {}
        for i in range(0, len(ids), MGET_IDS):
            docs = self._es.mget(index=index, ids=ids[i:i + MGET_IDS])["docs"]
            found.update({d["_id"]: d for d in docs if d.get("found")})  # a missing index: errors, not found
        return found

    def get_many(self, ids: list[str]) -> dict[str, StoredNode]:
        return {i: node_from_doc(hit["_source"]) for i, hit in self._mget(self._names.nodes, ids).items()}

    def find(self, project_id: str, submitter_ids: list[str]) -> dict[str, StoredNode]:
        """By the key documents (real-time GET), then the nodes they name."""
        keys = self._mget(self._names.keys, [key_id(project_id, s) for s in submitter_ids])
        nodes = self.get_many([hit["_source"]["node_id"] for hit in keys.values()])
        wanted = set(submitter_ids)
        return {n.submitter_id: n for n in nodes.values() if n.project_id == project_id and n.submitter_id in wanted}

    def list(self, type_name: str, project_ids: list[str] | None, limit: int, cursor: str = "") -> Page:
        body = list_query(type_name, project_ids, limit, decode_cursor(cursor))
        hits = self._es.search(index=self._names.nodes, **body)["hits"]
        nodes = [node_from_doc(hit["_source"]) for hit in hits["hits"]]
        more = len(nodes) > limit
        nodes = nodes[:limit]
        return Page(nodes, hits["total"]["value"], encode_cursor(nodes[-1]) if more else "")

    def with_id_prefix(self, prefix: str, types: list[str], project_ids: list[str] | None,
                       limit: int) -> list[StoredNode]:
        hits = self._es.search(index=self._names.nodes, **id_prefix_query(prefix, types, project_ids, limit))
        return [node_from_doc(hit["_source"]) for hit in hits["hits"]["hits"]]

    def _children(self, parent_ids: list[str], exclude_ids: list[str]) -> list[dict]:
        """Every node linking to one of parent_ids, paged with search_after."""
        found, after = [], None
        while True:
            body = children_query(parent_ids, exclude_ids, after)
            hits = self._es.search(index=self._names.nodes, **body)["hits"]["hits"]
            found.extend(hit["_source"] for hit in hits)
            if len(hits) < SCAN_PAGE:
                return found
            after = hits[-1]["sort"]

    def edges(self, node_id: str) -> list[EdgeRow]:
        node = self.get(node_id)
        out = edges_of(node) if node else []
        into = edges_into(self._children([node_id], [node_id]), {node_id})
        return sorted(out + into, key=lambda e: (e.child_type, e.child_id))

    def counts(self) -> dict[str, int]:
        buckets = self._es.search(index=self._names.nodes, **counts_query())["aggregations"]["types"]["buckets"]
        return {b["key"]: b["doc_count"] for b in buckets}

    # -- writes -------------------------------------------------------------------------

    def apply(self, writes: list[Write], parent_ids: set[str]) -> None:
        with self._write_lock:
            self._roll_back_pending()
            gone = sorted(set(parent_ids) - set(self._mget(self._names.nodes, sorted(parent_ids))))
            if gone:
                raise parents_clash(gone)
            prior = self._mget(self._names.nodes, [w.node.id for w in writes])
            if clash := stale_clash(writes, prior):
                raise clash
            creates = [w.node for w in writes if w.expected_version is None]
            taken = self._mget(self._names.keys, [node_key(n) for n in creates])
            if taken:
                raise taken_clash([n.submitter_id for n in creates if node_key(n) in taken])
            if writes:
                old = [node_from_doc(hit["_source"]) for hit in prior.values()]
                new = [node_from_doc(doc) for _, doc in write_node_ops("", writes, prior, "")]
                plan = self._plan(old, new, _GraphView(self, put=new))
                journal = apply_journal(writes, prior, time.time_ns(), documents_journal(plan) if plan else [])
                self._journaled(journal, lambda write_id: self._write(write_id, writes, prior, creates, plan))

    def _plan(self, old: list[StoredNode], new: list[StoredNode], after: "_GraphView") -> DocumentPlan | None:
        """The documents a write changes: roots depending on the old nodes as stored, or on the new
        ones as the write leaves the graph (`after`), rebuilt from `after`; None if documents are off."""
        if self._flattening is None:
            return None
        flattener = self._flattening.flattener
        before, later = flattener.affected(_GraphView(self), old), flattener.affected(after, new)
        plan = DocumentPlan()
        for kind in self._flattening.specs:
            roots = before.get(kind, set()) | later.get(kind, set())
            plan.docs[kind] = flattener.documents(after, kind, roots) if roots else []
            plan.gone[kind] = roots - {doc["id"] for doc in plan.docs[kind]}
            plan.prior[kind] = self._mget(self._names.documents(kind), roots)
        return plan

    def _write(self, write_id: str, writes: list[Write], prior: dict[str, dict], creates: list[StoredNode],
               plan: DocumentPlan | None) -> None:
        """Claim the keys, write the nodes, then their documents; a conflict on any is a stale Clash."""
        sids = {node_key(n): n.submitter_id for n in creates}
        failed = self._bulk(create_key_ops(self._names.keys, creates, write_id), refresh=False)
        if failed:
            raise _conflict(failed, lambda f: taken_clash([sids[item["id"]] for item in f]))
        by_id = {w.node.id: w for w in writes}
        failed = self._bulk(ER.with_records(write_node_ops(self._names.nodes, writes, prior, write_id)))
        if failed:
            raise _conflict(failed, lambda f: write_clash(by_id[f[0]["id"]]))
        self._write_documents(write_id, plan)

    def _write_documents(self, write_id: str, plan: DocumentPlan | None) -> None:
        if plan and (failed := self._bulk(document_ops(self._names, plan, write_id))):
            raise _conflict(failed, documents_clash)

    def delete(self, ids: list[str]) -> None:
        with self._write_lock:
            self._roll_back_pending()
            ids = list(dict.fromkeys(ids))
            children = self._children(ids, ids) if ids else []
            if children:
                raise Clash(children_clash_message(edges_into(children, set(ids))), "has_children")
            stored = list(self._mget(self._names.nodes, ids).values())
            if stored:
                plan = self._plan([node_from_doc(hit["_source"]) for hit in stored], [],
                                  _GraphView(self, removed=[hit["_id"] for hit in stored]))
                journal = delete_journal(stored, time.time_ns(), documents_journal(plan) if plan else [])
                self._journaled(journal, lambda write_id: self._delete(write_id, stored, plan))

    def _delete(self, write_id: str, stored: list[dict], plan: DocumentPlan | None) -> None:
        if failed := self._bulk(delete_ops(self._names, stored)):
            raise _conflict(failed, lambda f: Clash(f"node {f[0]['id']} was changed by someone else during "
                                                    "the delete; try again", "stale"))
        self._write_documents(write_id, plan)

    def _bulk(self, ops: list[tuple], refresh: bool = True) -> list[dict]:
        """Send operations in chunks; the failed items. refresh=wait_for makes them searchable first."""
        failed = []
        for body in chunks(ops):
            response = self._es.bulk(operations=body, refresh="wait_for" if refresh else False)
            failed.extend(bulk_failures(response))
        return failed

    # -- flattened documents ------------------------------------------------------------

    def use_documents(self, flattening: "Flattening") -> None:
        with self._write_lock:
            self._roll_back_pending()
            signature = flattening.signature()
            stale = [kind for kind, spec in flattening.specs.items() if self._prepare_index(spec, signature)]
            self._flattening = flattening
            self._windows = {kind: self._result_window(self._names.documents(kind)) for kind in flattening.specs}
            if stale:
                log.info("building %s documents: their index is new or their shape changed", ", ".join(stale))
                self._rebuild(stale)

    def _prepare_index(self, spec: "DocumentSpec", signature: str) -> bool:
        """Make the kind's index fit the flattening; True if it was (re)created and must be filled."""
        index = self._names.documents(spec.kind)
        if self._es.indices.exists(index=index):
            meta = self._es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {})
            if meta == documents_meta(signature, complete=True):
                return False
            self._es.indices.delete(index=index)  # another shape, or a rebuild cut short
        self._es.indices.create(index=index, mappings=documents_mappings(spec, signature),
                                settings=documents_settings(self._shards, self._replicas))
        return True

    def _result_window(self, index: str) -> int:
        found = self._es.indices.get_settings(index=index, name="index.max_result_window", flat_settings=True,
                                              include_defaults=True)[index]
        value = found.get("settings", {}).get("index.max_result_window")
        return int(value or found.get("defaults", {}).get("index.max_result_window", 10_000))

    def reindex(self) -> dict[str, int]:
        with self._write_lock:
            self._roll_back_pending()
            return self._rebuild(list(self._documents().specs))

    def _rebuild(self, kinds: list[str]) -> dict[str, int]:
        """Rebuild each kind from the graph, then mark its index complete (a crash midway: rebuilt at start)."""
        counts = {kind: self._rebuild_kind(kind, f"rebuild-{uuid.uuid4().hex}") for kind in kinds}
        meta = documents_meta(self._flattening.signature(), complete=True)
        for kind in kinds:
            self._es.indices.put_mapping(index=self._names.documents(kind), meta=meta)
        return counts

    def _rebuild_kind(self, kind: str, stamp: str) -> int:
        """Write every root's document stamped `stamp`, then remove the documents left unstamped."""
        spec, index, view = self._flattening.specs[kind], self._names.documents(kind), _GraphView(self)
        written = 0
        for roots in self._scan_ids(self._names.nodes, {"term": {"type": spec.root}}, ROOTS_PER_BUILD):
            docs = self._flattening.flattener.documents(view, kind, roots)
            self._bulk_or_fail(rebuild_ops(index, docs, stamp))
            written += len(docs)
        self._es.indices.refresh(index=index)
        for gone in self._scan_ids(index, unstamped_query(stamp)):
            self._bulk_or_fail([({"delete": {"_index": index, "_id": i}},) for i in gone])
        self._es.indices.refresh(index=index)
        return written

    def _bulk_or_fail(self, ops: list[tuple]) -> None:
        for body in chunks(ops):
            if failed := bulk_failures(self._es.bulk(operations=body)):
                raise BulkError(f"rebuilding documents: {failed[0]}")

    def _scan_ids(self, index: str, query: dict, size: int = ID_PAGE) -> Iterator[list[str]]:
        """Pages of the ids of every matching document, in id order (search_after: no window, no cap)."""
        after = None
        while True:
            hits = self._es.search(index=index, body=ids_query(query, size, after))["hits"]["hits"]
            if hits:
                yield [hit["_id"] for hit in hits]
            if len(hits) < size:
                return
            after = hits[-1]["sort"][0]

    def _documents(self) -> "Flattening":
        if self._flattening is None:
            raise RuntimeError("flattened documents are off in this store: call use_documents first")
        return self._flattening

    def _kind(self, kind: str) -> tuple[dict[str, Field], str]:
        """The fields and the index of a document kind; ValueError for a kind the flattening lacks."""
        spec = self._documents().specs.get(kind)
        if spec is None:
            raise ValueError(f"unknown document kind {kind!r}; kinds are {', '.join(sorted(self._flattening.specs))}")
        return spec.fields, self._names.documents(kind)

    def facet_counts(self, kind: str, requests: list[tuple[str, object]], size: int) -> dict[str, FacetCounts]:
        fields, index = self._kind(kind)
        if not requests:
            return {}
        response = self._es.search(index=index, body=facets_query(fields, requests, size))
        return facet_counts_from(fields, response["aggregations"], requests, size)

    def count(self, kind: str, where) -> int:
        _, index = self._kind(kind)
        return self._es.count(index=index, body=count_query(where))["count"]

    def cell_counts(self, kind: str, fields: list[str], where) -> dict[tuple, int]:
        if not fields:
            return {(): n} if (n := self.count(kind, where)) else {}
        found, index = self._kind(kind)
        response = self._es.search(index=index, body=cells_query(found, fields, where))
        return cells_from(found, fields, response["aggregations"])

    def numeric_stats(self, kind: str, field: str, where, bins: int, bin_width: float) -> NumericSummary:
        fields, index = self._kind(kind)
        name = numeric_field(fields, field)
        if bins < 1 and bin_width <= 0:
            raise ValueError(f"a histogram needs bins >= 1 or bin_width > 0, got bins {bins}, bin_width {bin_width}")
        summary = numeric_summary(self._es.search(index=index, body=stats_query(name, where))["aggregations"])
        if summary.count:
            edges = check_bins(histogram_edges(summary.min, summary.max, bins, bin_width))
            response = self._es.search(index=index, body=histogram_query(name, where, edges))
            summary.bins = histogram_bins(response["aggregations"], edges)
        return summary

    def hits(self, kind: str, where, sort: list[tuple[str, bool]], limit: int, offset: int) -> tuple[int, list[dict]]:
        fields, index = self._kind(kind)
        check_window(offset, limit, self._windows[kind])
        found = self._es.search(index=index, body=hits_query(fields, where, sort, limit, offset))["hits"]
        return found["total"]["value"], [hit["_source"] for hit in found["hits"]]

    def manifest(self, kind: str, where, limit: int, cursor: str) -> tuple[int, list[dict], str]:
        manifest = self._documents().manifest
        self._kind(kind)
        after = decode_id_cursor(cursor)
        if limit < 1 or limit >= self._windows[manifest.document]:
            raise ValueError(f"manifest page size must be between 1 and {self._windows[manifest.document] - 1}, "
                             f"got {limit}")
        body = manifest_query(manifest.fields, self._manifest_selection(kind, where), limit, after)
        found = self._es.search(index=self._names.documents(manifest.document), body=body)["hits"]
        page = found["hits"][:limit]
        more = len(found["hits"]) > limit
        rows = [manifest_row(hit["_source"], manifest.fields) for hit in page]
        return found["total"]["value"], rows, encode_id_cursor(page[-1]["sort"][0]) if more else ""

    def _manifest_selection(self, kind: str, where) -> dict:
        """The manifest documents behind a view: matching ones, or those joined to the matching `kind`."""
        manifest = self._flattening.manifest
        if kind == manifest.document:
            return to_es(where)
        if kind not in manifest.joins:
            raise ValueError(f"a manifest comes from {manifest.document} documents or from "
                             f"{', '.join(sorted(manifest.joins))}, not from {kind}")
        ids = [i for page in self._scan_ids(self._names.documents(kind), to_es(where)) for i in page]
        return join_query(manifest.joins[kind], ids)

    def _typed_children(self, parent_ids: set[str], child_type: str) -> list[dict]:
        """id and links of every node of child_type linking to one of parent_ids."""
        parents, found = sorted(parent_ids), []
        for i in range(0, len(parents), TERMS_IDS):
            after = None
            while True:
                body = typed_children_query(parents[i:i + TERMS_IDS], child_type, SCAN_PAGE, after)
                hits = self._es.search(index=self._names.nodes, body=body)["hits"]["hits"]
                found.extend(hit["_source"] for hit in hits)
                if len(hits) < SCAN_PAGE:
                    break
                after = hits[-1]["sort"][0]
        return found

    # -- the journal --------------------------------------------------------------------

    def _journaled(self, journal: dict, write) -> None:
        """Run write(write_id) between journaling its prior state and deleting the journal; undo it on failure."""
        write_id = uuid.uuid4().hex
        # the client retries on a dropped connection: a 409 or 404 here is our own first attempt's doing
        self._es.options(ignore_status=409).create(index=self._names.journal, id=write_id, document=journal)
        try:
            write(write_id)
            self._es.options(ignore_status=404).delete(index=self._names.journal, id=write_id)
        except Exception:
            self._undo(write_id, journal)
            raise
        except BaseException:  # interrupted: leave it to the next write or the next start
            self._pending.append((write_id, journal))
            raise

    def _undo(self, write_id: str, journal: dict) -> None:
        """Roll back now; if that fails too, keep it for the next write (the caller's error still propagates)."""
        try:
            self._roll_back(write_id, journal)
        except Exception:
            log.exception("rollback of write %s failed; retrying before the next write", write_id)
            self._pending.append((write_id, journal))

    def _roll_back(self, write_id: str, journal: dict) -> None:
        docs = journal["state"]["docs"]
        current = {}
        for key in dict.fromkeys(d["index"] for d in docs):
            hits = self._mget(self._names.named(key), [d["id"] for d in docs if d["index"] == key])
            current.update({(key, doc_id): hit for doc_id, hit in hits.items()})
        # a 409 is someone else's change since ours: it stands
        failed = [f for f in self._bulk(rollback_ops(self._names, write_id, docs, current)) if f["status"] != 409]
        if failed:
            raise BulkError(f"rollback of write {write_id}: {failed[0]}")
        self._es.options(ignore_status=404).delete(index=self._names.journal, id=write_id)

    def _roll_back_pending(self) -> None:
        while self._pending:  # newest first, as at start
            self._roll_back(*self._pending[-1])
            self._pending.pop()

    def _recover(self) -> None:
        """Roll back, newest first, every write a crash left half done."""
        self._es.indices.refresh(index=self._names.journal)
        while hits := self._es.search(index=self._names.journal, **journal_query())["hits"]["hits"]:
            for hit in hits:
                log.warning("rolling back a %s interrupted by a crash (write %s)", hit["_source"]["kind"], hit["_id"])
                self._roll_back(hit["_id"], hit["_source"])
            self._es.indices.refresh(index=self._names.journal)

    def close(self) -> None:
        with self._write_lock:
            self._es.close()

    def run_stats(self, window: StatsWindow) -> dict[str, list]:
        """The dashboard's aggregates over the window's runs and the queue now (elastic_stats.py;
        steps and QC per instrument are not given by this store)."""
        found = self._es.search(index=self._names.nodes, **stats_body(window))
        waiting = self._es.search(index=self._names.nodes, **queue_body(window))
        return {"buckets": rows_from(found["aggregations"]), "qc": [], "steps": [], "queue": queue_from(waiting)}

    def recent_runs(self, last: int) -> list[tuple[str, int, int]]:
        """(template, runs, failed) over each template's `last` ended runs (alerts; elastic_stats.py)."""
        return recent_from(self._es.search(index=self._names.nodes, **recent_body(last))["aggregations"])

    # -- records of the service (builders: elastic_records.py) ---------------------------

    def query(self, query: RecordQuery) -> Page:
        checked = check(query)
        if empty(checked):
            return Page([], 0 if checked.total else -1)
        hits = self._es.search(index=self._names.nodes, **ER.records_query(checked))["hits"]
        docs, total, cursor, cursors = ER.records_page(hits, checked)
        return Page([node_from_doc(doc) for doc in docs], total, cursor, cursors)

    def children(self, parent_ids: list[str], child_type: str) -> dict[str, list[str]]:
        wanted, found = set(parent_ids), {}
        for doc in self._typed_children(wanted, child_type) if wanted else []:
            for parent in sorted({link["target_id"] for link in doc["links"]} & wanted):
                found.setdefault(parent, []).append(doc["id"])
        return {parent: sorted(ids) for parent, ids in found.items()}

    def _use_records(self) -> None:
        """Map the record fields; give every declared type's documents theirs when the index was
        made for another declaration (or before records were indexed)."""
        index = self._names.nodes
        if self._es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {}).get("records") == SIGNATURE:
            return
        mapping = ER.records_mapping()
        self._es.indices.put_mapping(index=index, properties=mapping["properties"])
        with self._write_lock:
            after = ""
            while hits := self._es.search(index=index, **ER.backfill_query(after))["hits"]["hits"]:
                self._bulk_or_fail(ER.backfill_ops(index, hits))
                after = hits[-1]["_source"]["id"]
            self._es.indices.refresh(index=index)
        self._es.indices.put_mapping(index=index, meta=mapping["_meta"])


class _GraphView:
    """The graph as the store holds it, or as a write will leave it: the stored nodes with `put` in
    place of their stored versions and `removed` taken out (a flatten.GraphReader)."""

    def __init__(self, store: ElasticStore, put: Iterable[StoredNode] = (), removed: Iterable[str] = ()):
        self._store = store
        self._put = {node.id: node for node in put}
        self._hidden = set(removed) | set(self._put)

    def nodes(self, ids: Iterable[str]) -> dict[str, StoredNode]:
        ids = set(ids)
        found = self._store.get_many(sorted(ids - self._hidden))  # mget: real-time
        found.update({i: self._put[i] for i in ids & set(self._put)})
        return found

    def children(self, parent_ids: Iterable[str], child_type: str, link_name: str) -> dict[str, list[str]]:
        parents = set(parent_ids)
        if not parents:
            return {}
        # a search sees every write that has returned: each refreshes before returning
        stored = [c for c in self._store._typed_children(parents, child_type) if c["id"] not in self._hidden]
        written = [{"id": n.id, "links": [vars(link) for link in n.links]}
                   for n in self._put.values() if n.type == child_type]
        return children_by_parent(stored + written, parents, link_name)
