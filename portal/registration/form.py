"""The registration form, made from the data dictionary (pure functions, no requests).

Each measurement property becomes one field: a dropdown for an enum, a number box for numbers,
a date box for dates, else a text box; required fields are marked; the dictionary's unit and
description are shown. The form's values become submit entities, and the service's issues are
placed next to the field they name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ground.storage import RUNS
from metadata.entities import coerce
from portal.explorer.widgets import label

MEASUREMENT = "measurement"
# A measurement's submitter_id becomes a directory in its project's folder of the storage root.
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
MAX_IDENTIFIER = 128
LINK_FIELDS = {"experiments": "experiment", "samples": "sample"}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str            # select, number, integer, date, text
    required: bool
    unit: str
    description: str
    options: tuple[str, ...] = ()


def fields(type_def: dict) -> list[Field]:
    """One field per property of the type, in dictionary order."""
    required = set(type_def.get("required", ()))
    return [_field(name, spec, name in required) for name, spec in type_def["properties"].items()]


def _field(name: str, spec: dict, required: bool) -> Field:
    return Field(name, label(name, spec), _kind(spec), required, spec.get("unit", ""),
                 spec.get("description", ""), tuple(spec.get("enum", ())))


def _kind(spec: dict) -> str:
    if "enum" in spec:
        return "select"
    if spec.get("type") in ("number", "integer"):
        return spec["type"]
    return "date" if spec.get("format") == "date" else "text"


def identifier_problem(value: str) -> str | None:
    """Why a measurement identifier cannot name its storage directory, or None."""
    if not value:
        return "submitter_id: give the measurement an identifier, e.g. slide-07-run1"
    if len(value) > MAX_IDENTIFIER or not IDENTIFIER.match(value):
        return (f"submitter_id: {value!r} is not allowed; use letters, digits, '-', '_' and single dots "
                f"(at most {MAX_IDENTIFIER} characters), starting with a letter or digit")
    if value == RUNS:
        return f"submitter_id: {RUNS!r} is the folder of the project's workflow runs; give the measurement another identifier"
    return None


def measurement_entity(values: dict, type_def: dict) -> dict:
    """The measurement as a submit entity: typed property values, links to experiment and sample."""
    entity = {"type": MEASUREMENT, "submitter_id": str(values.get("submitter_id", "")).strip()}
    for name, spec in type_def["properties"].items():
        raw = str(values.get(name, "") or "").strip()
        if raw:
            entity[name] = coerce(raw, spec)
    for link, field in LINK_FIELDS.items():
        if target := str(values.get(field, "") or "").strip():
            entity[link] = {"submitter_id": target}
    return entity


def data_file_entity(measurement: str, staged, storage_url: str) -> dict:
    """A data_file node for one staged upload, linked to its measurement (as the demo names them)."""
    return {"type": "data_file", "submitter_id": f"{measurement}.{staged.data_format}",
            "file_name": staged.file_name, "data_format": staged.data_format,
            "file_size": staged.file_size, "md5sum": staged.md5sum, "storage_url": storage_url,
            "data_category": "raw", "measurements": {"submitter_id": measurement}}


def issues_by_field(issues, names: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The service's issues of entity 0 by form field (links by their field), and the rest."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for issue in issues:
        field = LINK_FIELDS.get(issue.field, issue.field)
        if issue.index == 0 and field in names:
            by_field.setdefault(field, []).append(issue.message)
        else:
            general.append(f"{issue.field}: {issue.message}" if issue.field else issue.message)
    return by_field, general


def form_names(type_def: dict) -> set[str]:
    """Every name the form has a place for."""
    return {"submitter_id", *LINK_FIELDS.values(), *type_def["properties"]}
