"""The service calls behind the launch form, the runs list, the run page and the provenance
graph, all as the signed-in user (portal.client.get_client), so the service decides what each
user may see and do; the pages show its refusals in its own words."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import get_client
from portal.explorer import queries, state as st

FAILURES = (*ERRORS, TTransportException, OSError, st.BadQuery)
FINAL = ("succeeded", "failed", "cancelled")
LINEAGE_TYPES = ("data_file", "workflow_run", "measurement", "parameter_set")
MAX_LINEAGE_NODES = 200
MAX_COHORT_FILES = 5000


def explain(error: Exception) -> str:
    """A failure as a sentence (the service's own message where it refused)."""
    return queries.explain(error)[0]


def templates() -> dict[str, T.WorkflowTemplate]:
    """The catalog by name."""
    return {t.name: t for t in get_client().templates()}


def input_names(runs) -> dict[str, str]:
    """What each run ran on, as a person names it: the measurement its first input file belongs
    to (else that file's name); one lookup per distinct first input, "" where it is unreadable."""
    names: dict[str, str] = {}
    for first in dict.fromkeys(r.input_ids[0] for r in runs if r.input_ids):
        try:
            node = get_client().get(first)
        except FAILURES:
            names[first] = ""
            continue
        measurement = next((l["target_submitter_id"] for l in node["links"] if l["target_type"] == "measurement"), "")
        names[first] = measurement or node["properties"].get("file_name") or node["submitter_id"]
    return {r.id: names.get(r.input_ids[0], "") if r.input_ids else "" for r in runs}


def parameter_sets(template: str, project_id: str) -> list[dict]:
    """The project's parameter sets for a template as the picker shows them: sets by name, each
    set's revisions newest first (shaped like nodes: id and the properties the picker reads)."""
    if not project_id:
        return []
    return [{"id": r.id, "properties": {"name": r.name, "revision": r.revision, "notes": r.notes}}
            for s in get_client().parameter_sets(project_id, template) for r in s.revisions]


def runs_by_revision(sets) -> dict[str, list[str]]:
    """The ids of the runs each revision configured (its edges from workflow_run children)."""
    client = get_client()
    return {r.id: [e.child_id for e in client.edges(r.id) if e.parent_id == r.id and e.child_type == "workflow_run"]
            for s in sets for r in s.revisions}


def set_parameters(node: dict) -> dict[str, str]:
    """A parameter set's parameters as the form's text values."""
    try:
        params = json.loads(node["properties"].get("params_json") or "{}")
    except ValueError:
        return {}
    if not isinstance(params, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


def inputs(ids: list[str]) -> list[dict]:
    """The nodes of the given input ids (each asked of the service as the user)."""
    return [get_client().get(i) for i in ids]


# -- cohorts ---------------------------------------------------------------------------------

@dataclass
class Group:
    """One launch of a cohort: a measurement's files of the formats the template takes."""
    project_id: str
    measurement: str
    input_ids: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.project_id} / {self.measurement or 'no measurement'}"


def cohort_groups(query: dict, formats: list[str]) -> list[Group]:
    """The files of an explorer view (its tab, filter and search) grouped per measurement,
    keeping only the formats the template takes (all formats when it names none)."""
    view = st.from_query(query)
    kind = queries.kinds().get(view.kind)
    if kind is None:
        raise st.BadQuery(f"tab: {view.kind!r} is not a document kind")
    groups: dict[tuple[str, str], Group] = {}
    for count, entry in enumerate(get_client().manifest(view.kind, st.query_filter(view, kind.search))):
        if count >= MAX_COHORT_FILES:
            raise st.BadQuery(f"the view has more than {MAX_COHORT_FILES:,} files; narrow it first")
        if formats and entry.get("data_format") not in formats:
            continue
        key = (entry.get("project_id", ""), entry.get("measurement") or "")
        groups.setdefault(key, Group(*key)).input_ids.append(entry["id"])
    return [groups[k] for k in sorted(groups)]


# -- lineage ---------------------------------------------------------------------------------

@dataclass
class Lineage:
    """A node's provenance: nodes by id (with their level: <0 ancestors, 0 itself, >0
    descendants) and the edges (parent_id, child_id, link_name) between them."""
    nodes: dict[str, dict] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    truncated: bool = False


def lineage(node_id: str) -> Lineage:
    """From a node: up through what made it (run, its inputs and parameter set, back to the raw
    measurement) and down through what used it (runs and their outputs)."""
    client = get_client()
    found = Lineage()
    found.nodes[node_id], found.levels[node_id] = client.get(node_id), 0
    _walk(client, found, node_id, up=True)
    _walk(client, found, node_id, up=False)
    return found


def _walk(client, found: Lineage, start: str, up: bool) -> None:
    frontier = [start]
    while frontier:
        following = []
        for current in frontier:
            if found.nodes[current]["type"] == "measurement" and up:
                continue  # the raw measurement is where lineage starts; its sample is not provenance
            for edge in client.edges(current):
                other = edge.parent_id if up else edge.child_id
                if (edge.child_id if up else edge.parent_id) != current:
                    continue
                if (edge.parent_type if up else edge.child_type) not in LINEAGE_TYPES:
                    continue
                found.edges.add((edge.parent_id, edge.child_id, edge.link_name))
                if other in found.nodes:
                    continue
                if len(found.nodes) >= MAX_LINEAGE_NODES:
                    found.truncated = True
                    return
                try:
                    found.nodes[other] = client.get(other)
                except (T.Forbidden, T.NotFound):
                    found.edges.discard((edge.parent_id, edge.child_id, edge.link_name))
                    continue
                found.levels[other] = found.levels[current] + (-1 if up else 1)
                following.append(other)
        frontier = following


def is_live(runs) -> bool:
    """Whether any of the runs may still change (queued or running)."""
    return any(run.status not in FINAL for run in runs)
