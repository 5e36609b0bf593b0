"""The Elasticsearch store: the graph in three indices, written through the official client.

Indices (created with explicit, strict mappings at start if missing):
- `<prefix>-nodes`: one document per node, _id = node id; `parent_ids` makes children a term query;
  `props` is kept but not indexed (facet documents live in their own indices).
- `<prefix>-keys`: one document per (project_id, submitter_id), _id = "project/submitter", written
  with op_type=create, so Elasticsearch itself refuses a second node under a taken key.
- `<prefix>-journal`: one document per write in flight, holding the documents it replaces.

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
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

from elasticsearch import BadRequestError, Elasticsearch

from metadata.errors import Clash
from metadata.store.base import (EdgeRow, LinkRef, Page, Store, StoredNode, Write, children_clash_message,
                                 decode_cursor, edges_of, encode_cursor)

log = logging.getLogger("labcommons.metadata.store")

SCAN_PAGE = 1000     # hits per search_after page when reading every child of a node
BULK_OPS = 500       # operations per bulk request
TYPES_MAX = 1000     # terms buckets for counts(); the dictionary has far fewer types
KEEP_ON_UPDATE = ("type", "project_id", "submitter_id", "created_at", "created_by")
KEYWORD = {"type": "keyword"}


class BulkError(RuntimeError):
    """A bulk item failed for a reason other than a version or create conflict."""


@dataclass(frozen=True)
class Indices:
    nodes: str
    keys: str
    journal: str


def indices(prefix: str) -> Indices:
    return Indices(f"{prefix}-nodes", f"{prefix}-keys", f"{prefix}-journal")


# -- builders: pure functions making the bodies the adapter sends ---------------------------

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


def journal_query(size: int = 100) -> dict:
    """Journal documents left behind, newest first: rolled back in reverse order of writing."""
    return {"query": {"match_all": {}}, "sort": [{"started_at": "desc"}], "size": size}


def journal_doc(kind: str, docs: list[dict], started_at: int) -> dict:
    """A write's journal: every document it touches as it was before ("prior", None if absent)."""
    return {"kind": kind, "started_at": started_at, "state": {"docs": docs}}


def apply_journal(writes: list[Write], prior: dict[str, dict], started_at: int) -> dict:
    """An apply's journal: the nodes it writes as they were (None if new), and the keys it claims."""
    nodes = [{"index": "nodes", "id": w.node.id, "prior": prior[w.node.id]["_source"] if w.node.id in prior else None}
             for w in writes]
    keys = [{"index": "keys", "id": node_key(w.node), "prior": None} for w in writes if w.expected_version is None]
    return journal_doc("apply", nodes + keys, started_at)


def delete_journal(stored: list[dict], started_at: int) -> dict:
    """A delete's journal: the nodes it removes, and their keys, as they were."""
    nodes = [{"index": "nodes", "id": hit["_id"], "prior": hit["_source"]} for hit in stored]
    keys = [{"index": "keys", "id": key_id(hit["_source"]["project_id"], hit["_source"]["submitter_id"]),
             "prior": key_doc(node_from_doc(hit["_source"]), hit["_source"].get("write_id", ""))} for hit in stored]
    return journal_doc("delete", nodes + keys, started_at)


def create_key_ops(index: str, nodes: list[StoredNode], write_id: str) -> list[tuple]:
    return [({"create": {"_index": index, "_id": node_key(n)}}, key_doc(n, write_id)) for n in nodes]


def write_node_ops(index: str, writes: list[Write], prior: dict[str, dict], write_id: str) -> list[tuple]:
    """Creates as op_type=create; updates conditional on the _seq_no/_primary_term that was checked."""
    ops = []
    for w in writes:
        if w.expected_version is None:
            ops.append(({"create": {"_index": index, "_id": w.node.id}}, node_doc(w.node, write_id)))
        else:
            hit = prior[w.node.id]
            ops.append(({"index": {"_index": index, "_id": w.node.id, **_if_unchanged(hit)}},
                        updated_doc(hit["_source"], w.node, write_id)))
    return ops


def delete_ops(names: Indices, stored: list[dict]) -> list[tuple]:
    """Delete node documents, each only if unchanged since read, and their key documents."""
    nodes = [({"delete": {"_index": names.nodes, "_id": hit["_id"], **_if_unchanged(hit)}},) for hit in stored]
    keys = [({"delete": {"_index": names.keys, "_id": key_id(hit["_source"]["project_id"],
                                                             hit["_source"]["submitter_id"])}},) for hit in stored]
    return nodes + keys


def rollback_ops(names: Indices, write_id: str, docs: list[dict], current: dict[tuple[str, str], dict]) -> list[tuple]:
    """Put back what write `write_id` replaced, wherever its own change is still the current state.

    `current` holds the documents as they are now, by (index, id). A document this write created or
    updated is its own while stamped with its write_id; one it deleted, while absent. Each operation
    is conditional on the current _seq_no, so a change by anyone else since then stands (409).
    """
    ops = []
    for item in docs:
        index, hit, prior = getattr(names, item["index"]), current.get((item["index"], item["id"])), item["prior"]
        ours = hit is not None and hit["_source"].get("write_id") == write_id
        if prior is None and ours:
            ops.append(({"delete": {"_index": index, "_id": item["id"], **_if_unchanged(hit)}},))
        elif prior is not None and hit is None:
            ops.append(({"create": {"_index": index, "_id": item["id"]}}, prior))
        elif prior is not None and ours:
            ops.append(({"index": {"_index": index, "_id": item["id"], **_if_unchanged(hit)}}, prior))
    return ops


def _if_unchanged(hit: dict) -> dict:
    return {"if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}


def bulk_failures(response: dict) -> list[dict]:
    """The failed items of a bulk response; deleting a document already gone is not a failure."""
    failed = []
    for item in response["items"]:
        (op, result), = item.items()
        if result["status"] >= 300 and not (op == "delete" and result["status"] == 404):
            failed.append({"op": op, "id": result["_id"], "status": result["status"], "error": result.get("error")})
    return failed


def edges_into(children: list[dict], parent_ids: set[str]) -> list[EdgeRow]:
    """The edges from child documents to any of parent_ids, in the children's order."""
    return [EdgeRow(child["id"], child["type"], link["name"], link["target_id"], link["target_type"])
            for child in children for link in child["links"] if link["target_id"] in parent_ids]


def stale_clash(writes: list[Write], prior: dict[str, dict]) -> Clash | None:
    """The Clash for the first write whose stored state is not the one the batch was planned on."""
    for w in writes:
        stored_version = prior[w.node.id]["_source"]["version"] if w.node.id in prior else None
        if stored_version != w.expected_version:
            return write_clash(w)
    return None


def write_clash(write: Write) -> Clash:
    """The stale Clash for one write: its node was created, or changed, by someone else."""
    node = write.node
    if write.expected_version is None:
        return taken_clash([node.submitter_id])
    return Clash(f"{node.type} {node.submitter_id!r} was changed by someone else since version "
                 f"{write.expected_version}; fetch it again and resubmit", "stale")


def taken_clash(submitter_ids: list[str]) -> Clash:
    return Clash(f"created meanwhile by another submission: {', '.join(submitter_ids[:10])}; "
                 "submit again to update them", "stale")


def parents_clash(gone: list[str]) -> Clash:
    return Clash(f"the batch links to {len(gone)} node(s) deleted meanwhile: {', '.join(gone[:10])}",
                 "parent_gone")


def _conflict(failed: list[dict], clash) -> Exception:
    """clash(failed) if every failure is a version or create conflict (409), else a BulkError."""
    if all(f["status"] == 409 for f in failed):
        return clash(failed)
    first = failed[0]
    return BulkError(f"{first['op']} {first['id']} failed with {first['status']}: {first['error']}")


def chunks(ops: list[tuple], size: int = BULK_OPS) -> list[list]:
    """Bulk bodies of at most `size` operations each, flattened as the bulk API takes them."""
    return [[part for op in ops[i:i + size] for part in op] for i in range(0, len(ops), size)]


# -- the adapter ----------------------------------------------------------------------------

class ElasticStore(Store):
    name = "elasticsearch"

    def __init__(self, url: str, index_prefix: str = "labcommons"):
        self._es = Elasticsearch(url, request_timeout=30)
        self._names = indices(index_prefix)
        self._write_lock = threading.Lock()
        self._pending: list[tuple[str, dict]] = []  # journals whose rollback failed; retried first
        self._create_indices()
        self._recover()

    def _create_indices(self) -> None:
        names = self._names
        for index, mappings in ((names.nodes, nodes_mappings()), (names.keys, keys_mappings()),
                                (names.journal, journal_mappings())):
            if self._es.indices.exists(index=index):
                continue
            try:
                self._es.indices.create(index=index, mappings=mappings)
            except BadRequestError as exc:  # another process created it between exists and create
                if exc.error != "resource_already_exists_exception":
                    raise

    # -- reads --------------------------------------------------------------------------

    def _mget(self, index: str, ids) -> dict[str, dict]:
        """Found documents by _id (real-time), each hit with _source, _seq_no and _primary_term."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        docs = self._es.mget(index=index, ids=ids)["docs"]
        return {d["_id"]: d for d in docs if d.get("found")}

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
                journal = apply_journal(writes, prior, time.time_ns())
                self._journaled(journal, lambda write_id: self._write(write_id, writes, prior, creates))

    def _write(self, write_id: str, writes: list[Write], prior: dict[str, dict], creates: list[StoredNode]) -> None:
        """Claim the keys, then write the nodes; a conflict on either is a stale Clash."""
        sids = {node_key(n): n.submitter_id for n in creates}
        failed = self._bulk(create_key_ops(self._names.keys, creates, write_id), refresh=False)
        if failed:
            raise _conflict(failed, lambda f: taken_clash([sids[item["id"]] for item in f]))
        by_id = {w.node.id: w for w in writes}
        failed = self._bulk(write_node_ops(self._names.nodes, writes, prior, write_id))
        if failed:
            raise _conflict(failed, lambda f: write_clash(by_id[f[0]["id"]]))

    def delete(self, ids: list[str]) -> None:
        with self._write_lock:
            self._roll_back_pending()
            ids = list(dict.fromkeys(ids))
            children = self._children(ids, ids) if ids else []
            if children:
                raise Clash(children_clash_message(edges_into(children, set(ids))), "has_children")
            stored = list(self._mget(self._names.nodes, ids).values())
            if stored:
                journal = delete_journal(stored, time.time_ns())
                self._journaled(journal, lambda _: self._delete(stored))

    def _delete(self, stored: list[dict]) -> None:
        if failed := self._bulk(delete_ops(self._names, stored)):
            raise _conflict(failed, lambda f: Clash(f"node {f[0]['id']} was changed by someone else during "
                                                    "the delete; try again", "stale"))

    def _bulk(self, ops: list[tuple], refresh: bool = True) -> list[dict]:
        """Send operations in chunks; the failed items. refresh=wait_for makes them searchable first."""
        failed = []
        for body in chunks(ops):
            response = self._es.bulk(operations=body, refresh="wait_for" if refresh else False)
            failed.extend(bulk_failures(response))
        return failed

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
        for kind in ("nodes", "keys"):
            hits = self._mget(getattr(self._names, kind), [d["id"] for d in docs if d["index"] == kind])
            current.update({(kind, doc_id): hit for doc_id, hit in hits.items()})
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
