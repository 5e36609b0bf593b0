"""The explorer: faceted search over case and file documents, summary charts, a paged table,
cohorts and exports.

The view is one `State` (portal/explorer/state.py), and the URL is its single source of truth.
Widget callbacks turn a user's action into a new state and write it into the address bar
(`explore-url`, one history entry per change; nothing when a re-rendered widget merely reports
what the state already says). One callback, `follow_url`, reads the address, whether a widget
wrote it or Back/Forward restored it, into the store `explore-state` and the widgets no render
callback draws (search box, tab); render callbacks turn the stored state into panels by asking
the metadata service. Data flows one way (widget -> URL -> store -> panels): no cycles.
"""
from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import parse_qs, quote

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from portal.client import get_client
from portal.controls import Choices, Select
from portal.explorer import figures, queries, state as st
from portal.workflows.widgets import launch_href

dash.register_page(__name__, path="/explore", title="Explore · labcommons", name="Explore")

FAILURES = (*ERRORS, TTransportException, OSError, st.BadQuery)
STORE = "explore-state"
URL = Output("explore-url", "search", allow_duplicate=True)
TERMS = {"type": "explore-term", "kind": ALL, "field": ALL}
RANGES = {"type": "explore-range", "kind": ALL, "field": ALL}


def layout(**query):
    """The page for a URL's query string; a message and a way back if it cannot be shown."""
    try:
        state = _initial_state(query)
        _kind(state)
    except FAILURES as error:
        return html.Div(_problem(error, "/explore"), className="explore")
    kinds = queries.kinds()
    return html.Div([
        dcc.Location(id="explore-url", refresh=False),
        dcc.Store(id=STORE, data=st.to_data(state)),
        dcc.Store(id="explore-cohort-saved", data=""),
        html.Div(id="explore-problem-area"),
        dcc.Tabs(id="explore-tabs", value=state.kind, className="explore-tabs",
                 children=[dcc.Tab(label=k.title, value=k.kind, id=f"explore-tab-{k.kind}") for k in kinds.values()]),
        html.Div([_sidebar(state), _main()], className="explore-body"),
    ], className="explore")


def _initial_state(query: dict) -> st.State:
    """The URL's state; without a tab, the commons' first kind of document."""
    state, kinds = st.from_query(query), queries.kinds()
    if not query.get("tab") and state.kind not in kinds and kinds:
        state = replace(state, kind=next(iter(kinds)))
    return state


def _sidebar(state: st.State) -> html.Aside:
    search = dcc.Input(id="explore-search", type="search", value=state.search, debounce=True,
                       placeholder="Search (press Enter)", className="search-box")
    return html.Aside([search, dcc.Loading(html.Div(id="explore-facets"), delay_show=300)],
                      className="explore-sidebar")


def _main() -> html.Div:
    toolbar = html.Div([html.Span(id="explore-total", className="total"),
                        html.Div(id="explore-exports", className="exports")], className="toolbar")
    return html.Div([html.Div(id="explore-chips", className="chips"), toolbar, _cohort_panel(),
                     html.Div(id="explore-charts"),
                     dcc.Loading(html.Div(id="explore-results"), delay_show=300)], className="explore-main")


def _cohort_panel() -> html.Div:
    save = [dcc.Input(id="explore-cohort-name", placeholder="cohort name", className="cohort-name"),
            Select(id="explore-cohort-project", label="Project to share in", placeholder="project (optional)",
                   className="picker"),
            Choices(id="explore-cohort-shared", legend="Sharing", value=[], className="inline",
                    options=[{"label": "shared in the project", "value": "shared"}]),
            html.Button("Save as cohort", id="explore-cohort-save", n_clicks=0, className="button")]
    reopen = [Select(id="explore-cohort-list", label="Saved cohort", placeholder="saved cohorts",
                     className="picker wide"),
              html.Button("Open", id="explore-cohort-open", n_clicks=0, className="button"),
              html.A("Open cohort in Jupyter", id="explore-cohort-jupyter", className="button disabled",
                     title="Pick a saved cohort first")]
    # folded by default: one line above the charts rather than a box pushing them below the fold
    summary = html.Summary("Cohorts: save this view, or open a saved one", id="explore-cohorts-toggle")
    return html.Details([summary, html.Div(save, className="cohort-row"), html.Div(reopen, className="cohort-row"),
                         html.Div(id="explore-cohort-message", className="cohort-message")], className="cohorts",
                        id="explore-cohorts")


def _kind(state: st.State):
    """The state's document kind; BadQuery naming the kinds when it is none of them."""
    kinds = queries.kinds()
    if state.kind not in kinds:
        raise st.BadQuery(f"tab: {state.kind!r} is not a document kind; choose {' or '.join(kinds)}")
    return kinds[state.kind]


def _problem(error: Exception, reset: str, more=()) -> html.Div:
    text, issues = queries.explain(error)
    links = list(more) + [("reset view", reset)]
    if isinstance(error, ERRORS) and getattr(error, "code", "").startswith("token"):
        links.append(("sign in again", "/signin?next=/explore"))
    return figures.message(text, issues, links)


def _reset(state: st.State) -> str:
    return "/explore" + st.to_query(st.State(kind=state.kind))


def _go(old: st.State, new: st.State):
    """The address of a new state (one history entry), or no_update when nothing changed."""
    return no_update if new == old else st.to_query(new)


def _refiltered(old: st.State, filter_: dict | None):
    return _go(old, old if filter_ == old.filter else st.edited(old, filter=filter_))


# -- widgets -> state ------------------------------------------------------------------------

@callback(URL, Input(TERMS, "value"), State(TERMS, "id"),
          State(STORE, "data"), prevent_initial_call=True)
def on_terms(values, ids, data):
    """A term facet's ticks changed: its field's clause is rewritten."""
    state = st.from_data(data)
    info = queries.field_info(_kind(state))
    filter_ = state.filter
    for id_, ticked in zip(ids, values):
        if id_["kind"] == state.kind and id_["field"] in info:
            typed = [st.typed(v, info[id_["field"]].kind) for v in ticked or []]
            filter_ = st.with_terms(filter_, id_["field"], typed)
    return _refiltered(state, filter_)


@callback(URL, Input(RANGES, "value"), State(RANGES, "id"),
          State(RANGES, "min"), State(RANGES, "max"), State(STORE, "data"), prevent_initial_call=True)
def on_ranges(values, ids, lows, highs, data):
    """A range slider moved: its field's bounds are rewritten (an end at its limit is open)."""
    state = st.from_data(data)
    filter_ = state.filter
    for id_, value, low, high in zip(ids, values, lows, highs):
        if id_["kind"] == state.kind and value:
            filter_ = st.with_slider(filter_, id_["field"], value, low, high)
    return _refiltered(state, filter_)


@callback(URL, Input("explore-search", "value"), State(STORE, "data"),
          prevent_initial_call=True)
def on_search(value, data):
    state, keyword = st.from_data(data), (value or "").strip()
    return no_update if keyword == state.search else st.to_query(st.edited(state, search=keyword))


@callback(URL, Input("explore-tabs", "value"), State(STORE, "data"),
          prevent_initial_call=True)
def on_tab(kind, data):
    """Another tab: keep the filter clauses whose fields it has too."""
    state, kinds = st.from_data(data), queries.kinds()
    if kind not in kinds:
        return no_update
    return _go(state, st.switch_kind(state, kind, [f.name for f in kinds[kind].fields]))


@callback(URL, Input("explore-table", "page_current"),
          Input("explore-table", "sort_by"), State(STORE, "data"), prevent_initial_call=True)
def on_table(page, sort_by, data):
    """The table's page or sort changed (a new sort starts at the first page)."""
    state = st.from_data(data)
    sort = tuple((key["column_id"], key["direction"] == "desc") for key in sort_by or [])
    if sort != state.sort:
        return st.to_query(replace(state, sort=sort, page=0))
    return _go(state, replace(state, page=page or 0))


@callback(URL, Input("explore-chart", "value"), Input("explore-by", "value"),
          Input("explore-hist-field", "value"), State(STORE, "data"), prevent_initial_call=True)
def on_charts(chart, by, hist, data):
    """A chart picker changed; a pick equal to the default stays implicit (a shorter URL)."""
    state = st.from_data(data)
    default_by, default_hist = queries.chart_choice(_kind(state), st.State())
    new = replace(state, chart=chart or state.chart, by="" if by in (None, default_by) else by,
                  hist="" if hist in (None, default_hist) else hist)
    return _go(state, new)


@callback(URL, Input({"type": "explore-chip", "index": ALL}, "n_clicks"), State(STORE, "data"),
          prevent_initial_call=True)
def on_chip(clicks, data):
    """A chip's × was clicked: that clause (or the search) goes."""
    if not ctx.triggered_id or not ctx.triggered[0]["value"]:
        return no_update
    state, index = st.from_data(data), ctx.triggered_id["index"]
    if index == -1:
        return st.to_query(st.edited(state, search=""))
    return st.to_query(st.edited(state, filter=st.without_clause(state.filter, index)))


@callback(URL, Input("explore-clear", "n_clicks"), State(STORE, "data"), prevent_initial_call=True)
def on_clear(clicks, data):
    if not clicks:
        return no_update
    return st.to_query(st.edited(st.from_data(data), filter=None, search=""))


# -- URL -> state ----------------------------------------------------------------------------

@callback(Output(STORE, "data"), Output("explore-search", "value"), Output("explore-tabs", "value"),
          Input("explore-url", "search"), State(STORE, "data"), prevent_initial_call=True)
def follow_url(search, data):
    """The address changed (a widget wrote it, or Back/Forward restored it): the view follows.
    A link that cannot be read is left to the pages router, which renders its message."""
    try:
        new = _initial_state(parse_qs((search or "").lstrip("?"), keep_blank_values=True))
    except st.BadQuery:
        return no_update, no_update, no_update
    if new == st.from_data(data):
        return no_update, no_update, no_update
    return st.to_data(new), new.search, new.kind


# -- state -> panels -------------------------------------------------------------------------

@callback(Output("explore-facets", "children"), Input(STORE, "data"))
def render_facets(data):
    state = st.from_data(data)
    try:
        return queries.facet_panel(_kind(state), state)
    except FAILURES:
        return []  # the results area shows the problem once


@callback(Output("explore-results", "children"), Output("explore-total", "children"),
          Output("explore-problem-area", "children"), Input(STORE, "data"))
def render_results(data):
    """The table's page and the total, or what is wrong with the view and a way back."""
    state = st.from_data(data)
    try:
        kind = _kind(state)
        total, docs = queries.results(kind, state)
    except FAILURES as error:
        return None, "", _problem(error, _reset(state))
    if total and state.page * st.PAGE_SIZE >= total:
        first = "/explore" + st.to_query(replace(state, page=0))
        pages = -(-total // st.PAGE_SIZE)
        text = f"Page {state.page + 1} is past the end: {total:,} {kind.title.lower()} fill {pages} page(s)."
        return None, "", figures.message(text, links=[("first page", first), ("reset view", _reset(state))])
    table = [figures.results_table(kind.columns, docs, total, state, queries.labels(kind), queries.forms(kind))]
    if not total:
        table.append(html.Div(f"No {kind.title.lower()} match this view.", className="empty"))
    return table, figures.total_line(total, kind.title, state.page), None


@callback(Output("explore-charts", "children"), Input(STORE, "data"))
def render_charts(data):
    state = st.from_data(data)
    try:
        kind = _kind(state)
    except FAILURES:
        return None
    terms, numeric = queries.chart_fields(kind)
    by, hist = queries.chart_choice(kind, state)
    counts = _chart(lambda: queries.counts_chart(kind, state, by), by)
    histogram = _chart(lambda: queries.histogram_chart(kind, state, hist), hist)
    return figures.chart_panel(terms, numeric, state, by, hist, counts, histogram, queries.labels(kind))


def _chart(draw, name: str):
    """A figure, or a short note when the service refused it (the results area says why)."""
    if not name:
        return figures.empty_figure("nothing to chart")
    try:
        return draw()
    except FAILURES as error:
        return html.Span(queries.explain(error)[0])


@callback(Output("explore-chips", "children"), Output("explore-exports", "children"), Input(STORE, "data"))
def render_chips(data):
    state = st.from_data(data)
    try:
        kind = _kind(state)
    except FAILURES:
        return figures.chips(state), None
    links = figures.export_links(state, kind.title) + [_launch_link(state), _jupyter_link(state)]
    return figures.chips(state, queries.labels(kind)), links


def _launch_link(state: st.State) -> html.A:
    """"Run a workflow on these files": the launch form for this view's files, one run per measurement."""
    view = {"tab": state.kind, "filter": st.compact(state.filter) if state.filter else "", "search": state.search}
    return html.A("Run a workflow on these files", href=launch_href(**view), className="button",
                  id="explore-launch")


def _jupyter_link(state: st.State) -> html.A:
    """"Open in Jupyter" for the view as it is, unsaved (export to workspace): a full page load."""
    href = "/jupyter/open/view" + st.to_query(st.State(kind=state.kind, filter=state.filter, search=state.search))
    return html.A("Open in Jupyter", href=href, className="button", id="explore-jupyter",
                  title="A starter notebook on the files behind this view, with their manifest")


# -- cohorts ---------------------------------------------------------------------------------

@callback(Output("explore-cohort-list", "options"), Output("explore-cohort-project", "options"),
          Output("explore-cohort-list", "value"), Input("explore-cohort-saved", "data"))
def list_cohorts(saved):
    """The user's cohorts and those shared with them (a cohort just saved picked), and the
    projects to share one in."""
    try:
        cohorts, projects = get_client().cohorts(), queries.projects()
    except FAILURES:
        return [], [], no_update
    options = [{"label": _cohort_label(c), "value": c.id} for c in sorted(cohorts, key=lambda c: c.name.lower())]
    return options, [{"label": p, "value": p} for p in projects], saved or no_update


@callback(Output("explore-cohort-jupyter", "href"), Output("explore-cohort-jupyter", "className"),
          Output("explore-cohort-jupyter", "title"), Input("explore-cohort-list", "value"))
def cohort_jupyter_link(cohort_id):
    """"Open cohort in Jupyter" opens the picked cohort (by id); without one it does nothing."""
    if not cohort_id:
        return None, "button disabled", "Pick a saved cohort first"
    return f"/jupyter/open/cohort/{quote(cohort_id, safe='')}", "button", "A starter notebook on this cohort"


def _cohort_label(cohort) -> str:
    where = f"shared in {cohort.project_id}" if cohort.shared else "private"
    return f"{cohort.name} · {cohort.kind} · {where} · by {cohort.owner}"


@callback(Output("explore-cohort-message", "children"), Output("explore-cohort-saved", "data"),
          Input("explore-cohort-save", "n_clicks"), State("explore-cohort-name", "value"),
          State("explore-cohort-project", "value"), State("explore-cohort-shared", "value"),
          State(STORE, "data"), prevent_initial_call=True)
def save_cohort(clicks, name, project, shared, data):
    """Save the view's filter (its search included) under a name."""
    name = (name or "").strip()
    if not clicks or not name:
        return ("Give the cohort a name first." if clicks else no_update), no_update
    state = st.from_data(data)
    try:
        query = st.query_filter(state, _kind(state).search)
        cohort = get_client().save_cohort(name, state.kind, query, project or "", bool(shared))
    except FAILURES as error:
        return queries.explain(error)[0], no_update
    return f"Saved cohort “{cohort.name}”.", cohort.id


@callback(URL, Output("explore-cohort-message", "children", allow_duplicate=True),
          Input("explore-cohort-open", "n_clicks"), State("explore-cohort-list", "value"), prevent_initial_call=True)
def open_cohort(clicks, cohort_id):
    """Open a saved cohort: its kind and filter become the view (its search back in the box)."""
    if not clicks or not cohort_id:
        return no_update, ("Pick a cohort first." if clicks else no_update)
    try:
        cohort = get_client().cohort(cohort_id)
        kind = _kind(st.State(kind=cohort.kind))
        filter_, keyword = st.split_search(json.loads(cohort.filter_json or "null"), kind.search)
    except FAILURES as error:
        return no_update, queries.explain(error)[0]
    state = st.State(kind=cohort.kind, filter=filter_, search=keyword)
    return st.to_query(state), f"Opened cohort “{cohort.name}”."
