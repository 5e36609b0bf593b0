"""Every IDL method has an entry in the policy table, authenticates, and the administrative ones
refuse everyone but admins."""
from pathlib import Path

import pytest

from metadata import policy
from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

ADMIN_ONLY = {"create_token", "reindex", "save_account", "set_grant", "list_accounts", "sign_in", "audit",
              "set_trigger_enabled", "fire_triggers", "set_tier_access_limit",
              "set_tier_access", "get_alert_settings", "set_alert_settings", "check_alerts"}
WORKER_ONLY = {"claim_runs", "claim_runs_waiting", "update_run", "record_deletion", "report_storage",
               "record_step", "find_step_records", "find_step_records_batch"}


def placeholder(ttype, spec):
    """A harmless value of a Thrift field type, so any method can be called."""
    from thriftpy2.thrift import TType
    kind = ttype if isinstance(ttype, int) else ttype[0]
    if kind == TType.STRING:
        return "x"
    if kind in (TType.I16, TType.I32, TType.I64, TType.BYTE):
        return 1
    if kind == TType.BOOL:
        return False
    if kind == TType.DOUBLE:
        return 1.0
    if kind == TType.LIST or kind == TType.SET:
        return []
    if kind == TType.MAP:
        return {}
    return spec[2]()  # a struct: its defaults


def arguments(name: str) -> list:
    spec = getattr(T.Metadata, f"{name}_args").thrift_spec
    return [placeholder(field[0], field) for _, field in sorted(spec.items())][1:]  # without the token


@pytest.mark.parametrize("name", T.Metadata.thrift_services)
def test_every_method_refuses_a_missing_or_forged_token(server, name):
    for token in ("", "forged.token.value"):
        with MetadataClient("127.0.0.1", server.bound_port(), token) as client:
            with pytest.raises(T.Unauthenticated):
                client._call(name, *arguments(name))


@pytest.mark.parametrize("name", sorted(ADMIN_ONLY))
def test_administrative_methods_refuse_non_admins(client_for, project, name):
    technician = client_for("tom", roles=["technician", "analyst"], grants={project: "write"})
    with pytest.raises(T.Forbidden, match="admin role"):
        technician._call(name, *arguments(name))


@pytest.mark.parametrize("name", sorted(WORKER_ONLY))
def test_worker_methods_refuse_everyone_but_workers_and_admins(client_for, project, name):
    technician = client_for("tom", roles=["technician", "analyst"], grants={project: "write"})
    with pytest.raises(T.Forbidden, match="worker role"):
        technician._call(name, *arguments(name))


def test_every_method_has_exactly_one_entry_in_the_policy_table():
    assert sorted(policy.TABLE) == sorted(T.Metadata.thrift_services)


def test_the_table_names_the_administrative_and_worker_methods_this_suite_expects():
    roles = {name: entry.roles for name, entry in policy.TABLE.items()}
    assert {name for name, r in roles.items() if r == (policy.ADMIN,)} == ADMIN_ONLY
    assert {name for name, r in roles.items() if r == (policy.WORKER,)} == WORKER_ONLY


def declared(name: str) -> set:
    """The exception types a method declares (its `throws`)."""
    spec = getattr(T.Metadata, f"{name}_result").thrift_spec
    return {field[2] for field in spec.values() if field[1] != "success"}


@pytest.mark.parametrize("name", sorted(policy.TABLE))
def test_whatever_the_table_may_refuse_the_method_declares(name):
    entry = policy.TABLE[name]
    needed = {T.Forbidden} if entry.roles or entry.checks else set()
    if any(not isinstance(check.where, policy.Named) for check in entry.checks):
        needed.add(T.NotFound)  # an object the caller may not read is not found
    assert needed <= declared(name)


def test_the_architecture_doc_shows_the_table_as_it_is():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    for name, role, rights, handler in policy.rows():
        assert f"| `{name}` | {role} | {rights} | {handler} |" in doc, name
