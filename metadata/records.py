"""Typed records of the service's own node types: one class per type, read from a node
(`from_node`) and written back as its properties (`to_props`).

Runs, audit entries, notifications, parameter set revisions, cohorts, accounts, personal tokens,
launch keys and step records are graph nodes whose properties the service alone writes; these classes name
their fields and types once, so callers read `run.status`, not `node.props["status"]`. A field
left None is absent from the properties (optional properties stay unset, as the dictionary
wants). The node a record came from stays at hand (`node`: id, project, creator, versions).
Which of their properties the stores index for queries is declared in
metadata/store/record_index.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

from metadata.store.base import StoredNode


@dataclass
class Record:
    """What every typed record shares: its type, and the node it was read from (None when new)."""
    TYPE: ClassVar[str] = ""
    node: StoredNode | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_node(cls, node: StoredNode):
        """The record a node holds; properties of other names are ignored."""
        names = {f.name for f in fields(cls)} - {"node"}
        return cls(node=node, **{k: v for k, v in node.props.items() if k in names})

    def to_props(self) -> dict:
        """The node properties this record writes: every field but those left None."""
        return {f.name: value for f in fields(self) if f.name != "node" and (value := getattr(self, f.name)) is not None}

    def but(self, **changes):
        """A copy with these fields changed (None removes an optional one)."""
        return replace(self, **changes)

    @property
    def id(self) -> str:
        return self.node.id if self.node else ""


@dataclass
class Run(Record):
    """A workflow run (`workflow_run`, a managed dictionary type) in its inputs' project."""
    TYPE: ClassVar[str] = "workflow_run"
    template: str = ""
    template_digest: str | None = None
    status: str = "queued"
    parameters_json: str = "{}"
    launch_key: str | None = None
    message: str | None = None
    attempt: int = 1
    parameter_set_revision: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    worker: str | None = None
    engine_ref: str | None = None
    steps_json: str | None = None
    cancel_requested: bool | None = None
    retry_requested: bool | None = None
    outcome: str | None = None
    failed_checks_json: str | None = None
    deletions_json: str | None = None  # what the storage lifecycle deleted (metadata/lifecycle.py)
    reuse: bool | None = None  # False: launched without step reuse (None: before reuse existed, on)
    reuse_projects_json: str | None = None  # the projects whose steps it may reuse (null: any)

    @property
    def parameters(self) -> dict:
        return json.loads(self.parameters_json or "{}")

    @property
    def failed_checks(self) -> list[str]:
        return json.loads(self.failed_checks_json or "[]")

    @property
    def steps(self) -> list[dict]:
        return json.loads(self.steps_json or "[]")


@dataclass
class AuditEntry(Record):
    """One audited call (`_audit`, scope ~audit): who, what, about what, from where, how it ended."""
    TYPE: ClassVar[str] = "_audit"
    at: str = ""
    user: str = ""
    action: str = ""
    target: str = ""
    detail_json: str = "{}"
    client: str = ""
    outcome: str = ""


@dataclass
class Notification(Record):
    """A message to a user about a run that ended (`_notification`, in the user's private scope)."""
    TYPE: ClassVar[str] = "_notification"
    subject: str = ""
    body: str = ""
    link: str = ""
    status: str = ""
    read: bool = False


@dataclass
class LaunchKey(Record):
    """The holder of a launch key (`_launch`, scope ~launch): the run that took it."""
    TYPE: ClassVar[str] = "_launch"
    run_id: str = ""


@dataclass
class StepRecord(Record):
    """A succeeded step's outputs kept for reuse (`_step_record`, in its run's project; named by
    key and run): the files it wrote, with checksums, and its output parameters."""
    TYPE: ClassVar[str] = "_step_record"
    key: str = ""
    run_id: str = ""
    step: str = ""
    node_id: str = ""
    folder: str = ""
    files_json: str = "[]"
    outputs_json: str = "{}"


@dataclass
class ParameterSetRevision(Record):
    """One immutable revision of a parameter set (`parameter_set`, a managed dictionary type)."""
    TYPE: ClassVar[str] = "parameter_set"
    template: str = ""
    name: str = ""
    revision: int = 1
    params_json: str = "{}"
    notes: str | None = None
    source: str | None = None
    dataset_id: str | None = None


@dataclass
class Cohort(Record):
    """A saved filter (`_cohort`), private ("~<user>") or shared with a project's readers."""
    TYPE: ClassVar[str] = "_cohort"
    kind: str = ""
    filter_json: str = ""
    shared: bool = False
    owner: str = ""
    description: str = ""


@dataclass
class Account(Record):
    """A registered user (`_account`, scope ~accounts, named by the user): roles, grants, state."""
    TYPE: ClassVar[str] = "_account"
    password_hash: str = ""
    roles: list[str] = field(default_factory=list)
    grants: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    epoch: int = 0


@dataclass
class Token(Record):
    """A personal token's record, or a signed-out session's (`_token`, named by the token id)."""
    TYPE: ClassVar[str] = "_token"
    name: str = ""
    user: str = ""
    expires_at: str = ""
    revoked: bool = False
    renewed: bool | None = None
    kind: str | None = None
