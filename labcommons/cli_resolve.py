"""Turn what a user types (a submitter id, a run's name, an id prefix) into the id the service wants.

Only the service's existing calls are used (get, find, list_runs), so a reference resolves to
exactly what the caller may read; an ambiguous one is refused with every candidate listed.
"""
from __future__ import annotations

from collections.abc import Iterator

from metadata.idl import metadata_thrift as T

MISSING = (T.NotFound, T.ValidationError)
RUN_PAGE = 500  # the service's largest page of runs


class Unresolved(RuntimeError):
    """A reference that names nothing the caller can read, or more than one thing."""


def node_id(client, ref: str, project: str = "") -> str:
    """The id of the node REF names (see `node`)."""
    return node(client, ref, project)["id"]


def node(client, ref: str, project: str = "") -> dict:
    """The node REF names: its id, or its submitter id in `project` (else in the one readable project that has it)."""
    if project:
        return client.find(project, ref)
    try:
        return client.get(ref)
    except MISSING:
        pass
    found = {n["id"]: n for p in readable_projects(client) if (n := _find(client, p, ref))}
    return found[one(ref, "node", [(id_, n["project_id"]) for id_, n in found.items()],
                     "give the project with -p/--project")]


def node_in(client, ref: str, project: str) -> dict:
    """The node REF names in `project`: its id, or its submitter id there."""
    try:
        found = client.get(ref)
        if found["project_id"] == project:
            return found
    except MISSING:
        pass
    return client.find(project, ref)


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
