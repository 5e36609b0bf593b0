"""The workflows dashboard (/dashboard?project=&template=&bucket=day|week), for admins and
analysts: the service's run_stats over the projects the user may read, as charts whose points
open the runs behind them. The filters live in the address, so a view is shared by its link."""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html

from portal.client import get_client
from portal.workflows import dashboard as d, service, widgets as w

BUCKETS = ("day", "week")
FIGURES = ("outcomes", "success", "duration", "queued", "qc", "slowest", "failing", "storage")

dash.register_page(__name__, path="/dashboard", title="Dashboard · labcommons", name="Dashboard")


def layout(project: str = "", template: str = "", bucket: str = "day", **_query):
    bucket = bucket if bucket in BUCKETS else "day"
    try:
        stats = get_client().run_stats(project, template, bucket)
    except service.FAILURES as error:
        return html.Div(w.message(service.explain(error), "dashboard-problem"), className="browse workflows")
    return html.Div([
        html.H2("Workflows dashboard"),
        dcc.Location(id="dashboard-url", refresh=True),
        html.Form([_select("project", sorted({u.project_id for u in stats.storage} | ({project} - {""})), project),
                   _select("template", sorted({r.template for r in stats.rows} | ({template} - {""})), template),
                   _select("bucket", BUCKETS, bucket, any_label=None),
                   html.Button("Show", type="submit", className="button")], method="GET", className="wf-filters"),
        html.P(f"Runs created {_when(stats.since)} to {_when(stats.before)} UTC; click a point for the runs behind it.",
               className="hint"),
        d.now_panel(stats),
        html.Div([dcc.Graph(id=f"dashboard-{name}", figure=figure) for name, figure in _figures(stats, project, template, bucket)],
                 className="dashboard-figures"),
    ], className="browse workflows", id="dashboard-page")


def _figures(stats, project: str, template: str, bucket: str) -> list[tuple[str, object]]:
    per = {"project": project, "bucket": bucket}
    return list(zip(FIGURES, (
        d.outcomes(stats, template, project, bucket),
        d.per_template(stats, lambda r: r.success_rate, "Success rate (failed vs. finished; cancels left out)",
                       "success (%)", percent=True, **per),
        d.per_template(stats, lambda r: r.duration_p50_s, "Run duration, median", "seconds", **per),
        d.per_template(stats, lambda r: r.queued_p50_s, "Time queued before a worker started it, median", "seconds", **per),
        d.qc_rates(stats),
        d.steps(stats.slowest_steps, lambda s: s.duration_p50_s, "Slowest steps (median duration)", "seconds"),
        d.steps(stats.failing_steps, lambda s: s.failed, "Most failing steps", "failed runs of the step",
                "No step failed in this window."),
        d.storage(stats))))


def _when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


def _select(name: str, choices, value: str, any_label: str | None = "any") -> html.Div:
    options = ([html.Option(f"{any_label} {name}", value="")] if any_label else []) + [
        html.Option(c, value=c, selected=c == value) for c in choices]
    return html.Div([html.Label(name.capitalize(), className="wf-label", htmlFor=f"dashboard-{name}-choice"),
                     html.Select(options, name=name, id=f"dashboard-{name}-choice", className="wf-input")],
                    className="wf-filter")


@callback(Output("dashboard-url", "href"), [Input(f"dashboard-{name}", "clickData") for name in FIGURES],
          State("dashboard-url", "href"), prevent_initial_call=True)
def open_runs(*clicks_and_href):
    """A clicked point: open the runs list filtered to the runs behind it."""
    *clicks, current = clicks_and_href
    clicked = dash.ctx.triggered_id and clicks[FIGURES.index(dash.ctx.triggered_id.removeprefix("dashboard-"))]
    return d.href_of(clicked) or dash.no_update
