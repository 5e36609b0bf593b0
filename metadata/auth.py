"""Signed, expiring tokens naming a user, roles and project grants; the rules every call checks.

Tokens are HS256 JWTs signed with the service's key. Roles: admin (everything), technician,
analyst, worker (claims and reports runs, reads every project, writes nothing else). Grants map
a project_id to "read" or "write" ("write" implies "read").

Which projects a caller may read is decided here, once (`readable_projects`, `Identity.can_read`);
which role and right each IDL method needs is the policy table's (metadata/policy.py).
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field

import jwt

from metadata.errors import BadToken, Denied, Invalid

ROLES = ("admin", "analyst", "technician", "worker")
ACCESS = ("read", "write")
ISSUER = "labcommons"
MAX_TTL_SECONDS = 366 * 24 * 3600
VERIFIED_TOKENS = 10_000  # tokens whose checked claims are kept (a portal's sessions, workers, scripts)
PRIVATE = "~"  # reserved scopes (private ones, the service's own records) start with it
# the service's own scopes (~accounts, ~audit, ...): no user may be named so, or their private
# scope would be one of them
SERVICE_SCOPES = ("accounts", "audit", "launch", "settings", "triggers")
USER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


@dataclass(frozen=True)
class Identity:
    user: str
    roles: tuple[str, ...] = ()
    grants: dict[str, str] = field(default_factory=dict)
    expires_at: int = 0
    token_id: str = ""
    kind: str = "script"   # script (minted by an admin), session (sign-in), personal (named API token)
    epoch: int = 0         # the account's sign-out epoch when the token was issued

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def readable_projects(self) -> list[str] | None:
        """The projects this caller may read, sorted; None means every project."""
        return readable_projects(self)

    def can_read(self, scope: str) -> bool:
        """Whether the caller may read this project, or this private scope (`~<user>`: its owner's)."""
        if scope.startswith(PRIVATE):
            return self.is_admin or scope == private_scope(self.user)
        projects = self.readable_projects
        return projects is None or scope in projects

    def can_write(self, project_id: str) -> bool:
        return self.is_admin or self.grants.get(project_id) == "write"


def readable_projects(who: Identity) -> list[str] | None:
    """THE projects a caller may read: every one (None) for admins and for workers, which run
    every project's workflows and so read every project's inputs; else the granted ones."""
    if who.is_admin or "worker" in who.roles:
        return None
    return sorted(who.grants)


def listing_projects(who: Identity, project_id: str) -> list[str] | None:
    """The projects a listing covers: the one asked for (the policy checked it) or every readable one."""
    return [project_id] if project_id else who.readable_projects


def private_scope(user: str) -> str:
    """The scope of a user's private records (cohorts, notifications), outside every project."""
    return f"{PRIVATE}{user}"


class Tokens:
    """Mints and verifies tokens with one signing key."""

    def __init__(self, key: str, default_ttl: int = 8 * 3600):
        self._key = key
        self.default_ttl = default_ttl
        self._verified: dict[str, dict] = {}  # token -> its checked claims: a signature is checked once

    def mint(self, user: str, roles, grants: dict[str, str], ttl: int | None = None,
             kind: str = "script", epoch: int = 0) -> tuple[str, Identity]:
        """A new token for a checked identity; raises Invalid naming the bad field."""
        ttl = self.default_ttl if not ttl else ttl
        check_identity(user, roles, grants, ttl)
        now = int(time.time())
        identity = Identity(user, tuple(sorted(set(roles))), dict(grants), now + ttl, uuid.uuid4().hex, kind, epoch)
        claims = {"sub": user, "roles": list(identity.roles), "grants": identity.grants, "iat": now,
                  "exp": identity.expires_at, "iss": ISSUER, "jti": identity.token_id, "kind": kind,
                  "epoch": epoch}
        return jwt.encode(claims, self._key, algorithm="HS256"), identity

    def verify(self, token: str) -> Identity:
        """The identity a token names; BadToken if it is missing, forged or expired."""
        if not token:
            raise BadToken("no token given: pass one with --token or LABCOMMONS_TOKEN", "token_missing")
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()  # many distinct tokens: start again rather than grow
            self._verified[token] = claims
        if claims["exp"] <= time.time():  # kept claims too: expiry is checked on every call
            raise _expired()
        return self._identity(claims)

    def _decode(self, token: str) -> dict:
        try:
            return jwt.decode(token, self._key, algorithms=["HS256"], issuer=ISSUER,
                              options={"require": ["exp", "sub", "iss"]})
        except jwt.ExpiredSignatureError:
            raise _expired() from None
        except jwt.InvalidTokenError:
            raise BadToken("the token is not valid: it was not issued by this commons "
                           "or has been altered", "token_invalid") from None

    @staticmethod
    def _identity(claims: dict) -> Identity:
        return Identity(claims["sub"], tuple(claims.get("roles", ())), dict(claims.get("grants", {})),
                        int(claims["exp"]), claims.get("jti", ""), claims.get("kind", "script"),
                        int(claims.get("epoch", 0)))


def _expired() -> BadToken:
    return BadToken("the token has expired: ask an administrator for a new one (labcommons token create)",
                    "token_expired")


def check_identity(user: str, roles, grants: dict[str, str], ttl: int) -> None:
    """Refuse a bad user name, role, grant or lifetime with the field named."""
    if not USER_PATTERN.match(user or ""):
        raise Invalid(f"user: {user!r} is not a user name (letters, digits, . _ @ -; at most 128)")
    if user in SERVICE_SCOPES:
        raise Invalid(f"user: {user!r} is reserved for the service's own records; choose another name")
    for role in roles:
        if role not in ROLES:
            raise Invalid(f"roles: {role!r} is not a role; choose from {', '.join(ROLES)}")
    for project, access in grants.items():
        if access not in ACCESS:
            raise Invalid(f"grants: access {access!r} on {project!r} is not allowed; use read or write")
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise Invalid(f"ttl_seconds: {ttl} is out of range; give 1 to {MAX_TTL_SECONDS}")


def require_admin(identity: Identity, action: str) -> None:
    if not identity.is_admin:
        raise Denied(f"{action} needs the admin role; {identity.user} has "
                     f"{', '.join(identity.roles) or 'no roles'}")


def require_read(identity: Identity, project_id: str) -> None:
    if not identity.can_read(project_id):
        raise Denied(f"{identity.user} has no read access to project {project_id!r}; "
                     "ask an administrator for a grant")


def require_write(identity: Identity, project_id: str) -> None:
    if not identity.can_write(project_id):
        raise Denied(f"{identity.user} has no write access to project {project_id!r}; "
                     "ask an administrator for a write grant")
