"""Triggers: rules that launch a workflow when a node is written (Trellis's database triggers).

A rule (YAML, one file per rule, see docs/triggers.md) names
- `when`: the type of node written and conditions on its properties (a value, or a list of values);
- `context`: optionally a link to follow from that node to the node the rule is about, and the
  data formats that node's files must include (e.g. a measurement's imzML AND ibd files);
- `launch`: the template, which node's files are its inputs, and its parameters (constants or
  `{{node.<property>}}` / `{{context.<property>}}`).
Every launch goes through the run registry's launch key, so a storm of identical events, or the
two files of one measurement arriving in one batch, makes one run. Admins enable and disable
rules; the state is kept by the service (a reserved `_trigger` node per rule).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ground.settings import SHIPPED_TRIGGERS
from metadata import rule_files
from metadata.auth import Identity
from metadata.errors import Invalid, MetadataError, Missing
from metadata.idl import metadata_thrift as T
from metadata.store.base import Store, StoredNode, Write, reserved_node

log = logging.getLogger(__name__)
STATE_TYPE, STATE_SCOPE = "_trigger", "~triggers"
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
VARIABLE = re.compile(r"\{\{\s*(node|context)\.([A-Za-z0-9_]+)\s*\}\}")
RULE_KEYS = {"name", "description", "enabled", "when", "context", "launch"}


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    enabled: bool
    on_type: str
    on_properties: dict[str, tuple]
    follow: str
    files: tuple[str, ...]
    template: str
    inputs: str                     # "node" or "context"
    parameters: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def matches(self, node: StoredNode) -> bool:
        return node.type == self.on_type and all(node.props.get(k) in allowed for k, allowed in self.on_properties.items())

    def parameters_for(self, node: StoredNode, context: StoredNode) -> dict[str, str]:
        nodes = {"node": node, "context": context}

        def value(match: re.Match) -> str:
            source = nodes[match.group(1)]
            prop = match.group(2)
            found = {"id": source.id, "submitter_id": source.submitter_id, "project_id": source.project_id}.get(
                prop, source.props.get(prop))
            return "" if found is None else str(found)
        return {name: VARIABLE.sub(value, text) for name, text in self.parameters.items()}


def load_rules(directory: Path) -> list[Rule]:
    """Every rule in a directory; Invalid naming the file and the field for a bad one."""
    return rule_files.load_all(directory or SHIPPED_TRIGGERS, load_rule, "triggers")


def load_rule(path: Path) -> Rule:
    where = f"trigger {path.name}"
    doc = rule_files.read(path, where, RULE_KEYS)
    name = str(doc.get("name", ""))
    if not NAME.match(name):
        raise Invalid(f"{where}: name: {name!r} must be lower-case letters, digits and dashes")
    when, context, launch = (rule_files.mapping(where, doc, key) for key in ("when", "context", "launch"))
    if not when.get("type"):
        raise Invalid(f"{where}: when.type: name the node type whose writes the rule watches")
    if not launch.get("template"):
        raise Invalid(f"{where}: launch.template: name the workflow template to launch")
    inputs = launch.get("inputs", "context" if context.get("follow") else "node")
    if inputs not in ("node", "context"):
        raise Invalid(f"{where}: launch.inputs: {inputs!r} must be node or context")
    props = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in (when.get("properties") or {}).items()}
    params = {str(k): str(v) for k, v in (launch.get("parameters") or {}).items()}
    return Rule(name, str(doc.get("description", "")), bool(doc.get("enabled", True)), str(when["type"]), props,
                str(context.get("follow", "")), tuple(context.get("files") or ()), str(launch["template"]),
                inputs, params, path.read_text())


class Triggers:
    """The rules, their enabled state, and firing them on written nodes."""

    def __init__(self, store: Store, registry, rules: list[Rule]):
        self.store, self.registry = store, registry
        self.rules = {rule.name: rule for rule in rules}

    def list(self) -> list[T.Trigger]:
        return [self._thrift(rule) for rule in self.rules.values()]

    def set_enabled(self, who: Identity, name: str, enabled: bool) -> T.Trigger:
        rule = self.rules.get(name)
        if rule is None:
            raise Missing(f"name: no trigger {name!r}; the triggers are {', '.join(self.rules) or 'none'}")
        old = self._state(name)
        node = reserved_node(STATE_TYPE, STATE_SCOPE, name, {"enabled": bool(enabled)}, old, who.user)
        self.store.apply([Write(node, old.version if old else None)], set())
        return self._thrift(rule)

    def fire(self, written: list[StoredNode]) -> list[tuple[str, object, bool]]:
        """Launch what the enabled rules ask for these written nodes: (rule, run, existing) each.
        A rule that cannot launch (a bad input, a template gone) is logged, never raised: the
        write that fired it has happened and stands."""
        launched = []
        for rule in (r for r in self.rules.values() if self._enabled(r)):
            for node in (n for n in written if rule.matches(n)):
                try:
                    outcome = self._fire_one(rule, node)
                except MetadataError as error:
                    log.warning("trigger %s on %s %s did not launch: %s", rule.name, node.type, node.id, error.message)
                    continue
                if outcome:
                    launched.append((rule.name, *outcome))
        return launched

    def _fire_one(self, rule: Rule, node: StoredNode):
        context = self._context(rule, node)
        if context is None or not self._has_files(context, rule.files):
            return None
        who = Identity(f"trigger:{rule.name}", ("admin",))
        target = context if rule.inputs == "context" else node
        request = T.LaunchRequest(template=rule.template, input_ids=[target.id],
                                  parameters=rule.parameters_for(node, context))
        return self.registry.launch(who, request)

    def _context(self, rule: Rule, node: StoredNode) -> StoredNode | None:
        if not rule.follow:
            return node
        target = next((link.target_id for link in node.links if link.name == rule.follow), None)
        return self.store.get(target) if target else None

    def _has_files(self, context: StoredNode, formats: tuple[str, ...]) -> bool:
        if not formats:
            return True
        present = {f.props.get("data_format") for f in self.registry.raw_files(context)}
        return set(formats) <= present

    def _enabled(self, rule: Rule) -> bool:
        state = self._state(rule.name)
        return rule.enabled if state is None else bool(state.props.get("enabled"))

    def _state(self, name: str) -> StoredNode | None:
        return self.store.find(STATE_SCOPE, [name]).get(name)

    def _thrift(self, rule: Rule) -> T.Trigger:
        return T.Trigger(name=rule.name, description=rule.description, template=rule.template,
                         enabled=self._enabled(rule), rule_yaml=rule.source)
