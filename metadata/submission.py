"""Turn a batch of entities into checked writes, as Gen3's sheepdog does.

Upsert by submitter_id within the project; links resolved by submitter_id (or id), to nodes
in the batch or already stored; every problem of the batch is collected and reported at once,
located by entity index and TSV row. Nothing here writes: the store applies the plan atomically.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ground.storage import Layout
from metadata.dictionary import SYSTEM_FIELDS, Dictionary, LinkDef, NodeType
from metadata.entities import Entity
from metadata.errors import ProblemList
from metadata.store.base import LinkRef, Store, StoredNode, Write

PROJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SUBMITTED_SYSTEM_FIELDS = {"type", "submitter_id", "id", "project_id", "version"}


@dataclass
class Plan:
    """What a batch would do: the writes, the entity outcomes, and parents it relies on."""
    writes: list[Write] = field(default_factory=list)
    outcomes: list[tuple[Entity, StoredNode, str]] = field(default_factory=list)
    parent_ids: set[str] = field(default_factory=set)


@dataclass
class _Item:
    entity: Entity
    node_type: NodeType
    node: StoredNode
    existing: StoredNode | None


class Planner:
    """Plans one batch for one project on behalf of one user; `layout` says where its files may lie."""

    def __init__(self, dictionary: Dictionary, store: Store, project_id: str, user: str, layout: Layout,
                 may_read: Callable[[str], bool] = lambda _project: False):
        self.dictionary, self.store, self.layout = dictionary, store, layout
        self.project_id, self.user = project_id, user
        self.may_read = may_read  # which other projects a problem may name (by default none)
        self.problems = ProblemList()
        self.now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")

    def plan(self, entities: list[Entity]) -> Plan:
        """The batch's writes; raises Invalid with every problem located if any entity is bad."""
        typed = [(e, t) for e in entities if (t := self._envelope(e))]
        self._no_duplicates(entities)
        # one read finds the batch's nodes, its project's node (its project_id is its name) and
        # the nodes its links name by submitter_id in the project
        refs = self._link_refs(typed)
        existing = self.store.find(self.project_id, [e.doc["submitter_id"] for e, _ in typed] + [self.project_id]
                                   + sorted(refs[0]))
        items = [self._item(e, t, existing.get(e.doc["submitter_id"])) for e, t in typed]
        self._check_project_exists(items, existing.get(self.project_id))
        self._check_new_ids(items)
        in_batch = {item.node.submitter_id: item.node for item in items}
        in_batch.update({("id", item.node.id): item.node for item in items})
        plan = Plan()
        known = self._prefetch(refs, existing)
        for item in items:
            self._resolve_links(item, in_batch, known, plan.parent_ids)
        self.problems.raise_if_any("the batch was refused")
        for item in items:
            self._add_outcome(plan, item)
        return plan

    # -- envelope: type, submitter_id, system fields ------------------------------------

    def _envelope(self, entity: Entity) -> NodeType | None:
        doc, add = entity.doc, self._adder(entity)
        node_type = self.dictionary.get(doc.get("type", ""))
        if node_type is None:
            add("type", f"{doc.get('type')!r} is not a node type; the dictionary has: "
                        f"{', '.join(self.dictionary.names())}")
        elif node_type.managed:
            add("type", f"{node_type.id} nodes are written by the service itself, not submitted "
                        "(launch a workflow to make a run; save_parameter_set saves a parameter set)")
            node_type = None
        sid = doc.get("submitter_id")
        if not isinstance(sid, str) or not sid.strip():
            add("submitter_id", "every entity needs a submitter_id (text, unique in the project)")
            return None
        if doc.get("project_id", self.project_id) != self.project_id:
            add("project_id", f"{doc['project_id']!r} differs from the batch's project {self.project_id!r}")
        if "id" in doc and not _is_uuid(doc["id"]):
            add("id", f"{doc['id']!r} is not a UUID")
        if node_type and node_type.is_global and sid != self.project_id:
            add("submitter_id", f"a {node_type.id} is submitted to its own name: its submitter_id "
                                f"{sid!r} must equal the batch's project {self.project_id!r}")
        elif node_type and node_type.is_global and not PROJECT_PATTERN.match(sid):
            # program and project names become project_ids, URLs and index names: keep them plain
            add("submitter_id", f"{sid!r} cannot name a {node_type.id}: use letters, digits, - and _ "
                                "(at most 64, starting with a letter or digit)")
        return node_type

    def _no_duplicates(self, entities: list[Entity]) -> None:
        first: dict[str, Entity] = {}
        for entity in entities:
            sid = entity.doc.get("submitter_id")
            if not isinstance(sid, str):
                continue
            if sid in first:
                self._adder(entity)("submitter_id", f"{sid!r} appears twice in the batch "
                                                    f"(also {first[sid].location()})")
            first.setdefault(sid, entity)

    # -- one entity -------------------------------------------------------------------

    def _item(self, entity: Entity, node_type: NodeType, existing: StoredNode | None) -> _Item:
        doc, add = entity.doc, self._adder(entity)
        for name in doc.keys() & set(SYSTEM_FIELDS) - SUBMITTED_SYSTEM_FIELDS:
            add(name, f"{name} is set by the service and cannot be submitted")
        props = {k: v for k, v in doc.items() if k not in SYSTEM_FIELDS and k not in node_type.links}
        for name, message in node_type.check_properties(props):
            add(name, message)
        self._check_storage(props, add)
        if existing and existing.type != node_type.id:
            add("submitter_id", f"{existing.submitter_id!r} already names a {existing.type} in this project")
        if existing and "id" in doc and doc["id"] != existing.id:
            add("id", f"{existing.submitter_id!r} already has id {existing.id}, not {doc['id']}")
        if existing and "version" in doc and doc["version"] != existing.version:
            add("version", f"you edited version {doc['version']} but the stored one is {existing.version}; "
                           "fetch it again and resubmit")
        node = StoredNode(
            id=existing.id if existing else doc.get("id") or str(uuid.uuid4()),
            type=node_type.id, project_id=self.project_id, submitter_id=doc["submitter_id"],
            version=(existing.version + 1) if existing else 1, props=props,
            created_at=existing.created_at if existing else self.now, updated_at=self.now,
            created_by=existing.created_by if existing else self.user, updated_by=self.user)
        return _Item(entity, node_type, node, existing)

    def _check_storage(self, props: dict, add) -> None:
        """A file lies under its project's own prefix of the storage root (raw data follows grants:
        a storage_url elsewhere would let a writer of this project have another project's bytes read)."""
        url = props.get("storage_url")
        if isinstance(url, str) and (problem := self.layout.problem(url, self.project_id)):
            add("storage_url", problem)

    def _check_project_exists(self, items: list[_Item], project: StoredNode | None) -> None:
        """Non-administrative nodes need their project node to exist (in the store or the batch)."""
        if all(item.node_type.is_global for item in items):
            return
        if any(item.node_type.id == "project" for item in items):
            return
        if project is None or project.type != "project":
            self.problems.add("project_id", f"there is no project {self.project_id!r}; "
                                            "an administrator must create it first", index=0)

    def _check_new_ids(self, items: list[_Item]) -> None:
        """A new entity may bring its own id, but not one that already names a node."""
        chosen = {item.node.id: item for item in items if not item.existing and "id" in item.entity.doc}
        for node_id, node in self.store.get_many(list(chosen)).items():
            self._adder(chosen[node_id].entity)("id", (
                f"{node_id} already names the {node.type} {node.submitter_id!r} in project {node.project_id!r}"
                if self._visible(node) else f"{node_id} is taken; leave id out (the service makes one) or give another"))

    # -- links ------------------------------------------------------------------------

    def _link_refs(self, typed: list[tuple[Entity, NodeType]]) -> tuple[set[str], set[str], set[str]]:
        """The submitter_ids (in this project), ids and program or project names the batch's links name."""
        by_sid, by_id, global_sids = set(), set(), set()
        for entity, node_type in typed:
            for link in node_type.links.values():
                for ref in _as_refs(entity.doc.get(link.name)):
                    if not isinstance(ref, dict):
                        continue  # reported by _refs
                    if "id" in ref:
                        by_id.add(str(ref["id"]))
                    elif self.dictionary.get(link.target_type).is_global:
                        global_sids.add(str(ref.get("submitter_id")))
                    else:
                        by_sid.add(str(ref.get("submitter_id")))
        return by_sid, by_id, global_sids

    def _prefetch(self, refs: tuple[set[str], set[str], set[str]], found: dict[str, StoredNode]) -> dict:
        """Every stored link target, keyed as refs (from _link_refs) name them: those named by
        submitter_id are among the nodes `found` in the project already; the rest in one bulk read
        and one per program."""
        by_sid, by_id, global_sids = refs
        known = {("sid", k): found[k] for k in by_sid if k in found}
        known.update({("id", k): v for k, v in self.store.get_many(sorted(by_id)).items()})
        for sid in global_sids:
            known.update({("global", k): v for k, v in self.store.find(sid, [sid]).items()})
        return known

    def _resolve_links(self, item: _Item, in_batch: dict[str, StoredNode], known: dict, parent_ids: set[str]) -> None:
        add = self._adder(item.entity)
        for link in item.node_type.links.values():
            for ref in self._refs(item, link) or ():
                target, stored = self._target(ref, link, in_batch, known)
                if target is None or not self._visible(target):  # what the submitter may not read is not there
                    add(link.name, f"no {link.target_type} {_describe(ref)} in this batch or project {self.project_id!r}")
                elif target.type != link.target_type:
                    add(link.name, f"{_describe(ref)} is a {target.type}, but {link.name} must name a {link.target_type}")
                elif not self.dictionary.get(target.type).is_global and target.project_id != self.project_id:
                    add(link.name, f"{_describe(ref)} belongs to project {target.project_id!r}; links stay within a project")
                else:
                    item.node.links.append(LinkRef(link.name, target.id, target.type, target.submitter_id))
                    if stored:
                        parent_ids.add(target.id)
        self._check_groups(item, add)

    def _visible(self, node: StoredNode) -> bool:
        """Whether problems may speak of this stored node: it is in this project, a program or
        project, or in another project the submitter may read."""
        node_type = self.dictionary.get(node.type)  # None: the service's own records, never visible
        return node_type is not None and (node.project_id == self.project_id or node_type.is_global
                                          or self.may_read(node.project_id))

    def _target(self, ref: dict, link: LinkDef, in_batch: dict, known: dict):
        """(the node a ref names, whether it comes from the store rather than the batch)."""
        if "id" in ref:
            node = in_batch.get(("id", ref["id"]))
            return (node, False) if node else (known.get(("id", ref["id"])), True)
        sid = ref["submitter_id"]
        if self.dictionary.get(link.target_type).is_global:
            return known.get(("global", sid)), True
        node = in_batch.get(sid)
        return (node, False) if node else (known.get(("sid", sid)), True)

    def _refs(self, item: _Item, link: LinkDef) -> list[dict] | None:
        add = self._adder(item.entity)
        value = item.entity.doc.get(link.name)
        if value in (None, [], {}):
            if link.required:
                add(link.name, f"a {item.node_type.id} must link to a {link.target_type}: "
                               f'give {link.name}: {{"submitter_id": "..."}}')
            return None
        refs = _as_refs(value)
        if len(refs) > 1 and not link.to_many:
            add(link.name, f"a {item.node_type.id} links to one {link.target_type} only, not {len(refs)}")
            return None
        if not all(isinstance(r, dict) and any(k in r for k in ("submitter_id", "id")) for r in refs):
            add(link.name, 'each link is an object naming its target: {"submitter_id": "..."} or {"id": "..."}')
            return None
        return refs

    def _check_groups(self, item: _Item, add) -> None:
        present = {link.name for link in item.node.links}
        for group in item.node_type.groups:
            named = [m for m in group.members if m in present]
            if group.required and not named:
                add(group.members[0], f"a {item.node_type.id} must link to one of: {', '.join(group.members)}")
            if group.exclusive and len(named) > 1:
                add(named[1], f"a {item.node_type.id} links through only one of {', '.join(group.members)}")

    # -- outcome ----------------------------------------------------------------------

    def _add_outcome(self, plan: Plan, item: _Item) -> None:
        node, old = item.node, item.existing
        if old and old.props == node.props and sorted(map(vars, old.links), key=str) == sorted(map(vars, node.links), key=str):
            plan.outcomes.append((item.entity, old, "unchanged"))
            return
        plan.writes.append(Write(node, old.version if old else None))
        plan.outcomes.append((item.entity, node, "update" if old else "create"))

    def _adder(self, entity: Entity):
        def add(field_name: str, message: str) -> None:
            self.problems.add(field_name, message, index=entity.index, row=entity.row)
        return add


def _as_refs(value) -> list:
    """A link value as a list of references, whether one object or a list was given."""
    if value in (None, [], {}):
        return []
    return [r for r in (value if isinstance(value, list) else [value])]


def _describe(ref: dict) -> str:
    return f"id {ref['id']!r}" if "id" in ref else f"{ref['submitter_id']!r}"


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False
