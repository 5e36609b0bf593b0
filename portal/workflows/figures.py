"""Figures of the workflow pages, pure functions to Plotly figures: a run's step graph and a
node's provenance graph, both laid out in columns (a node's column is its depth)."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import plotly.graph_objects as go

PHASE_COLOURS = {"Succeeded": "#2d8a4e", "Running": "#2a6f97", "Pending": "#9aa5ad", "Failed": "#b23a3a",
                 "Error": "#b23a3a", "Skipped": "#c9d1d6", "Omitted": "#c9d1d6"}
_GROUP = re.compile(r"\[\d+\]")
TYPE_COLOURS = {"measurement": "#7b5ea7", "data_file": "#2a6f97", "workflow_run": "#d08c27",
                "parameter_set": "#5b8c5a"}
TYPE_NAMES = {"measurement": "Measurement", "data_file": "Data file", "workflow_run": "Workflow run",
              "parameter_set": "Parameter set"}
TYPE_SYMBOLS = {"measurement": "diamond", "data_file": "circle", "workflow_run": "square",
                "parameter_set": "triangle-up"}


@dataclass(frozen=True)
class Box:
    """One node of the drawn step graph: a step, or a fan-out standing for its items."""

    id: str
    label: str
    hover: str
    phase: str


def step_boxes(steps) -> tuple[list[Box], list[tuple[str, str]]]:
    """The graph a person reads from a run's steps (linked as Argo links them: children are what
    runs next): step groups ("[0]") are passed through, a loop's items are one box with their
    count by phase, labels are short with the full name on hover."""
    by_id = {s.id: s for s in steps}
    loops = {s.id for s in steps if _fans_out(s, by_id)}
    items = {c: s for s in loops for c in by_id[s].children if c in by_id}
    edges = {}
    for s in steps:
        onwards = [c for i in s.children if i in by_id for c in by_id[i].children] if s.id in loops else s.children
        edges[s.id] = [items.get(c, c) for c in onwards if c in by_id]
    shown = {s.id for s in steps if s.id not in items and not _GROUP.fullmatch(s.name or "")}
    return ([_box(by_id[i], by_id) for i in shown if i in by_id],
            sorted({(a, b) for a in shown for b in _through(a, edges, shown) if b != a}))


def _fans_out(step, by_id) -> bool:
    names = [by_id[c].name for c in step.children if c in by_id]
    return bool(names) and all(n.startswith(f"{step.name}(") for n in names)


def _through(node: str, edges: dict, shown: set) -> set[str]:
    """The shown boxes `node` leads to, passing through hidden ones (step groups)."""
    found, pending, seen = set(), list(edges.get(node, [])), set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in shown:
            found.add(current)
        else:
            pending += edges.get(current, [])
    return found


def _box(step, by_id) -> Box:
    name = step.name or step.id
    if _fans_out(step, by_id):
        phases = Counter(by_id[c].phase for c in step.children if c in by_id)
        counts = ", ".join(f"{n} {phase.lower()}" for phase, n in phases.most_common())
        return Box(step.id, f"{_shorten(name)} ×{sum(phases.values())}", f"{name}: {counts}", step.phase)
    exit_code = f" (exit {step.exit_code})" if step.exit_code is not None and step.exit_code >= 0 else ""
    return Box(step.id, _shorten(name), f"{name}: {step.phase}{exit_code}", step.phase)


def _shorten(name: str, most: int = 18) -> str:
    return name if len(name) <= most else name[:most - 1] + "…"


def step_levels(boxes: list[Box], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each box's depth: the longest chain of edges leading to it (a cycle is cut, never followed)."""
    ids = [b.id for b in boxes]
    children: dict[str, list[str]] = defaultdict(list)
    for parent, child in edges:
        children[parent].append(child)
    named = {child for _, child in edges}
    levels = {i: 0 for i in ids if i not in named}
    frontier = list(levels)
    while frontier:
        following = []
        for parent in frontier:
            for child in children[parent]:
                if levels.get(child, -1) < levels[parent] + 1 and levels[parent] + 1 <= len(ids):
                    levels[child] = levels[parent] + 1
                    following.append(child)
        frontier = following
    return {i: levels.get(i, 0) for i in ids}


def positions(levels: dict[str, int], order: list[str]) -> dict[str, tuple[float, float]]:
    """(x, y) for each node: its level across, its rank within the level down (centred)."""
    columns: dict[int, list[str]] = defaultdict(list)
    for node in order:
        columns[levels[node]].append(node)
    placed = {}
    for level, members in columns.items():
        for rank, node in enumerate(members):
            placed[node] = (float(level), (len(members) - 1) / 2 - rank)
    return placed


def step_graph(steps) -> go.Figure:
    """The run's steps as the template's structure runs them (groups in sequence, DAG
    dependencies, a fan-out as one box), arrows pointing onwards, each box coloured by phase."""
    if not steps:
        return _empty("no steps yet")
    boxes, edges = step_boxes(steps)
    levels = step_levels(boxes, edges)
    at = positions(levels, [b.id for b in boxes])
    figure = go.Figure([_lines(edges, at)], layout={"annotations": _arrows(edges, at)})
    for phase in dict.fromkeys(b.phase for b in boxes):
        chosen = [b for b in boxes if b.phase == phase]
        figure.add_trace(go.Scatter(
            x=[at[b.id][0] for b in chosen], y=[at[b.id][1] for b in chosen], mode="markers+text",
            name=phase or "unknown", text=[b.label for b in chosen], textposition="bottom center",
            marker={"size": 22, "color": PHASE_COLOURS.get(phase, "#9aa5ad"), "symbol": "square"},
            hovertext=[b.hover for b in chosen], hoverinfo="text"))
    return _layout(figure, "Steps", 0, max(levels.values()))


def lineage_graph(nodes: dict[str, dict], levels: dict[str, int], edges, focus: str, href) -> go.Figure:
    """Provenance: ancestors to the left, the node itself in the middle (ringed), descendants to
    the right, each edge an arrow the way data flowed (input -> run -> output); each point
    carries the address of its page (customdata) for clicks."""
    order = sorted(nodes, key=lambda n: (levels[n], nodes[n]["type"], nodes[n]["submitter_id"]))
    at = positions(levels, order)
    flows = sorted((p, c) for p, c, _ in edges if p in at and c in at)
    figure = go.Figure([_lines(flows, at)], layout={"annotations": _arrows(flows, at)})
    for kind in dict.fromkeys(nodes[n]["type"] for n in order):
        chosen = [n for n in order if nodes[n]["type"] == kind]
        figure.add_trace(go.Scatter(
            x=[at[n][0] for n in chosen], y=[at[n][1] for n in chosen], mode="markers+text", name=TYPE_NAMES.get(kind, kind),
            text=[_short(nodes[n]) for n in chosen], textposition="bottom center",
            customdata=[href(nodes[n]) for n in chosen], hovertext=[_hover(nodes[n]) for n in chosen],
            hoverinfo="text",
            marker={"size": [28 if n == focus else 18 for n in chosen], "color": TYPE_COLOURS.get(kind, "#888"),
                    "symbol": TYPE_SYMBOLS.get(kind, "circle"),
                    "line": {"width": [3 if n == focus else 0 for n in chosen], "color": "#153243"}}))
    return _layout(figure, "Provenance (click a node to open it)", min(levels.values()), max(levels.values()))


def _short(node: dict) -> str:
    name = node["properties"].get("file_name") or node["properties"].get("name") or node["submitter_id"]
    return name if len(name) <= 28 else name[:12] + "…" + name[-14:]


def _hover(node: dict) -> str:
    props = node["properties"]
    extra = props.get("status") or props.get("data_format") or props.get("template") or ""
    return f"{TYPE_NAMES.get(node['type'], node['type'])}: {node['submitter_id']}" + (f" ({extra})" if extra else "")


def _lines(edges, at) -> go.Scatter:
    xs, ys = [], []
    for parent, child in edges:
        xs += [at[parent][0], at[child][0], None]
        ys += [at[parent][1], at[child][1], None]
    return go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#b9c6cf", "width": 2}, hoverinfo="skip",
                      showlegend=False)


def _arrows(edges, at) -> list[dict]:
    """An arrowhead on each edge, from parent to child, stopping short of the child's marker."""
    return [{"x": at[child][0], "y": at[child][1], "ax": at[parent][0], "ay": at[parent][1], "xref": "x",
             "yref": "y", "axref": "x", "ayref": "y", "text": "", "showarrow": True, "arrowhead": 2,
             "arrowsize": 1.4, "arrowwidth": 1.5, "arrowcolor": "#8a9ba8", "standoff": 15, "startstandoff": 10}
            for parent, child in edges]


def _layout(figure: go.Figure, title: str, first: int, last: int) -> go.Figure:
    hidden = {"showgrid": False, "zeroline": False, "showticklabels": False}
    figure.update_layout(title=title, xaxis={**hidden, "range": [first - 0.6, last + 0.6]}, yaxis=hidden,
                         height=360, margin={"l": 20, "r": 20, "t": 40, "b": 20}, plot_bgcolor="white",
                         legend={"orientation": "h"})
    return figure


def _empty(text: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(annotations=[{"text": text, "showarrow": False}], height=160,
                         xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="white")
    return figure
