"""Every IDL method authenticates, and the administrative ones refuse everyone but admins."""
import pytest

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

ADMIN_ONLY = {"create_token", "reindex", "save_account", "set_grant", "list_accounts", "sign_in", "audit",
              "set_trigger_enabled", "fire_triggers", "set_tier_access_limit",
              "set_tier_access"}
WORKER_ONLY = {"claim_runs", "update_run"}


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
