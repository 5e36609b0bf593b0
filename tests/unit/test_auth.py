"""Tokens are signed, expiring and checked; the rules refuse with the reason."""
import time

import jwt
import pytest

from metadata.auth import Identity, Tokens, require_admin, require_read, require_write
from metadata.errors import BadToken, Denied, Invalid

KEY = "k" * 48


def test_a_minted_token_verifies_to_its_identity():
    token, identity = Tokens(KEY).mint("ana", ["analyst"], {"p1": "write"}, 60)
    verified = Tokens(KEY).verify(token)
    assert verified == identity and verified.can_write("p1") and not verified.can_read("p2")


@pytest.mark.parametrize("token, code", [
    ("", "token_missing"),
    ("not-a-jwt", "token_invalid"),
    (Tokens("other-key" * 6).mint("ana", [], {}, 60)[0], "token_invalid"),
])
def test_missing_malformed_and_forged_tokens_are_refused(token, code):
    with pytest.raises(BadToken) as caught:
        Tokens(KEY).verify(token)
    assert caught.value.code == code


def test_a_tampered_token_is_refused():
    token, _ = Tokens(KEY).mint("ana", ["analyst"], {}, 60)
    claims = jwt.decode(token, KEY, algorithms=["HS256"], issuer="labcommons")
    forged = jwt.encode(dict(claims, roles=["admin"]), "guessed-key" * 4, algorithm="HS256")
    with pytest.raises(BadToken):
        Tokens(KEY).verify(forged)


def test_an_expired_token_is_refused_and_says_what_to_do():
    claims = {"sub": "ana", "iss": "labcommons", "exp": int(time.time()) - 5}
    with pytest.raises(BadToken, match="labcommons token create") as caught:
        Tokens(KEY).verify(jwt.encode(claims, KEY, algorithm="HS256"))
    assert caught.value.code == "token_expired"


def test_a_token_verified_before_is_still_refused_once_it_expires(monkeypatch):
    tokens = Tokens(KEY)
    token, identity = tokens.mint("ana", ["analyst"], {}, 60)
    assert tokens.verify(token) == identity == tokens.verify(token)  # the second from the kept claims
    monkeypatch.setattr(time, "time", lambda: identity.expires_at + 1)
    with pytest.raises(BadToken) as caught:
        tokens.verify(token)
    assert caught.value.code == "token_expired"


@pytest.mark.parametrize("user, roles, grants, ttl, field", [
    ("bad user!", [], {}, 60, "user"),
    ("audit", [], {}, 60, "user"),  # its private scope would be the audit log's
    ("ana", ["wizard"], {}, 60, "roles"),
    ("ana", [], {"p": "own"}, 60, "grants"),
    ("ana", [], {}, -1, "ttl_seconds"),
])
def test_minting_refuses_bad_fields_by_name(user, roles, grants, ttl, field):
    with pytest.raises(Invalid, match=f"^{field}:"):
        Tokens(KEY).mint(user, roles, grants, ttl)


def test_rules_allow_admins_everything_and_others_what_they_were_granted():
    admin, reader = Identity("a", ("admin",)), Identity("r", ("analyst",), {"p": "read"})
    require_admin(admin, "x")
    require_write(admin, "p")
    require_read(reader, "p")
    with pytest.raises(Denied, match="write grant"):
        require_write(reader, "p")
    with pytest.raises(Denied, match="no read access to project 'q'"):
        require_read(reader, "q")
    with pytest.raises(Denied, match="needs the admin role"):
        require_admin(reader, "creating tokens")


def test_no_user_name_makes_a_private_scope_of_the_services_own():
    from metadata import accounts, runs, tiering, triggers
    from metadata.auth import SERVICE_SCOPES, private_scope
    scopes = {accounts.ACCOUNTS_SCOPE, accounts.AUDIT_SCOPE, runs.KEY_SCOPE, tiering.SETTINGS_SCOPE,
              triggers.STATE_SCOPE}
    assert scopes == {private_scope(name) for name in SERVICE_SCOPES}
