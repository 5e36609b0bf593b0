"""Cohorts: saved filters, private to their owner or shared with a project's readers.

A cohort is a node of the reserved type `_cohort` (outside the dictionary, so never submitted
or flattened), scoped by its project_id: "~<user>" for a private cohort, the project for a
shared one. Its submitter_id is its name, so names are unique per owner or per project.
"""
from __future__ import annotations

from metadata import filters, policy
from metadata.auth import Identity, private_scope
from metadata.errors import Denied, Invalid
from metadata.flatten import Flattening
from metadata.idl import metadata_thrift as T
from metadata.records import Cohort
from metadata.store.base import Store, StoredNode, Write, reserved_node
from metadata.store.record_index import RecordQuery

COHORT_TYPE = "_cohort"
MAX_NAME = 100
MAX_COHORTS = 1000


class Cohorts:
    def __init__(self, store: Store, flattening: Flattening):
        self.store, self.flattening = store, flattening

    def save(self, who: Identity, cohort: T.Cohort) -> T.Cohort:
        name = (cohort.name or "").strip()
        if not 0 < len(name) <= MAX_NAME:
            raise Invalid(f"name: give a cohort name of 1 to {MAX_NAME} characters")
        spec = self.flattening.specs.get(cohort.kind)
        if spec is None:
            raise Invalid(f"kind: {cohort.kind!r} is not a document kind; choose from {', '.join(self.flattening.specs)}")
        filters.parse(cohort.filter_json or None, spec.fields, spec.search)  # refuse a filter that cannot run
        scope = self._scope(who, cohort)
        existing = self.store.find(scope, [name]).get(name)
        if existing and Cohort.from_node(existing).owner != who.user and not who.is_admin:
            raise Denied(f"another user's cohort in project {scope!r} is named {name!r}; choose another name")
        node = _node(who, scope, name, cohort, existing)
        self.store.apply([Write(node, existing.version if existing else None)], set())
        return to_thrift(node)

    def list(self, who: Identity) -> list[T.Cohort]:
        """The caller's own cohorts and those shared in readable projects (the newest MAX_COHORTS of
        each), by scope and name."""
        own = self.store.query(RecordQuery(COHORT_TYPE, {}, [private_scope(who.user)], limit=MAX_COHORTS))
        shared = self.store.query(RecordQuery(COHORT_TYPE, {"shared": True}, who.readable_projects, limit=MAX_COHORTS))
        unique = {n.id: n for n in own.nodes + shared.nodes}
        return [to_thrift(n) for n in sorted(unique.values(), key=lambda n: (n.project_id, n.submitter_id))]

    def get(self, who: Identity, cohort_id: str) -> T.Cohort:
        return to_thrift(self._cohort(cohort_id))

    def delete(self, who: Identity, cohort_id: str) -> None:
        node = self._cohort(cohort_id)
        if Cohort.from_node(node).owner != who.user and not who.is_admin:
            raise Denied(f"only its owner or an admin may delete the cohort {node.submitter_id!r}")
        self.store.delete([node.id])

    def _scope(self, who: Identity, cohort: T.Cohort) -> str:
        if not cohort.shared:
            return private_scope(who.user)
        if not cohort.project_id:
            raise Invalid("project_id: a shared cohort names the project whose readers may open it")
        project = self.store.find(cohort.project_id, [cohort.project_id]).get(cohort.project_id)
        if project is None or project.type != "project":
            raise Invalid(f"project_id: there is no project {cohort.project_id!r}")
        return cohort.project_id

    def _cohort(self, cohort_id: str) -> StoredNode:
        """The cohort an id names (the policy has checked that the caller may read its scope)."""
        return policy.lookup(self.store, None, policy.COHORT, cohort_id)


def _node(who: Identity, scope: str, name: str, cohort: T.Cohort, existing: StoredNode | None) -> StoredNode:
    record = Cohort(kind=cohort.kind, filter_json=cohort.filter_json or "", shared=bool(cohort.shared),
                    owner=Cohort.from_node(existing).owner if existing else who.user,
                    description=cohort.description or "")
    return reserved_node(COHORT_TYPE, scope, name, record.to_props(), existing, who.user)


def to_thrift(node: StoredNode) -> T.Cohort:
    p = Cohort.from_node(node)
    return T.Cohort(id=node.id, name=node.submitter_id, kind=p.kind, filter_json=p.filter_json,
                    project_id="" if node.project_id.startswith("~") else node.project_id, shared=p.shared,
                    owner=p.owner, description=p.description, created_at=node.created_at,
                    updated_at=node.updated_at)
