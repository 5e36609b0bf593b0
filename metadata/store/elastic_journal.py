"""The Elasticsearch store's write protocol as pure builders: a write's journal (what it replaces),
the conditional bulk operations that make it, the rollback that undoes it, and the Clash each
conflict becomes. How they combine is told in elastic.py's docstring.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from metadata.errors import Clash
from metadata.store.base import StoredNode, Write
from metadata.store.elastic_queries import Indices, key_doc, key_id, node_doc, node_from_doc, node_key, updated_doc

BULK_OPS = 500       # operations per bulk request


class BulkError(RuntimeError):
    """A bulk item failed for a reason other than a version or create conflict."""


def journal_query(size: int = 100) -> dict:
    """Journal documents left behind, newest first: rolled back in reverse order of writing."""
    return {"query": {"match_all": {}}, "sort": [{"started_at": "desc"}], "size": size}


def journal_doc(kind: str, docs: list[dict], started_at: int) -> dict:
    """A write's journal: every document it touches as it was before ("prior", None if absent)."""
    return {"kind": kind, "started_at": started_at, "state": {"docs": docs}}


def apply_journal(writes: list[Write], prior: dict[str, dict], started_at: int, documents: list[dict] = ()) -> dict:
    """An apply's journal: the nodes it writes as they were (None if new), the keys it claims, and the
    flattened documents it rewrites (documents_journal)."""
    nodes = [{"index": "nodes", "id": w.node.id, "prior": prior[w.node.id]["_source"] if w.node.id in prior else None}
             for w in writes]
    keys = [{"index": "keys", "id": node_key(w.node), "prior": None} for w in writes if w.expected_version is None]
    return journal_doc("apply", nodes + keys + list(documents), started_at)


def delete_journal(stored: list[dict], started_at: int, documents: list[dict] = ()) -> dict:
    """A delete's journal: the nodes it removes, their keys, and the documents it rewrites, as they were."""
    nodes = [{"index": "nodes", "id": hit["_id"], "prior": hit["_source"]} for hit in stored]
    keys = [{"index": "keys", "id": key_id(hit["_source"]["project_id"], hit["_source"]["submitter_id"]),
             "prior": key_doc(node_from_doc(hit["_source"]), hit["_source"].get("write_id", ""))} for hit in stored]
    return journal_doc("delete", nodes + keys + list(documents), started_at)


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
        index, hit, prior = names.named(item["index"]), current.get((item["index"], item["id"])), item["prior"]
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


@dataclass
class DocumentPlan:
    """The documents one write rebuilds, per kind: the new documents, the roots gone, and what was stored."""
    docs: dict[str, list[dict]] = field(default_factory=dict)
    gone: dict[str, set[str]] = field(default_factory=dict)
    prior: dict[str, dict[str, dict]] = field(default_factory=dict)  # kind -> id -> stored hit


def documents_journal(plan: DocumentPlan) -> list[dict]:
    """Journal entries for every document a plan writes or removes, as it was (None if absent)."""
    entries = []
    for kind, docs in plan.docs.items():
        for doc_id in sorted({d["id"] for d in docs} | plan.gone[kind]):
            hit = plan.prior[kind].get(doc_id)
            entries.append({"index": f"doc:{kind}", "id": doc_id, "prior": hit["_source"] if hit else None})
    return entries


def document_ops(names: Indices, plan: DocumentPlan, write_id: str) -> list[tuple]:
    """Write a plan's documents, each conditional on the stored version it was planned against."""
    ops = []
    for kind, docs in plan.docs.items():
        index, prior = names.documents(kind), plan.prior[kind]
        for doc in docs:
            hit = prior.get(doc["id"])
            meta = {"_index": index, "_id": doc["id"], **(_if_unchanged(hit) if hit else {})}
            ops.append(({"index" if hit else "create": meta}, {**doc, "write_id": write_id}))
        ops += [({"delete": {"_index": index, "_id": i, **_if_unchanged(prior[i])}},)
                for i in sorted(plan.gone[kind]) if i in prior]
    return ops


def rebuild_ops(index: str, docs: list[dict], stamp: str) -> list[tuple]:
    return [({"index": {"_index": index, "_id": doc["id"]}}, {**doc, "write_id": stamp}) for doc in docs]


def documents_clash(failed: list[dict]) -> Clash:
    return Clash(f"document {failed[0]['id']} was changed by another writer during this write; try again", "stale")
