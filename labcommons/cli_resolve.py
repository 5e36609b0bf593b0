"""Turn what a user types (a submitter id, a run's name, an id prefix) into the id the service wants.

Only the service's calls are used (get, find, find_nodes_by_id_prefix, list_runs), so a reference
resolves to exactly what the caller may read; an ambiguous one is refused with every candidate listed.
"""
from __future__ import annotations

from collections.abc import Iterator

from metadata.idl import metadata_thrift as T

MISSING = (T.NotFound, T.ValidationError)
RUN_PAGE = 500  # the service's largest page of runs
MIN_PREFIX, PREFIX_MATCHES = 4, 20  # the service's shortest id prefix; candidates listed at most


class Unresolved(RuntimeError):
    """A reference that names nothing the caller can read, or more than one thing."""


def node_id(client, ref: str, project: str = "") -> str:
    """The id of the node REF names (see `node`)."""
    return node(client, ref, project)["id"]


def node(client, ref: str, project: str = "") -> dict:
    """The node REF names: its id; its submitter id in `project` (else in the one readable project
    that has it); else the one node whose id starts with REF (in `project`, when given)."""
    try:
        return client.find(project, ref) if project else client.get(ref)
    except MISSING as error:
        missing = error
    named = {} if project else {n["id"]: n for p in readable_projects(client) if (n := _find(client, p, ref))}
    if named:
        return named[one(ref, "node", _labelled(named), "give the project with -p/--project")]
    prefixed = {n["id"]: n for n in _prefixed(client, ref) if not project or n["project_id"] == project}
    if project and not prefixed:
        raise missing
    return prefixed[one(ref, "node", _labelled(prefixed), "give more of the id")]


def _labelled(nodes: dict[str, dict]) -> list[tuple[str, str]]:
    return [(id_, f"{n['project_id']}  {n['type']}  {n['submitter_id']}") for id_, n in nodes.items()]


def _prefixed(client, ref: str) -> list[dict]:
    """The readable nodes whose id starts with REF (none for a reference too short to be a short id)."""
    try:
        return client.by_id_prefix(ref, PREFIX_MATCHES) if len(ref) >= MIN_PREFIX else []
    except T.ValidationError:
        return []


def readable_projects(client) -> list[str]:
    """The codes of the projects the caller can read."""
    return [project["submitter_id"] for project in client.nodes("project")]


def _find(client, project: str, submitter_id: str) -> dict | None:
    try:
        return client.find(project, submitter_id)
    except MISSING:
        return None


def run_id(client, ref: str) -> str:
    """The run REF names: its id, its name as the portal shows it (submitter id), or a unique id prefix."""
    try:
        return client.run(ref).id
    except MISSING:
        pass
    runs = list(all_runs(client))
    named = [r for r in runs if r.submitter_id == ref] or [r for r in runs if r.id.startswith(ref)]
    return one(ref, "run", [(r.id, r.submitter_id or r.template) for r in named], "give more of the id")


def all_runs(client) -> Iterator[T.Run]:
    """Every run the caller may read, page by page."""
    offset = 0
    while True:
        page = client.runs(limit=RUN_PAGE, offset=offset)
        yield from page.runs
        offset += len(page.runs)
        if not page.runs or offset >= page.total:
            return


def one(ref: str, what: str, found: list[tuple[str, str]], hint: str) -> str:
    """The single id in `found` ((id, label) pairs), or an error naming none or every candidate."""
    if len(found) == 1:
        return found[0][0]
    if not found:
        raise Unresolved(f"no {what} {ref!r} that you can read (give its id, or its name as the portal shows it)")
    candidates = "\n".join(f"  {id_}  {label}" for id_, label in found)
    raise Unresolved(f"{ref!r} names {len(found)} {what}s; {hint}:\n{candidates}")
