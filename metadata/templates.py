"""The service's view of the workflow catalog (metadata/workflow_catalog.py): what a launch
needs from a template, in the service's terms and errors.

- input formats: a template's input types as data_file formats (imzml: an imzML and its ibd);
- standard: templates a technician may launch (annotation labcommons.io/standard: "true");
- check: the user's parameters, canonical, with defaults; the parameters the worker fills
  (hint `filled_by`: the input path, the output directory) are refused from users and left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ground.settings import SHIPPED_TEMPLATES
from metadata.errors import Invalid, Problem
from metadata.idl import metadata_thrift as T
from metadata import workflow_catalog as argo_catalog

INPUT_FORMATS = {"imzml": ("imzML", "ibd")}
STANDARD = argo_catalog.PREFIX + "standard"


@dataclass(frozen=True)
class Template:
    entry: argo_catalog.Template

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def digest(self) -> str:
        return self.entry.digest

    @property
    def document(self) -> dict:
        return self.entry.document

    @property
    def standard(self) -> bool:
        return self.document["metadata"]["annotations"].get(STANDARD) == "true"

    @property
    def input_formats(self) -> tuple[str, ...]:
        return tuple(fmt for kind in self.entry.inputs for fmt in INPUT_FORMATS[kind])

    @property
    def parameters(self) -> tuple[argo_catalog.Parameter, ...]:
        """The parameters a person sets (not those the worker fills)."""
        return tuple(p for p in self.entry.parameters if not p.filled_by)

    def check(self, values: dict[str, str]) -> dict[str, str]:
        """The user's parameters as canonical strings with defaults; Invalid locating each problem."""
        filled = {p.name for p in self.entry.parameters if p.filled_by}
        problems = [(name, "is filled in by the worker (the input file or the output directory); leave it out")
                    for name in values if name in filled]
        try:
            checked = argo_catalog.validate_parameters(self.entry, {k: v for k, v in values.items() if k not in filled},
                                                       require_filled=False)
        except argo_catalog.ParameterError as error:
            problems += error.problems
        if problems:
            located = [Problem(f"parameters.{name}", message) for name, message in problems]
            raise Invalid("; ".join(f"parameters.{name}: {message}" for name, message in problems), located)
        return {k: v for k, v in checked.items() if k not in filled}


class Catalog:
    def __init__(self, entries: argo_catalog.Catalog):
        self._templates = {name: Template(entries[name]) for name in entries}

    def get(self, name: str) -> Template | None:
        return self._templates.get(name)

    def names(self) -> list[str]:
        return sorted(self._templates)

    def templates(self) -> list[Template]:
        return [self._templates[n] for n in self.names()]

    @staticmethod
    def thrift(t: Template) -> T.WorkflowTemplate:
        entry = t.entry
        params = [T.TemplateParameter(name=p.name, type=p.type, description=p.description,
                                      enum_values=list(p.enum or ()), default_value=p.default or "",
                                      is_required=p.required, minimum=p.minimum, maximum=p.maximum,
                                      unit=p.unit or "") for p in t.parameters]
        return T.WorkflowTemplate(name=t.name, title=entry.title, description=entry.description,
                                  input_formats=list(t.input_formats), parameters=params, digest=t.digest,
                                  standard=t.standard)


def load(directory: Path | None = None, check: argo_catalog.Check | None = None) -> Catalog:
    """The catalog of a directory (default: the shipped templates); Invalid locating a bad template.

    check: the engine's refusals of a template (the CLI passes the local engine's), so a
    template the engine would refuse at every launch is refused at load instead."""
    try:
        return Catalog(argo_catalog.load_catalog(Path(directory) if directory else SHIPPED_TEMPLATES,
                                                 check))
    except argo_catalog.TemplateError as error:
        raise Invalid(f"workflow template {error.file.name} is invalid:\n" + "\n".join(error.problems)) from None
