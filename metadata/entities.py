"""Submission bodies (JSON or TSV) parsed into entities, and nodes written back out as TSV.

Pure functions, shared by the service (parsing what it is sent) and the CLI (exporting).
An entity is a dict in Gen3's submission form:
    {"type": "sample", "submitter_id": "s-1", "organ": "liver", "cases": {"submitter_id": "c-1"}}
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from metadata.dictionary import Dictionary, NodeType, non_finite, non_finite_message
from metadata.errors import Invalid, ProblemList
from metadata.nesting import loads

FORMATS = ("json", "tsv")
TRUE_WORDS = {"true", "yes", "1"}
FALSE_WORDS = {"false", "no", "0"}


@dataclass
class Entity:
    """One entity of a batch, with where it came from (index always; TSV row when from TSV)."""
    doc: dict
    index: int
    row: int = 0

    def location(self) -> str:
        return f"row {self.row}" if self.row else f"entity {self.index}"


@dataclass(frozen=True)
class ValueLimits:
    """How large one submitted value may be (ground/settings.py: max_property_bytes, max_submitter_id)."""
    property_bytes: int = 64 * 1024
    submitter_id: int = 256


def parse(body: str, fmt: str, dictionary: Dictionary, limits: ValueLimits = ValueLimits()) -> list[Entity]:
    """Entities from a submission body; Invalid with located problems if it cannot be read, or if
    a value is too large or not a finite number."""
    if fmt not in FORMATS:
        raise Invalid(f"format: {fmt!r} is not a submission format; use json or tsv")
    if not body.strip():
        raise Invalid("the batch is empty: give at least one entity", code="empty_batch")
    entities = _parse_json(body) if fmt == "json" else _parse_tsv(body, dictionary)
    check_values(entities, dictionary, limits)
    return entities


def check_values(entities: list[Entity], dictionary: Dictionary, limits: ValueLimits) -> None:
    """Refuse, located by entity (or row) and field, values over the size caps and NaN or ±Infinity
    anywhere (JSON's NaN / Infinity / 1e999, TSV's nan / inf), before anything else looks at them."""
    problems, first = ProblemList(), ""
    for entity in entities:
        node_type = dictionary.get(str(entity.doc.get("type", "")))
        links = node_type.links if node_type else {}
        for name, value in entity.doc.items():
            if (why := value_problem(name, value, limits, name in links)) is not None:
                problems.add(name, why, index=entity.index, row=entity.row)
                first = first or f"{entity.location()}: {why}"
    if problems.items:
        raise Invalid(f"the batch was refused: {first} ({len(problems.items)} problem(s)); nothing was written",
                      problems.items)


def value_problem(name: str, value, limits: ValueLimits, link: bool = False) -> str | None:
    """Why one submitted value is refused; None when it may go on to the dictionary's checks.
    A link's references are not a property: a batch's size bounds them, not the per-value cap."""
    kind = type(value)
    if kind is int or kind is bool or (kind is str and name != "submitter_id"
                                       and len(value) * 6 + 2 <= limits.property_bytes):
        return None  # most values: nothing to measure (checked in this order for speed)
    if (bad := non_finite(value)) is not None:
        return non_finite_message(name, bad)
    if name == "submitter_id" and isinstance(value, str) and len(value) > limits.submitter_id:
        return f"submitter_id is {len(value):,} characters long; the limit is {limits.submitter_id:,}"
    if link or not _may_exceed(value, limits.property_bytes):
        return None
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > limits.property_bytes:
        return f"{name} is {size:,} bytes as JSON; the limit for one value is {limits.property_bytes:,} bytes"
    return None


def _may_exceed(value, cap: int) -> bool:
    """Whether a value could be over cap bytes as JSON; saves encoding the many small ones."""
    if isinstance(value, str):
        return len(value) * 6 + 2 > cap  # at most 6 bytes a character (\u001f), and the quotes
    return isinstance(value, (list, dict))


def _parse_json(body: str) -> list[Entity]:
    try:
        data = loads(body, "body")
    except json.JSONDecodeError as exc:
        raise Invalid(f"the JSON is malformed at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                      code="malformed") from None
    items = data if isinstance(data, list) else [data]
    problems = ProblemList()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.add("", f"entity {i} is {type(item).__name__}, not an object", index=i)
    problems.raise_if_any("the JSON is not a list of entities")
    if not items:
        raise Invalid("the batch is empty: give at least one entity", code="empty_batch")
    return [Entity(item, i) for i, item in enumerate(items)]


def _parse_tsv(body: str, dictionary: Dictionary) -> list[Entity]:
    # csv refuses a cell over 128 KiB by raising mid-read; the batch size already bounds cells, and
    # an oversized cell is reported with its row and column by check_values
    if csv.field_size_limit() < len(body):
        csv.field_size_limit(len(body))
    reader = csv.reader(io.StringIO(body), delimiter="\t")
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise Invalid(f"the TSV could not be read at row {reader.line_num}: {exc}", code="malformed") from None
    header = [h.strip() for h in rows[0]] if rows else []
    if "type" not in header or "submitter_id" not in header:
        raise Invalid("the TSV header must have the columns type and submitter_id", code="malformed")
    problems = ProblemList()
    entities = []
    for line, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.add("", f"has {len(cells)} cells but the header has {len(header)}",
                         index=len(entities), row=line)
            continue
        entities.append(_tsv_entity(dict(zip(header, cells)), dictionary, len(entities), line))
    problems.raise_if_any("the TSV could not be read")
    if not entities:
        raise Invalid("the batch is empty: the TSV has no data rows", code="empty_batch")
    return entities


def _tsv_entity(cells: dict, dictionary: Dictionary, index: int, row: int) -> Entity:
    doc: dict = {}
    node_type = dictionary.get(cells.get("type", "").strip())
    for column, raw in cells.items():
        value = raw.strip()
        if value == "":
            continue
        if "." in column:
            link, key = column.split(".", 1)
            _add_link(doc, link, key, value, node_type)
        elif node_type and column in node_type.properties:
            doc[column] = coerce(value, node_type.properties[column])
        else:
            doc[column] = value
    return Entity(doc, index, row)


def _add_link(doc: dict, link: str, key: str, value: str, node_type: NodeType | None) -> None:
    """`cases.submitter_id` cells become link references; to-many links take comma lists."""
    link_def = node_type.links.get(link) if node_type else None
    if link_def and link_def.to_many:
        doc[link] = [{key: v.strip()} for v in value.split(",") if v.strip()]
    else:
        doc[link] = {key: value}


def coerce(value: str, schema: dict):
    """A TSV cell as the dictionary's type. A cell that does not convert stays text, so the
    dictionary check reports it with every other problem of the batch."""
    kind = schema.get("type")
    if kind == "array":
        return [coerce(v.strip(), schema.get("items", {"type": "string"})) for v in value.split(",")]
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value.lower() in TRUE_WORDS | FALSE_WORDS:
        return value.lower() in TRUE_WORDS
    return value


def tsv_header(properties: list[str], links: list[str]) -> list[str]:
    """The columns of a type's TSV export; submit reads the same columns back."""
    return ["type", "id", "submitter_id", "project_id", *properties, *(f"{l}.submitter_id" for l in links)]


def tsv_row(properties: list[str], links: list[str], node: dict) -> list[str]:
    """One node (as the client decodes it) as the cells under tsv_header."""
    values = [_cell(node["properties"].get(p)) for p in properties]
    refs = [",".join(l["target_submitter_id"] for l in node["links"] if l["name"] == name) for name in links]
    return [node["type"], node["id"], node["submitter_id"], node["project_id"], *values, *refs]


def submission_doc(node: dict) -> dict:
    """A node (as the client decodes it) in the JSON form submit accepts back."""
    doc = {"type": node["type"], "id": node["id"], "submitter_id": node["submitter_id"],
           "project_id": node["project_id"], **node["properties"]}
    for link in node["links"]:
        ref = {"submitter_id": link["target_submitter_id"]}
        previous = doc.get(link["name"])
        doc[link["name"]] = ref if previous is None else [*(previous if isinstance(previous, list) else [previous]), ref]
    return doc


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(map(_cell, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
