"""Parameter sets: a template's parameters saved under a name, one immutable node per revision.

A revision is a `parameter_set` node (a managed type: only this module writes it) named
`<template>.<name>.r<N>` in its project, with `revision` N, the parameters the set gives (as
the template's canonical strings), notes, the source (a notebook's path) and the dataset they
were tuned on. Saving parameters equal to the newest revision's returns that revision; other
parameters make revision N+1. Revisions are never changed, so a run that links to one (its
`configured_by` link) names exactly the parameters it started from.

Races: the next revision is the newest one read plus one, and the store's uniqueness of
(project, submitter_id) decides between two savers that read the same newest revision: the
loser's create fails with Clash, it reads again and takes the next number.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict

from metadata import auth, policy
from metadata.auth import Identity
from metadata.dictionary import Dictionary
from metadata.errors import Clash, Invalid, Missing
from metadata.idl import metadata_thrift as T
from metadata.records import ParameterSetRevision
from metadata.store.base import Store, StoredNode, Write, reserved_node
from metadata.store.record_index import MAX_LIMIT, RecordQuery, every

SET_TYPE = "parameter_set"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")  # no dots: `<template>.<name>.r<N>` stays unambiguous
MAX_NOTES, MAX_SOURCE = 10_000, 1_000
RACE_RETRIES = 50   # each retry means another saver took a revision: N savers need at most N


class ParameterSets:
    def __init__(self, store: Store, dictionary: Dictionary, catalog):
        self.store, self.dictionary, self.catalog = store, dictionary, catalog

    def save(self, who: Identity, request: T.ParameterSetRequest) -> tuple[StoredNode, bool]:
        """The revision holding these parameters: (newest, True) when they are the newest's."""
        template = self._template(request.template)
        _check_text(request)
        params = self._params(template, request.params or {})
        project = self._project(request)  # the policy checked write access on it
        for _ in range(RACE_RETRIES):
            revisions = self._revisions([project], template.name, request.name)
            newest = revisions[0] if revisions else None
            if newest is not None and _params(newest) == params:
                return newest, True
            node = self._new_revision(who, project, template.name, request, params,
                                      ParameterSetRevision.from_node(newest).revision + 1 if newest else 1)
            try:
                self.store.apply([Write(node, None)], set())
                return node, False
            except Clash:
                continue  # another saver took this revision number: read again
        raise Clash("saving the parameter set raced others too often; try again", code="busy")

    def list(self, who: Identity, project_id: str, template: str) -> list[tuple[tuple[str, str, str], list]]:
        """((project, template, name), revisions newest first), by template and name."""
        where = {"template": template} if template else {}
        groups: dict[tuple[str, str, str], list[StoredNode]] = defaultdict(list)
        for node in self._query(where, auth.listing_projects(who, project_id)):
            revision = ParameterSetRevision.from_node(node)
            groups[(node.project_id, revision.template, revision.name)].append(node)
        return [(key, _newest_first(groups[key])) for key in sorted(groups, key=lambda k: (k[1], k[2], k[0]))]

    def get(self, who: Identity, set_id: str) -> StoredNode:
        return policy.lookup(self.store, self.dictionary, policy.PARAMETER_SET, set_id)

    # -- checks ---------------------------------------------------------------------------

    def _template(self, name: str):
        template = self.catalog.get(name or "")
        if template is None:
            raise Invalid(f"template: {name!r} is not a workflow template; choose from "
                          f"{', '.join(self.catalog.names()) or 'none installed'}")
        return template

    @staticmethod
    def _params(template, given: dict[str, str]) -> dict[str, str]:
        """The given parameters, canonical (the template's check names each bad one); defaults
        are left out, so the set keeps saying only what it chose."""
        if not given:
            raise Invalid(f"params: give at least one parameter; {template.name} takes "
                          f"{', '.join(p.name for p in template.parameters)}")
        checked = template.check({str(k): str(v) for k, v in given.items()})
        return {k: checked[k] for k in sorted(given)}

    def _project(self, request: T.ParameterSetRequest) -> str:
        """The project to save into: the request's, else the dataset's."""
        if request.dataset_id:
            dataset = policy.lookup(self.store, self.dictionary, policy.DATASET, request.dataset_id, "dataset_id")
            if not request.project_id:
                return dataset.project_id
        if not request.project_id:
            raise Invalid("project_id: give the project to save into (or the dataset the parameters were tuned on)")
        project = self.store.find(request.project_id, [request.project_id]).get(request.project_id)
        if project is None or project.type != "project":
            raise Missing(f"project_id: there is no project {request.project_id!r}")
        return request.project_id

    # -- storage --------------------------------------------------------------------------

    def _new_revision(self, who: Identity, project: str, template: str, request: T.ParameterSetRequest,
                      params: dict[str, str], revision: int) -> StoredNode:
        record = ParameterSetRevision(template=template, name=request.name, revision=revision,
                                      params_json=json.dumps(params, sort_keys=True), notes=request.notes or None,
                                      source=request.source or None, dataset_id=request.dataset_id or None)
        node = reserved_node(SET_TYPE, project, submitter_id(template, request.name, revision), record.to_props(),
                             None, who.user)
        problems = self.dictionary.get(SET_TYPE).check_properties(node.props)
        if problems:
            raise Invalid("; ".join(f"{field}: {message}" for field, message in problems))
        return node

    def _revisions(self, projects: list[str], template: str, name: str) -> list[StoredNode]:
        return _newest_first(self._query({"template": template, "name": name}, projects))

    def _query(self, where: dict, projects: list[str] | None) -> list[StoredNode]:
        """Every revision matching, from the store's index of parameter sets."""
        return every(self.store, RecordQuery(SET_TYPE, where, projects, limit=MAX_LIMIT))


def submitter_id(template: str, name: str, revision: int) -> str:
    return f"{template}.{name}.r{revision}"


def _check_text(request: T.ParameterSetRequest) -> None:
    if not NAME.match(request.name or ""):
        raise Invalid(f"name: {request.name!r} is not a parameter set name; use 1 to 100 letters, digits, "
                      "'-' or '_', starting with a letter or digit")
    if len(request.notes or "") > MAX_NOTES:
        raise Invalid(f"notes: {len(request.notes):,} characters; give at most {MAX_NOTES:,}")
    if len(request.source or "") > MAX_SOURCE:
        raise Invalid(f"source: give at most {MAX_SOURCE:,} characters")


def _params(node: StoredNode) -> dict[str, str]:
    try:
        params = json.loads(ParameterSetRevision.from_node(node).params_json or "{}")
    except ValueError:
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in params.items()} if isinstance(params, dict) else {}


def _newest_first(nodes: list[StoredNode]) -> list[StoredNode]:
    return sorted(nodes, key=lambda n: (-int(ParameterSetRevision.from_node(n).revision or 1), n.created_at))


def revision_thrift(node: StoredNode) -> T.ParameterSetRevision:
    p = ParameterSetRevision.from_node(node)
    return T.ParameterSetRevision(id=node.id, project_id=node.project_id, template=p.template,
                                  name=p.name, revision=int(p.revision or 1), params=_params(node),
                                  notes=p.notes or "", source=p.source or "",
                                  dataset_id=p.dataset_id or "", created_by=node.created_by,
                                  created_at=node.created_at, submitter_id=node.submitter_id)


def set_thrift(key: tuple[str, str, str], revisions: list[StoredNode]) -> T.ParameterSet:
    project, template, name = key
    return T.ParameterSet(project_id=project, template=template, name=name,
                          revisions=[revision_thrift(n) for n in revisions])
