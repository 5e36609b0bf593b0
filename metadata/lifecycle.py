"""Storage lifecycle rules: which files of ended runs go, and when (Trellis's intermediate-deleting
trigger; the genomics service's archiving rules).

A rule (YAML, one file per rule in workflow_templates/lifecycle/, see docs/operations.md) is either
- a deletion: `when` (a template, the run statuses, the age in days since the run finished) and
  `delete` (patterns relative to the run's folder, `**` crossing folders); or
- a quota: `quota` (gigabytes, optionally the projects it is for): admins are warned when a
  project's storage passes it.
A rule is refused at load, naming the rule and the field, for an unknown field, a negative age, or a
pattern that could reach a registered output of its template or the raw data a run reads (staged
under `inputs/`); the worker still never deletes a registered output, a link or anything outside
the run's folder (workflow_templates/janitor.py). The service records each deletion on the run.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ground.settings import SHIPPED_LIFECYCLE
from metadata import policy, rule_files
from metadata.errors import Invalid
from metadata.idl import metadata_thrift as T
from metadata.runs import now

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RULE_KEYS = {"name", "description", "enabled", "when", "delete", "quota"}
WHEN_KEYS = {"template", "status", "age_days"}
QUOTA_KEYS = {"gigabytes", "projects"}
ENDED = ("succeeded", "failed", "cancelled")
RAW_SAMPLES = ("inputs/input.imzML", "inputs/input.ibd")  # what the worker stages: links to raw data
OUTPUTS = "outputs"          # the run folder's subfolder the template writes (worker.output_dir)
MAX_RECORDED_PATHS = 200


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    enabled: bool
    template: str = ""                   # "" for every template
    statuses: tuple[str, ...] = ()
    age_days: float = 0.0
    patterns: tuple[str, ...] = ()
    quota_gigabytes: float = 0.0
    projects: tuple[str, ...] = ()       # a quota's projects; () for every project

    @property
    def is_quota(self) -> bool:
        return self.quota_gigabytes > 0

    def matches(self, path: str) -> bool:
        """Whether a path relative to the run's folder is one this rule deletes."""
        return any(pattern_regex(p).fullmatch(path) for p in self.patterns)


def pattern_regex(pattern: str) -> re.Pattern:
    """A glob as a regex: `**` any run of folders, `*` and `?` within one name."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(part, re.escape(part)) for part in parts))


def load_rules(directory: Path | None, catalog) -> list[Rule]:
    """Every rule in a directory (default: the shipped ones); Invalid naming the file, rule and field."""
    return rule_files.load_all(directory or SHIPPED_LIFECYCLE, lambda path: load_rule(path, catalog), "lifecycle")


def load_rule(path: Path, catalog) -> Rule:
    where = f"lifecycle rule {path.name}"
    doc = rule_files.read(path, where, RULE_KEYS)
    name = str(doc.get("name", ""))
    if not NAME.match(name):
        raise Invalid(f"{where}: name: {name!r} must be lower-case letters, digits and dashes")
    where = f"lifecycle rule {name} ({path.name})"
    common = {"name": name, "description": str(doc.get("description", "")), "enabled": bool(doc.get("enabled", True))}
    if ("quota" in doc) == ("delete" in doc):
        raise Invalid(f"{where}: give either delete (with when) or quota")
    return _quota(where, doc, common) if "quota" in doc else _deletion(where, doc, common, catalog)


def _deletion(where: str, doc: dict, common: dict, catalog) -> Rule:
    when = rule_files.mapping(where, doc, "when")
    rule_files.known(where, "when.", when, WHEN_KEYS)
    template = str(when.get("template") or "")
    if template and catalog.get(template) is None:
        raise Invalid(f"{where}: when.template: {template!r} is not a workflow template; choose from "
                      f"{', '.join(sorted(catalog.names()))}")
    statuses = tuple(_list(where, "when.status", when.get("status")))
    if not statuses or not set(statuses) <= set(ENDED):
        raise Invalid(f"{where}: when.status: give one or more of {', '.join(ENDED)} (a run that has ended)")
    age = _number(where, "when.age_days", when.get("age_days"))
    patterns = tuple(_list(where, "delete", doc.get("delete")))
    if not patterns:
        raise Invalid(f"{where}: delete: give the patterns of the files to delete, relative to the run's folder")
    for index, pattern in enumerate(patterns):
        _check_pattern(f"{where}: delete[{index}]", pattern, _protected(catalog, template, statuses))
    return Rule(**common, template=template, statuses=statuses, age_days=age, patterns=patterns)


def _quota(where: str, doc: dict, common: dict) -> Rule:
    quota = rule_files.mapping(where, doc, "quota")
    rule_files.known(where, "quota.", quota, QUOTA_KEYS)
    if "when" in doc:
        raise Invalid(f"{where}: when: a quota rule has no when; it watches each project's storage")
    gigabytes = _number(where, "quota.gigabytes", quota.get("gigabytes"))
    if gigabytes == 0:
        raise Invalid(f"{where}: quota.gigabytes: give a quota above 0")
    return Rule(**common, quota_gigabytes=gigabytes, projects=tuple(_list(where, "quota.projects", quota.get("projects"))))


def _protected(catalog, template: str, statuses: tuple[str, ...]) -> list[tuple[str, str]]:
    """(a path a pattern must not match, what it is): the raw data a run reads, and the registered
    outputs of the template (of every template when the rule names none) when succeeded runs are
    concerned (only those register outputs)."""
    raw = [(sample, "the raw data a run reads") for sample in RAW_SAMPLES]
    if "succeeded" not in statuses:
        return raw
    templates = [catalog.get(template)] if template else catalog.templates()
    return raw + [(f"{OUTPUTS}/{_example(o.path)}", f"the registered output {o.path} of template {t.name}")
                  for t in templates for o in t.entry.outputs]


def _check_pattern(where: str, pattern: str, protected: list[tuple[str, str]]) -> None:
    parts = pattern.split("/")
    if not pattern or pattern.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Invalid(f"{where}: {pattern!r} must be a relative path inside the run's folder (no '..', no '/' first)")
    for path, what in protected:
        if pattern_regex(pattern).fullmatch(path):
            raise Invalid(f"{where}: {pattern!r} would match {path} ({what}); name the intermediate files only")


def _example(glob: str) -> str:
    """A path a declared output's glob matches, to try rule patterns on."""
    return glob.replace("**/", "").replace("**", "x").replace("*", "x").replace("?", "x")


def _list(where: str, field: str, value) -> list[str]:
    values = [value] if isinstance(value, str) else (value or [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise Invalid(f"{where}: {field}: give a text or a list of texts")
    return values


def _number(where: str, field: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{where}: {field}: give a number (it was {value!r})")
    if value < 0:
        raise Invalid(f"{where}: {field}: {value} is negative; give 0 or more")
    return float(value)


# -- the service's record of deletions ---------------------------------------------------------

def deletion_dict(deletion: T.RunDeletion, at: str) -> dict:
    """A deletion as the run keeps it (paths capped: `files` counts them all)."""
    paths = list(deletion.paths or [])[:MAX_RECORDED_PATHS]
    return {"rule": deletion.rule, "at": at, "paths": paths, "files": max(int(deletion.files), len(paths)),
            "bytes_freed": int(deletion.bytes_freed), "complete": bool(deletion.complete),
            "message": deletion.message or ""}


def deletions_of(props: dict) -> list[T.RunDeletion]:
    """The deletions recorded on a run's properties."""
    return [T.RunDeletion(run_id="", **d) for d in json.loads(props.get("deletions_json") or "[]")]


def record(registry, who, deletion: T.RunDeletion):
    """Append a deletion to its run's record (the run's next version); the Guard audits the call."""
    run = policy.lookup(registry.store, registry.dictionary, policy.RUN, deletion.run_id, "run_id")
    if not NAME.match(deletion.rule or ""):
        raise Invalid("rule: name the lifecycle rule that deleted the files")
    if deletion.bytes_freed < 0 or deletion.files < 0:
        raise Invalid("bytes_freed: give the bytes and files freed, 0 or more")
    recorded = json.loads(run.props.get("deletions_json") or "[]") + [deletion_dict(deletion, now())]
    return registry._save(run, who.user, deletions_json=json.dumps(recorded))  # noqa: SLF001 the registry's one write path
