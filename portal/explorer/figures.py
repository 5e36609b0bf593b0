"""Figures and widgets of the explorer: pure functions from service answers and the view state
to Dash components and Plotly figures, so they are tested without a browser or a service.

Widget ids carry the page prefix "explore-". Facet widgets use pattern-matching ids naming the
document kind and field ({"type": "explore-term", "kind": "case", "field": "sex"}), so a
callback can tell which facet moved and ignore widgets of a tab just left.
"""
from __future__ import annotations

import functools
import json
import math
from datetime import datetime
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import plotly.io as pio
from dash import dash_table, dcc, html

from portal.controls import Choices, Select
from portal.explorer import state as st

MISSING_LABEL = "no value"
OTHER_LABEL = "other values"
ACCENT, MUTED = "#2a6f97", "#c9d6df"
OPS_TEXT = {"=": "is", "!=": "is not", ">": ">", ">=": "≥", "<": "<", "<=": "≤"}


# -- text ------------------------------------------------------------------------------------

def title(name: str) -> str:
    """A field name as a heading: `age_years` -> `Age years`, `samples.organ` -> `Samples › organ`."""
    return capitalized(name.replace("_", " ").replace(".", " › "))


def capitalized(text: str) -> str:
    """Text with a capital first letter, unless its first word is written with capitals of its
    own (`imzML mode` stays, never `ImzML mode`)."""
    first = text.split(" ", 1)[0]
    return text if any(c.isupper() for c in first[1:]) else text[:1].upper() + text[1:]


def value_label(value) -> str:
    return MISSING_LABEL if value == st.MISSING else st.text(value)


def number(name: str, value: float | None) -> str:
    """A number for people: sizes in bytes as KB/MB/GB, others with thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if name.endswith("_size"):
        return _bytes(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)


def describe(clause: dict, labels: Mapping[str, str] | None = None) -> str:
    """A top-level filter clause as a chip's text, fields by their labels ("Data format is
    imzML", "File size ≤ 3.8 MB"); compact JSON for anything else."""
    if isinstance(clause, dict) and len(clause) == 1:
        (op, body), = clause.items()
        if op == "search" and isinstance(body, dict):
            return f"contains “{body.get('keyword', '')}”"
        if isinstance(body, dict) and len(body) == 1:
            (name, value), = body.items()
            field = (labels or {}).get(name) or title(name)
            if op == "IN" and isinstance(value, list):
                return f"{field} is {' or '.join(map(value_label, value))}"
            if op in OPS_TEXT and not isinstance(value, (list, dict)):
                shown = number(name, value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    else value_label(value)
                return f"{field} {OPS_TEXT[op]} {shown}"
    text = st.compact(clause)
    return text if len(text) <= 80 else text[:77] + "..."


# -- facets ----------------------------------------------------------------------------------

def term_options(buckets: Sequence[tuple[str, int]], selected: Sequence[str],
                 withheld: dict[str, int] | None = None) -> list[dict]:
    """Checkbox options (label, value, count, and the count's hint under tiered access); the
    no-value bucket last, and selected values the buckets lack (now counting 0) kept so they can
    be unticked. `withheld`: value -> N for values that also occur, fewer than N times, in
    projects the user cannot read."""
    counts, withheld = dict(buckets), withheld or {}
    values = [v for v, _ in buckets if v != st.MISSING] + [v for v in selected if v not in counts]
    if st.MISSING in counts:
        values.append(st.MISSING)
    return [_option(v, counts.get(v, 0), withheld.get(v, 0)) for v in dict.fromkeys(values)]


def _option(value: str, count: int, withheld: int = 0) -> dict:
    hint = {"title": f"plus fewer than {withheld} in projects you cannot read"} if withheld else {}
    return {"label": value_label(value), "value": value, "count": count_label(count, withheld), **hint}


def count_label(count: int, withheld: int = 0) -> str:
    """A count for people: "12", or with tiered access "12 + <50", or "<50" alone."""
    if not withheld:
        return f"{count:,}"
    return f"<{withheld:,}" if count == 0 else f"{count:,} + <{withheld:,}"


def term_facet(kind: str, name: str, buckets: Sequence[tuple[str, int]], selected: Sequence[str],
               other: int = 0, withheld: dict[str, int] | None = None, label: str = "") -> html.Div:
    """A term facet: a fieldset of checkboxes, one per value with its count, under the field's name."""
    body = [Choices(id={"type": "explore-term", "kind": kind, "field": name}, legend=label or title(name),
                    options=term_options(buckets, selected, withheld), value=list(selected), className="facet-choices")]
    if other:
        body.append(html.Div(f"{other:,} more in other values", className="facet-note"))
    return html.Div(body, className="facet", id=f"explore-facet-{name}")


def tier_note(limit: int, total: int, readable_total: int, granularity: int = 1, withheld: str = "") -> html.Div:
    """Under tiered access: which counts come from projects the user cannot read, or why none do."""
    if withheld:
        return html.Div([html.Strong("Counts cover only the projects you can read. "),
                         f"Projects you cannot read are left out of this view because {withheld}; "
                         "filter by tier-visible fields to include them."],
                        className="facet-note tier-note", id="explore-tier-note")
    rounding = f", rounded down to multiples of {granularity:,}" if granularity > 1 else ""
    return html.Div([
        html.Strong("Some counts come from projects you cannot read. "),
        f"They are included where they reach {limit:,} documents{rounding} ({total:,} in all, {readable_total:,} "
        f"you can read); \"<N\" marks what is left out. Rows, histograms and downloads show only "
        "projects you can read."], className="facet-note tier-note", id="explore-tier-note")


def slider_bounds(low: float, high: float, integer: bool) -> tuple[float, float, float]:
    """(min, max, step) of a slider over [low, high]: a round step of about 1/100 of the span
    (whole for integer fields), and ends on multiples of it, so handles stop at round values."""
    span = high - low
    step = 10.0 ** math.floor(math.log10(span / 100)) if span > 0 else 1.0
    if integer:
        step = max(1, int(step))
    digits = max(0, -math.floor(math.log10(step)))
    low, high = round(math.floor(low / step) * step, digits), round(math.ceil(high / step) * step, digits)
    if integer:
        return int(low), int(high), step
    return low, high, step


def range_facet(kind: str, name: str, stats, filter_: dict | None, integer: bool, label: str = "") -> html.Div:
    """A numeric facet: a small histogram over a range slider (or a note when no value exists)."""
    head = html.H4(label or title(name))
    if not stats.count:
        return html.Div([head, html.Div("no values", className="facet-note")], className="facet")
    low, high, step = slider_bounds(stats.min, stats.max, integer)
    value = st.slider_value(filter_, name, low, high)
    slider = dcc.RangeSlider(id={"type": "explore-range", "kind": kind, "field": name}, min=low, max=high,
                             step=step, value=value, allowCross=False, updatemode="mouseup", allow_direct_input=False,
                             marks={low: number(name, low), high: number(name, high)},
                             tooltip={"placement": "bottom", "always_visible": False})
    caption = f"{number(name, value[0])} – {number(name, value[1])}"
    if stats.missing:
        caption += f" · {stats.missing:,} without a value"
    graph = dcc.Graph(figure=mini_histogram(stats, value), config={"staticPlot": True}, className="facet-histogram")
    return html.Div([head, graph, slider, html.Div(caption, className="facet-note")],
                    className="facet", id=f"explore-facet-{name}")


def mini_histogram(stats, value: Sequence[float]) -> dict:
    """Bars of a numeric facet's histogram, those inside the selected range highlighted.

    A plain figure dict, not a go.Figure: every numeric facet of every click draws one, and
    plotly's validation (~7 ms) and its default template (7 KB of JSON) cost far more than the
    picture, which hides its axes and needs no template."""
    bins = list(stats.bins or [])
    lo, hi = value
    colors = [ACCENT if b.high >= lo and b.low <= hi else MUTED for b in bins]
    bars = {"type": "bar", "x": [(b.low + b.high) / 2 for b in bins], "y": [b.count for b in bins],
            "width": [(b.high - b.low) * 0.9 for b in bins], "marker": {"color": colors}}
    return {"data": [bars], "layout": {"height": 60, "margin": {"l": 4, "r": 4, "t": 2, "b": 2}, "showlegend": False,
                                       "xaxis": {"visible": False}, "yaxis": {"visible": False},
                                       "plot_bgcolor": "rgba(0,0,0,0)", "paper_bgcolor": "rgba(0,0,0,0)"}}


# -- summary charts --------------------------------------------------------------------------

def counts_figure(name: str, buckets: Sequence[tuple[str, int]], other: int, chart: str, label: str = "",
                  counted: str = "documents") -> go.Figure:
    """Counts by a field's values (label: the field's, counted: what is counted, "cases"), as a
    bar or a pie chart; bars have titled axes and whole-number count ticks."""
    labels = [value_label(v) for v, _ in buckets] + ([OTHER_LABEL] if other else [])
    counts = [c for _, c in buckets] + ([other] if other else [])
    if chart == "pie":
        trace = go.Pie(labels=labels, values=counts, hole=0.35, sort=False, textinfo="label+value")
    else:
        trace = go.Bar(x=labels, y=counts, marker_color=ACCENT, text=counts, textposition="auto")
    label = label or title(name)
    return _figure(trace, title=dict(text=f"{counted.capitalize()} by {label[:1].lower() + label[1:]}", x=0.02),
                   height=300, margin=dict(l=60, r=10, t=40, b=60), showlegend=False,
                   xaxis=dict(title=dict(text=label)), yaxis=count_axis(counts, counted))


def count_axis(counts: Sequence[int], counted: str) -> dict:
    """A count axis: titled, from zero, whole-number ticks only (plotly would tick 0.5 under 5)."""
    axis = dict(title=dict(text=f"Number of {counted}"), rangemode="tozero", tickformat=",d")
    return {**axis, "dtick": 1} if max(counts, default=0) <= 10 else axis


SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")
NICE_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def value_axis(label: str, unit: str, span: tuple[float, float] = (0.0, 0.0)) -> dict:
    """A numeric field's axis: its label; sizes in bytes ticked in the KB/MB/GB of 1,024 that the
    table, the facet and the mean say (plotly's own "100kB" counts in 1,000s)."""
    if unit == "bytes":
        values = size_ticks(*span)
        return dict(title=dict(text=label), tickmode="array", tickvals=values, ticktext=[size_text(v) for v in values])
    return dict(title=dict(text=label))


def size_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round sizes in one binary unit across [low, high], at most `most` of them."""
    if high <= low:
        return []
    scale = 1024 ** min(int(math.log(max(high, 1), 1024)), len(SIZE_UNITS) - 1)
    step = next((s for s in NICE_STEPS if (high - low) / (s * scale) <= most), NICE_STEPS[-1]) * scale
    return [i * step for i in range(math.ceil(low / step), math.floor(high / step) + 1)]


def size_text(value: float) -> str:
    """A tick's size: `100 KB`, `1.5 MB` (no `.0`)."""
    power = min(int(math.log(value, 1024)), len(SIZE_UNITS) - 1) if value >= 1 else 0
    return f"{value / 1024 ** power:,.3g} {SIZE_UNITS[power]}"


def histogram_figure(name: str, stats, label: str = "", counted: str = "documents", unit: str = "") -> go.Figure:
    """A numeric field's histogram, with its mean named in the title and titled axes."""
    bins = list(stats.bins or [])
    trace = go.Bar(x=[(b.low + b.high) / 2 for b in bins], y=[b.count for b in bins],
                   width=[b.high - b.low for b in bins], marker_color=ACCENT,
                   marker_line=dict(color="white", width=1),
                   customdata=[[number(name, b.low), number(name, b.high)] for b in bins],
                   hovertemplate="%{customdata[0]} – %{customdata[1]}: %{y}<extra></extra>")
    mean = f", mean {number(name, stats.mean)}" if stats.count else ""
    label = label or title(name)
    return _figure(trace, title=dict(text=f"{label} ({stats.count:,} values{mean})", x=0.02), height=300,
                   margin=dict(l=60, r=10, t=40, b=50), bargap=0, showlegend=False,
                   xaxis=value_axis(label, unit, (bins[0].low, bins[-1].high) if bins else (0.0, 0.0)),
                   yaxis=count_axis([b.count for b in bins], counted))


def empty_figure(note: str) -> go.Figure:
    return _figure(None, height=300, xaxis=dict(visible=False), yaxis=dict(visible=False),
                   annotations=[dict(text=note, showarrow=False, font=dict(color="#777"))])


def _figure(trace, **layout) -> go.Figure:
    """A chart with its layout given whole, unvalidated, and the default look's template cut to
    what these charts use: update_layout's second walk and validation of every property, and the
    7 KB template every figure carried (copied and serialized on every click), cost more than the
    rest of a click (docs/performance.md, "Portal under load"). The tests read the layout back."""
    return go.Figure(trace, layout={"template": _chart_template(), **layout}, _validate=False)


@functools.cache
def _chart_template() -> go.layout.Template:
    """plotly's default template, only its cartesian layout and its bar and pie styles."""
    full = pio.templates["plotly"]
    kept = ("autotypenumbers", "colorway", "font", "hovermode", "hoverlabel", "paper_bgcolor", "plot_bgcolor",
            "xaxis", "yaxis", "title")
    layout = {key: value for key, value in full.layout.to_plotly_json().items() if key in kept}
    return go.layout.Template(layout=layout, data={"bar": full.data.bar, "pie": full.data.pie})


# -- results table ---------------------------------------------------------------------------

def cell(value, form: str = "") -> str | int | float:
    """A document value as a table cell: lists joined, records counted, sizes ("bytes") as
    KB/MB/GB, dates ("date") readable, whole numbers without a fraction."""
    if value is None:
        return ""
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return f"{len(value)} records"
        return ", ".join(st.text(v) for v in value if v is not None)
    if isinstance(value, dict):
        return json.dumps(value)
    if form == "bytes" and isinstance(value, (int, float)):
        return _bytes(value)
    if form == "date" and isinstance(value, str):
        return readable_date(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, (int, float, str)) else str(value)


def readable_date(text: str) -> str:
    """An ISO date or time as people write it: `2024-03-05` -> `5 Mar 2024`, a time with its
    minutes and zone; anything else unchanged."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    day = f"{moment.day} {moment:%b %Y}"
    if len(text) <= 10:
        return day
    zone = moment.tzname() if moment.tzinfo else ""
    return f"{day} {moment:%H:%M}" + (f" {'UTC' if zone in ('UTC', 'UTC+00:00') else zone}" if zone else "")


def table_rows(docs: Sequence[dict], columns: Sequence[str], forms: Mapping[str, str] | None = None) -> list[dict]:
    forms = forms or {}
    return [{name: cell(doc.get(name), forms.get(name, "")) for name in columns} for doc in docs]


def results_table(columns: Sequence[str], docs: Sequence[dict], total: int, state: st.State,
                  labels: Mapping[str, str] | None = None, forms: Mapping[str, str] | None = None
                  ) -> dash_table.DataTable:
    """One page of hits, columns by their labels; paging and sorting are served by the service
    (custom actions), so a size shown as "3.8 MB" still sorts by its bytes."""
    labels = labels or {}
    return dash_table.DataTable(
        id="explore-table", columns=[{"id": c, "name": labels.get(c) or title(c)} for c in columns],
        data=table_rows(docs, columns, forms), page_action="custom", page_size=st.PAGE_SIZE,
        page_current=state.page, page_count=max(1, math.ceil(total / st.PAGE_SIZE)),
        sort_action="custom", sort_mode="single",
        sort_by=[{"column_id": f, "direction": "desc" if d else "asc"} for f, d in state.sort],
        style_table={"overflowX": "auto"}, style_as_list_view=True,
        style_cell={"fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px", "textAlign": "left",
                    "maxWidth": "260px", "overflow": "hidden", "textOverflow": "ellipsis"},
        style_header={"fontWeight": "600", "backgroundColor": "#f3f6f8"})


def total_line(total: int, kind_title: str, page: int) -> str:
    """"120 cases · page 3 of 3"; one document is named in the singular ("1 file")."""
    pages = max(1, math.ceil(total / st.PAGE_SIZE))
    noun = kind_title.lower()
    noun = noun[:-1] if total == 1 and noun.endswith("s") else noun
    return f"{total:,} {noun} · page {page + 1} of {pages}"


# -- chips, messages, links --------------------------------------------------------------------

def chips(state: st.State, labels: Mapping[str, str] | None = None) -> list:
    """Active-filter chips, each with a remove button; a search chip; 'clear all' when any."""
    items = [_chip(describe(clause, labels), i) for i, clause in enumerate(st.clauses(state.filter))]
    if state.search:
        items.append(_chip(f"contains “{state.search}”", -1))
    if not items:
        return [html.Span("No filters: showing everything you can read.", className="chips-empty")]
    return items + [html.Button("clear all", id="explore-clear", className="chip-clear", n_clicks=0)]


def _chip(text: str, index: int) -> html.Span:
    remove = html.Button("×", id={"type": "explore-chip", "index": index}, className="chip-remove",
                         title="remove this filter", n_clicks=0)
    return html.Span([html.Span(text, className="chip-text"), remove], className="chip")


def message(text: str, issues: Sequence[tuple[str, str]] = (), links: Sequence[tuple[str, str]] = ()) -> html.Div:
    """A problem shown in place of results: the message, located issues, and ways back."""
    body = [html.Strong(text)]
    if issues:
        body.append(html.Ul([html.Li([html.Code(where), f": {problem}"] if where else problem)
                             for where, problem in issues]))
    if links:
        body.append(html.Div([dcc.Link(label, href=href, className="message-link", refresh=True)
                              for label, href in links]))
    return html.Div(body, className="message", id="explore-problem")


def export_links(state: st.State, kind_title: str) -> list:
    """Download links for the current view: manifest (TSV, JSON) and the table (TSV)."""
    query = st.to_query(st.State(kind=state.kind, filter=state.filter, search=state.search, sort=state.sort))
    links = [("Manifest (TSV)", "/export/manifest.tsv"), ("Manifest (JSON)", "/export/manifest.json"),
             (f"{kind_title} table (TSV)", "/export/table.tsv")]
    return [html.A(label, href=path + query, className="button", id=f"explore-export-{i}")
            for i, (label, path) in enumerate(links)]


def chart_panel(terms: Sequence[str], numeric: Sequence[str], state: st.State, by: str, hist: str,
                counts, histogram, labels: Mapping[str, str] | None = None) -> html.Div:
    """The two summary charts, each under its picker: counts by a field (bar or pie), and a
    numeric field's histogram. `counts`/`histogram` are figures, or a component saying why not."""
    count_picker = html.Div([
        Select(id="explore-by", label="Count by", options=_field_options(terms, labels), value=by or None, clearable=False,
               className="picker"),
        Choices(id="explore-chart", legend="Chart", multiple=False, value=state.chart, className="chart-type",
                options=[{"label": "bar", "value": "bar"}, {"label": "pie", "value": "pie"}]),
    ], className="chart-controls")
    hist_picker = html.Div([
        Select(id="explore-hist-field", label="Histogram of", options=_field_options(numeric, labels), value=hist or None,
               clearable=False, className="picker")], className="chart-controls")
    return html.Div([html.Div([count_picker, _graph("explore-counts", counts)], className="chart"),
                     html.Div([hist_picker, _graph("explore-histogram", histogram)], className="chart")],
                    className="chart-row")


def _field_options(fields: Sequence[str], labels: Mapping[str, str] | None) -> list[dict]:
    return [{"label": (labels or {}).get(n) or title(n), "value": n} for n in fields]


def _graph(id_: str, figure):
    if isinstance(figure, go.Figure):
        return dcc.Graph(id=id_, figure=figure, config={"displayModeBar": False}, className="chart-graph")
    return html.Div(figure, id=id_, className="chart-problem")
