"""The portal's OAuth2 provider as the hub (and an attacker) meet it: PKCE is required, only the
hub's redirect address and secret are accepted, refresh renews the user's service token, and
signing out everywhere ends the chain."""
from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from metadata.client import MetadataClient
from portal.notebooks.jupyter import Hub as HubAPI, HubError

pytestmark = pytest.mark.e2e


def authorize(portal, hub, session, **extra):
    params = {"response_type": "code", "client_id": "jupyterhub", "scope": "profile",
              "redirect_uri": f"{hub.url}/hub/oauth_callback", "state": "s1", **extra}
    return session.get(f"{portal.url}/oauth/authorize", params=params, allow_redirects=False, timeout=30)


def code_from(response) -> dict:
    assert response.status_code == 302, response.text[:300]
    return parse_qs(urlsplit(response.headers["Location"]).query)


def secret(service) -> str:
    return (service.data_dir / "hub" / "oauth-client-secret").read_text().strip()


def pkce_code(portal, hub, user_session) -> tuple[str, str]:
    """(code, verifier): a code for the signed-in user_session, with an S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    (code,) = code_from(authorize(portal, hub, user_session, code_challenge=challenge,
                                  code_challenge_method="S256"))["code"]
    return code, verifier


def redeem(portal, hub, service, code: str, verifier: str, session=requests):
    return session.post(f"{portal.url}/oauth/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": f"{hub.url}/hub/oauth_callback",
        "code_verifier": verifier, "client_id": "jupyterhub", "client_secret": secret(service)})


def tokens(portal, hub, service, session, user_session) -> dict:
    answer = redeem(portal, hub, service, *pkce_code(portal, hub, user_session), session=session)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_authorization_needs_pkce_and_the_hubs_redirect(hub_commons, signed_in):
    service, portal, hub, _ = hub_commons
    session = signed_in("ana")
    assert "code" not in code_from(authorize(portal, hub, session))  # no code_challenge: an error, no code
    wrong = authorize(portal, hub, session, code_challenge="x" * 43, code_challenge_method="S256",
                      redirect_uri="http://evil.example/cb")
    assert wrong.status_code == 400 and "evil.example" not in wrong.headers.get("Location", "")
    signed_out = authorize(portal, hub, requests.Session(), code_challenge="x" * 43, code_challenge_method="S256")
    assert signed_out.status_code == 302 and "/signin" in signed_out.headers["Location"]


def test_a_code_needs_the_verifier_and_the_secret(hub_commons, signed_in):
    service, portal, hub, _ = hub_commons
    session = signed_in("ana")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 50).digest()).rstrip(b"=").decode()
    (code,) = code_from(authorize(portal, hub, session, code_challenge=challenge,
                                  code_challenge_method="S256"))["code"]
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": f"{hub.url}/hub/oauth_callback",
            "client_id": "jupyterhub", "code_verifier": "w" * 50, "client_secret": secret(service)}
    assert requests.post(f"{portal.url}/oauth/token", data=body, timeout=30).status_code == 400
    body.update(code_verifier="v" * 50, client_secret="guess")
    assert requests.post(f"{portal.url}/oauth/token", data=body, timeout=30).status_code in (400, 401)


def test_userinfo_and_refresh_renew_the_service_token_until_signed_out_everywhere(hub_commons, signed_in):
    service, portal, hub, admin = hub_commons
    admin.save_account("kim", "kim-password-123", ["analyst"], {})
    grant = tokens(portal, hub, service, requests.Session(), signed_in("kim", "kim-password-123"))

    def userinfo(access: str):
        return requests.get(f"{portal.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}, timeout=30)

    first = userinfo(grant["access_token"]).json()
    renewed = requests.post(f"{portal.url}/oauth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": grant["refresh_token"], "client_id": "jupyterhub",
        "client_secret": secret(service)})
    assert renewed.status_code == 200, renewed.text
    second = userinfo(renewed.json()["access_token"]).json()
    assert first["name"] == second["name"] == "kim" and first["labcommons_token"] != second["labcommons_token"]
    with MetadataClient("127.0.0.1", service.port, second["labcommons_token"]) as client:
        assert client.whoami().user == "kim"
    admin.sign_out_everywhere("kim")
    ended = userinfo(renewed.json()["access_token"])
    assert ended.status_code == 401 and "sign" in ended.json()["error_description"]


def test_a_hub_that_is_down_or_slow_gets_a_clear_message():
    import socket
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(HubError, match="cannot be reached"):
        HubAPI(f"http://127.0.0.1:{port}", "t").start("ana")
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        import portal.notebooks.jupyter as jupyter
        old, jupyter.HUB_TIMEOUT_SECONDS = jupyter.HUB_TIMEOUT_SECONDS, 0.5
        try:
            with pytest.raises(HubError, match="did not answer within"):
                HubAPI(f"http://127.0.0.1:{silent.getsockname()[1]}", "t").start("ana")
        finally:
            jupyter.HUB_TIMEOUT_SECONDS = old
