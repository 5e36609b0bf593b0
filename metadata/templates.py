"""The service's view of the workflow catalog: what a launch needs from a template.

(Placeholder until workflow_templates/catalog.py lands; then this delegates to it.)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from metadata.errors import Invalid
from metadata.idl import metadata_thrift as T

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "workflow_templates"
ANNOTATION = "labcommons.io/"
SYSTEM_PARAMETERS = ("run-id", "output-dir")   # and input-<format>: the worker fills these


def is_system_parameter(name: str) -> bool:
    return name in SYSTEM_PARAMETERS or name.startswith("input-")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    description: str = ""
    enum: tuple[str, ...] = ()
    default: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""

    def check(self, raw: str) -> str:
        if self.enum and raw not in self.enum:
            raise Invalid(f"parameters.{self.name}: {raw!r} is not allowed; choose one of {', '.join(self.enum)}")
        if self.type in ("integer", "number"):
            try:
                value = int(raw) if self.type == "integer" else float(raw)
            except ValueError:
                raise Invalid(f"parameters.{self.name}: {raw!r} is not {'an integer' if self.type == 'integer' else 'a number'}") from None
            if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
                raise Invalid(f"parameters.{self.name}: {raw} is out of range; give {self.minimum} to {self.maximum}")
        if self.type == "boolean" and raw not in ("true", "false"):
            raise Invalid(f"parameters.{self.name}: {raw!r} is not true or false")
        return raw


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    input_formats: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    digest: str
    standard: bool
    document: dict

    def check(self, values: dict[str, str]) -> dict[str, str]:
        """The full parameters of a launch (defaults filled in); Invalid naming the first bad one."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise Invalid(f"parameters.{unknown[0]}: {self.name} has no such parameter; it has "
                          f"{', '.join(known) or 'none'}")
        checked = {}
        for p in self.parameters:
            raw = values.get(p.name, p.default)
            if raw is None:
                raise Invalid(f"parameters.{p.name}: required by {self.name}")
            checked[p.name] = p.check(str(raw))
        return checked


class Catalog:
    def __init__(self, templates: list[Template]):
        self._templates = {t.name: t for t in templates}

    def get(self, name: str) -> Template | None:
        return self._templates.get(name)

    def names(self) -> list[str]:
        return sorted(self._templates)

    def templates(self) -> list[Template]:
        return [self._templates[n] for n in self.names()]

    @staticmethod
    def thrift(t: Template) -> T.WorkflowTemplate:
        params = [T.TemplateParameter(name=p.name, type=p.type, description=p.description, enum_values=list(p.enum),
                                      default_value=p.default or "", is_required=p.default is None,
                                      minimum=p.minimum, maximum=p.maximum, unit=p.unit) for p in t.parameters]
        return T.WorkflowTemplate(name=t.name, title=t.title, description=t.description,
                                  input_formats=list(t.input_formats), parameters=params, digest=t.digest,
                                  standard=t.standard)


def load(directory: Path | None = None) -> Catalog:
    directory = Path(directory) if directory else PACKAGE_DIR
    return Catalog([_template(path) for path in sorted(directory.glob("*.yaml"))])


def _template(path: Path) -> Template:
    doc = yaml.safe_load(path.read_text())
    meta = doc.get("metadata") or {}
    notes = meta.get("annotations") or {}
    hints = json.loads(notes.get(ANNOTATION + "parameters", "{}"))
    declared = (doc["spec"].get("arguments") or {}).get("parameters", [])
    params = tuple(_parameter(p, hints.get(p["name"], {})) for p in declared if not is_system_parameter(p["name"]))
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    formats = tuple(f.strip() for f in notes.get(ANNOTATION + "inputs", "").split(",") if f.strip())
    return Template(meta["name"], notes.get(ANNOTATION + "title", meta["name"]), notes.get(ANNOTATION + "description", ""),
                    formats, params, digest, notes.get(ANNOTATION + "standard", "false") == "true", doc)


def _parameter(p: dict, hint: dict) -> Parameter:
    default = p.get("value", p.get("default"))
    return Parameter(p["name"], hint.get("type", "string"), p.get("description", ""),
                     tuple(str(v) for v in p.get("enum") or ()), None if default is None else str(default),
                     hint.get("minimum"), hint.get("maximum"), hint.get("unit", ""))
