"""OAuth grants across portal replicas, as in the prod overlay: two portal processes with the
same signing key over one metadata service serve any step of one grant, a replayed code or an
old refresh token fails on both, and a tampered blob or a portal with another key is refused
with the standard error, never a 500."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

from metadata.client import MetadataClient
from tests.e2e.browser import Portal
from tests.e2e.conftest import free_port
from tests.hub.test_oauth import pkce_code, redeem, secret

pytestmark = pytest.mark.e2e
PASSWORD = "lee-password-123"


@pytest.fixture(scope="module")
def replicas(hub_commons):
    """(first, second, foreign): the fixture's portal, a second replica over the same data dir
    (so the same signing key), and a portal whose LABCOMMONS_SECRET_KEY is another commons'."""
    service, first, _, admin = hub_commons
    admin.save_account("lee", PASSWORD, ["analyst"], {})
    second = Portal(service)
    foreign = Portal(SimpleNamespace(data_dir=service.data_dir,
                                     env=dict(service.env, LABCOMMONS_SECRET_KEY="another commons' key " * 3)))
    yield first, second, foreign
    second.stop()
    foreign.stop()


def refresh(portal, service, refresh_token: str) -> requests.Response:
    return requests.post(f"{portal.url}/oauth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "jupyterhub",
        "client_secret": secret(service)})


def userinfo(portal, access_token: str) -> requests.Response:
    return requests.get(f"{portal.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=30)


def refused(response: requests.Response, status: int, error: str, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and words in body["error_description"], body


def test_any_replica_serves_any_step_and_a_replay_fails_on_every_replica(hub_commons, signed_in, replicas):
    service, _, hub, admin = hub_commons
    first, second, _ = replicas
    code, verifier = pkce_code(first, hub, signed_in("lee", PASSWORD))
    refused(redeem(second, hub, service, code, "w" * 50), 400, "invalid_grant", "Code challenge failed")
    grant = redeem(second, hub, service, code, verifier)  # a failed PKCE check did not use the code up
    assert grant.status_code == 200, grant.text
    for portal in (first, second):
        refused(redeem(portal, hub, service, code, verifier), 400, "invalid_grant", "cannot be redeemed")

    infos = [userinfo(p, grant.json()["access_token"]).json() for p in (first, second)]
    assert infos[0] == infos[1] and infos[0]["name"] == "lee"
    renewed = refresh(second, service, grant.json()["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    for portal in (first, second):
        refused(refresh(portal, service, grant.json()["refresh_token"]), 400, "invalid_grant", "used already")
    again = refresh(first, service, renewed.json()["refresh_token"])  # the new one works on any replica
    assert again.status_code == 200, again.text
    latest = userinfo(second, again.json()["access_token"]).json()
    assert latest["name"] == "lee" and latest["labcommons_token"] != infos[0]["labcommons_token"]
    for token in (latest["labcommons_token"], infos[0]["labcommons_token"]):  # a running server keeps its token
        with MetadataClient("127.0.0.1", service.port, token) as client:
            assert client.whoami().user == "lee"

    with MetadataClient("127.0.0.1", service.port, latest["labcommons_token"]) as client:
        listed = client.personal_tokens()
    assert [(t.revoked, t.renewed) for t in listed if t.name == "JupyterHub sign-in"] == [(True, True)]
    assert [t.renewed for t in listed if t.name == "JupyterHub"] == [True, True, False]


def test_a_tampered_or_foreign_blob_is_refused_with_the_standard_error(hub_commons, signed_in, replicas):
    service, _, hub, _ = hub_commons
    first, second, foreign = replicas
    user_session = signed_in("lee", PASSWORD)
    code, verifier = pkce_code(first, hub, user_session)
    refused(redeem(foreign, hub, service, code, verifier), 400, "invalid_grant", "not issued by this commons")
    grant = redeem(second, hub, service, code, verifier).json()  # the foreign portal did not use it up
    access, refresh_token = grant["access_token"], grant["refresh_token"]

    tampered = access[:40] + ("A" if access[40] != "A" else "B") + access[41:]
    for portal in (first, second):
        refused(userinfo(portal, tampered), 401, "invalid_token", "has been altered")
        refused(userinfo(portal, refresh_token), 401, "invalid_token", "cannot serve as the access token")
        refused(refresh(portal, service, access), 400, "invalid_grant", "cannot serve as the refresh token")
        for junk in ("", "x", "%%%"):
            refused(redeem(portal, hub, service, junk, verifier), 400, "invalid_grant", "not issued by this commons")
    refused(userinfo(foreign, access), 401, "invalid_token", "not issued by this commons")
    refused(refresh(foreign, service, refresh_token), 400, "invalid_grant", "not issued by this commons")
    assert refresh(first, service, refresh_token).status_code == 200  # none of that used the grant up


def test_a_replica_that_cannot_reach_the_service_says_so_rather_than_failing(hub_commons, signed_in, replicas):
    service, _, hub, _ = hub_commons
    first = replicas[0]
    grant = redeem(first, hub, service, *pkce_code(first, hub, signed_in("lee", PASSWORD))).json()
    dead_port = str(free_port())
    cut_off = Portal(SimpleNamespace(data_dir=service.data_dir, env=dict(service.env, LABCOMMONS_PORT=dead_port)))
    try:
        refused(userinfo(cut_off, grant["access_token"]), 503, "temporarily_unavailable", "cannot be reached")
        refused(refresh(cut_off, service, grant["refresh_token"]), 503, "temporarily_unavailable", "cannot be reached")
    finally:
        cut_off.stop()
    assert refresh(first, service, grant["refresh_token"]).status_code == 200  # the outage used nothing up
