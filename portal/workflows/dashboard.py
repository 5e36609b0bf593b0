"""The workflows dashboard's figures and panels, pure functions of the service's RunStats: each
point carries (customdata) the address of the runs list filtered to the runs behind it."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import plotly.graph_objects as go
from dash import html

from portal.workflows.widgets import runs_query

OUTCOMES = (("succeeded", "succeeded", "#2d8a4e"), ("qc_failed", "succeeded", "#d08c27"),
            ("failed", "failed", "#b23a3a"), ("cancelled", "cancelled", "#9aa5ad"))
OUTCOME_NAMES = {"succeeded": "succeeded", "qc_failed": "QC failed", "failed": "failed", "cancelled": "cancelled"}
GIB = 1024 ** 3
FEW_BUCKETS = 12  # up to this many, each bucket is ticked by its date (plotly would tick hours, even ms)


def runs_href(template: str = "", status: str = "", project: str = "", bucket: str = "", width: str = "day") -> str:
    """The runs list showing the runs behind a point: a bucket (its first day) limits it to the runs
    created that day or week."""
    since, before = window(bucket, width) if bucket else ("", "")
    return "/runs" + runs_query({"template": template, "status": status, "project": project,
                                 "since": since, "before": before})


def window(bucket: str, width: str) -> tuple[str, str]:
    """The [first day, day after the last) of a day or week bucket, as ISO dates."""
    first = date.fromisoformat(bucket)
    return first.isoformat(), (first + timedelta(days=7 if width == "week" else 1)).isoformat()


def _layout(figure: go.Figure, title: str, x: str, y: str, **more) -> go.Figure:
    figure.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                         margin={"l": 60, "r": 20, "t": 50, "b": 50}, legend_title_text="", **more)
    return figure


def bucket_axis(buckets, bucket: str) -> dict:
    """A day or week axis ticked by dates ("Dec 7, 2026"), never by times of day."""
    shown = sorted(set(buckets))
    axis = {"title": {"text": f"{bucket} (UTC)"}, "type": "date", "tickformat": "%b %-d, %Y"}
    if 0 < len(shown) <= FEW_BUCKETS:
        days = [date.fromisoformat(b[:10]) for b in shown]
        return {**axis, "tickmode": "array", "tickvals": shown, "ticktext": [f"{d:%b} {d.day}, {d.year}" for d in days]}
    return axis


def outcomes(stats, template: str = "", project: str = "", bucket: str = "day") -> go.Figure:
    """Runs by outcome per day or week, stacked (the templates shown summed per bucket)."""
    figure = go.Figure()
    for field, status, colour in OUTCOMES:
        totals = defaultdict(int)
        for row in stats.rows:
            totals[row.bucket] += getattr(row, field)
        buckets = sorted(totals)
        figure.add_bar(x=buckets, y=[totals[b] for b in buckets], name=OUTCOME_NAMES[field], marker_color=colour,
                       customdata=[runs_href(template, status, project, b, bucket) for b in buckets],
                       hovertemplate="%{x}: %{y} runs " + OUTCOME_NAMES[field] + "<extra></extra>")
    figure = _layout(figure, f"Runs by outcome per {bucket}", f"{bucket} (UTC)", "runs", barmode="stack")
    return figure.update_layout(xaxis=bucket_axis([r.bucket for r in stats.rows], bucket))


def per_template(stats, value, title: str, y: str, project: str = "", bucket: str = "day", percent: bool = False) -> go.Figure:
    """One line per template of value(row) over the buckets (rows without a value left out)."""
    figure = go.Figure()
    for template in sorted({r.template for r in stats.rows}):
        rows = [r for r in stats.rows if r.template == template and value(r) >= 0]
        figure.add_scatter(x=[r.bucket for r in rows], y=[value(r) * (100 if percent else 1) for r in rows],
                           mode="lines+markers", name=template,
                           customdata=[runs_href(template, "", project, r.bucket, bucket) for r in rows])
    figure = _layout(figure, title, f"{bucket} (UTC)", y, yaxis_range=[0, 105] if percent else None)
    return figure.update_layout(xaxis=bucket_axis([r.bucket for r in stats.rows if value(r) >= 0], bucket))


def qc_rates(stats) -> go.Figure:
    """QC pass rate per project and instrument."""
    labels = [f"{q.project_id} · {q.instrument or 'unknown'}" for q in stats.qc]
    figure = go.Figure(go.Bar(x=labels, y=[q.pass_rate * 100 for q in stats.qc], marker_color="#2d8a4e",
                              text=[f"{q.passed}/{q.runs}" for q in stats.qc], textposition="outside",
                              cliponaxis=False,  # "0/1" above a bar of 0 % too
                              customdata=[runs_href("", "succeeded", q.project_id) for q in stats.qc],
                              hovertemplate="%{x}: %{y:.0f}% passed (%{text})<extra></extra>"))
    return _layout(figure, "QC pass rate per project and instrument", "project · instrument", "passed (%)",
                   yaxis_range=[0, 105])


def steps(rows, value, title: str, x: str, empty: str = "No steps in this window.") -> go.Figure:
    """Steps as horizontal bars, the largest on top; none: a sentence saying so, not empty axes."""
    if not rows:
        figure = _layout(go.Figure(), title, "", "", xaxis_visible=False, yaxis_visible=False, height=220)
        return figure.add_annotation(text=empty, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    shown = list(reversed(rows))
    figure = go.Figure(go.Bar(y=[f"{s.template} · {s.step}" for s in shown], x=[value(s) for s in shown],
                              orientation="h", marker_color="#2a6f97",
                              customdata=[runs_href(s.template) for s in shown]))
    return _layout(figure, title, x, "template · step")


def storage(stats) -> go.Figure:
    """Each project's storage use, with its quota where a lifecycle rule sets one."""
    uses = stats.storage
    figure = go.Figure(go.Bar(x=[u.project_id for u in uses], y=[u.bytes / GIB for u in uses], name="used",
                              marker_color="#7b5ea7", customdata=[runs_href("", "", u.project_id) for u in uses]))
    quotas = [u for u in uses if u.quota_bytes]
    if quotas:
        figure.add_scatter(x=[u.project_id for u in quotas], y=[u.quota_bytes / GIB for u in quotas], mode="markers",
                           marker_symbol="line-ew-open", marker_size=30, name="quota")
    return _layout(figure, "Storage use per project", "project", "GiB")


def now_panel(stats) -> html.Div:
    """The queue and the workers now."""
    oldest = f", the oldest waiting {stats.oldest_queued_s:.0f} s" if stats.queued else ""
    workers = [html.Li(f"{w.worker}: last claim {w.seconds_ago:.0f} s ago") for w in stats.workers] or [
        html.Li("no worker has claimed since the service started")]
    return html.Div([html.P([html.A(f"{stats.queued} run(s) queued", href=runs_href(status="queued")), oldest]),
                     html.Ul(workers)], className="dashboard-now", id="dashboard-now")


def href_of(click: dict | None) -> str | None:
    """The runs-list address a clicked point carries, if any."""
    points = (click or {}).get("points") or []
    link = points[0].get("customdata") if points else None
    return link if isinstance(link, str) and link.startswith("/runs") else None
