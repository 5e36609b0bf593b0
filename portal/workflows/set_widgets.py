"""Pure pieces of the Parameter sets page: the diff between two revisions, the revisions table,
and parsing the admin form's parameters. No service calls here, so each is tested alone."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from dash import dcc, html

from portal.explorer.widgets import table
from portal.workflows.widgets import lineage_href, run_href


@dataclass(frozen=True)
class Change:
    name: str
    kind: str       # "changed", "added" or "removed"
    old: str | None
    new: str | None


def params_diff(old: dict[str, str], new: dict[str, str]) -> list[Change]:
    """What changed from `old` to `new`, by parameter name: changed, added, removed."""
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(Change(name, "removed", old[name], None))
        elif name not in old:
            changes.append(Change(name, "added", None, new[name]))
        elif old[name] != new[name]:
            changes.append(Change(name, "changed", old[name], new[name]))
    return changes


def diff_table(changes: Sequence[Change], older: int, newer: int, id_: str) -> html.Div:
    """The diff as a table, or a line saying the two revisions hold the same parameters."""
    if not changes:
        return html.Div(f"Revisions {older} and {newer} hold the same parameters.", className="empty", id=id_)
    rows = [[c.name, c.kind, html.Code(c.old) if c.old is not None else "–",
             html.Code(c.new) if c.new is not None else "–"] for c in changes]
    return table(["parameter", "change", f"revision {older}", f"revision {newer}"], rows, id_, "")


def params_cell(params: dict[str, str]) -> html.Div:
    return html.Div([html.Div([f"{k} = ", html.Code(v)]) for k, v in sorted(params.items())], className="wf-params")


def runs_cell(run_ids: Sequence[str]) -> html.Div | str:
    if not run_ids:
        return "none yet"
    return html.Div([dcc.Link(run_id[:8], href=run_href(run_id), className="wf-run-link") for run_id in run_ids])


def revisions_table(revisions: Sequence, runs: dict[str, list[str]], id_: str) -> html.Div:
    """One row per revision, newest first: its parameters, author, source notebook, notes, date,
    the dataset it was tuned on and the runs that used it."""
    rows = [[dcc.Link(f"r{r.revision}", href=lineage_href(r.id)), params_cell(r.params), r.created_by,
             html.Code(r.source) if r.source else "–", r.notes or "–", (r.created_at or "").replace("T", " ")[:19],
             html.Code(r.dataset_id[:8], title=r.dataset_id) if r.dataset_id else "–", runs_cell(runs.get(r.id, []))]
            for r in revisions]
    return table(["revision", "parameters", "author", "source", "notes", "saved", "dataset", "runs"], rows, id_,
                 "no revisions")


def set_key(pset) -> str:
    """A stable id for one set on the page (project, template, name)."""
    return f"{pset.project_id}/{pset.template}/{pset.name}"


def parse_params(text: str) -> dict[str, str]:
    """The admin form's parameters: a JSON object, or `name = value` lines; ValueError saying why."""
    text = (text or "").strip()
    if not text:
        raise ValueError("give at least one parameter, as `name = value` lines or a JSON object")
    if text.startswith("{"):
        try:
            params = json.loads(text)
        except ValueError as error:
            raise ValueError(f"the parameters are not valid JSON: {error}") from None
        if not isinstance(params, dict):
            raise ValueError("the parameters must be a JSON object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    params = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"line {number}: write `name = value`, not {line.strip()!r}")
            params[name.strip()] = value.strip()
    return params
