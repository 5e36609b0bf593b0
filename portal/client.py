"""The metadata service as the portal reaches it: per request, a client holding the signed-in
user's token (made on first use, like flaskr's db) whose calls borrow a connection from the
process's bounded pool; and the local operator's client used only to mint users' tokens at sign-in.

Why a pool whose connections hold no identity: opening a connection per request cost a TCP
handshake and a server thread's start in every Dash callback. The service's token travels as
the first argument of every call, so a pooled connection carries nothing from one call to the
next; the token is the per-request client's, handed to each call (PooledClient._invoke).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from contextlib import contextmanager

from flask import Flask, current_app, g
from flask_login import current_user
from thriftpy2.rpc import make_client
from thriftpy2.transport import TTransportException

from metadata.client import CLOSED_BY_SERVER, ERRORS, RECONNECT_AFTER_IDLE_SECONDS, MetadataClient
from metadata.idl import metadata_thrift as T

UNREACHABLE = "The metadata service cannot be reached; try again in a moment."
POOL_KEY = "labcommons_service_pool"
CALL_TIMEOUT_MS = 120_000
WAIT_SECONDS = 30  # for a free connection when every one is in use (it is then a transport error)


def sentence(message: str) -> str:
    """A service message as a sentence for a page: `name: taken` -> `Name: taken.`"""
    return message[:1].upper() + message[1:] + "."


class Pool:
    """At most `size` connections to the service, shared by this process's threads; idle ones
    wait newest first (so the rest age out). Made again after a fork: a child never uses its
    parent's sockets."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port, self.size = host, port, size
        self._idle: list[tuple[object, float]] = []  # (connection, when it was last used)
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self.pid = os.getpid()

    @contextmanager
    def connection(self):
        """A connection for one call; it goes back to the pool unless the call broke it."""
        if not self._slots.acquire(timeout=WAIT_SECONDS):
            raise TTransportException(message=f"all {self.size} connections to the metadata service are busy")
        conn = None
        try:
            conn = self._take()
            yield conn
        except ERRORS as answer:  # the service answered: the connection is sound, unless it said it closed it
            if getattr(answer, "code", "") in CLOSED_BY_SERVER:
                conn.close()
            else:
                self._give_back(conn)
            raise
        except BaseException as error:
            if conn is not None:
                conn.close()  # its state is unknown (a timeout mid-answer): never reuse it
            if isinstance(error, (TTransportException, OSError)):
                self.close()  # the service went away: the idle ones are as dead
            raise
        else:
            self._give_back(conn)
        finally:
            self._slots.release()

    def _take(self):
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn, used = self._idle.pop()
                if now - used < RECONNECT_AFTER_IDLE_SECONDS:
                    return conn
                conn.close()  # the server may have dropped it; reconnect rather than guess
        return make_client(T.Metadata, self.host, self.port, timeout=CALL_TIMEOUT_MS)

    def _give_back(self, conn) -> None:
        with self._lock:
            self._idle.append((conn, time.monotonic()))

    def idle(self) -> int:
        """How many connections wait in the pool (for tests and the figures in docs)."""
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


class PooledClient(MetadataClient):
    """A client whose every call borrows a pooled connection and sends this client's token."""

    def __init__(self, pool: Pool, token: str):
        super().__init__(pool.host, pool.port, token)
        self.pool = pool

    def _invoke(self, name: str, args: tuple):
        with self.pool.connection() as conn:
            return getattr(conn, name)(self.token, *args)

    def close(self) -> None:
        """Nothing to close: the connections are the pool's."""


class UserClient(PooledClient):
    """The signed-in user's client: remembers, for the request, that the service refused the
    session's token (signed out everywhere, account disabled), so the session can end."""

    def _call(self, name: str, *args):
        try:
            return super()._call(name, *args)
        except T.Unauthenticated as refused:
            g.token_refused = refused.message
            raise


def pool() -> Pool:
    """This process's pool of connections to the service."""
    found = current_app.extensions.get(POOL_KEY)
    if found is None or found.pid != os.getpid():
        with current_app.extensions["labcommons_pool_lock"]:
            found = current_app.extensions.get(POOL_KEY)
            if found is None or found.pid != os.getpid():
                settings = current_app.config["SETTINGS"]
                found = current_app.extensions[POOL_KEY] = Pool(settings.host, settings.port,
                                                                settings.portal_threads + 2)
    return found


def get_client() -> MetadataClient:
    """The signed-in user's client for this request."""
    if "client" not in g:
        token = current_user.token if current_user.is_authenticated else ""
        g.client = UserClient(pool(), token)
    return g.client


def close_client(_error=None) -> None:
    """Called when the request's app context ends (after a streamed response has finished)."""
    g.pop("client", None)


def operator_client() -> MetadataClient:
    """A client holding the service's local operator (admin) token; the caller closes it."""
    settings = current_app.config["SETTINGS"]
    token = settings.admin_token_path.read_text().strip()
    return MetadataClient(settings.host, settings.port, token)


def init_app(app: Flask) -> None:
    app.extensions["labcommons_pool_lock"] = threading.Lock()
    app.teardown_appcontext(close_client)
