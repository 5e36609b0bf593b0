"""Accounts, personal tokens, sign-in and the audit log, kept by the metadata service.

A registered user's roles and grants live in their account, not in their tokens: every call's
identity is resolved against the account as it is now, so a revoked grant, a disabled account,
"sign out everywhere" (the account's epoch moves past every token issued before) or a revoked
personal token takes effect on the next call. Users without an account (the local operator,
tokens an admin minted for a script name) keep the roles and grants their token carries.

Accounts, token records and audit entries are graph nodes of reserved types (outside the
dictionary: never submitted, flattened or listed through the node API), so every store keeps
them. The service is their only writer, so it serves them from memory.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from metadata import auth
from metadata.auth import Identity, Tokens
from metadata.errors import BadToken, Denied, Invalid, Missing
from metadata.idl import metadata_thrift as T
from metadata.records import Account, AuditEntry, Token
from metadata.store.base import Page, Store, StoredNode, Write, reserved_node
from metadata.store.record_index import RecordQuery, decode_record_cursor, millis

ACCOUNT, TOKEN, AUDIT = "_account", "_token", "_audit"
ACCOUNTS_SCOPE, AUDIT_SCOPE = "~accounts", "~audit"
MIN_PASSWORD = 10
FREE_FAILURES = 3          # failed sign-ins before each further attempt must wait
MAX_WAIT_SECONDS = 300
PAGE = 1000
REVOKED = {"personal": "this personal token has been revoked; create a new one",
           "session": "this session has been signed out; sign in again"}
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Throttle:
    """Failed sign-ins of one user name (known or not, so names cannot be probed)."""
    failures: int = 0
    wait_until: float = 0.0

    def fail(self) -> None:
        self.failures += 1
        if self.failures >= FREE_FAILURES:
            self.wait_until = time.monotonic() + min(2 ** (self.failures - FREE_FAILURES), MAX_WAIT_SECONDS)


@dataclass
class Registry:
    """Accounts and personal token records, loaded at start and kept current by this process."""
    store: Store
    tokens: Tokens
    accounts: dict[str, StoredNode] = field(default_factory=dict)
    personal: dict[str, StoredNode] = field(default_factory=dict)
    throttles: dict[str, Throttle] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.accounts = {n.submitter_id: n for n in _all(self.store, ACCOUNT, ACCOUNTS_SCOPE)}
        self.personal = {n.submitter_id: n for n in _all(self.store, TOKEN, ACCOUNTS_SCOPE)}

    # -- every call ---------------------------------------------------------------------

    def resolve(self, who: Identity) -> Identity:
        """The caller as their account says now; BadToken if the account no longer honours the token."""
        record = self.personal.get(who.token_id)
        if record is not None and Token.from_node(record).revoked:
            raise BadToken(REVOKED.get(who.kind, REVOKED["session"]), "token_revoked")
        account = self.accounts.get(who.user)
        if account is None:
            return who
        props = Account.from_node(account)
        if props.disabled:
            raise BadToken(f"the account {who.user!r} is disabled; ask an administrator", "account_disabled")
        if who.epoch < props.epoch:
            raise BadToken("this token was signed out (sign out everywhere); sign in again", "token_signed_out")
        if who.kind == "personal" and record is None:
            raise BadToken(REVOKED["personal"], "token_revoked")
        return replace(who, roles=tuple(props.roles), grants=dict(props.grants))

    # -- accounts -----------------------------------------------------------------------

    def save(self, user: str, password: str, roles: list[str], grants: dict[str, str], disabled: bool) -> StoredNode:
        auth.check_identity(user, roles, grants, 1)
        old = self.accounts.get(user)
        if old is None and not password:
            raise Invalid("password: a new account needs a password")
        if password and len(password) < MIN_PASSWORD:
            raise Invalid(f"password: use at least {MIN_PASSWORD} characters")
        kept = Account.from_node(old) if old else Account()
        return self._write_account(user, old, kept.but(
            password_hash=_hasher.hash(password) if password else kept.password_hash, roles=sorted(set(roles)),
            grants=dict(grants), disabled=bool(disabled)))

    def set_grant(self, user: str, project_id: str, access: str) -> StoredNode:
        old = self._account(user)
        account = Account.from_node(old)
        grants = dict(account.grants)
        if access:
            auth.check_identity(user, [], {project_id: access}, 1)
            grants[project_id] = access
        else:
            grants.pop(project_id, None)
        return self._write_account(user, old, account.but(grants=grants))

    def sign_out_everywhere(self, user: str) -> None:
        old = self._account(user)
        account = Account.from_node(old)
        self._write_account(user, old, account.but(epoch=account.epoch + 1))

    def _account(self, user: str) -> StoredNode:
        account = self.accounts.get(user)
        if account is None:
            raise Missing(f"no account {user!r}")
        return account

    def _write_account(self, user: str, old: StoredNode | None, account: Account) -> StoredNode:
        node = _node(ACCOUNT, user, account.to_props(), old)
        with self.lock:
            self.store.apply([Write(node, old.version if old else None)], set())
            self.accounts[user] = node
        return node

    # -- sign-in and personal tokens ------------------------------------------------------

    def sign_in(self, user: str, password: str) -> tuple[str, Identity]:
        """A session token; Denied (one message for any wrong name or password) otherwise."""
        throttle = self.throttles.setdefault(user, Throttle())
        wait = throttle.wait_until - time.monotonic()
        if wait > 0:
            raise Denied(f"too many failed sign-ins for {user!r}; try again in {int(wait) + 1} s", "throttled")
        account = self.accounts.get(user)
        if not _password_matches(account, password) or Account.from_node(account).disabled:
            throttle.fail()
            raise Denied("wrong user name or password", "sign_in_failed")
        self.throttles.pop(user, None)
        props = Account.from_node(account)
        return self.tokens.mint(user, props.roles, props.grants, kind="session", epoch=props.epoch)

    def create_personal(self, who: Identity, name: str, ttl: int) -> tuple[str, Identity]:
        token, identity, record = self._mint_personal(who, name, ttl)
        with self.lock:
            self.store.apply([Write(record, None)], set())
            self.personal[identity.token_id] = record
        return token, identity

    def renew_personal(self, who: Identity, name: str, ttl: int, revoke: bool) -> tuple[str, Identity]:
        """The calling personal token's successor. The check and both writes happen under the
        lock in one batch, so of two renewals of one token (a replayed code) exactly one wins."""
        if who.kind != "personal":
            raise Denied(f"only a personal token can be renewed, not a {who.kind} token", "not_personal")
        token, identity, successor = self._mint_personal(who, name, ttl)
        with self.lock:
            record = self.personal.get(who.token_id)
            if record is None or Token.from_node(record).revoked or Token.from_node(record).renewed:
                raise BadToken("this personal token has been renewed or revoked already; "
                               "each token is renewed once", "token_renewed")
            old = _node(TOKEN, who.token_id, Token.from_node(record).but(renewed=True, revoked=revoke).to_props(), record)
            self.store.apply([Write(old, record.version), Write(successor, None)], set())
            self.personal[who.token_id] = old
            self.personal[identity.token_id] = successor
        return token, identity

    def _mint_personal(self, who: Identity, name: str, ttl: int) -> tuple[str, Identity, StoredNode]:
        """A personal token for the caller's account and its (unsaved) record."""
        account = self.accounts.get(who.user)
        if account is None:
            raise Denied(f"{who.user} has no account; personal tokens are for registered users", "no_account")
        if not 0 < len(name.strip()) <= 100:
            raise Invalid("name: give the token a name of 1 to 100 characters (what will use it)")
        props = Account.from_node(account)
        token, identity = self.tokens.mint(who.user, props.roles, props.grants, ttl or None,
                                           kind="personal", epoch=props.epoch)
        record = _node(TOKEN, identity.token_id, Token(name=name.strip(), user=who.user,
                                                       expires_at=identity.expires_at).to_props(), None)
        return token, identity, record

    def list_personal(self, who: Identity) -> list[StoredNode]:
        mine = (r for r in self.personal.values() if Token.from_node(r).user == who.user or who.is_admin)
        return sorted((r for r in mine if (Token.from_node(r).kind or "personal") == "personal"),
                      key=lambda r: r.created_at)

    def revoke_personal(self, who: Identity, token_id: str) -> None:
        record = self.personal.get(token_id)
        if record is None or (Token.from_node(record).user != who.user and not who.is_admin):
            raise Missing(f"no personal token {token_id!r} of {who.user}")
        node = _node(TOKEN, token_id, Token.from_node(record).but(revoked=True).to_props(), record)
        with self.lock:
            self.store.apply([Write(node, record.version)], set())
            self.personal[token_id] = node

    def sign_out(self, who: Identity) -> None:
        """The calling token stops working: its record (a session or script token gets one now,
        kept by the same path as personal tokens' revocations) says revoked."""
        if not who.token_id:
            raise BadToken("this token has no id, so it cannot be signed out; it ends when it expires", "token_without_id")
        record = self.personal.get(who.token_id)
        kept = Token.from_node(record) if record else Token(name=f"{who.kind} token", user=who.user,
                                                           expires_at=who.expires_at, kind=who.kind)
        node = _node(TOKEN, who.token_id, kept.but(revoked=True).to_props(), record)
        with self.lock:
            self.store.apply([Write(node, record.version if record else None)], set())
            self.personal[who.token_id] = node


class AuditLog:
    """Who did what, when, from where, and how it ended; newest first.

    A call that writes may carry its own audit entry into its transaction: the Guard offers the
    entry (`offered`), the handler adds `take()` to its writes, so the data and the record of who
    wrote it commit together or not at all."""

    def __init__(self, store: Store):
        self.store = store
        self._pending = threading.local()

    def record(self, user: str, action: str, target: str, detail: dict, client: str, outcome: str) -> None:
        self.store.apply([self.entry(user, action, target, detail, client, outcome)], set())

    @staticmethod
    def entry(user: str, action: str, target: str, detail: dict, client: str, outcome: str) -> Write:
        """The write of one audit entry."""
        # the key keeps the store's (project_id, submitter_id) order newest first, as before the index
        key = f"{10 ** 13 - int(time.time() * 1000):013d}-{uuid.uuid4().hex[:8]}"
        entry = AuditEntry(at=now_iso(), user=user, action=action, target=target[:500],
                           detail_json=json.dumps(detail, default=str)[:4000], client=client, outcome=outcome)
        return Write(_node(AUDIT, key, entry.to_props(), None, scope=AUDIT_SCOPE), None)

    @contextmanager
    def offered(self, entry: Write):
        """Offer this thread's call its audit entry; yields a function saying whether the handler took it."""
        self._pending.entry, self._pending.taken = entry, False
        try:
            yield lambda: self._pending.taken
        finally:
            self._pending.entry = None

    def take(self) -> list[Write]:
        """The offered entry, as writes for the caller's transaction (none when none is offered).
        Take it only for the write that ends the call: once that commits, the Guard writes no other."""
        entry = getattr(self._pending, "entry", None)
        if entry is None:
            return []
        self._pending.taken = True
        return [entry]

    def query(self, query: T.AuditQuery) -> T.AuditPage:
        """Matching entries, newest first, from the store's index of the log; next_cursor is empty
        on the last page. A project matches an entry's target or its first argument (a grant's)."""
        if not 1 <= query.limit <= PAGE:
            raise Invalid(f"limit: give 1 to {PAGE} entries")
        where = {k: v for k, v in (("user", query.user), ("action", query.action), ("outcome", query.outcome)) if v}
        about = [{"target": query.project}, {"argument": query.project}] if query.project else [{}]
        try:
            pages = [self.store.query(RecordQuery(AUDIT, {**where, **extra}, [AUDIT_SCOPE], query.since, query.before,
                                                  limit=query.limit, cursor=query.cursor)) for extra in about]
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        nodes, cursor = _merged(pages, query.limit)
        return T.AuditPage(entries=[audit_thrift(AuditEntry.from_node(n)) for n in nodes], next_cursor=cursor)


def account_thrift(node: StoredNode) -> T.Account:
    p = Account.from_node(node)
    return T.Account(user=node.submitter_id, roles=list(p.roles), grants=dict(p.grants),
                     disabled=p.disabled, created_at=node.created_at, updated_at=node.updated_at)


def token_thrift(node: StoredNode) -> T.PersonalToken:
    p = Token.from_node(node)
    return T.PersonalToken(id=node.submitter_id, name=p.name, user=p.user, created_at=node.created_at,
                           expires_at=p.expires_at, revoked=p.revoked, renewed=bool(p.renewed))


def _password_matches(account: StoredNode | None, password: str) -> bool:
    try:
        # verify against a dummy hash for unknown users, so timing does not tell names apart
        hashed = Account.from_node(account).password_hash if account else _DUMMY_HASH
        return _hasher.verify(hashed, password) and bool(account)
    except (VerificationError, InvalidHashError):
        return False


def audit_thrift(entry: AuditEntry) -> T.AuditEntry:
    return T.AuditEntry(at=entry.at, user=entry.user, action=entry.action, target=entry.target,
                        detail_json=entry.detail_json, client=entry.client, outcome=entry.outcome)


def _merged(pages: list[Page], limit: int) -> tuple[list[StoredNode], str]:
    """One page, newest first, from pages of the same order and cursor (either of two conditions):
    each record once, in the store's order; the cursor after the last one kept while any page had more."""
    if len(pages) == 1:
        return pages[0].nodes, pages[0].next_cursor
    found = {n.id: (cursor, n) for page in pages for n, cursor in zip(page.nodes, page.cursors)}
    ranked = sorted(found.values(), key=lambda pair: _position(pair[0]), reverse=True)
    kept = ranked[:limit]
    more = len(ranked) > limit or any(page.next_cursor for page in pages)
    return [n for _, n in kept], kept[-1][0] if kept and more else ""


def _position(cursor: str) -> tuple:
    """Where a record's cursor puts it in the store's order (date, then the store's tie)."""
    at, tie = decode_record_cursor(cursor, True)
    return millis(at), tie


def _all(store: Store, type_name: str, scope: str) -> list[StoredNode]:
    nodes, cursor = [], ""
    while True:
        page = store.list(type_name, [scope], PAGE, cursor)
        nodes += page.nodes
        if not page.next_cursor:
            return nodes
        cursor = page.next_cursor


def _node(type_name: str, key: str, props: dict, old: StoredNode | None, scope: str = ACCOUNTS_SCOPE) -> StoredNode:
    return reserved_node(type_name, scope, key, props, old)
