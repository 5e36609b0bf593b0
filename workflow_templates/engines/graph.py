"""A run's nodes as Argo's controller links them, so both engines draw the same graph.

The local engine keeps its nodes as a tree (each node under the node that called it). Argo's
status links them by what runs next (workflow_types.go, NodeStatus.Children/OutboundNodes): a
Steps node leads to its first StepGroup, a group to its steps, and each step's outbound nodes to
the next group; a DAG leads to its tasks without dependencies, and each task's outbound nodes to
the tasks that depend on it; a loop (TaskGroup) leads to its items. A node's outbound nodes are
itself for a pod, else the outbound nodes of what it ran last (the last group's steps, the DAG's
targets, a loop's items).
"""
from __future__ import annotations

import re

from workflow_templates.engines.expressions import ExpressionError, depends_tasks

_GROUP = re.compile(r"\[(\d+)\]$")


def argo_children(nodes: dict[str, dict], templates: dict[str, dict]) -> dict[str, list[str]]:
    """Each node's children as Argo records them (the local engine's `nodes`, by id)."""
    below: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node_id, node in nodes.items():
        if node.get("parent") in below:
            below[node["parent"]].append(node_id)
    linker = _Linker(nodes, below, templates)
    for node_id, node in nodes.items():
        if node.get("parent") not in nodes:
            linker.outbound(node_id)
    return {node_id: list(dict.fromkeys(children)) for node_id, children in linker.children.items()}


class _Linker:
    def __init__(self, nodes: dict, below: dict, templates: dict):
        self.nodes, self.below, self.templates = nodes, below, templates
        self.children: dict[str, list[str]] = {node_id: [] for node_id in nodes}
        self.done: dict[str, list[str]] = {}

    def outbound(self, node_id: str) -> list[str]:
        """Link the node's subtree; its outbound nodes."""
        if node_id not in self.done:
            kind = self.nodes[node_id].get("type")
            link = {"Steps": self._steps, "DAG": self._dag, "TaskGroup": self._fan_out}.get(kind)
            self.done[node_id] = link(node_id) if link and self.below[node_id] else [node_id]
        return self.done[node_id]

    def _steps(self, node_id: str) -> list[str]:
        groups = sorted(self.below[node_id], key=lambda g: int(_GROUP.search(g).group(1)) if _GROUP.search(g) else 0)
        self.children[node_id] = groups[:1]
        previous: list[str] = []
        for group in groups:
            for node in previous:
                self.children[node].append(group)
            self.children[group] = list(self.below[group])
            previous = [o for call in self.below[group] for o in self.outbound(call)]
        return previous

    def _dag(self, node_id: str) -> list[str]:
        tasks = {self.nodes[t]["name"]: t for t in self.below[node_id]}
        needs = {name: [d for d in self._dependencies(node_id, name) if d in tasks] for name in tasks}
        self.children[node_id] = [tasks[name] for name in tasks if not needs[name]]
        for name, task in tasks.items():
            for dependency in needs[name]:
                for node in self.outbound(tasks[dependency]):
                    self.children[node].append(task)
        needed = {d for deps in needs.values() for d in deps}
        return [o for name, task in tasks.items() if name not in needed for o in self.outbound(task)]

    def _fan_out(self, node_id: str) -> list[str]:
        self.children[node_id] = list(self.below[node_id])
        return [o for item in self.below[node_id] for o in self.outbound(item)]

    def _dependencies(self, dag_id: str, task_name: str) -> list[str]:
        template = self.templates.get(self.nodes[dag_id].get("template")) or {}
        task = next((t for t in (template.get("dag") or {}).get("tasks") or [] if t.get("name") == task_name), {})
        try:
            return task.get("dependencies") or depends_tasks(task.get("depends") or "")
        except ExpressionError:
            return []
