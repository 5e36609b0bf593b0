"""The store contract: what every store (embedded DuckDB, Elasticsearch) provides the service.

Stores hold a graph of nodes and labelled edges. They do no validation of their own beyond
what keeps the graph whole under concurrency, and they make every write atomic:
- `apply` writes a batch all-or-nothing, with optimistic versioning: a create fails if the
  (project_id, submitter_id) is taken, an update fails unless the stored version is the one
  the batch was planned against, and the write fails if a parent it links to outside the
  batch is gone;
- `delete` removes nodes all-or-nothing and refuses while any has a child outside the set.
Both raise metadata.errors.Clash naming what stood in the way. A write that fails for lack
of disk space raises metadata.errors.StorageFull, wrote nothing, and leaves the store readable;
`storage_full` then stays True until a write succeeds.

Records of the service (runs, audit entries, notifications, ...: metadata/store/record_index.py)
are also found by `query`: one type, by indexed keys, a time range, ordered by (date, id) and paged
by a keyset cursor. Each store writes a record's keys in the same write as its node and rebuilds
them from the nodes when the declaration changes, so a query agrees with the nodes as stored.
"""
from __future__ import annotations

import base64
import contextlib
import json
import uuid
from datetime import datetime, timezone
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metadata.flatten import Flattening
    from metadata.store.record_index import RecordQuery

MAX_WIDTH_BINS = 10_000  # bins a bin_width may make; more would only be built to be refused


@dataclass(frozen=True)
class LinkRef:
    name: str
    target_id: str
    target_type: str
    target_submitter_id: str


@dataclass
class StoredNode:
    id: str
    type: str
    project_id: str
    submitter_id: str
    version: int
    props: dict
    links: list[LinkRef] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    created_by: str = ""
    updated_by: str = ""

    def links_json(self) -> str:
        return json.dumps([vars(link) for link in self.links])

    @staticmethod
    def parse_links(text: str) -> list[LinkRef]:
        return [LinkRef(**item) for item in json.loads(text or "[]")]


def reserved_node(type_name: str, scope: str, key: str, props: dict, old: StoredNode | None,
                  user: str = "") -> StoredNode:
    """The next version of a service-kept node (cohort, account, token, audit entry): a reserved
    type outside the dictionary, scoped by a pseudo project ("~..."), named by `key`."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return StoredNode(id=old.id if old else str(uuid.uuid4()), type=type_name, project_id=scope, submitter_id=key,
                      version=old.version + 1 if old else 1, props=props, created_at=old.created_at if old else now,
                      updated_at=now, created_by=old.created_by if old else user, updated_by=user)


@dataclass(frozen=True)
class EdgeRow:
    child_id: str
    child_type: str
    link_name: str
    parent_id: str
    parent_type: str


@dataclass
class Write:
    """One node's new state; `expected_version` is None for a create."""
    node: StoredNode
    expected_version: int | None


@dataclass
class Page:
    nodes: list[StoredNode]
    total: int
    next_cursor: str = ""
    cursors: list[str] = field(default_factory=list)  # from `query`: the cursor after each node


@dataclass
class FacetCounts:
    buckets: list[tuple[str, int]]
    other: int = 0


@dataclass
class NumericSummary:
    count: int = 0
    missing: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    sum: float | None = None
    bins: list[tuple[float, float, int]] = field(default_factory=list)


def histogram_edges(low: float, high: float, bins: int, bin_width: float) -> list[float]:
    """Bin edges over [low, high]: `bins` equal bins, or bins of `bin_width` aligned to it.
    ValueError when bin_width would make more than MAX_WIDTH_BINS bins (counted before any is made)."""
    if bin_width > 0:
        start = (low // bin_width) * bin_width
        count = (high - start) // bin_width + 1
        if not count <= MAX_WIDTH_BINS:  # also NaN, from a width too small to divide by
            raise ValueError(f"{bin_width:g} makes more than {MAX_WIDTH_BINS:,} bins over {low:g} to {high:g}; "
                             "give a wider bin_width")
        return [start + i * bin_width for i in range(max(1, int(count)) + 1)]
    if high <= low:
        return [low, low + 1.0]
    return [low + (high - low) * i / bins for i in range(bins + 1)]


def edges_of(node: StoredNode) -> list[EdgeRow]:
    """The edges a node's links make, child -> parent."""
    return [EdgeRow(node.id, node.type, link.name, link.target_id, link.target_type) for link in node.links]


def encode_cursor(node: StoredNode) -> str:
    """An opaque keyset cursor after this node, in (project_id, submitter_id) order."""
    raw = json.dumps([node.project_id, node.submitter_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    """The (project_id, submitter_id) a cursor points after; ValueError if it is not one of ours."""
    if not cursor:
        return None
    try:
        project_id, submitter_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(project_id), str(submitter_id)
    except (ValueError, TypeError):
        raise ValueError(f"cursor: {cursor[:40]!r} is not a cursor this service returned") from None


def encode_id_cursor(doc_id: str) -> str:
    """An opaque keyset cursor after a document id (manifest pages)."""
    return base64.urlsafe_b64encode(json.dumps({"after": doc_id}).encode()).decode()


def decode_id_cursor(cursor: str) -> str | None:
    """The id an id cursor points after (None for the start); ValueError if it is not one of ours."""
    if not cursor:
        return None
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"]
        if isinstance(after, str):
            return after
    except (ValueError, TypeError, KeyError):
        pass
    raise ValueError(f"cursor: {cursor[:40]!r} is not a cursor this service returned")


class Store(ABC):
    """A graph store; see the module docstring for the guarantees each method gives."""
    name = "abstract"
    # True from a write refused for lack of disk space (errors.StorageFull) until a write succeeds
    # with room to spare
    storage_full = False

    @abstractmethod
    def get_many(self, ids: list[str]) -> dict[str, StoredNode]:
        """Nodes by id; ids that do not exist are absent from the result."""

    @abstractmethod
    def find(self, project_id: str, submitter_ids: list[str]) -> dict[str, StoredNode]:
        """Nodes of one project by submitter_id."""

    @abstractmethod
    def list(self, type_name: str, project_ids: list[str] | None, limit: int, cursor: str = "") -> Page:
        """One page of a type's nodes in (project_id, submitter_id) order; None = every project."""

    @abstractmethod
    def with_id_prefix(self, prefix: str, types: list[str], project_ids: list[str] | None,
                       limit: int) -> list[StoredNode]:
        """Nodes of these types whose id starts with prefix, in id order, at most limit; None =
        every project."""

    @abstractmethod
    def query(self, query: "RecordQuery") -> Page:
        """One page of a reserved type's records matching every indexed key given (any of its
        values), in the projects given and the time range, ordered by (date, id), newest first unless
        asked otherwise; `total` counts every match when asked, else is -1. ValueError naming the
        field for an undeclared type or key, a bad time, limit or cursor."""

    @abstractmethod
    def edges(self, node_id: str) -> list[EdgeRow]:
        """Every edge into or out of a node."""

    @abstractmethod
    def children(self, parent_ids: list[str], child_type: str) -> dict[str, list[str]]:
        """The ids of the nodes of child_type linking to each parent (by any link), sorted; a parent
        without any is absent. One call for a page of parents (a runs page's outputs)."""

    @abstractmethod
    def apply(self, writes: list[Write], parent_ids: set[str]) -> None:
        """Write a batch atomically (see module docstring); `parent_ids` must exist."""

    @abstractmethod
    def delete(self, ids: list[str]) -> None:
        """Delete nodes atomically, refusing while any has a child outside `ids`."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Node count per type."""

    # -- flattened documents (see metadata/flatten.py and metadata/filters.py) -------------
    # `where` arguments are parsed filter nodes (None: every document), already restricted by
    # the service to the projects the caller may read.

    @abstractmethod
    def use_documents(self, flattening: "Flattening") -> None:
        """Keep these documents current from now on: apply and delete update them in the same
        write; creates their tables or indices, rebuilding all documents if their shape changed."""

    @abstractmethod
    def reindex(self) -> dict[str, int]:
        """Rebuild every document from the graph; the count per kind."""

    @abstractmethod
    def facet_counts(self, kind: str, requests: list[tuple[str, object]], size: int) -> dict[str, "FacetCounts"]:
        """Per (field, where): the `size` largest (value, count) buckets, "__missing__" for no value."""

    @abstractmethod
    def count(self, kind: str, where) -> int:
        """How many documents match."""

    def sharing(self) -> contextlib.AbstractContextManager:
        """Around one request's queries (a facets call: its facets and its total): within it they
        may share work on this thread, such as a filter evaluated once; answers are unchanged."""
        return contextlib.nullcontext()

    @abstractmethod
    def cell_counts(self, kind: str, fields: list[str], where) -> dict[tuple, int]:
        """How many matching documents hold each combination of values of these single-valued
        fields (values as facet buckets write them, "__missing__" for none); no empty cells.
        With no fields, the one cell () holds every match. Tiered access counts by these."""

    @abstractmethod
    def numeric_stats(self, kind: str, field: str, where, bins: int, bin_width: float) -> "NumericSummary":
        """count, missing, min, max, mean, sum and a histogram of a numeric field."""

    @abstractmethod
    def hits(self, kind: str, where, sort: list[tuple[str, bool]], limit: int, offset: int) -> tuple[int, list[dict]]:
        """(total, one page of documents) in sort order, ties broken by id."""

    @abstractmethod
    def manifest(self, kind: str, where, limit: int, cursor: str) -> tuple[int, list[dict], str]:
        """(total, a page of manifest rows, next cursor or "") for the files behind the view."""

    def close(self) -> None:
        """Release the store; called once, at shutdown."""

    def get(self, node_id: str) -> StoredNode | None:
        return self.get_many([node_id]).get(node_id)


def children_clash_message(children: list[EdgeRow], limit: int = 10) -> str:
    """The sentence a refused delete gives, naming the children that hold it back."""
    named = ", ".join(f"{c.child_type} {c.child_id}" for c in children[:limit])
    more = f" and {len(children) - limit} more" if len(children) > limit else ""
    return f"cannot delete: {len(children)} child node(s) still link to it: {named}{more}; delete them first"


def scan(store: "Store", type_name: str, project_ids: list[str] | None, cap: int) -> list[StoredNode]:
    """Every node of a type in the projects (None: all), page by page, up to about `cap`."""
    if project_ids == []:
        return []
    nodes, cursor = [], ""
    while len(nodes) < cap:
        page = store.list(type_name, project_ids, 1000, cursor)
        nodes += page.nodes
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    return nodes
