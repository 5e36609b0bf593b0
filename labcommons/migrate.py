"""`labcommons migrate --to elasticsearch`: copy an embedded (DuckDB) store into Elasticsearch, then
prove the copy by counts and checksums read back from both sides.

Steps: open the DuckDB file read-only (refused while the metadata service holds it), refuse a target
that already holds nodes under the index prefix (unless `force`, which deletes those indices first),
write every node (reserved ones too: accounts, tokens, cohorts, audit entries) parents before
children through the store contract (`Store.apply`, so keys and versions are as the service would
write them), then build the flattened documents in the target (`use_documents`), and compare:
- per node type: the count and an order-free checksum of every node (id, version, props, links,
  timestamps, authors) as each store returns it;
- edges: the source's edges table against the links of the nodes read back from the target;
- per document kind: the target's documents against the source's root nodes of that kind.
It holds every node's id and parent ids in memory while it copies (a few hundred bytes a node),
and reads each store twice more to verify.
"""
from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
from elasticsearch import ConnectionError as EsConnectionError, Elasticsearch
from rich.table import Table

from labcommons.cli_output import ProgressBar
from metadata.flatten import Flattening
from metadata.store.base import EdgeRow, Store, StoredNode, Write, edges_of
from metadata.store.elastic import ElasticStore, client, indices
from metadata.store.embedded import EmbeddedStore

BATCH = 500          # nodes per apply: one journal and a few bulk requests each
PAGE = 1000          # nodes per list page when reading a store
CHECKSUM_BITS = 64   # checksums are sums of per-item digests, so order does not matter


class MigrateError(RuntimeError):
    """The migration cannot start or did not finish; the message says what to do."""


@dataclass
class Tally:
    """How many items, and an order-free checksum of them."""
    count: int = 0
    total: int = 0

    def add(self, text: str) -> None:
        self.count += 1
        digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:CHECKSUM_BITS // 8], "big")
        self.total = (self.total + digest) % (1 << CHECKSUM_BITS)

    @property
    def checksum(self) -> str:
        return f"{self.total:016x}"


@dataclass
class Row:
    """One line of the verification table: what the source holds and what the target holds."""
    name: str
    source: Tally = field(default_factory=Tally)
    target: Tally = field(default_factory=Tally)
    checksummed: bool = True

    @property
    def ok(self) -> bool:
        same_count = self.source.count == self.target.count
        return same_count and (not self.checksummed or self.source.total == self.target.total)


def node_text(node: StoredNode) -> str:
    """The canonical text of a node: every field a store keeps, keys sorted."""
    return json.dumps(asdict(node), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def edge_text(edge: EdgeRow) -> str:
    return json.dumps(asdict(edge), sort_keys=True, separators=(",", ":"))


# -- opening both sides -------------------------------------------------------------------

def open_source(path: Path) -> EmbeddedStore:
    """The DuckDB file, read-only; a clear error if it is missing or the service holds it."""
    if not path.is_file():
        raise MigrateError(f"no embedded store at {path}; set LABCOMMONS_DATA_DIR or pass --from")
    try:
        return EmbeddedStore(path, read_only=True)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        raise MigrateError(f"{path} is locked by another process, most likely the running metadata service "
                           f"({exc}). Stop it (Ctrl-C `labcommons up`, or scale its Deployment to 0) and run "
                           "migrate again: a copy of a store in use would not be consistent.") from None


def target_indices(es: Elasticsearch, prefix: str) -> dict[str, int]:
    """The store's indices under this prefix that exist, with their document counts."""
    names = indices(prefix)
    pattern = ",".join([names.nodes, names.keys, names.journal, names.documents("*")])
    found = es.indices.get(index=pattern, ignore_unavailable=True, allow_no_indices=True)
    return {name: es.count(index=name)["count"] for name in sorted(found)}


def shown(url: str) -> str:
    """A URL fit to print: without the credentials it may carry."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl() \
        if parts.hostname else url


def prepare_target(url: str, prefix: str, force: bool, ca_certs: Path | None = None) -> None:
    """Refuse a target holding nodes under `prefix` unless forced; forced, delete its indices."""
    with client(url, ca_certs) as es:
        try:
            existing = target_indices(es, prefix)
        except EsConnectionError as exc:
            raise MigrateError(f"cannot reach Elasticsearch at {shown(url)} ({exc.message}); "
                               "check --es-url or LABCOMMONS_ES_URL") from None
        nodes = existing.get(indices(prefix).nodes, 0)
        if nodes and not force:
            raise MigrateError(f"the target {shown(url)} already holds {nodes:,} nodes under the index prefix "
                               f"{prefix!r}; use another prefix (--index-prefix), or --force to delete its indices first")
        if existing and force:
            es.indices.delete(index=",".join(existing))


# -- copying ------------------------------------------------------------------------------

def read_nodes(store: Store, types: list[str]) -> Iterator[StoredNode]:
    """Every node of these types, a page at a time."""
    for type_name in types:
        cursor = ""
        while True:
            page = store.list(type_name, None, PAGE, cursor)
            yield from page.nodes
            if not (cursor := page.next_cursor):
                break


def write_order(parents: dict[str, set[str]]) -> list[str]:
    """Node ids with every parent before its children (depth in the link graph, then id)."""
    depth: dict[str, int] = {}
    for start in parents:
        stack, on_path = [start], set()
        while stack:
            node = stack[-1]
            if node in depth:
                stack.pop()
                continue
            on_path.add(node)
            pending = [p for p in parents.get(node, ()) if p not in depth and p in parents]
            if cycle := [p for p in pending if p in on_path]:
                raise MigrateError(f"the links of node {node} make a cycle through {cycle[0]}; fix the source first")
            if pending:
                stack.extend(pending)
                continue
            depth[node] = 1 + max((depth[p] for p in parents.get(node, ()) if p in depth), default=-1)
            on_path.discard(node)
            stack.pop()
    return sorted(parents, key=lambda i: (depth[i], i))


def copy_nodes(source: Store, target: Store, types: list[str], advance: Callable[[int], None]) -> None:
    """Create every source node in the target, parents first, BATCH nodes per atomic apply."""
    parents = {node.id: {link.target_id for link in node.links} for node in read_nodes(source, types)}
    order = write_order(parents)
    for start in range(0, len(order), BATCH):
        ids = order[start:start + BATCH]
        nodes = source.get_many(ids)
        in_batch = set(ids)
        outside = {p for i in ids for p in parents[i]} - in_batch
        target.apply([Write(nodes[i], None) for i in ids], outside)
        advance(len(ids))


# -- verifying ----------------------------------------------------------------------------

def tally(store: Store, types: list[str]) -> tuple[dict[str, Tally], Tally]:
    """Per type, a tally of its nodes; and a tally of the edges their links make."""
    nodes, edges = {t: Tally() for t in types}, Tally()
    for node in read_nodes(store, types):
        nodes[node.type].add(node_text(node))
        for edge in edges_of(node):
            edges.add(edge_text(edge))
    return nodes, edges


def verify(source: EmbeddedStore, target: Store, flattening: Flattening) -> list[Row]:
    """The verification table: node types, edges, documents."""
    source_counts = source.counts()
    types = sorted(set(source_counts) | set(target.counts()))
    source_nodes, _ = tally(source, types)
    target_nodes, target_edges = tally(target, types)
    rows = [Row(t, source_nodes[t], target_nodes[t]) for t in types]
    source_edges = Tally()
    for edge in source.all_edges():  # the edges table itself, not the links it was made from
        source_edges.add(edge_text(edge))
    rows.append(Row("(edges)", source_edges, target_edges))
    for kind, spec in sorted(flattening.specs.items()):
        rows.append(Row(f"(docs: {kind})", Tally(source_counts.get(spec.root, 0)),
                        Tally(target.count(kind, None)), checksummed=False))
    return rows


def table(rows: list[Row], target: str) -> Table:
    """The per-type table printed after a migration: counts and checksums on both sides."""
    # box=None keeps it within 80 columns (a Job's log, a CliRunner)
    grid = Table("type", "source", "checksum", target, "checksum", "", box=None, padding=(0, 1),
                 title="source: the embedded store")
    for row in rows:
        sums = (row.source.checksum, row.target.checksum) if row.checksummed else ("-", "-")
        grid.add_row(row.name, f"{row.source.count:,}", sums[0], f"{row.target.count:,}", sums[1],
                     "ok" if row.ok else "[red]MISMATCH[/]")
    return grid


# -- the whole run ------------------------------------------------------------------------

def to_elasticsearch(source_path: Path, url: str, prefix: str, flattening: Flattening, force: bool = False,
                     shards: int = 1, replicas: int | None = None, ca_certs: Path | None = None,
                     progress: bool = False) -> list[Row]:
    """Migrate, then verify; the verification rows (check Row.ok)."""
    source = open_source(source_path)
    try:
        prepare_target(url, prefix, force, ca_certs)
        target = ElasticStore(url, prefix, shards, replicas, ca_certs)
        try:
            types = sorted(source.counts())
            with ProgressBar("copying nodes", sum(source.counts().values()), progress) as advance:
                copy_nodes(source, target, types, advance)
            target.use_documents(flattening)  # builds every document from the copied graph
            return verify(source, target, flattening)
        finally:
            target.close()
    finally:
        source.close()
