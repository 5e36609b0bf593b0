"""The runs list (/runs?status=&template=&user=&project=&since=&before=&offset=): the runs the user may read,
newest first, filtered and paged by the service. The filters live in the address, so a view is
shared by its link; the list refreshes itself while any run shown is queued or running."""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html

from portal.client import get_client
from portal.controls import Select
from portal.workflows import service, widgets as w

STORE = "runs-query"
PAGE_SIZE = 25
REFRESH_MS = 2000
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

dash.register_page(__name__, path="/runs", title="Runs · labcommons", name="Runs")


def layout(status: str = "", template: str = "", user: str = "", project: str = "", since: str = "", before: str = "",
           offset: str = "0", **_query):
    query = {"status": status, "template": template, "user": user, "project": project, "since": since,
             "before": before, "offset": _offset(offset)}
    try:
        templates, projects = sorted(service.templates()), sorted(n["submitter_id"] for n in get_client().nodes("project"))
    except service.FAILURES as error:
        return html.Div(w.message(service.explain(error), "runs-problem"), className="browse workflows")
    return html.Div([
        html.H2("Workflow runs"),
        dcc.Location(id="runs-url", refresh=False),
        dcc.Store(id=STORE, data=query),
        dcc.Interval(id="runs-tick", interval=REFRESH_MS, disabled=True),
        html.Div([_picker("status", STATUSES, status), _picker("template", templates, template),
                  html.Div([html.Label("User", className="wf-label", htmlFor="runs-user"),
                            dcc.Input(id="runs-user", value=user, debounce=True, placeholder="any user",
                                      className="wf-input")], className="wf-filter"),
                  _picker("project", projects, project)], className="wf-filters"),
        w.created_window(since, before, w.runs_query({**query, "since": "", "before": "", "offset": 0})),
        html.Div(id="runs-problem-area"),
        html.Div(id="runs-list"),
    ], className="browse workflows", id="runs-page")


def _offset(raw) -> int:
    try:
        return max(int(raw), 0)
    except (TypeError, ValueError):
        return 0


def _picker(name: str, choices, value: str) -> html.Div:
    return html.Div([html.Label(name.capitalize(), className="wf-label"),
                     Select(id=f"runs-{name}", label=name, options=[{"label": c, "value": c} for c in choices],
                            value=value or None, placeholder=f"any {name}", className="wf-input")],
                    className="wf-filter")


@callback(Output(STORE, "data"), Input("runs-status", "value"), Input("runs-template", "value"),
          Input("runs-user", "value"), Input("runs-project", "value"), State(STORE, "data"), prevent_initial_call=True)
def on_filters(status, template, user, project, shown):
    """A changed filter: the first page of the new view (the creation window, from a link, kept)."""
    shown = shown or {}
    return {"status": status or "", "template": template or "", "user": (user or "").strip(),
            "project": project or "", "since": shown.get("since", ""), "before": shown.get("before", ""), "offset": 0}


@callback(Output("runs-url", "search"), Input(STORE, "data"), prevent_initial_call=True)
def sync_url(query):
    return w.runs_query(query or {})


@callback(Output("runs-list", "children"), Output("runs-tick", "disabled"), Input(STORE, "data"),
          Input("runs-tick", "n_intervals"))
def render(query, _tick):
    """One page of runs as the service filters them; keep refreshing while any is not final."""
    query = query or {}
    offset = _offset(query.get("offset"))
    try:
        page = get_client().runs(status=query.get("status", ""), template=query.get("template", ""),
                                 user=query.get("user", ""), project_id=query.get("project", ""),
                                 since=query.get("since", ""), before=query.get("before", ""),
                                 limit=PAGE_SIZE, offset=offset)
    except service.FAILURES as error:
        return w.message(service.explain(error), "runs-problem"), True
    href_for = lambda at: "/runs" + w.runs_query({**query, "offset": at})  # noqa: E731
    titles = {name: t.title for name, t in service.templates().items()}
    table = w.runs_table(page.runs, titles, service.input_names(page.runs))
    return [w.pager(page.total, offset, PAGE_SIZE, href_for), table], not service.is_live(page.runs)
