"""The service's client connections: a cap, timeouts, and who may be closed to make room.

Each connection has a thread and a file descriptor. A connection is *proven* once a call on it
carried a valid token; until then it may send its first call for `first_call_seconds` only, and
when the cap is reached the oldest idle unproven connection is closed to make room, so sockets
that never sent a token cost nothing a signed-in client needs. Only when every slot is held by
proven connections is a newcomer refused: its first call is answered with InternalError
("too_many_connections"), then the connection is closed.
"""
from __future__ import annotations

import logging
import resource
import socket
import threading

from thriftpy2.thrift import TApplicationException, TProcessor
from thriftpy2.transport import TTransportException

from metadata.idl import metadata_thrift as T

log = logging.getLogger("labcommons.metadata")
IDLE_CLIENT_SECONDS = 600   # a proven connection idle this long is closed; clients reconnect after 300 s
REFUSAL_SECONDS = 2         # how long a refused connection may take to send the call we answer
MAX_REFUSALS = 16           # refusals answered at once; beyond, a newcomer is closed without an answer
FDS_PER_CONNECTION = 2      # budget: each connection, and as many again for refusals, files and the store


class NotThrift(Exception):
    """What a peer sent is not a Thrift call of this service (a protocol error, garbage)."""


class Connection:
    """One client connection's socket and state, guarded by its Connections' lock."""

    def __init__(self, sock: socket.socket):
        self.sock, self.address = sock, address(sock)
        self.proven = False  # a call carried a valid token
        self.busy = False    # a call is being served
        self.closed = False  # closed to make room: the next call is not served


class Connections:
    """The open connections, at most `cap` of them."""

    def __init__(self, cap: int):
        self.cap = cap
        self._open: dict[int, Connection] = {}  # in the order they were accepted
        self._lock = threading.Lock()
        self._refusals = threading.BoundedSemaphore(MAX_REFUSALS)

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, sock: socket.socket) -> Connection | None:
        """A slot for a new connection, closing the oldest idle unproven one if none is free;
        None when every slot is held by a proven or busy connection."""
        with self._lock:
            if len(self._open) >= self.cap and not self._evict_one():
                return None
            connection = self._open[id(sock)] = Connection(sock)
            return connection

    def evict_one(self) -> bool:
        """Close the oldest idle unproven connection (to free its descriptor); False if none."""
        with self._lock:
            return self._evict_one()

    def _evict_one(self) -> bool:
        victim = next((c for c in self._open.values() if not (c.proven or c.busy or c.closed)), None)
        if victim is None:
            return False
        victim.closed = True
        del self._open[id(victim.sock)]
        try:
            victim.sock.shutdown(socket.SHUT_RDWR)  # wakes its thread, which closes the socket
        except OSError:
            pass
        return True

    def begin_call(self, connection: Connection) -> None:
        """A call has arrived; refused (the connection ends) if it was closed to make room."""
        with self._lock:
            if connection.closed:
                raise TTransportException(TTransportException.END_OF_FILE, "closed to make room")
            connection.busy = True

    def end_call(self, connection: Connection, token_valid: bool) -> None:
        with self._lock:
            connection.busy = False
            if token_valid and not connection.proven:
                connection.proven = True
                connection.sock.settimeout(IDLE_CLIENT_SECONDS)

    def release(self, connection: Connection) -> None:
        with self._lock:
            if self._open.get(id(connection.sock)) is connection:
                del self._open[id(connection.sock)]

    def try_refusal(self) -> bool:
        """Whether a refusal may be answered now (call done_refusal after)."""
        return self._refusals.acquire(blocking=False)

    def done_refusal(self) -> None:
        self._refusals.release()


class ConnectionProcessor(TProcessor):
    """TProcessor for one connection: tells Connections when a call arrives and whether its
    token held (every method throws Unauthenticated; a result without it had a valid token)."""

    def __init__(self, handler, connections: Connections, connection: Connection):
        super().__init__(T.Metadata, handler)
        self.connections, self.connection = connections, connection

    def process_in(self, iprot):
        try:
            api, seqid, result, call = super().process_in(iprot)
        except (TTransportException, OSError):
            raise
        except Exception as error:  # the peer's bytes, not a bug of ours
            raise NotThrift(f"{type(error).__name__}: {error}") from None
        self.connections.begin_call(self.connection)
        return api, seqid, result, call

    def send_result(self, oprot, api, result, seqid) -> None:
        valid = getattr(result, "unauthenticated", None) is None
        try:
            super().send_result(oprot, api, result, seqid)
        finally:
            self.connections.end_call(self.connection, valid)

    def send_exception(self, oprot, api, exc, seqid) -> None:
        try:
            super().send_exception(oprot, api, exc, seqid)
        finally:
            self.connections.end_call(self.connection, False)


def refuse(iprot, oprot, cap: int) -> None:
    """Answer the connection's first call with InternalError: the service is at its limit."""
    processor = TProcessor(T.Metadata, None)
    api, seqid, result, _ = processor.process_in(iprot)
    if isinstance(result, TApplicationException):  # an unknown method: no result type to fill
        processor.send_exception(oprot, api, result, seqid)
        return
    result.internal = T.InternalError(
        code="too_many_connections",
        message=f"the service is at its connection limit ({cap}); try again in a moment")
    processor.send_result(oprot, api, result, seqid)


def address(sock: socket.socket) -> str:
    """host:port of the peer, for logs and the audit log."""
    try:
        host, port = sock.getpeername()[:2]
    except OSError:  # already reset
        return "(gone)"
    return f"{host}:{port}"


def raise_fd_limit(connections: int) -> int:
    """Raise the soft limit on open files to the hard one; the limit now in force. Warns when
    the connection cap could exhaust it (accept() would then fail with EMFILE and back off)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit from %s to %s: %s", soft, wanted, error)
    if connections * FDS_PER_CONNECTION > soft:
        log.warning("LABCOMMONS_MAX_CONNECTIONS=%s may exhaust the open-file limit (%s); lower it or raise "
                    "the limit (ulimit -n)", connections, soft)
    return soft
