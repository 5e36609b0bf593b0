"""The workflow catalog: every WorkflowTemplate in a directory (by default the shipped
workflow_templates/, named by ground.settings), checked and described.

A template is loaded once: its YAML is validated against Argo's JSON Schema (vendored in
workflow_schema/) and against the catalog's own annotations (title, description, accepted inputs,
parameter hints, outputs; see docs/workflows.md). A template that fails either is refused
with the file, the line and the path in the document. Each entry carries a digest (sha256 of
the canonical JSON of the document), which the run registry records with every run.

`validate_parameters` checks a launch's parameters against an entry; the portal's form and the
metadata service both call it, so both refuse the same values with the same messages. The code
lives with the service, the lowest layer that needs it; the worker and the engines import it from here.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import jsonschema
import yaml

from ground.settings import SHIPPED_TEMPLATES

SCHEMA_PATH = Path(__file__).resolve().parent / "workflow_schema" / "workflow-jsonschema.json"
SCHEMA_DEFINITION = "io.argoproj.workflow.v1alpha1.WorkflowTemplate"
PREFIX = "labcommons.io/"
TYPES = ("string", "integer", "number", "boolean")
FILLED_BY = ("input", "run")  # the launcher's input file path; the run's output directory
INPUT_TYPES = ("imzml",)  # imzml: a measurement's imzML file with its ibd beside it
HINT_KEYS = {"type", "minimum", "maximum", "unit", "filled_by", "pattern", "pattern_text"}
OUTPUT_KEYS = {"path", "data_format", "data_category"}
VERDICT_KEY = "verdict"  # optional: true on the one JSON output that carries the run's verdict


class TemplateError(ValueError):
    """A template file that cannot be loaded; each problem names file:line and document path."""

    def __init__(self, file: Path, problems: list[str]):
        self.file, self.problems = Path(file), problems
        super().__init__("\n".join(problems))


class UnknownTemplate(LookupError):
    """A template name that is not in the catalog."""

    def __str__(self) -> str:
        return self.args[0]


class ParameterError(ValueError):
    """Parameters refused for a template: (parameter, message) pairs, all found at once."""

    def __init__(self, template: str, problems: list[tuple[str, str]]):
        self.template, self.problems = template, problems
        super().__init__(f"parameters refused for {template}: "
                         + "; ".join(f"{name}: {message}" for name, message in problems))


@dataclass(frozen=True)
class Parameter:
    """One workflow parameter as a launch form shows it."""
    name: str
    type: str
    description: str
    default: str | None = None
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    filled_by: str | None = None  # set by the launcher, not typed in a form
    pattern: str | None = None    # a regular expression a string value matches whole
    pattern_text: str | None = None  # what the pattern allows, in words (the refusal says it)

    @property
    def required(self) -> bool:
        return self.default is None

    def canonical(self, value) -> str:
        """The value as the string Argo passes; ValueError says what is allowed."""
        text = _typed(value, self.type, self._allowed())
        if self.required and text == "":
            raise ValueError("must not be empty")
        if self.enum is not None and text not in self.enum:
            raise ValueError(f"must be one of {', '.join(self.enum)}, not {value!r}")
        if self.pattern is not None and text != "" and not re.fullmatch(self.pattern, text):
            raise ValueError(f"must be {self.pattern_text}, not {value!r}")
        number = float(text) if self.type in ("integer", "number") else None
        if number is not None and not _in_range(number, self.minimum, self.maximum):
            raise ValueError(f"must be {self._allowed()}, not {value!r}")
        return text

    def _allowed(self) -> str:
        kind = {"integer": "an integer", "number": "a number", "boolean": "true or false",
                "string": "a string"}[self.type]
        bounds = _bounds(self.minimum, self.maximum)
        return f"{kind}{' ' + bounds if bounds else ''}{f' ({self.unit})' if self.unit else ''}"


@dataclass(frozen=True)
class Output:
    """A file a run of the template writes, relative to its output directory (may be a glob)."""
    path: str
    data_format: str
    data_category: str
    verdict: bool = False   # a JSON report whose "passed" and "checks" are the run's outcome


@dataclass(frozen=True)
class Template:
    """A catalog entry: what a catalog page and a launch form need, and the document itself."""
    name: str
    title: str
    description: str
    inputs: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    outputs: tuple[Output, ...]
    digest: str
    path: Path
    document: dict

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def describe(self) -> dict:
        """The entry as plain JSON-able data (no document, no path)."""
        return {"name": self.name, "title": self.title, "description": self.description,
                "inputs": list(self.inputs), "digest": self.digest,
                "parameters": [{**asdict(p), "required": p.required} for p in self.parameters],
                "outputs": [asdict(o) for o in self.outputs]}


class Catalog(Mapping):
    """Templates by name, as loaded from one directory."""

    def __init__(self, templates: list[Template]):
        self._templates = {t.name: t for t in templates}

    def __getitem__(self, name: str) -> Template:
        try:
            return self._templates[name]
        except KeyError:
            raise UnknownTemplate(f"unknown workflow template {name!r}; the catalog has: "
                                  f"{', '.join(sorted(self._templates)) or 'none'}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._templates))

    def __len__(self) -> int:
        return len(self._templates)


# what an engine refuses of a template document, one reason a line (none: it runs it)
Check = Callable[[dict], list[str]]


def load_catalog(directory: Path = SHIPPED_TEMPLATES, check: Check | None = None) -> Catalog:
    """Every *.yaml template in directory; the first invalid one raises TemplateError.

    check: the engine's own refusals (given by the layer that knows the engine, which this
    module must not import), so that a template the engine would refuse at each launch is
    refused here, once, with the engine's reasons."""
    return Catalog([load_template(path, check) for path in sorted(Path(directory).glob("*.yaml"))])


def load_template(path: Path, check: Check | None = None) -> Template:
    """One template file, validated and described; TemplateError locates every problem."""
    path = Path(path)
    text = path.read_text()
    try:
        document, tree = yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise TemplateError(path, [f"{path.name}{line}: not valid YAML ({error})"]) from None
    problems = schema_problems(document)
    if not problems:
        problems = catalog_problems(document, path.stem)
    if problems:
        raise TemplateError(path, [f"{path.name}:{_line(tree, where)}: {_dotted(where) or '(document)'}: "
                                   f"{message}" for where, message in problems])
    refusals = check(document) if check else []
    if refusals:
        raise TemplateError(path, [f"{path.name}: the engine refuses it: {reason}" for reason in refusals])
    return _entry(document, path)


def schema_problems(document) -> list[tuple[list, str]]:
    """(path in document, message) for each way the document breaks Argo's schema."""
    found = []
    for error in sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        if error.context:  # oneOf/anyOf: the alternative that came closest says the most
            error = jsonschema.exceptions.best_match(error.context)
        found.append((list(error.absolute_path), error.message))
    return found


def catalog_problems(document: dict, stem: str) -> list[tuple[list, str]]:
    """(path, message) for what the catalog needs beyond Argo: name, annotations, hints, defaults."""
    problems = []
    meta = document.get("metadata", {})
    if document.get("kind") != "WorkflowTemplate":
        problems.append((["kind"], "must be WorkflowTemplate"))
    if meta.get("name") != stem:
        problems.append((["metadata", "name"], f"must equal the file name {stem!r}"))
    annotations = meta.get("annotations") or {}
    where = ["metadata", "annotations"]
    for key in ("title", "description", "inputs", "parameter-hints"):
        if not str(annotations.get(PREFIX + key, "")).strip():
            problems.append((where, f"missing annotation {PREFIX}{key}"))
    if problems:
        return problems
    unknown = [t for t in _inputs(annotations) if t not in INPUT_TYPES]
    if unknown:
        problems.append((where + [PREFIX + "inputs"], f"unknown input type(s) {', '.join(unknown)}; "
                         f"known: {', '.join(INPUT_TYPES)}"))
    problems += _hint_problems(document, annotations)
    problems += [(where + [PREFIX + "outputs"], message) for message in _output_problems(annotations)]
    return problems


def validate_parameters(template: Template, values: Mapping, *, require_filled: bool = True) -> dict[str, str]:
    """All parameters as canonical strings, defaults filled in; ParameterError lists every problem.

    With require_filled=False (a launch form, before the launcher adds input paths and the output
    directory), parameters filled by the launcher may be missing.
    """
    problems, result = [], {}
    names = [p.name for p in template.parameters]
    for name in values:
        if template.parameter(name) is None:
            hint = difflib.get_close_matches(str(name), names, n=1)
            problems.append((name, f"unknown parameter of {template.name}"
                             + (f"; did you mean {hint[0]!r}?" if hint else "")
                             + f" Its parameters are: {', '.join(names)}"))
    for parameter in template.parameters:
        if parameter.name in values:
            try:
                result[parameter.name] = parameter.canonical(values[parameter.name])
            except ValueError as error:
                problems.append((parameter.name, str(error)))
        elif parameter.default is not None:  # canonical too: "1.0" and 1 make the same launch
            result[parameter.name] = parameter.canonical(parameter.default)
        elif require_filled or not parameter.filled_by:
            problems.append((parameter.name, f"is required ({parameter.description})"))
    if problems:
        raise ParameterError(template.name, problems)
    return result


def digest(document: dict) -> str:
    """sha256 (hex) of the document as canonical JSON: sorted keys, no whitespace, UTF-8."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    """Argo's schema, aimed at its WorkflowTemplate definition (compiled once per process)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    root = {key: schema[key] for key in ("$id", "$schema", "definitions")}
    return jsonschema.Draft202012Validator({**root, "$ref": f"#/definitions/{SCHEMA_DEFINITION}"})


def _entry(document: dict, path: Path) -> Template:
    annotations = document["metadata"]["annotations"]
    hints = json.loads(annotations[PREFIX + "parameter-hints"])
    outputs = json.loads(annotations.get(PREFIX + "outputs", "[]"))
    return Template(
        name=document["metadata"]["name"], title=annotations[PREFIX + "title"].strip(),
        description=annotations[PREFIX + "description"].strip(), inputs=_inputs(annotations),
        parameters=tuple(_parameter(p, hints[p["name"]]) for p in _declared(document)),
        outputs=tuple(Output(**o) for o in outputs), digest=digest(document), path=path,
        document=document)


def _parameter(declared: dict, hint: dict) -> Parameter:
    enum = declared.get("enum")
    return Parameter(
        name=declared["name"], type=hint["type"], description=declared.get("description", ""),
        default=declared.get("value", declared.get("default")), enum=tuple(enum) if enum else None,
        minimum=hint.get("minimum"), maximum=hint.get("maximum"), unit=hint.get("unit"),
        filled_by=hint.get("filled_by"), pattern=hint.get("pattern"), pattern_text=hint.get("pattern_text"))


def _declared(document: dict) -> list[dict]:
    return (document.get("spec", {}).get("arguments") or {}).get("parameters") or []


def _inputs(annotations: dict) -> tuple[str, ...]:
    return tuple(t.strip() for t in annotations[PREFIX + "inputs"].split(",") if t.strip())


def _hint_problems(document: dict, annotations: dict) -> list[tuple[list, str]]:
    """Hints parse, name declared parameters, and every declared default satisfies its hint."""
    where = ["metadata", "annotations", PREFIX + "parameter-hints"]
    try:
        hints = json.loads(annotations[PREFIX + "parameter-hints"])
    except ValueError as error:
        return [(where, f"not valid JSON ({error})")]
    if not isinstance(hints, dict) or not all(isinstance(h, dict) for h in hints.values()):
        return [(where, "must be a JSON object of objects, one per parameter")]
    declared = _declared(document)
    names = [p["name"] for p in declared]
    problems = [(where, f"hint for {name!r}, which is not a parameter") for name in hints if name not in names]
    for index, declared_parameter in enumerate(declared):
        problems += _one_hint_problems(declared_parameter, hints.get(declared_parameter["name"]),
                                       ["spec", "arguments", "parameters", index])
    return problems


def _one_hint_problems(declared: dict, hint: dict | None, where: list) -> list[tuple[list, str]]:
    name = declared["name"]
    if hint is None:
        return [(where, f"parameter {name!r} has no entry in {PREFIX}parameter-hints")]
    problems = [(where, f"{name}: unknown hint key {key!r}; allowed: {', '.join(sorted(HINT_KEYS))}")
                for key in hint if key not in HINT_KEYS]
    if hint.get("type") not in TYPES:
        problems.append((where, f"{name}: hint type must be one of {', '.join(TYPES)}, not {hint.get('type')!r}"))
    if hint.get("filled_by") not in (None, *FILLED_BY):
        problems.append((where, f"{name}: filled_by must be one of {', '.join(FILLED_BY)}"))
    if not declared.get("description"):
        problems.append((where, f"parameter {name!r} has no description"))
    problems += _pattern_problems(name, hint, where)
    if problems:
        return problems
    default = declared.get("value", declared.get("default"))
    if default is not None:
        try:
            _parameter(declared, hint).canonical(default)
        except ValueError as error:
            problems.append((where + ["value"], f"default of {name!r} {error}"))
    return problems


def _pattern_problems(name: str, hint: dict, where: list) -> list[tuple[list, str]]:
    """A pattern is a valid regular expression, on a string, said in words by pattern_text."""
    if "pattern" not in hint and "pattern_text" not in hint:
        return []
    if hint.get("type") != "string" or not isinstance(hint.get("pattern"), str) or not hint.get("pattern_text"):
        return [(where, f"{name}: a pattern is for a string parameter and comes with pattern_text, "
                        "what it allows in words")]
    try:
        re.compile(hint["pattern"])
    except re.error as error:
        return [(where, f"{name}: pattern is not a regular expression ({error})")]
    return []


def _output_problems(annotations: dict) -> list[str]:
    try:
        outputs = json.loads(annotations.get(PREFIX + "outputs", "[]"))
    except ValueError as error:
        return [f"not valid JSON ({error})"]
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and OUTPUT_KEYS <= set(o) <= OUTPUT_KEYS | {VERDICT_KEY}
                                                for o in outputs):
        return [f"must be a JSON list of objects with exactly the keys {', '.join(sorted(OUTPUT_KEYS))} "
                f"(and optionally {VERDICT_KEY})"]
    verdicts = [o for o in outputs if o.get(VERDICT_KEY) is not None]
    if any(o[VERDICT_KEY] is not True or o["data_format"] != "json" for o in verdicts) or len(verdicts) > 1:
        return [f"{VERDICT_KEY}: true on at most one output, a json one (its report's passed and checks)"]
    return []


def _typed(value, kind: str, allowed: str) -> str:
    """value as Argo's string for a parameter of this type; ValueError names what is allowed.
    A string parameter takes a number or a boolean as its text, as Argo's AnyString does."""
    refused = ValueError(f"must be {allowed}, not {value!r}")
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)) and math.isfinite(value):
            return _number_text(value)
        raise refused
    if kind == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if value in ("true", "false"):
            return value
        raise refused
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise refused
    try:
        number = float(value)
    except ValueError:
        raise refused from None
    if not math.isfinite(number) or (kind == "integer" and not number.is_integer()):
        raise refused
    return _number_text(number)


def _number_text(number: float) -> str:
    """A number as Argo's parameter text: whole numbers without a point, others exactly."""
    return str(int(number)) if float(number).is_integer() and abs(number) < 2 ** 53 else repr(float(number))


def _in_range(number: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or number >= minimum) and (maximum is None or number <= maximum)


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return f">= {minimum:g}"
    return f"<= {maximum:g}" if maximum is not None else ""


def _dotted(path: list) -> str:
    """spec.templates[1].retryStrategy.limit"""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line(node: yaml.Node | None, path: list) -> int:
    """1-based line of the deepest YAML node that path reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
