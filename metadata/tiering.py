"""Tiered access (after Gen3 Guppy's tier_access_limit): facet counts that may include documents
from projects the caller cannot read, in a form that cannot single anyone out.

Three admin settings, kept as nodes of a reserved type (`_setting`, like accounts): the limit
(`set_tier_access_limit`; 0, the default, turns tiered access off: documents of unreadable
projects are hidden entirely), the granularity and the tier-visible fields (`set_tier_access`).

A count (a facet bucket, the other count, the total) is the caller's readable share, exact,
plus the unreadable projects' share, *shown* as: nothing under max(limit, granularity), else
rounded down to a multiple of the granularity. Four rules keep that share from being
differenced down to one record:
- it may be filtered only by tier-visible fields (default: every document kind's single-valued
  enum facets; an admin may choose other facets, but never ids, submitter ids, text fields,
  lists or text search, whatever the admin says). A filter using any other field gets no
  unreadable share at all (readable counts only; `tier_withheld` says why), so
  `total(diagnosis != v)` against `total(diagnosis != v AND submitter_id != X)` compares
  readable counts only; a facet on such a field likewise shows readable buckets only;
- it is counted by *cells*: the unreadable documents that share every tier-visible value of
  their kind. A view filtered by tier-visible fields takes a cell whole or not at all, and only
  cells of at least max(limit, granularity) documents count, anywhere. So a document whose
  tier-visible values are rare (the one woman among the cases) counts in no view, and any other
  sits in a group of at least that many that no view can split: comparing views can only ever
  tell about whole groups;
- rounded down, one record more or less in a cell moves a shown share by a whole step of the
  granularity or not at all: a difference of one never shows;
- the markers depend on the shown share alone: `withheld_below` is max(limit, granularity) when
  nothing is shown and the granularity when a rounded share is, whether or not anything lies
  behind it; a value appears as a bucket only when it has readable documents or a shown share,
  and buckets rank by what is shown.
Rows, manifests and histograms never include unreadable projects' documents, whatever the limit.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from metadata import filters
from metadata.errors import Invalid
from metadata.store.base import FacetCounts, Store, StoredNode, Write, reserved_node

SETTING, SETTINGS_SCOPE = "_setting", "~settings"
KEY, GRANULARITY_KEY, FIELDS_KEY = "tier_access_limit", "tier_granularity", "tier_visible_fields"
MAX_LIMIT = 1_000_000
DEFAULT_GRANULARITY = 10
IDENTIFYING = ("id", "submitter_id")  # system fields that name one record
# tier-visible fields per document kind: each one more splits the cells (so less is counted),
# and Elasticsearch counts cells with one level of aggregations per field
MAX_VISIBLE_FIELDS = 8


@dataclass
class TierSetting:
    """The tier-access settings, loaded at start and kept current by this process (their only writer)."""
    store: Store
    nodes: dict[str, StoredNode] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.nodes = self.store.find(SETTINGS_SCOPE, [KEY, GRANULARITY_KEY, FIELDS_KEY])

    @property
    def limit(self) -> int:
        return int(self.nodes[KEY].props["value"]) if KEY in self.nodes else 0

    @property
    def granularity(self) -> int:
        node = self.nodes.get(GRANULARITY_KEY)
        return int(node.props["value"]) if node else DEFAULT_GRANULARITY

    @property
    def chosen_fields(self) -> tuple[str, ...] | None:
        """The admin's tier-visible fields; None for the default (the enum facets)."""
        node = self.nodes.get(FIELDS_KEY)
        return None if node is None or node.props["value"] is None else tuple(node.props["value"])

    def set(self, limit: int, user: str) -> int:
        _check_count("limit", limit, 0, "0 (off)")
        self._write({KEY: int(limit)}, user)
        return self.limit

    def configure(self, limit: int, granularity: int, chosen: tuple[str, ...] | None, user: str) -> None:
        """Sets the limit, the granularity and the tier-visible fields (None: the default) at once."""
        _check_count("limit", limit, 0, "0 (off)")
        _check_count("granularity", granularity, 1, "1 (no rounding)")
        self._write({KEY: int(limit), GRANULARITY_KEY: int(granularity),
                     FIELDS_KEY: None if chosen is None else list(chosen)}, user)

    def _write(self, values: dict, user: str) -> None:
        with self.lock:
            nodes = {key: reserved_node(SETTING, SETTINGS_SCOPE, key, {"value": value}, self.nodes.get(key), user)
                     for key, value in values.items()}
            self.store.apply([Write(node, self.nodes[key].version if key in self.nodes else None)
                              for key, node in nodes.items()], set())
            self.nodes.update(nodes)


def _check_count(name: str, value: int, low: int, low_words: str) -> None:
    if not low <= value <= MAX_LIMIT:
        raise Invalid(f"{name}: {value} is out of range; give {low_words} to {MAX_LIMIT:,} documents")


# -- which fields a shown share may be filtered by ------------------------------------------

def identifying_fields(spec) -> set[str]:
    """Fields of a document kind that name single records: ids and submitter ids, the document's,
    its ancestors' and those gathered from its descendants (nested ones as "path.field")."""
    names = set(IDENTIFYING)
    names |= {name for ancestor in spec.ancestors for name, prop in ancestor.properties.items() if prop in IDENTIFYING}
    for agg in spec.aggregations:
        if agg.property in IDENTIFYING:
            names.add(agg.field)
        names |= {f"{agg.field}.{prop}" for prop in agg.properties if prop in IDENTIFYING}
    return names


def refusal(spec, name: str) -> str | None:
    """Why `name` can never be tier-visible in this kind of document, whatever an admin says;
    None when it may be (or is not its field)."""
    head, _, tail = name.partition(".")
    found = spec.fields.get(head)
    if found is not None and tail:
        found = (found.nested or {}).get(tail)
    if found is None:
        return None
    if name in identifying_fields(spec):
        return f"{name} names single records in {spec.kind} documents (ids and submitter ids never are tier-visible)"
    if found.kind in ("text", "nested"):
        return f"{name} is a {found.kind} field of {spec.kind} documents (only keyword, number, boolean and date fields may be)"
    if found.multi:
        return f"{name} holds lists in {spec.kind} documents (cells group documents by single values)"
    return None


def check_fields(specs: dict, chosen: list[str]) -> tuple[str, ...]:
    """The admin's tier-visible fields, checked: each a facet of some document kind, none identifying
    anywhere. Facets only: a field made to tell documents apart (a checksum, a file name) is not one."""
    problems = []
    for name in dict.fromkeys(chosen):
        kinds = [spec for spec in specs.values() if _has(spec, name)]
        reasons = [reason for spec in kinds if (reason := refusal(spec, name))]
        if not kinds:
            problems.append(f"{name!r} is not a field of any document kind")
        elif reasons:
            problems.append(reasons[0])
        elif not any(name in spec.facets for spec in kinds):
            problems.append(f"{name} is not a facet of any document kind (tier-visible fields are chosen among "
                            f"the facets: {', '.join(sorted({f for spec in specs.values() for f in spec.facets}))})")
    problems += [f"{len(names)} are fields of {kind} documents ({', '.join(sorted(names))}); choose at most "
                 f"{MAX_VISIBLE_FIELDS} per kind" for kind, spec in specs.items()
                 if len(names := visible_fields(spec, tuple(chosen))) > MAX_VISIBLE_FIELDS]
    if problems:
        raise Invalid(f"visible_fields: {'; '.join(problems)}")
    return tuple(dict.fromkeys(chosen))


def _has(spec, name: str) -> bool:
    head, _, tail = name.partition(".")
    found = spec.fields.get(head)
    return found is not None and (not tail or tail in (found.nested or {}))


def visible_fields(spec, chosen: tuple[str, ...] | None) -> frozenset[str]:
    """The fields of this kind that a shown share may be filtered by, and whose values make its cells:
    chosen facets (default: the single-valued enum facets)."""
    names = [f for f in spec.facets if f in spec.enums] if chosen is None else [f for f in chosen if f in spec.facets]
    return frozenset(name for name in names if refusal(spec, name) is None)


def default_fields(specs: dict) -> list[str]:
    """Every kind's tier-visible fields by default (its enum facets), in order, once each."""
    return list(dict.fromkeys(name for spec in specs.values() for name in sorted(visible_fields(spec, None))))


def blocker(node, visible: frozenset[str], prefix: str = "") -> str | None:
    """Why a filter may not narrow an unreadable share (the first field it uses that is not
    tier-visible, or text search); None when every clause is on tier-visible fields."""
    if node is None:
        return None
    if isinstance(node, (filters.And, filters.Or)):
        return next((why for item in node.items if (why := blocker(item, visible, prefix))), None)
    if isinstance(node, filters.Search):
        return "the filter searches text, which is not tier-visible"
    if isinstance(node, filters.Nested):
        return blocker(node.node, visible, f"{prefix}{node.path.name}.")
    name = prefix + node.field.name
    return None if name in visible else f"the filter uses {name}, which is not tier-visible"


# -- cells ---------------------------------------------------------------------------------

def cell_total(cells: dict[tuple, int], floor: int) -> int:
    """The documents in cells of at least `floor`: the others count nowhere."""
    return sum(n for n in cells.values() if n >= floor)


def cell_facet(cells: dict[tuple, int], position: int, floor: int) -> FacetCounts:
    """Per value of the field at `position` of the cells' fields, the documents in its cells of at least `floor`."""
    counts: dict[str, int] = {}
    for cell, n in cells.items():
        if n >= floor:
            counts[cell[position]] = counts.get(cell[position], 0) + n
    return FacetCounts(sorted(counts.items(), key=lambda b: (-b[1], b[0])))


# -- shown shares --------------------------------------------------------------------------

@dataclass(frozen=True)
class Tier:
    """The rule in force for one answer: the limit and the granularity."""
    limit: int
    granularity: int

    @property
    def floor(self) -> int:
        """The smallest share ever shown."""
        return max(self.limit, self.granularity)

    def shown(self, unreadable: int) -> int:
        """The unreadable share a count may add: none under the floor, else rounded down."""
        return 0 if unreadable < self.floor else unreadable // self.granularity * self.granularity

    def count(self, readable: int, unreadable: int) -> tuple[int, int]:
        """(count to show, withheld_below); the marker depends on the shown share only."""
        share = self.shown(unreadable)
        if share == 0:
            return readable, self.floor
        return readable + share, self.granularity if self.granularity > 1 else 0


def merge_buckets(readable: FacetCounts, unreadable: FacetCounts, tier: Tier,
                  size: int) -> tuple[list[tuple[str, int, int]], int]:
    """(the `size` largest (value, count, withheld_below) buckets, other count) of one facet.

    A value shows only where it has readable documents or a shown share, so a value that occurs
    in unreadable projects alone, fewer than the floor times, stays unknown. A value outside one
    side's largest buckets counts 0 on that side: the merge may undercount, never reveal more."""
    mine, theirs = dict(readable.buckets), dict(unreadable.buckets)
    merged = [(value, *tier.count(mine.get(value, 0), theirs.get(value, 0))) for value in {**mine, **theirs}
              if mine.get(value, 0) or tier.shown(theirs.get(value, 0))]
    merged.sort(key=lambda b: (-b[1], -b[2], str(b[0])))
    other = readable.other + tier.shown(unreadable.other)
    return merged[:size], other + sum(count for _, count, _ in merged[size:])
