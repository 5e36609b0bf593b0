"""The service calls behind the explorer's panels: each takes a view state, asks the metadata
service as the signed-in user, and hands the answer to a pure builder in figures.py."""
from __future__ import annotations

import time

from flask import current_app
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import UNREACHABLE, get_client
from portal.explorer import figures, state as st
from portal.explorer.widgets import label

NUMERIC = ("integer", "number")
HISTOGRAM_BINS = 20
CHART_BUCKETS = 20
KINDS_KEY, KINDS_SECONDS = "labcommons_document_kinds", 60


def kinds() -> dict[str, T.DocumentKind]:
    """The document kinds (tabs) by name: the same for every user, and changed only when the
    service starts with another flattening, so each process asks at most every KINDS_SECONDS
    (every callback of every click needs them)."""
    cached = current_app.extensions.get(KINDS_KEY)
    if cached is None or time.monotonic() - cached[0] > KINDS_SECONDS:
        cached = current_app.extensions[KINDS_KEY] = (time.monotonic(),
                                                      {kind.kind: kind for kind in get_client().documents()})
    return cached[1]


def field_info(kind: T.DocumentKind) -> dict[str, T.FieldInfo]:
    return {f.name: f for f in kind.fields}


def labels(kind: T.DocumentKind) -> dict[str, str]:
    """Each field's name for people: the dictionary property's title (else its name), with its
    unit: `pixel_size_um` -> `Pixel size (µm)`, `data_format` -> `Data format`."""
    return {f.name: label(f.name, {"title": f.title, "unit": f.unit}) for f in kind.fields}


def forms(kind: T.DocumentKind) -> dict[str, str]:
    """The fields a table cell formats: sizes in bytes and dates."""
    return {f.name: "bytes" if f.unit == "bytes" else "date" for f in kind.fields if f.unit == "bytes" or f.kind == "date"}


def counted(kind: T.DocumentKind) -> str:
    """What a chart of this kind counts: "cases", "files"."""
    return kind.title.lower()


def is_numeric(info: T.FieldInfo | None) -> bool:
    return info is not None and info.kind in NUMERIC and not info.multi


def facet_fields(kind: T.DocumentKind) -> tuple[list[str], list[str]]:
    """The kind's configured facets split into (term facets, numeric range facets)."""
    info = field_info(kind)
    numeric = [name for name in kind.facets if is_numeric(info.get(name))]
    return [name for name in kind.facets if name not in numeric], numeric


def chart_fields(kind: T.DocumentKind) -> tuple[list[str], list[str]]:
    """Fields the charts offer: (countable by value, numeric for the histogram)."""
    terms, numeric = facet_fields(kind)
    numeric += [f.name for f in kind.fields if is_numeric(f) and f.name not in numeric]
    return terms, numeric


def facet_panel(kind: T.DocumentKind, state: st.State) -> list:
    """Every facet of the kind under the view's filter (each ignoring its own clauses)."""
    client, query = get_client(), st.query_filter(state, kind.search)
    terms, numeric = facet_fields(kind)
    info, names = field_info(kind), labels(kind)
    result = client.facets(kind.kind, terms, query) if terms else T.FacetResult(total=0, facets=[])
    panels = {facet.field: figures.term_facet(
        kind.kind, facet.field, [(b.value, b.count) for b in facet.buckets],
        [st.text(v) for v in st.selected_terms(state.filter, facet.field)], facet.other_count,
        {b.value: b.withheld_below for b in facet.buckets if b.withheld_below}, names.get(facet.field, ""))
        for facet in result.facets}
    for name in numeric:
        stats = client.histogram(kind.kind, name, query, bins=HISTOGRAM_BINS)
        panels[name] = figures.range_facet(kind.kind, name, stats, state.filter, info[name].kind == "integer",
                                           names.get(name, ""))
    note = [figures.tier_note(result.tier_access_limit, result.total, result.readable_total,
                              result.tier_granularity, result.tier_withheld)] if result.tier_access_limit else []
    return note + [panels[name] for name in kind.facets if name in panels]


def counts_chart(kind: T.DocumentKind, state: st.State, name: str):
    """Counts by a field's values under the whole filter (no own-facet exclusion)."""
    query = st.query_filter(state, kind.search)
    facet = get_client().facets(kind.kind, [name], query, size=CHART_BUCKETS, exclude_own=False).facets[0]
    return figures.counts_figure(name, [(b.value, b.count) for b in facet.buckets], facet.other_count, state.chart,
                                 labels(kind).get(name, ""), counted(kind))


def histogram_chart(kind: T.DocumentKind, state: st.State, name: str):
    stats = get_client().histogram(kind.kind, name, st.query_filter(state, kind.search), bins=HISTOGRAM_BINS,
                                   exclude_own=False)
    info = field_info(kind).get(name)
    return figures.histogram_figure(name, stats, labels(kind).get(name, ""), counted(kind), info.unit if info else "")


def results(kind: T.DocumentKind, state: st.State) -> tuple[int, list[dict]]:
    """(total, documents) of the view's page."""
    return get_client().hits(kind.kind, st.query_filter(state, kind.search), sort=list(state.sort),
                             limit=st.PAGE_SIZE, offset=state.page * st.PAGE_SIZE)


def view_filter(query) -> tuple[T.DocumentKind, dict | None]:
    """The document kind and the service's filter of an explorer URL's query (tab, filter,
    search), for the views that act on the explorer's view; BadQuery when it names no kind."""
    view = st.from_query(query)
    kind = kinds().get(view.kind)
    if kind is None:
        raise st.BadQuery(f"tab: {view.kind!r} is not a document kind")
    return kind, st.query_filter(view, kind.search)


def projects() -> list[str]:
    """Projects the user may see, for the cohort form."""
    return sorted(node["submitter_id"] for node in get_client().nodes("project"))


def explain(error: Exception) -> tuple[str, list[tuple[str, str]]]:
    """A problem as (message, [(where, what)]) for people; never a stack trace."""
    if isinstance(error, st.BadQuery):
        return f"This link's view cannot be shown: {error}", []
    if isinstance(error, T.Unauthenticated):
        return f"Your session has ended ({error.message}); sign in again.", []
    if isinstance(error, ERRORS):
        issues = [(issue.field, issue.message) for issue in getattr(error, "issues", None) or []]
        return error.message, issues
    if isinstance(error, (TTransportException, OSError)):
        return UNREACHABLE, []
    raise error


def chart_choice(kind: T.DocumentKind, state: st.State) -> tuple[str, str]:
    """The fields the charts show: the state's choice, else the kind's first of each sort."""
    terms, numeric = chart_fields(kind)
    return state.by or (terms[0] if terms else ""), state.hist or (numeric[0] if numeric else "")
