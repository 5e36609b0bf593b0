"""Tiered access (after Gen3 Guppy's tier_access_limit): facet counts that may include documents
from projects the caller cannot read, but only where those projects' share is large enough not
to single anyone out.

The limit is one service setting, kept as a node of a reserved type (`_setting`, like accounts),
set by an admin (`set_tier_access_limit`). 0, the default, turns it off: documents of unreadable
projects are hidden entirely. With a limit N, a facet bucket (and the total) counts the
unreadable projects' documents only when there are N or more of them; otherwise it counts the
readable ones alone and says "plus fewer than N" (`withheld_below`). Rows, manifests and
histograms never include unreadable projects' documents, whatever the limit.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from metadata.errors import Invalid
from metadata.store.base import FacetCounts, Store, StoredNode, Write, reserved_node

SETTING, SETTINGS_SCOPE, KEY = "_setting", "~settings", "tier_access_limit"
MAX_LIMIT = 1_000_000


@dataclass
class TierSetting:
    """The tier-access limit, loaded at start and kept current by this process (its only writer)."""
    store: Store
    node: StoredNode | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.node = self.store.find(SETTINGS_SCOPE, [KEY]).get(KEY)

    @property
    def limit(self) -> int:
        return int(self.node.props["value"]) if self.node else 0

    def set(self, limit: int, user: str) -> int:
        if not 0 <= limit <= MAX_LIMIT:
            raise Invalid(f"limit: {limit} is out of range; give 0 (off) to {MAX_LIMIT:,} documents")
        with self.lock:
            old = self.node
            node = reserved_node(SETTING, SETTINGS_SCOPE, KEY, {"value": int(limit)}, old, user)
            self.store.apply([Write(node, old.version if old else None)], set())
            self.node = node
        return self.limit


def tiered(readable: int, unreadable: int, limit: int) -> tuple[int, int]:
    """(count to show, withheld_below): the unreadable share counts only when it reaches the limit."""
    if unreadable == 0 or unreadable >= limit:
        return readable + unreadable, 0
    return readable, limit


def merge_buckets(readable: FacetCounts, unreadable: FacetCounts, limit: int,
                  size: int) -> tuple[list[tuple[str, int, int]], int]:
    """(the `size` largest (value, count, withheld_below) buckets, other count) of one facet.

    A value outside one side's largest buckets counts 0 on that side: the merge may undercount,
    never reveal more than the limit allows."""
    mine, theirs = dict(readable.buckets), dict(unreadable.buckets)
    merged = [(value, *tiered(mine.get(value, 0), theirs.get(value, 0), limit)) for value in {**mine, **theirs}]
    merged.sort(key=lambda b: (-b[1], -b[2], str(b[0])))
    other = readable.other + tiered(0, unreadable.other, limit)[0]
    return merged[:size], other + sum(count for _, count, _ in merged[size:])
