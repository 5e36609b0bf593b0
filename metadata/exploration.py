"""Exploration queries over flattened documents: request checking, access restriction, and the
own-facet exclusion. The service's handler delegates here; stores answer the queries."""
from __future__ import annotations

import json
import math
import sys

from metadata import filters
from metadata.auth import Identity
from metadata.errors import Invalid
from metadata.flatten import DocumentSpec, Flattening
from metadata.idl import metadata_thrift as T
from metadata.store.base import FacetCounts, Store, scan
from metadata.tiering import (Tier, TierSetting, blocker, cell_facet, cell_total, check_fields, default_fields,
                              merge_buckets, visible_fields)

MAX_HITS_PAGE = 1000
MAX_MANIFEST_PAGE = 10_000
MAX_BINS = 200
NUMERIC = ("integer", "number")


class Explorer:
    def __init__(self, store: Store, flattening: Flattening, tier: TierSetting | None = None):
        self.store, self.flattening = store, flattening
        self.tier = tier or TierSetting(store)

    def kinds(self) -> list[T.DocumentKind]:
        return [_kind(spec) for spec in self.flattening.specs.values()]

    def facets(self, who: Identity, request: T.FacetRequest) -> T.FacetResult:
        spec, user = self._query(request.kind, request.filter_json)
        for name in request.fields:
            _field(spec, name, "fields", scalar_or_list=True)
        if not 1 <= request.size <= 1000:
            raise Invalid(f"size: {request.size} is out of range; give 1 to 1000")
        own = filters.without_field if request.exclude_own else (lambda node, _name: node)
        unreadable = self._unreadable_projects(who)
        if unreadable is None:
            return self._plain_facets(who, spec, user, own, request)
        return self._tiered_facets(who, spec, user, own, request, unreadable)

    def _plain_facets(self, who: Identity, spec: DocumentSpec, user, own, request: T.FacetRequest) -> T.FacetResult:
        """Counts over the projects the caller may read (tiered access off, or an admin)."""
        requests = [(name, _readable(who, spec, own(user, name))) for name in request.fields]
        with self.store.sharing():  # the total's filter is most facets' filter: evaluated once
            counts = self.store.facet_counts(spec.kind, requests, request.size)
            total = self.store.count(spec.kind, _readable(who, spec, user))
        facets = [T.Facet(field=name, other_count=counts[name].other,
                          buckets=[T.FacetBucket(value=str(v), count=c) for v, c in counts[name].buckets])
                  for name in request.fields]
        return T.FacetResult(total=total, facets=facets, readable_total=total)

    def _tiered_facets(self, who: Identity, spec: DocumentSpec, user, own, request: T.FacetRequest,
                       unreadable: tuple[str, ...]) -> T.FacetResult:
        """Counts that add the unreadable projects' shown shares, counted by cells of the
        tier-visible fields, unless the filter uses another field (metadata/tiering.py says why)."""
        tier, visible = Tier(self.tier.limit, self.tier.granularity), sorted(self._visible(spec))
        why = blocker(user, frozenset(visible))
        if why:
            result = self._plain_facets(who, spec, user, own, request)
            result.tier_access_limit, result.tier_granularity, result.tier_withheld = tier.limit, tier.granularity, why
            return result
        hidden = filters.In(spec.fields["project_id"], unreadable)
        cells = lambda where: self.store.cell_counts(spec.kind, visible, _within(hidden, where))  # noqa: E731
        mine = self.store.facet_counts(spec.kind, [(n, _readable(who, spec, own(user, n))) for n in request.fields],
                                       request.size)
        theirs = {n: cell_facet(cells(own(user, n)), visible.index(n), tier.floor) for n in request.fields
                  if n in visible}
        facets = [_tiered_facet(name, mine[name], theirs.get(name), tier, request.size) for name in request.fields]
        readable_total = self.store.count(spec.kind, _readable(who, spec, user))
        total, withheld = tier.count(readable_total, cell_total(cells(user), tier.floor))
        return T.FacetResult(total=total, facets=facets, tier_access_limit=tier.limit, readable_total=readable_total,
                             total_withheld_below=withheld, tier_granularity=tier.granularity)

    def _visible(self, spec: DocumentSpec) -> frozenset[str]:
        return visible_fields(spec, self.tier.chosen_fields)

    def _unreadable_projects(self, who: Identity) -> tuple[str, ...] | None:
        """The projects whose counts tiered access may add for this caller; None when it adds none."""
        if self.tier.limit == 0 or who.is_admin:
            return None
        projects = scan(self.store, "project", None, cap=sys.maxsize)  # every project
        return tuple(sorted(n.submitter_id for n in projects if not who.can_read(n.submitter_id))) or None

    def tier_access(self) -> T.TierAccess:
        """The tiered-access settings in force, the default tier-visible fields spelled out."""
        chosen = self.tier.chosen_fields
        names = default_fields(self.flattening.specs) if chosen is None else list(chosen)
        return T.TierAccess(limit=self.tier.limit, granularity=self.tier.granularity, visible_fields=names,
                            default_fields=chosen is None)

    def set_tier_access(self, access: T.TierAccess | None, user: str) -> T.TierAccess:
        if access is None:
            raise Invalid("access: give a TierAccess (limit, granularity, visible_fields or default_fields)")
        names = [str(name).strip() for name in access.visible_fields or []]
        chosen = None if access.default_fields else check_fields(self.flattening.specs, names)
        self.tier.configure(access.limit, access.granularity, chosen, user)
        return self.tier_access()

    def histogram(self, who: Identity, request: T.HistogramRequest) -> T.NumericStats:
        spec, user = self._query(request.kind, request.filter_json)
        field = _field(spec, request.field, "field")
        if field.kind not in NUMERIC or field.multi:
            raise Invalid(f"field: {request.field!r} is not a numeric field; numeric fields: "
                          f"{', '.join(n for n, f in spec.fields.items() if f.kind in NUMERIC and not f.multi)}")
        if not math.isfinite(request.bin_width) or request.bin_width < 0:
            raise Invalid(f"bin_width: {request.bin_width} is not allowed; give a positive finite width, or 0 for "
                          f"{request.bins} equal bins")
        if not 1 <= request.bins <= MAX_BINS:
            raise Invalid(f"bins: give 1 to {MAX_BINS} bins, or a positive bin_width")
        own = filters.without_field(user, request.field) if request.exclude_own else user
        try:
            s = self.store.numeric_stats(spec.kind, request.field, _readable(who, spec, own), request.bins,
                                         request.bin_width)
        except ValueError as exc:  # bin_width gives too many bins for this range
            raise Invalid(f"bin_width: {exc}") from None
        bins = [T.HistogramBin(low=_finite(lo), high=_finite(hi), count=c) for lo, hi, c in s.bins]
        return T.NumericStats(field=request.field, count=s.count, missing=s.missing, min=_finite(s.min),
                              max=_finite(s.max), mean=_finite(s.mean), sum=_finite(s.sum), bins=bins)

    def hits(self, who: Identity, request: T.HitsRequest) -> T.HitsPage:
        spec, user = self._query(request.kind, request.filter_json)
        if not 1 <= request.limit <= MAX_HITS_PAGE or request.offset < 0:
            raise Invalid(f"limit: give 1 to {MAX_HITS_PAGE} rows from an offset of 0 or more")
        sort = [(_field(spec, key.field, "sort").name, key.descending) for key in request.sort or []]
        try:
            total, docs = self.store.hits(spec.kind, _readable(who, spec, user), sort, request.limit, request.offset)
        except ValueError as exc:  # e.g. a page past what the store can page to
            raise Invalid(str(exc)) from None
        return T.HitsPage(total=total, offset=request.offset, documents_json=[json.dumps(d) for d in docs])

    def manifest(self, who: Identity, request: T.ManifestRequest) -> T.ManifestPage:
        spec, user = self._query(request.kind, request.filter_json)
        manifest = self.flattening.manifest
        if manifest is None or (spec.kind != manifest.document and spec.kind not in manifest.joins):
            raise Invalid(f"kind: no manifest from {spec.kind!r} documents")
        if not 1 <= request.limit <= MAX_MANIFEST_PAGE:
            raise Invalid(f"limit: give 1 to {MAX_MANIFEST_PAGE} rows")
        try:
            total, entries, cursor = self.store.manifest(spec.kind, _readable(who, spec, user), request.limit,
                                                         request.cursor)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        return T.ManifestPage(total=total, entries_json=[json.dumps(e) for e in entries], next_cursor=cursor)

    # -- shared checks ----------------------------------------------------------------

    def _query(self, kind: str, filter_json: str) -> tuple[DocumentSpec, object]:
        """The kind's spec and the caller's parsed filter."""
        spec = self.flattening.specs.get(kind)
        if spec is None:
            raise Invalid(f"kind: {kind!r} is not a document kind; choose from {', '.join(self.flattening.specs)}")
        return spec, filters.parse(filter_json or None, spec.fields, spec.search)


def _tiered_facet(name: str, mine: FacetCounts, theirs: FacetCounts | None, tier: Tier, size: int) -> T.Facet:
    """One facet: readable buckets plus shown shares; readable ones only for a field that is not tier-visible."""
    if theirs is None:
        return T.Facet(field=name, other_count=mine.other, tier_withheld=f"{name} is not tier-visible",
                       buckets=[T.FacetBucket(value=str(v), count=c) for v, c in mine.buckets])
    buckets, other = merge_buckets(mine, theirs, tier, size)
    return T.Facet(field=name, other_count=other,
                   buckets=[T.FacetBucket(value=str(v), count=c, withheld_below=w) for v, c, w in buckets])


def _finite(value) -> float:
    """A statistic as sent: 0.0 for none; never NaN or ±Infinity, whatever an older store may hold."""
    return float(value) if value is not None and math.isfinite(value) else 0.0


def _readable(who: Identity, spec: DocumentSpec, node):
    """A filter narrowed to the projects the caller may read (added after own-facet exclusion,
    so that exclusion can never drop it)."""
    projects = who.readable_projects
    if projects is None:
        return node
    # "" names no project: a caller without grants matches nothing rather than everything
    return _within(filters.In(spec.fields["project_id"], tuple(projects) or ("",)), node)


def _within(projects: filters.In, node):
    """A filter narrowed to these projects."""
    return projects if node is None else filters.And((projects, node))


def _field(spec: DocumentSpec, name: str, argument: str, scalar_or_list: bool = False) -> filters.Field:
    """A field a request may name; scalar_or_list: a list too, or a field of records (samples.organ)."""
    field = spec.fields.get(name) or (filters.record_field(spec.fields, name) if scalar_or_list else None)
    if field is None or field.nested:
        records = [f"{n}.{m}" for n, f in spec.fields.items() if f.nested for m in f.nested] if scalar_or_list else []
        raise Invalid(f"{argument}: {name!r} is not a field of {spec.kind} documents; fields: "
                      f"{', '.join([n for n, f in spec.fields.items() if not f.nested] + records)}")
    if not scalar_or_list and field.multi:
        raise Invalid(f"{argument}: {name!r} holds lists and cannot be used here")
    return field


def _kind(spec: DocumentSpec) -> T.DocumentKind:
    fields = [T.FieldInfo(name=f.name, kind=f.kind, multi=f.multi, nested=list(f.nested or {}),
                          enum_values=[str(v) for v in spec.enums.get(f.name, ())],
                          title=spec.labels.get(f.name, ("", ""))[0], unit=spec.labels.get(f.name, ("", ""))[1])
              for f in spec.fields.values()]
    return T.DocumentKind(kind=spec.kind, title=spec.title, root_type=spec.root, fields=fields,
                          facets=list(spec.facets), search=list(spec.search), columns=list(spec.columns))
