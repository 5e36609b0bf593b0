"""GET /api/whoami (portal/notebooks/whoami.py): the readable projects of a metadata-service token's holder,
as the service judges the token, for the Kubernetes hub's mount hook."""
from __future__ import annotations

import time

import pytest

from metadata.auth import Tokens
from metadata.client import MetadataClient


def personal_token(server, admin, user: str, grants: dict, roles=("analyst",)) -> tuple[str, str]:
    """(token, token id) of a registered user's personal token, as the portal mints for the hub."""
    admin.save_account(user, "a-long-password-1", list(roles), grants)
    session = admin.sign_in(user, "a-long-password-1").token
    with MetadataClient("127.0.0.1", server.bound_port(), session) as client:
        issued = client.create_personal_token("JupyterHub", 3600)
    return issued.token, issued.identity.token_id


def whoami(portal, token: str | None, scheme: str = "Bearer"):
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    return portal.get("/api/whoami", headers=headers)


def test_a_users_token_gets_exactly_their_readable_projects(portal, server, admin):
    token, _ = personal_token(server, admin, "kim", {"proj-a": "read", "proj-b": "write"})
    answer = whoami(portal, token)
    assert answer.status_code == 200
    assert answer.json == {"user": "kim", "projects": ["proj-a", "proj-b"]}
    assert answer.headers["Cache-Control"] == "no-store"


def test_the_answer_follows_the_account_not_the_token(portal, server, admin):
    token, _ = personal_token(server, admin, "kim", {"proj-a": "read", "proj-b": "read"})
    admin.set_grant("kim", "proj-b", "")  # revoked on the admin page
    assert whoami(portal, token).json["projects"] == ["proj-a"]


def test_administrators_read_every_project(portal, server, admin):
    token, _ = personal_token(server, admin, "root-ish", {}, roles=("admin",))
    assert whoami(portal, token).json == {"user": "root-ish", "projects": "all"}


def refused(answer) -> None:
    assert answer.status_code == 401, answer.get_data(as_text=True)
    assert "projects" not in answer.json and answer.json["error"]


def test_a_forged_token_gets_401_and_no_projects(portal, server, admin):
    personal_token(server, admin, "kim", {"proj-a": "read"})
    forged, _ = Tokens("not-the-commons-key-" + "x" * 32).mint("kim", ["admin"], {"proj-a": "read"})
    refused(whoami(portal, forged))


def test_an_expired_token_gets_401_and_no_projects(portal, server):
    expired, _ = server.tokens.mint("kim", ["analyst"], {"proj-a": "read"}, ttl=1)
    time.sleep(2.1)
    refused(whoami(portal, expired))


def test_a_revoked_token_gets_401_and_no_projects(portal, server, admin):
    token, token_id = personal_token(server, admin, "kim", {"proj-a": "read"})
    session = admin.sign_in("kim", "a-long-password-1").token
    with MetadataClient("127.0.0.1", server.bound_port(), session) as client:
        client.revoke_personal_token(token_id)  # on the account page
    refused(whoami(portal, token))


@pytest.mark.parametrize("token, scheme", [(None, "Bearer"), ("", "Bearer"), ("abc", "Basic")])
def test_no_bearer_token_gets_401(portal, token, scheme):
    refused(whoami(portal, token, scheme))


def test_an_unreachable_service_gets_503_not_a_list(portal, server):
    server.stop()
    answer = whoami(portal, "anything")
    assert answer.status_code == 503 and "projects" not in answer.json
