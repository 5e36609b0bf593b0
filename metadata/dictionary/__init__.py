"""The data dictionary: one YAML file per node type, Gen3-style, loaded and checked once.

A type has JSON-Schema properties, `required` properties, `ordered` pairs of properties (the
one cross-field rule: the second may not be below the first), and `links` to parent types
(single links, or Gen3 link groups with `subgroup`, `required` and `exclusive`).
docs/dictionary.md describes the format.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from metadata.dictionary.compiled import DATE, compile_check
from metadata.errors import Invalid

DEFAULT_DIRECTORY = Path(__file__).with_name("default")
SYSTEM_FIELDS = ("id", "type", "submitter_id", "project_id", "version",
                 "created_at", "updated_at", "created_by", "updated_by")
CATEGORIES = ("administrative", "clinical", "biospecimen", "experimental", "data_file", "analysis")
MULTIPLICITIES = ("many_to_one", "one_to_one", "many_to_many", "one_to_many")
PROPERTY_KEYWORDS = {"type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                     "pattern", "format", "minLength", "maxLength", "items", "description", "unit",
                     "title", "default"}
PROPERTY_TYPES = ("string", "integer", "number", "boolean", "array")
TYPE_WORDS = {"string": "text", "integer": "a whole number", "number": "a number",
              "boolean": "true or false", "array": "a list", "object": "an object"}


@dataclass(frozen=True)
class LinkDef:
    name: str
    backref: str
    label: str
    target_type: str
    multiplicity: str
    required: bool

    @property
    def to_many(self) -> bool:
        """Whether a child may name several parents through this link."""
        return self.multiplicity in ("many_to_many", "one_to_many")


@dataclass(frozen=True)
class LinkGroup:
    members: tuple[str, ...]
    required: bool
    exclusive: bool


@dataclass
class NodeType:
    id: str
    title: str
    description: str
    category: str
    properties: dict
    required: tuple[str, ...]
    links: dict[str, LinkDef]
    groups: tuple[LinkGroup, ...] = ()
    ordered: tuple[tuple[str, str], ...] = ()   # (low, high): when both are given, high >= low
    managed: bool = False   # written only by the service itself (runs), never by a submission
    _validator: Draft202012Validator | None = field(default=None, repr=False)
    _valid: object = field(default=None, repr=False)  # the compiled check (compiled.py), made on first use

    @property
    def is_global(self) -> bool:
        """Administrative nodes (programs, projects) are named across projects, not within one."""
        return self.category == "administrative"

    def validator(self) -> Draft202012Validator:
        if self._validator is None:
            # `required` is checked in check_properties: jsonschema's errors do not say which one is missing
            schema = {"type": "object", "properties": self.properties, "additionalProperties": False}
            self._validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return self._validator

    def check_properties(self, props: dict) -> list[tuple[str, str]]:
        """(field, sentence) for every property problem; empty when the properties are valid."""
        if self._valid is None:
            self._valid = compile_check(self.properties, self.required)
        order = self.order_problems(props)
        if self._valid(props):  # the common case, in microseconds; any doubt gets the full validation
            return order
        problems = [(name, f"{name} is required for a {self.id}{_hint(self.properties.get(name, {}))}")
                    for name in self.required if props.get(name) is None]
        # JSON Schema takes NaN for a number and Infinity where no maximum is set: refuse both first
        bad = {name: why for name, value in props.items() if (why := non_finite(value)) is not None}
        problems += [(name, non_finite_message(name, why)) for name, why in bad.items()]
        problems += [_explain(self, error) for error in self.validator().iter_errors(props)
                     if not error.absolute_path or error.absolute_path[0] not in bad]
        return sorted(problems + order)

    def order_problems(self, props: dict) -> list[tuple[str, str]]:
        """(the upper field, sentence) for each ordered pair whose upper value is below the lower one."""
        return [(high, f"{high} ({_shown(props[high])}) is below {low} ({_shown(props[low])}); "
                       f"it must be at least {low}")
                for low, high in self.ordered
                if _comparable(props.get(low), props.get(high)) and props[high] < props[low]]

    def as_json(self) -> dict:
        links = [vars(link) | {"to_many": link.to_many} for link in self.links.values()]
        groups = [vars(group) | {"members": list(group.members)} for group in self.groups]
        return {"id": self.id, "title": self.title, "description": self.description,
                "category": self.category, "properties": self.properties,
                "required": list(self.required), "ordered": [list(pair) for pair in self.ordered],
                "links": links, "link_groups": groups, "managed": self.managed}


class Dictionary:
    """All node types of a commons, checked for consistency when loaded."""

    def __init__(self, types: dict[str, NodeType]):
        self.types = types
        self._check_targets()

    @classmethod
    def load(cls, directory: Path | None = None) -> "Dictionary":
        """Load every *.yaml in the directory (the shipped default when None)."""
        directory = Path(directory or DEFAULT_DIRECTORY)
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise Invalid(f"dictionary: no *.yaml files in {directory}")
        return cls({t.id: t for t in (_load_type(path) for path in files)})

    def get(self, type_name: str) -> NodeType | None:
        return self.types.get(type_name)

    def names(self) -> list[str]:
        return sorted(self.types)

    def children_links(self, parent_type: str) -> list[tuple[str, LinkDef]]:
        """(child type, link) for every link that points at this type."""
        return [(t.id, link) for t in self.types.values() for link in t.links.values()
                if link.target_type == parent_type]

    def as_json(self) -> str:
        return json.dumps({name: t.as_json() for name, t in sorted(self.types.items())})

    def _check_targets(self) -> None:
        for node_type in self.types.values():
            for link in node_type.links.values():
                if link.target_type not in self.types:
                    raise Invalid(f"dictionary {node_type.id}.yaml: link {link.name!r} targets "
                                  f"unknown type {link.target_type!r}")


def non_finite(value) -> str | None:
    """"NaN", "Infinity" or "-Infinity" when value is or holds (in lists and objects) such a float; else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((bad for item in items if (bad := non_finite(item)) is not None), None)


def non_finite_message(name: str, bad: str) -> str:
    return f"{name} is {bad}, which is not a number: give a finite number (NaN and ±Infinity are refused)"


def _load_type(path: Path) -> NodeType:
    where = f"dictionary {path.name}"
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise Invalid(f"{where}: cannot read: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("id") != path.stem:
        raise Invalid(f"{where}: must be a mapping whose id is {path.stem!r}")
    if doc.get("category") not in CATEGORIES:
        raise Invalid(f"{where}: category must be one of {', '.join(CATEGORIES)}")
    properties = doc.get("properties") or {}
    _check_properties(where, properties)
    required = tuple(doc.get("required") or ())
    for name in required:
        if name not in properties:
            raise Invalid(f"{where}: required property {name!r} is not defined under properties")
    links, groups = _load_links(where, doc.get("links") or [])
    ordered = _load_ordered(where, doc.get("ordered") or [], properties)
    return NodeType(doc["id"], doc.get("title", doc["id"]), doc.get("description", ""),
                    doc["category"], properties, required, links, tuple(groups), ordered, bool(doc.get("managed")))


def _load_ordered(where: str, entries: list, properties: dict) -> tuple[tuple[str, str], ...]:
    """The `ordered` pairs: two defined properties of one kind that can be compared (numbers, dates)."""
    pairs = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and all(name in properties for name in entry)):
            raise Invalid(f"{where}: ordered entry {entry!r} must name two properties defined under properties, "
                          "[lower, upper]")
        kinds = {_order_kind(properties[name]) for name in entry}
        if len(kinds) != 1 or None in kinds:
            raise Invalid(f"{where}: ordered entry {entry!r} must name two numbers or two dates")
        pairs.append((entry[0], entry[1]))
    return tuple(pairs)


def _order_kind(schema: dict) -> str | None:
    if schema.get("type") in ("number", "integer"):
        return "number"
    return "date" if schema.get("type") == "string" and schema.get("format") == "date" else None


def _shown(value):
    """A number as a technician wrote it: 400.0 as 400."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _comparable(low, high) -> bool:
    """Both numbers (not booleans) or both dates; anything else is the type check's to refuse."""
    numbers = all(type(v) in (int, float) for v in (low, high))
    return numbers or all(type(v) is str and DATE.fullmatch(v) for v in (low, high))


def _check_properties(where: str, properties: dict) -> None:
    for name, schema in properties.items():
        if name in SYSTEM_FIELDS:
            raise Invalid(f"{where}: {name!r} is a system field and cannot be a property")
        unknown = set(schema) - PROPERTY_KEYWORDS
        if unknown:
            raise Invalid(f"{where}: property {name!r} uses unsupported keywords {sorted(unknown)}")
        if schema.get("type") not in PROPERTY_TYPES:
            raise Invalid(f"{where}: property {name!r} needs a type, one of {', '.join(PROPERTY_TYPES)}")


def _load_links(where: str, entries: list) -> tuple[dict[str, LinkDef], list[LinkGroup]]:
    links: dict[str, LinkDef] = {}
    groups: list[LinkGroup] = []
    for entry in entries:
        if "subgroup" in entry:
            members = [_link(where, item) for item in entry["subgroup"]]
            links.update({m.name: m for m in members})
            groups.append(LinkGroup(tuple(m.name for m in members), bool(entry.get("required")),
                                    bool(entry.get("exclusive"))))
        else:
            link = _link(where, entry)
            links[link.name] = link
    return links, groups


def _link(where: str, entry: dict) -> LinkDef:
    missing = [k for k in ("name", "backref", "label", "target_type", "multiplicity") if k not in entry]
    if missing:
        raise Invalid(f"{where}: link {entry.get('name', '?')!r} lacks {', '.join(missing)}")
    if entry["multiplicity"] not in MULTIPLICITIES:
        raise Invalid(f"{where}: link {entry['name']!r} multiplicity must be one of {', '.join(MULTIPLICITIES)}")
    return LinkDef(entry["name"], entry["backref"], entry["label"], entry["target_type"],
                   entry["multiplicity"], bool(entry.get("required")))


def _explain(node_type: NodeType, error) -> tuple[str, str]:
    """Turn a jsonschema error into (field, a sentence a technician understands)."""
    path = [str(p) for p in error.absolute_path]
    name = path[0] if path else ""
    schema = error.schema
    kind = error.validator
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(node_type.properties))
        name = extra[0] if extra else name
        return name, _unknown_property(node_type, name)
    value = json.dumps(error.instance)
    if kind == "enum":
        return name, f"{value} is not allowed; choose one of: {', '.join(map(str, schema['enum']))}"
    if kind == "type":
        return name, f"{value} is not {TYPE_WORDS.get(schema['type'], schema['type'])}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most",
                 "exclusiveMinimum": "more than", "exclusiveMaximum": "less than"}
        unit = f" {schema['unit']}" if "unit" in schema else ""
        return name, f"{value} is out of range: must be {words[kind]} {error.validator_value}{unit}"
    if kind == "format":
        return name, f"{value} is not a valid {schema['format']} (write dates as YYYY-MM-DD)"
    if kind == "pattern":
        return name, f"{value} does not have the expected form ({schema['pattern']})"
    return name, error.message


def _hint(schema: dict) -> str:
    if "enum" in schema:
        return f" (one of: {', '.join(map(str, schema['enum']))})"
    return f" ({schema['description']})" if schema.get("description") else ""


def _unknown_property(node_type: NodeType, name: str) -> str:
    close = difflib.get_close_matches(name, list(node_type.properties) + list(node_type.links), n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    return f"{name!r} is not a property of {node_type.id}{suggestion}"
