"""The policy table: for every IDL method, the role it needs and the project rights it checks.

The Guard (server.py) applies a method's `Policy` after verifying the token and before the
handler runs: first the role, then each `Check`, whose locator says where the project comes
from (an argument the caller gave, or the stored object an id names). Handlers keep only what
the table cannot say: an object's owner, and what a request's content decides (a batch of
programs and projects needs an admin; technicians launch only standard templates).

Refusals reveal nothing: an object in a project the caller may not read answers NotFound with
the very message a missing id gets, and a refusal names only what the caller named. The audit
log (admins only) keeps the real reason (`Missing.refusal`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from metadata import auth
from metadata.auth import Identity
from metadata.errors import Denied, Missing

ADMIN, WORKER, ANALYST, TECHNICIAN = "admin", "worker", "analyst", "technician"
READ, WRITE = "read", "write"


@dataclass(frozen=True)
class Kind:
    """A kind of stored object an id may name, and how a missing one is answered."""
    noun: str
    accepts: Callable[[object, str], bool]   # (dictionary, node type) -> is this kind


NODE = Kind("node", lambda dictionary, t: dictionary.get(t) is not None)
RUN = Kind("run", lambda _d, t: t == "workflow_run")
COHORT = Kind("cohort", lambda _d, t: t == "_cohort")
PARAMETER_SET = Kind("parameter set", lambda _d, t: t == "parameter_set")
DATASET = Kind("measurement or data file", lambda _d, t: t in ("measurement", "data_file"))
INPUT = Kind("data file or measurement", lambda _d, t: t in ("data_file", "measurement"))


_call = threading.local()  # the nodes this thread's current call had read by the policy


def end_call() -> None:
    """Forget the current call's reads (the Guard, when a call ends), so none outlives its call."""
    _call.nodes = {}


def read_for_call(store, node_id: str):
    """The node as the policy read it for the current call (so a read-only handler does not read it
    again), else from the store."""
    nodes = getattr(_call, "nodes", {})
    return nodes[node_id] if node_id in nodes else store.get(node_id)


def missing(kind: Kind, object_id: str, argument: str = "") -> Missing:
    """The one answer for an id that names no object of this kind (or one the caller may not read)."""
    return Missing(f"{argument + ': ' if argument else ''}no {kind.noun} with id {object_id!r}")


def lookup(store, dictionary, kind: Kind, object_id: str, argument: str = ""):
    """The stored object an id names; Missing if there is none of this kind."""
    node = store.get(object_id) if object_id else None
    if node is None or not kind.accepts(dictionary, node.type):
        raise missing(kind, object_id, argument)
    return node


@dataclass(frozen=True)
class Target:
    """A project to check; `hidden` is the NotFound an unreadable one answers with ("" when the
    caller named the project: then a refusal says Forbidden and names only that project)."""
    project: str
    hidden: Missing | None = None


def _argument(args: tuple, index: int, field: str):
    value = args[index] if index < len(args) else None
    return getattr(value, field, None) if field else value


@dataclass(frozen=True)
class Named:
    """The project the caller names in an argument (or a field of it). `optional`: empty names
    no project and is not checked (a listing of every readable project); otherwise "" is checked
    like any name (so only admins pass). `when`: a boolean field that must be true for the check
    to apply; `unless_global`: a field naming a node type whose programs and projects all read."""
    index: int
    field: str = ""
    when: str = ""
    unless_global: str = ""
    optional: bool = True

    def targets(self, store, dictionary, args: tuple) -> list[Target]:
        project = _argument(args, self.index, self.field) or ""
        if (not project and self.optional) or (self.when and not _argument(args, self.index, self.when)):
            return []
        if self.unless_global and _is_global(dictionary, _argument(args, self.index, self.unless_global)):
            return []
        return [Target(str(project))]

    def __str__(self) -> str:
        where = f"`{self.field}`" if self.field else f"argument {self.index + 1}"
        return f"the project named by {where}" + (f" (when `{self.when}`)" if self.when else "")


@dataclass(frozen=True)
class Stored:
    """The project of the stored object(s) an argument's id (or list of ids) names; programs and
    projects need no right. A missing id raises NotFound here, before the handler runs."""
    index: int
    kind: Kind
    field: str = ""

    def targets(self, store, dictionary, args: tuple) -> list[Target]:
        value = _argument(args, self.index, self.field)
        ids = [str(i) for i in dict.fromkeys(value if isinstance(value, list) else [value] if value else [])]
        found = store.get_many(ids) if ids else {}  # one read, however many ids
        _call.nodes.update(found)
        for object_id in ids:
            if object_id not in found or not self.kind.accepts(dictionary, found[object_id].type):
                raise missing(self.kind, object_id, self.field)
        return [Target(n.project_id, missing(self.kind, n.id, self.field)) for n in found.values()
                if not _is_global(dictionary, n.type)]

    def __str__(self) -> str:
        return f"the {self.kind.noun}'s project" + (f" (`{self.field}`)" if self.field else "")


@dataclass(frozen=True)
class Found:
    """The node a (project_id, submitter_id) pair names; NotFound when absent or unreadable."""

    def targets(self, store, dictionary, args: tuple) -> list[Target]:
        project_id, submitter_id = args[0], args[1]
        node = store.find(project_id, [submitter_id]).get(submitter_id) if project_id and submitter_id else None
        hidden = Missing(f"no node {submitter_id!r} in project {project_id!r}")
        if node is None or dictionary.get(node.type) is None:
            raise hidden
        return [] if _is_global(dictionary, node.type) else [Target(node.project_id, hidden)]

    def __str__(self) -> str:
        return "the node's project"


@dataclass(frozen=True)
class FirstOf:
    """The first locator that yields a project."""
    first: object
    then: object

    def targets(self, store, dictionary, args: tuple) -> list[Target]:
        return self.first.targets(store, dictionary, args) or self.then.targets(store, dictionary, args)

    def __str__(self) -> str:
        return f"{self.first}, else {self.then}"


@dataclass(frozen=True)
class Check:
    right: str
    where: object


@dataclass(frozen=True)
class Policy:
    """Who may call a method: one of `roles` (empty: any signed-in caller; admins always), with
    each check's right on its project; `handler`: what the handler still decides."""
    roles: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    handler: str = ""


SIGNED_IN = Policy()
ADMIN_ONLY = Policy((ADMIN,))


def _read(where) -> tuple[Check, ...]:
    return (Check(READ, where),)


def _write(where) -> tuple[Check, ...]:
    return (Check(WRITE, where),)


TABLE: dict[str, Policy] = {
    # who is calling, what is installed
    "health": Policy(handler="node counts only for callers who read every project"),
    "whoami": SIGNED_IN, "get_dictionary": SIGNED_IN, "get_documents": SIGNED_IN,
    "list_templates": SIGNED_IN, "list_triggers": SIGNED_IN, "get_tier_access_limit": SIGNED_IN,
    "get_tier_access": SIGNED_IN,
    # the graph
    "get_node": Policy(checks=_read(Stored(0, NODE))),
    "get_edges": Policy(checks=_read(Stored(0, NODE))),
    "find_node": Policy(checks=_read(Found())),
    "find_nodes_by_id_prefix": Policy(handler="only nodes in readable projects"),
    "list_nodes": Policy(checks=_read(Named(0, "project_id", unless_global="type")),
                         handler="no project named: every readable project"),
    "submit": Policy(checks=_write(Named(0, "project_id", optional=False)), handler="programs and projects: admin"),
    "delete_nodes": Policy(checks=_write(Named(0, optional=False)),
                           handler="ids outside the project are not found; programs and projects: admin"),
    # exploration: every query is narrowed to the readable projects
    "facets": SIGNED_IN, "histogram": SIGNED_IN, "hits": SIGNED_IN, "manifest": SIGNED_IN,
    # cohorts: a private one is its owner's scope (`~<user>`), a shared one its project's
    "save_cohort": Policy(checks=_read(Named(0, "project_id", when="shared")),
                          handler="a name taken by another's cohort is refused"),
    "list_cohorts": Policy(handler="own cohorts and those shared in readable projects"),
    "get_cohort": Policy(checks=_read(Stored(0, COHORT))),
    "delete_cohort": Policy(checks=_read(Stored(0, COHORT)), handler="its owner or an admin"),
    # administration
    "create_token": ADMIN_ONLY, "reindex": ADMIN_ONLY, "save_account": ADMIN_ONLY, "set_grant": ADMIN_ONLY,
    "list_accounts": ADMIN_ONLY, "audit": ADMIN_ONLY, "set_tier_access_limit": ADMIN_ONLY, "set_tier_access": ADMIN_ONLY,
    "set_trigger_enabled": ADMIN_ONLY, "fire_triggers": ADMIN_ONLY,
    "get_alert_settings": ADMIN_ONLY, "set_alert_settings": ADMIN_ONLY, "check_alerts": ADMIN_ONLY,
    "sign_in": Policy((ADMIN,), handler="the portal, with the operator token, signs people in"),
    # one's own account and tokens
    "sign_out": Policy(handler="the calling token itself"),
    "sign_out_everywhere": Policy(handler="oneself, or anyone for an admin"),
    "create_personal_token": Policy(handler="registered users"),
    "renew_personal_token": Policy(handler="the calling personal token, once"),
    "list_personal_tokens": Policy(handler="one's own (an admin: all)"),
    "revoke_personal_token": Policy(handler="one's own (an admin: any)"),
    "list_notifications": Policy(handler="one's own"),
    "mark_notifications_read": Policy(handler="one's own"),
    # workflows
    "launch": Policy((ANALYST, TECHNICIAN),
                     (Check(READ, Stored(0, PARAMETER_SET, "parameter_set_id")),
                      Check(WRITE, Stored(0, INPUT, "input_ids"))),
                     handler="technicians: standard templates only"),
    "get_run": Policy(checks=_read(Stored(0, RUN))),
    "list_runs": Policy(checks=_read(Named(0, "project_id")), handler="no project named: every readable project"),
    "cancel_run": Policy(checks=_read(Stored(0, RUN)), handler="its launcher or a writer of its project"),
    "retry_run": Policy(checks=_read(Stored(0, RUN)), handler="its launcher or a writer of its project"),
    "claim_runs": Policy((WORKER,)),
    "claim_runs_waiting": Policy((WORKER,)),
    "update_run": Policy((WORKER,), _read(Stored(0, RUN, "run_id"))),
    "record_deletion": Policy((WORKER,), _read(Stored(0, RUN, "run_id"))),
    "record_step": Policy((WORKER,), _read(Stored(0, RUN))),
    "find_step_records": Policy((WORKER,), _read(Stored(0, RUN)),
                                handler="records of succeeded runs in projects the run's launcher could read"),
    "find_step_records_batch": Policy((WORKER,), _read(Stored(0, RUN)),
                                      handler="records of succeeded runs in projects the run's launcher could read"),
    "run_stats": Policy((ANALYST,), _read(Named(0, "project_id")), handler="no project named: every readable project"),
    "report_storage": Policy((WORKER,)),
    # parameter sets
    "save_parameter_set": Policy(checks=(Check(READ, Stored(0, DATASET, "dataset_id")),
                                         Check(WRITE, FirstOf(Named(0, "project_id"),
                                                              Stored(0, DATASET, "dataset_id"))))),
    "list_parameter_sets": Policy(checks=_read(Named(0)), handler="no project named: every readable project"),
    "get_parameter_set": Policy(checks=_read(Stored(0, PARAMETER_SET))),
}


def authorize(store, dictionary, name: str, who: Identity, args: tuple) -> None:
    """Apply the method's policy; Denied, or NotFound for what the caller may not read."""
    policy = TABLE[name]
    _call.nodes = {}
    _require_role(who, name, policy.roles)
    for check in policy.checks:
        for target in check.where.targets(store, dictionary, args):
            _require(who, check.right, target)


def _require_role(who: Identity, name: str, roles: tuple[str, ...]) -> None:
    if roles and not who.is_admin and not set(roles) & set(who.roles):
        raise Denied(f"{name} needs the {' or '.join(roles)} role; {who.user} has "
                     f"{', '.join(who.roles) or 'no roles'}")


def _require(who: Identity, right: str, target: Target) -> None:
    try:
        (auth.require_write if right == WRITE else auth.require_read)(who, target.project)
    except Denied as denied:
        if target.hidden is None or who.can_read(target.project):
            raise  # the caller named this project, or may read it: saying so reveals nothing
        raise concealed(target.hidden, denied.message) from None


def concealed(answer: Missing, reason: str) -> Missing:
    """The caller's NotFound, carrying the real reason for the audit log."""
    answer.refusal = reason
    return answer


def _is_global(dictionary, type_name) -> bool:
    node_type = dictionary.get(str(type_name or ""))
    return bool(node_type is not None and node_type.is_global)


def rows() -> Iterable[tuple[str, str, str, str]]:
    """(method, role, project rights, handler) for each method: the table as the docs show it."""
    for name, policy in sorted(TABLE.items()):
        role = " or ".join(policy.roles) or "signed in"
        rights = "; ".join(f"{c.right} on {c.where}" for c in policy.checks) or "none"
        yield name, role, rights, policy.handler
