"""Records of the service, queryable: which properties of each reserved type the stores index,
and the query (`Store.query`) both stores answer from that index.

Runs, audit entries, notifications, parameter sets, cohorts, accounts, tokens and launches are
graph nodes. Each type declared here names a few keys (equality and `in`) and one date (order and
time range). A key's value is text, read from the node by `keys_of`: a string as it is, true or
false, a number as JSON, "" when missing; `created_by` names the node's own field; a derived key
is computed by a function of the node. Both stores write a node's keys in the same write as the
node, so a query never sees a record other than as stored, and rebuild them from the nodes when
this declaration changes (`SIGNATURE`). A query reads only the matching records, newest (or
oldest) first by date (ties in an order of the store's: Elasticsearch by id, DuckDB by write
order), and pages by a keyset cursor on that pair, so its cost does not grow with the type's size.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable

MAX_LIMIT = 1000
NODE_FIELDS = ("created_by", "updated_by")  # keys read from the node itself, not its properties


def first_argument(props: dict) -> str:
    """The first text argument an audited call named (a grant's project), from its detail."""
    try:
        arguments = json.loads(props.get("detail_json") or "{}").get("arguments", [])
    except (ValueError, AttributeError):
        return ""
    return arguments[0] if arguments and isinstance(arguments[0], str) else ""


@dataclass(frozen=True)
class RecordIndex:
    """A reserved type's indexed keys and the property (or created_at) that orders it."""
    keys: tuple[str, ...]
    date: str = "created_at"
    derived: tuple[tuple[str, Callable[[dict], str]], ...] = ()  # key -> function of the properties

    def names(self) -> tuple[str, ...]:
        return self.keys + tuple(name for name, _ in self.derived)


INDEXES: dict[str, RecordIndex] = {
    "workflow_run": RecordIndex(("status", "template", "created_by")),
    "_audit": RecordIndex(("user", "action", "outcome", "target"), "at", (("argument", first_argument),)),
    "_notification": RecordIndex(("read", "status")),
    "parameter_set": RecordIndex(("template", "name")),
    "_cohort": RecordIndex(("owner", "shared")),
    "_account": RecordIndex(("disabled",)),
    "_token": RecordIndex(("user", "revoked")),
    "_launch": RecordIndex(("run_id",)),
    "_step_record": RecordIndex(("key",)),
}
LAYOUT = 2  # bump when the stores' index tables or mappings change shape, so they are rebuilt
SIGNATURE = hashlib.sha256(json.dumps(
    [LAYOUT, {t: [i.names(), i.date] for t, i in sorted(INDEXES.items())}]).encode()).hexdigest()[:16]
KEY_NAMES = tuple(sorted({name for index in INDEXES.values() for name in index.names()}))


def as_key(value) -> str:
    """A property value as the text an index holds and a query compares."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def keys_of(index: RecordIndex, node) -> dict[str, str]:
    """The values a node's record is found by, keyed by name."""
    keys = {name: as_key(getattr(node, name) if name in NODE_FIELDS else node.props.get(name))
            for name in index.keys}
    keys.update({name: as_key(function(node.props)) for name, function in index.derived})
    return keys


def date_of(index: RecordIndex, node) -> str:
    """The time a record is ordered by: its date property, else when it was created."""
    value = node.props.get(index.date) if index.date != "created_at" else None
    return value if isinstance(value, str) and value else node.created_at


def canonical_time(text: str, name: str) -> str:
    """An ISO time as the service writes times (UTC, milliseconds); ValueError naming the field."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: {text[:40]!r} is not an ISO date or time (like 2026-01-31 or "
                         "2026-01-31T12:00:00+00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def millis(at: str) -> int:
    """An ISO time as epoch milliseconds (what both stores order by)."""
    return round(datetime.fromisoformat(at).timestamp() * 1000)


def from_millis(ms: int) -> str:
    """Epoch milliseconds as the service writes times."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RecordQuery:
    """One page of a reserved type's records: `where` maps keys to the values any of which
    matches (a list) or to the one value that does (compared as `as_key` writes it); `projects` None means every project and scope; since is
    inclusive, before exclusive; `total` asks for the count of every match (else -1)."""
    type: str
    where: dict[str, object] = field(default_factory=dict)
    projects: list[str] | None = None
    since: str = ""
    before: str = ""
    newest_first: bool = True
    limit: int = 50
    cursor: str = ""
    total: bool = False


@dataclass(frozen=True)
class Checked:
    """A query made ready for a store: values as text, times canonical, the cursor decoded."""
    type: str
    index: RecordIndex
    where: tuple[tuple[str, tuple[str, ...]], ...]
    projects: tuple[str, ...] | None
    since: str
    before: str
    newest_first: bool
    limit: int
    after: tuple[str, str | int] | None
    total: bool


def check(query: RecordQuery) -> Checked:
    """The query checked; ValueError naming the field and what is allowed."""
    index = INDEXES.get(query.type)
    if index is None:
        raise ValueError(f"type: {query.type!r} is not a queryable record type; choose from {', '.join(INDEXES)}")
    unknown = sorted(set(query.where) - set(index.names()))
    if unknown:
        raise ValueError(f"where: {unknown[0]!r} is not an indexed key of {query.type}; choose from "
                         f"{', '.join(index.names())}")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValueError(f"limit: give 1 to {MAX_LIMIT} records")
    where = tuple((name, tuple(as_key(v) for v in (values if isinstance(values, (list, tuple, set)) else [values])))
                  for name, values in sorted(query.where.items()))
    return Checked(query.type, index, where, None if query.projects is None else tuple(query.projects),
                   query.since and canonical_time(query.since, "since"),
                   query.before and canonical_time(query.before, "before"), query.newest_first, query.limit,
                   decode_record_cursor(query.cursor, query.newest_first), query.total)


def empty(checked: Checked) -> bool:
    """Whether nothing can match (no project, or a key with no accepted value) without asking."""
    return checked.projects == () or any(not values for _, values in checked.where)


def encode_record_cursor(at: str, tie: str | int, newest_first: bool) -> str:
    """An opaque keyset cursor after the record at (date, tie), in the query's direction; the tie
    is what the store breaks equal dates by (Elasticsearch: the id; DuckDB: its write order)."""
    raw = json.dumps({"at": at, "id": tie, "desc": newest_first}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_record_cursor(cursor: str, newest_first: bool) -> tuple[str, str | int] | None:
    """The (date, tie) a cursor points after; ValueError if it is not one of ours for this order."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(value["at"], str) and isinstance(value["id"], (str, int)) and value["desc"] == newest_first:
            millis(value["at"])
            return value["at"], value["id"]
    except (ValueError, TypeError, KeyError):
        pass
    raise ValueError(f"cursor: {cursor[:40]!r} is not a cursor this service returned for this order")


def every(store, query: RecordQuery) -> list:
    """Every node a query matches, page after page (for sets bounded by their nature: a run's
    open siblings, one parameter set's revisions), never a whole type."""
    nodes = []
    while True:
        page = store.query(query)
        nodes += page.nodes
        if not page.next_cursor:
            return nodes
        query = replace(query, cursor=page.next_cursor)
