"""Flattened documents (Gen3 Tube's job): the graph as one flat document per case and per file.

A YAML config (metadata/flattening.yaml for the default dictionary; docs/flattening.md) names,
for each document kind, its root node type, the root's own properties, properties copied from
ancestors along link paths, and properties aggregated from descendants along backref paths.

Stores keep documents current inside each write transaction: they call `Flattener.affected`
on the nodes a batch touches (before and after the write), then `Flattener.documents` for those
roots, reading the graph through a `GraphReader` that sees the transaction's own writes.
Traversals go level by level with bulk reads, never node by node.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

import yaml

from metadata.dictionary import Dictionary, NodeType
from metadata.errors import Invalid
from metadata.filters import Field
from metadata.store.base import StoredNode

DEFAULT_CONFIG = Path(__file__).with_name("flattening.yaml")
SYSTEM = {"id": "keyword", "submitter_id": "keyword", "project_id": "keyword"}
AGGREGATIONS = ("count", "set", "min", "max", "sum", "nested", "latest")
KINDS = {"string": "keyword", "integer": "integer", "number": "number", "boolean": "boolean"}


class GraphReader(Protocol):
    """Bulk reads of the graph, as a store sees it inside its current transaction."""

    def nodes(self, ids: Iterable[str]) -> dict[str, StoredNode]: ...

    def children(self, parent_ids: Iterable[str], child_type: str, link_name: str) -> dict[str, list[str]]:
        """parent id -> ids of its children of that type through that link."""


@dataclass(frozen=True)
class Step:
    """One hop of a path: to a parent through a link (up), or to children through a backref (down)."""
    source_type: str
    target_type: str
    link_name: str
    to_many: bool


@dataclass(frozen=True)
class Ancestor:
    steps: tuple[Step, ...]
    properties: dict  # document field -> ancestor property (or id / submitter_id)


@dataclass(frozen=True)
class Aggregation:
    field: str
    steps: tuple[Step, ...]
    fn: str
    property: str | None = None
    properties: tuple[str, ...] = ()
    by: str = ""   # latest: the descendants' property that orders them (an ISO time)


@dataclass
class DocumentSpec:
    kind: str
    root: str
    title: str
    properties: tuple[str, ...]
    ancestors: tuple[Ancestor, ...]
    aggregations: tuple[Aggregation, ...]
    fields: dict[str, Field]
    enums: dict[str, tuple] = field(default_factory=dict)
    facets: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    # field -> (title, unit) of the dictionary property it holds, for people ("" where none)
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    document: str
    fields: tuple[str, ...]
    joins: dict  # other kind -> the field of the manifest document holding that kind's id


@dataclass
class Flattening:
    """Everything a store needs to keep and query documents."""
    specs: dict[str, DocumentSpec]
    manifest: Manifest | None

    @classmethod
    def none(cls) -> "Flattening":
        """No documents: for a deployment whose dictionary comes without a flattening config."""
        return cls({}, None)

    @property
    def flattener(self) -> "Flattener":
        return Flattener(self.specs)

    def signature(self) -> str:
        """Changes whenever the documents' shape does, so a store knows to rebuild them."""
        shape = {k: [repr(f) for f in s.fields.values()] + [repr(s.enums), repr(s.ancestors), repr(s.aggregations)]
                 for k, s in sorted(self.specs.items())}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


# -- loading -----------------------------------------------------------------------------

def load(dictionary: Dictionary, path: Path | None = None) -> Flattening:
    """The flattening config, checked against the dictionary."""
    path = Path(path or DEFAULT_CONFIG)
    try:
        config = yaml.safe_load(path.read_text())
        documents = config["documents"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise Invalid(f"flattening {path.name}: cannot read a `documents` mapping: {exc}") from exc
    specs = {kind: _spec(dictionary, kind, doc, f"flattening {path.name}: {kind}") for kind, doc in documents.items()}
    return Flattening(specs, _manifest(specs, config.get("manifest") or {}, f"flattening {path.name}: manifest"))


def _manifest(specs: dict[str, DocumentSpec], entry: dict, where: str) -> Manifest:
    spec = specs.get(entry.get("document", ""))
    if spec is None:
        raise Invalid(f"{where}: document must name one of {sorted(specs)}")
    manifest = Manifest(spec.kind, tuple(entry.get("fields", ())), dict(entry.get("from", {})))
    unknown = [f for f in (*manifest.fields, *manifest.joins.values()) if f not in spec.fields]
    if unknown or not manifest.fields:
        raise Invalid(f"{where}: fields must be fields of {spec.kind} documents; unknown: {unknown}")
    for kind in manifest.joins:
        if kind not in specs:
            raise Invalid(f"{where}: from names unknown document kind {kind!r}")
    return manifest


def _spec(dictionary: Dictionary, kind: str, doc: dict, where: str) -> DocumentSpec:
    root = dictionary.get(doc.get("root", ""))
    if root is None:
        raise Invalid(f"{where}: root {doc.get('root')!r} is not a node type")
    fields = {name: Field(name, kind_) for name, kind_ in SYSTEM.items()}
    enums: dict[str, tuple] = {}
    properties = tuple(doc.get("properties", ()))
    for prop in properties:
        _add(fields, enums, prop, _property_field(root, prop, f"{where}: properties"), where)
    ancestors = tuple(_ancestor(dictionary, root, entry, fields, enums, where) for entry in doc.get("ancestors", ()))
    aggregations = tuple(_aggregation(dictionary, root, entry, fields, enums, where)
                         for entry in doc.get("aggregations", ()))
    spec = DocumentSpec(kind, root.id, doc.get("title", kind), properties, ancestors, aggregations, fields, enums,
                        tuple(doc.get("facets", ())), tuple(doc.get("search", ())), tuple(doc.get("columns", ())))
    for listing in ("facets", "search", "columns"):
        unknown = [f for f in getattr(spec, listing) if f not in fields]
        if unknown:
            raise Invalid(f"{where}: {listing} names unknown fields {unknown}; fields are {sorted(fields)}")
    spec.labels = _labels(dictionary, spec)
    return spec


def _labels(dictionary: Dictionary, spec: DocumentSpec) -> dict[str, tuple[str, str]]:
    """Each field's (title, unit) from the dictionary property it copies or aggregates (a count:
    neither); the portal names fields with them."""
    sources = [(spec.root, prop, prop) for prop in spec.properties]
    sources += [(a.steps[-1].target_type, prop, name) for a in spec.ancestors for name, prop in a.properties.items()]
    sources += [(a.steps[-1].target_type, a.property, a.field) for a in spec.aggregations if a.property]
    labels = {}
    for type_id, prop, name in sources:
        schema = dictionary.get(type_id).properties.get(prop) or {}
        labels[name] = (str(schema.get("title", "")), str(schema.get("unit", "")))
    return labels


def _add(fields: dict, enums: dict, name: str, typed: tuple[Field, tuple | None], where: str) -> None:
    if name in fields:
        raise Invalid(f"{where}: field {name!r} is defined twice")
    fields[name] = typed[0]
    if typed[1]:
        enums[name] = typed[1]


def _property_field(node_type: NodeType, prop: str, where: str, name: str | None = None,
                    multi: bool = False) -> tuple[Field, tuple | None]:
    """The document field for one property of a node type, with its enum values if any."""
    name = name or prop
    if prop in SYSTEM:
        return Field(name, "keyword", multi), None
    schema = node_type.properties.get(prop)
    if schema is None:
        raise Invalid(f"{where}: {node_type.id} has no property {prop!r}")
    if schema["type"] == "array":
        item = schema.get("items", {"type": "string"})
        return Field(name, KINDS.get(item.get("type"), "keyword"), True), tuple(item.get("enum", ())) or None
    kind = "date" if schema.get("format") == "date" else KINDS[schema["type"]]
    return Field(name, kind, multi), tuple(schema.get("enum", ())) or None


def _ancestor(dictionary, root, entry, fields, enums, where) -> Ancestor:
    steps = _steps_up(dictionary, root, entry.get("path", ()), where)
    multi = any(step.to_many for step in steps)
    target = dictionary.get(steps[-1].target_type)
    for name, prop in entry.get("properties", {}).items():
        _add(fields, enums, name, _property_field(target, prop, f"{where}: ancestors", name, multi), where)
    return Ancestor(steps, dict(entry.get("properties", {})))


def _aggregation(dictionary, root, entry, fields, enums, where) -> Aggregation:
    fn, name, prop = entry.get("fn"), entry.get("field"), entry.get("property")
    if fn not in AGGREGATIONS:
        raise Invalid(f"{where}: aggregation {name!r}: fn must be one of {', '.join(AGGREGATIONS)}")
    steps = _steps_down(dictionary, root, entry.get("path", ()), where)
    target = dictionary.get(steps[-1].target_type)
    if fn == "count":
        _add(fields, enums, name, (Field(name, "integer"), None), where)
    elif fn == "nested":
        props = tuple(entry.get("properties", ()))
        nested = {p: _property_field(target, p, f"{where}: {name}")[0] for p in props}
        _add(fields, enums, name, (Field(name, "keyword", True, nested), None), where)
        return Aggregation(name, steps, fn, None, props)
    else:
        typed, values = _property_field(target, prop or "", f"{where}: aggregation {name!r}", name, fn == "set")
        if fn == "sum":
            typed = Field(name, "number")
        _add(fields, enums, name, (typed, values), where)
    if fn == "latest":
        by = entry.get("by") or ""
        _property_field(target, by, f"{where}: aggregation {name!r}: by", name)   # refuses an unknown one
        return Aggregation(name, steps, fn, prop, (), by)
    return Aggregation(name, steps, fn, prop)


def _steps_up(dictionary: Dictionary, root: NodeType, path, where: str) -> tuple[Step, ...]:
    steps, current = [], root
    for link_name in path:
        link = current.links.get(link_name)
        if link is None:
            raise Invalid(f"{where}: ancestor path {list(path)}: {current.id} has no link {link_name!r}")
        steps.append(Step(current.id, link.target_type, link.name, link.to_many))
        current = dictionary.get(link.target_type)
    if not steps:
        raise Invalid(f"{where}: an ancestor path needs at least one link")
    return tuple(steps)


def _steps_down(dictionary: Dictionary, root: NodeType, path, where: str) -> tuple[Step, ...]:
    steps, current = [], root.id
    for backref in path:
        found = [(child, link) for child, link in dictionary.children_links(current) if link.backref == backref]
        if len(found) != 1:
            raise Invalid(f"{where}: aggregation path {list(path)}: {current} has no single backref {backref!r}")
        child, link = found[0]
        steps.append(Step(current, child, link.name, True))
        current = child
    if not steps:
        raise Invalid(f"{where}: an aggregation path needs at least one backref")
    return tuple(steps)


# -- flattening ----------------------------------------------------------------------------

class Flattener:
    """Computes which documents a write touches, and builds them."""

    def __init__(self, specs: dict[str, DocumentSpec]):
        self.specs = specs

    def affected(self, reader: GraphReader, nodes: Iterable[StoredNode]) -> dict[str, set[str]]:
        """kind -> ids of the roots whose documents depend on any of these nodes."""
        by_type: dict[str, set[str]] = {}
        for node in nodes:
            by_type.setdefault(node.type, set()).add(node.id)
        roots: dict[str, set[str]] = {}
        for spec in self.specs.values():
            found = roots.setdefault(spec.kind, set(by_type.get(spec.root, ())))
            # many fields share a path prefix: walk each distinct prefix once
            ups = {steps[:depth] for steps in (a.steps for a in spec.ancestors) for depth in range(1, len(steps) + 1)}
            downs = {steps[:depth] for steps in (a.steps for a in spec.aggregations) for depth in range(1, len(steps) + 1)}
            for steps in ups:
                if steps[-1].target_type in by_type:  # an ancestor changed: its descendants' docs
                    found |= _descend(reader, by_type[steps[-1].target_type], steps)
            for steps in downs:
                if steps[-1].target_type in by_type:  # a descendant changed: its ancestors' docs
                    found |= _ascend(reader, by_type[steps[-1].target_type], steps)
        return roots

    def documents(self, reader: GraphReader, kind: str, root_ids: Iterable[str]) -> list[dict]:
        """The documents of these roots (roots that no longer exist are left out)."""
        spec = self.specs[kind]
        roots = [n for n in reader.nodes(root_ids).values() if n.type == spec.root]
        docs = {r.id: _own(spec, r) for r in roots}
        cache: dict[str, StoredNode] = {r.id: r for r in roots}
        for ancestor in spec.ancestors:
            for root_id, found in _walk_up(reader, list(docs), ancestor.steps, cache).items():
                multi = any(s.to_many for s in ancestor.steps)
                for name, prop in ancestor.properties.items():
                    docs[root_id][name] = _pick([_value(n, prop) for n in found], multi)
        levels: dict[tuple, dict[str, set[str]]] = {}
        for aggregation in spec.aggregations:
            found = _walk_down(reader, list(docs), aggregation.steps, levels)
            if aggregation.fn == "count":  # needs the ids alone: no nodes read, no lists made
                for root_id, ids in found.items():
                    docs[root_id][aggregation.field] = len(ids)
                continue
            _fetch(reader, {i for ids in found.values() for i in ids}, cache)
            for root_id, ids in found.items():
                docs[root_id][aggregation.field] = _aggregate(aggregation, [cache[i] for i in ids if i in cache])
        return list(docs.values())


def _own(spec: DocumentSpec, root: StoredNode) -> dict:
    doc = {"id": root.id, "submitter_id": root.submitter_id, "project_id": root.project_id}
    doc.update({p: root.props.get(p) for p in spec.properties})
    return doc


def _value(node: StoredNode, prop: str):
    return getattr(node, prop) if prop in SYSTEM else node.props.get(prop)


def _pick(values: list, multi: bool):
    values = [v for v in values if v is not None]
    if multi:
        return sorted(set(values), key=str)
    return values[0] if values else None


def _aggregate(aggregation: Aggregation, nodes: list[StoredNode]):
    """An aggregation other than count over the nodes reached (count needs only their ids)."""
    if aggregation.fn == "nested":
        ordered = sorted(nodes, key=lambda n: n.submitter_id)
        return [{p: n.props.get(p) for p in aggregation.properties} for n in ordered]
    if aggregation.fn == "latest":
        valued = [n for n in nodes if _value(n, aggregation.property) is not None]
        newest = max(valued, key=lambda n: (str(_value(n, aggregation.by) or ""), n.id), default=None)
        return None if newest is None else _value(newest, aggregation.property)
    values = []
    for node in nodes:
        value = _value(node, aggregation.property)
        values.extend(value if isinstance(value, list) else [value])
    values = [v for v in values if v is not None]
    if aggregation.fn == "set":
        return sorted(set(values), key=str)
    if not values:
        return None
    return {"min": min, "max": max, "sum": sum}[aggregation.fn](values)


def _fetch(reader: GraphReader, ids: set[str], cache: dict[str, StoredNode]) -> None:
    missing = [i for i in ids if i not in cache]
    if missing:
        cache.update(reader.nodes(missing))


def _walk_up(reader, root_ids: list[str], steps, cache) -> dict[str, list[StoredNode]]:
    """root id -> the nodes reached by following links up the steps."""
    frontier = {root_id: {root_id} for root_id in root_ids}
    for step in steps:
        _fetch(reader, {i for ids in frontier.values() for i in ids}, cache)
        frontier = {root_id: {link.target_id for i in ids if i in cache for link in cache[i].links
                              if link.name == step.link_name} for root_id, ids in frontier.items()}
    _fetch(reader, {i for ids in frontier.values() for i in ids}, cache)
    return {root_id: [cache[i] for i in sorted(ids) if i in cache] for root_id, ids in frontier.items()}


def _walk_down(reader, root_ids: list[str], steps, levels: dict) -> dict[str, set[str]]:
    """root id -> ids reached through the backref steps; shared path prefixes are walked once."""
    frontier = {root_id: {root_id} for root_id in root_ids}
    for depth in range(1, len(steps) + 1):
        key = tuple(steps[:depth])
        if key not in levels:
            step = steps[depth - 1]
            parents = {i for ids in frontier.values() for i in ids}
            children = reader.children(parents, step.target_type, step.link_name)
            levels[key] = {root_id: {c for i in ids for c in children.get(i, ())} for root_id, ids in frontier.items()}
        frontier = levels[key]
    return frontier


def _descend(reader: GraphReader, ids: set[str], steps: tuple[Step, ...]) -> set[str]:
    """Roots below these ancestors: walk the ancestor steps backwards, down through children."""
    current = set(ids)
    for step in reversed(steps):
        children = reader.children(current, step.source_type, step.link_name)
        current = {c for kids in children.values() for c in kids}
    return current


def _ascend(reader: GraphReader, ids: set[str], steps: tuple[Step, ...]) -> set[str]:
    """Roots above these descendants: walk the backref steps backwards, up through links."""
    current = set(ids)
    for step in reversed(steps):
        nodes = reader.nodes(current)
        current = {link.target_id for n in nodes.values() for link in n.links if link.name == step.link_name}
    return current
