"""Sign-in, sign-out and OAuth attacked through a real portal process over a real service: an
open redirect after sign-in, a session cookie copied before sign-out and replayed, and a PKCE
`plain` challenge (whose verifier anyone who saw the authorization request knows)."""
from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from ground.settings import load
from labcommons.demo.accounts import PASSWORDS_FILE, read_passwords
from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T
from portal import session_key
from tests.security.live_portal import TIMEOUT, csrf_token, live_portal


@pytest.fixture(scope="module")
def commons(tmp_path_factory):
    with live_portal(tmp_path_factory.mktemp("auth") / "data") as live:
        yield live


def sign_in_to(commons, raw_next: str) -> requests.Response:
    """The sign-in form posted with ?next= exactly as given (already percent-encoded)."""
    session = requests.Session()
    form = session.get(f"{commons.url}/signin", timeout=TIMEOUT).text
    password = read_passwords(commons.service.data_dir / PASSWORDS_FILE)["ana"]
    return session.post(f"{commons.url}/signin?next={raw_next}", allow_redirects=False, timeout=TIMEOUT,
                        data={"csrf_token": csrf_token(form), "username": "ana", "password": password})


OFF_SITE = ["%2F%09%2Fevil.example",         # the URL: a tab, which browsers drop
            "%2F%0A%2Fevil.example", "%2F%0D%2Fevil.example", "%09%2F%2Fevil.example",
            "%2F%5Cevil.example", "%5C%5Cevil.example", "%2F%5C%2Fevil.example",   # backslashes
            "%2F%2Fevil.example", "%2F%2F%2Fevil.example", "%20%2F%2Fevil.example",
            "https%3Aevil.example", "https%3A%2F%2Fevil.example", "%2F%00%2Fevil.example",
            "javascript%3Aalert(1)", "%252F%252Fevil.example"]


@pytest.mark.parametrize("raw_next", OFF_SITE)
def test_sign_in_never_redirects_off_site(commons, raw_next):
    answer = sign_in_to(commons, raw_next)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert urlsplit(urljoin(commons.url + "/signin", location)).netloc == urlsplit(commons.url).netloc
    assert "evil" not in location and location == "/explore"


def test_sign_in_still_returns_to_a_page_of_the_site(commons):
    answer = sign_in_to(commons, "%2Fexplore%3Ftab%3Dfile")
    assert answer.status_code == 302 and answer.headers["Location"] == "/explore?tab=file"


def session_token(commons, cookie: str) -> str:
    """The service token a portal session cookie holds (read with the portal's own key)."""
    app = Flask(__name__)
    app.secret_key = session_key(load(commons.service.env))
    return SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie)["token"]


def test_a_cookie_copied_before_sign_out_is_useless_after_it(commons):
    ana = commons.signed_in("ana")
    copied = ana.cookies.get("labcommons_portal")
    page = ana.get(f"{commons.url}/account", timeout=TIMEOUT)
    assert page.status_code == 200
    assert ana.post(f"{commons.url}/signout", data={"csrf_token": csrf_token(page.text)},
                    timeout=TIMEOUT).url.endswith("/signin")

    thief = requests.Session()
    thief.cookies.set("labcommons_portal", copied)
    for path in ("/account", f"/files/{next(commons.admin.nodes('data_file'))['id']}/download"):
        replay = thief.get(commons.url + path, allow_redirects=False, timeout=TIMEOUT)
        assert replay.status_code == 302 and "/signin" in replay.headers["Location"], path
    with MetadataClient("127.0.0.1", commons.service.port, session_token(commons, copied)) as stolen:
        with pytest.raises(T.Unauthenticated) as refused:
            stolen.whoami()
    assert refused.value.code == "token_revoked"


def authorize(commons, session, **pkce):
    hub = load(commons.service.env).hub_public_url
    params = {"response_type": "code", "client_id": "jupyterhub", "scope": "profile", "state": "s1",
              "redirect_uri": f"{hub}/hub/oauth_callback", **pkce}
    answer = session.get(f"{commons.url}/oauth/authorize", params=params, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, answer.text[:300]
    return parse_qs(urlsplit(answer.headers["Location"]).query), params["redirect_uri"]


@pytest.mark.parametrize("method", ["plain", ""])
def test_a_plain_pkce_challenge_is_refused(commons, method):
    verifier = secrets.token_urlsafe(48)
    pkce = {"code_challenge": verifier} | ({"code_challenge_method": method} if method else {})
    answer, _ = authorize(commons, commons.signed_in("ana"), **pkce)
    assert "code" not in answer and answer["error"] == ["invalid_request"]
    assert "only S256" in answer["error_description"][0]


def test_an_s256_challenge_gets_a_code_that_redeems(commons):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    answer, redirect_uri = authorize(commons, commons.signed_in("ana"), code_challenge=challenge,
                                     code_challenge_method="S256")
    secret = (commons.service.data_dir / "hub" / "oauth-client-secret").read_text().strip()
    tokens = requests.post(f"{commons.url}/oauth/token", timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": answer["code"][0], "redirect_uri": redirect_uri,
        "code_verifier": verifier, "client_id": "jupyterhub", "client_secret": secret})
    assert tokens.status_code == 200 and tokens.json()["token_type"] == "Bearer", tokens.text
