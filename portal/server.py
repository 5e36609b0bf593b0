"""Serving the portal: where it listens, and the waitress server behind `labcommons portal serve`.

Waitress as it comes can be starved: it stops accepting at 100 connections and keeps an idle or
silent one for 120 s, and it reads a whole request body before the app may refuse it. Here:

- Several processes serve one listening socket (LABCOMMONS_PORTAL_WORKERS, default one per
  core; portal/processes.py), each with every guard below; the limits are per process.
- Connections are cheap and bounded by file descriptors, not by a small count: the soft
  RLIMIT_NOFILE is raised to the hard one and the limit follows from it (poll, not select).
- A connection must deliver a request's headers (and, without a signed-in session, the whole
  request) within LABCOMMONS_PORTAL_HEADER_SECONDS (a setting) of its first byte or of opening; between
  requests a keep-alive connection may idle LABCOMMONS_PORTAL_IDLE_SECONDS.
- At the limit, accepting goes on: the connections waited on longest that have nothing in
  progress (no request being served, no response being sent, no signed-in body arriving) are
  closed to make room, so idle and anonymous sockets can never lock signed-in users out.
- When a request's headers are complete, portal/intake.py's precheck may refuse it (size,
  session, grant) before one byte of its body is read or spooled.
- Large responses (downloads, exports) are handed to the event loop as files
  (wsgi.file_wrapper), so a slow reader costs a socket, never a worker thread.
"""
from __future__ import annotations

import heapq
import resource
import signal
import sys
import time
from dataclasses import dataclass

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher
from waitress.utilities import Error

DEFAULT_HOST = "127.0.0.1"


def address(settings) -> tuple[str, int]:
    """(host, port) the portal listens on: the settings' portal_host and portal_port."""
    return settings.portal_host or DEFAULT_HOST, settings.portal_port


@dataclass(frozen=True)
class Limits:
    """How the portal serves connections (the settings' portal_*; see docs/portal.md)."""
    threads: int = 8                  # worker threads running the app, per process
    connections: int = 10000          # open connections at most (lowered to what the fd limit allows)
    header_seconds: int = 10          # to send a request's headers (anonymous: the whole request)
    idle_seconds: int = 60            # a keep-alive connection with nothing in progress
    workers: int = 1                  # processes serving the one listening socket


def limits(settings) -> Limits:
    """The serving limits the settings give (LABCOMMONS_PORTAL_THREADS, _MAX_CONNECTIONS,
    _HEADER_SECONDS, _IDLE_SECONDS, _WORKERS)."""
    return Limits(threads=settings.portal_threads, connections=settings.portal_max_connections,
                  header_seconds=settings.portal_header_seconds, idle_seconds=settings.portal_idle_seconds,
                  workers=settings.portal_processes)


FDS_PER_CONNECTION = 3   # the socket, a spooled body or response buffer, a file being sent
RESERVED_FDS = 256       # the app's own: service connections, logs, the store's files


def open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_limit(wanted: int, open_files: int) -> int:
    """The connection limit the open-files limit leaves room for (at least a few)."""
    return max(16, min(wanted, (open_files - RESERVED_FDS) // FDS_PER_CONNECTION))


def serve(app, host: str, port: int, serve_limits: Limits) -> None:
    """Serve until SIGTERM or Ctrl-C, in this process or in serve_limits.workers forked ones
    (portal/processes.py); prints the URL once listening."""
    from portal import intake, processes

    admit = intake.for_app(app)
    if serve_limits.workers == 1:
        server = make_server(app, host, port, serve_limits, admit)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # waitress closes its sockets on SystemExit
        _announce(host, server.effective_port, serve_limits, server.connection_limit)
        server.run()
        return
    sock = processes.listening_socket(host, port)
    _announce(host, sock.getsockname()[1], serve_limits, connection_limit(serve_limits.connections, open_files_limit()))
    processes.supervise(serve_limits.workers, lambda: make_server(app, host, port, serve_limits, admit, sock).run())


def _announce(host: str, port: int, serve_limits: Limits, connections: int) -> None:
    processes = f"{serve_limits.workers} processes of " if serve_limits.workers > 1 else ""
    print(f"portal listening on http://{host}:{port}/ ({processes}{serve_limits.threads} threads, "
          f"at most {connections} connections each)", flush=True)


def make_server(app, host: str, port: int, serve_limits: Limits, admit, sock=None) -> "GuardedServer":
    """A waitress server with the guards above; `admit` is portal.intake.for_app(app); on `sock`,
    a socket already listening, if given (shared by the processes serving the portal)."""
    # the largest body any route takes (an upload); each route's own limit is the precheck's
    body_limit = app.config["SETTINGS"].max_upload_bytes + 1024 * 1024
    adj = Adjustments(host=host, port=port, threads=serve_limits.threads, max_request_body_size=body_limit,
                      channel_timeout=serve_limits.idle_seconds, cleanup_interval=1, asyncore_use_poll=True,
                      connection_limit=connection_limit(serve_limits.connections, open_files_limit()))
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    placed = {} if sock is None else {"_sock": sock, "bind_socket": False,
                                      "sockinfo": (sock.family, sock.type, None, None)}
    return GuardedServer(app, map={}, dispatcher=dispatcher, adj=adj, limits=serve_limits, admit=admit, **placed)


class Refused(Error):
    """The precheck's refusal as waitress's error response (the connection closes after it)."""

    def __init__(self, refusal):
        super().__init__(refusal.message)
        self.refusal, self.code = refusal, refusal.status
        self.reason = {401: "Unauthorized", 403: "Forbidden", 411: "Length Required",
                       413: "Content Too Large"}.get(refusal.status, "Bad Request")

    def to_response(self, ident=None):
        headers = [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")]
        return f"{self.code} {self.reason}", headers, self.refusal.body()


class GuardedParser(HTTPRequestParser):
    """A request parser that asks the app's precheck once the headers are in, before the body."""
    signed_in = admitted = False

    def __init__(self, adj, admit):
        super().__init__(adj)
        self.admit, self.started = admit, time.time()  # made when the request's first byte arrives

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        if not self.headers_finished or self.completed or self.error is not None or self.admitted:
            return consumed
        self.admitted = True
        refusal, self.signed_in = self.admit(self.command, self.path, self.query, self.headers, self.chunked)
        if refusal is None:
            return consumed
        # answer now: no body is read, no "100 Continue" invites one, the rest of this read is dropped
        self.error, self.completed, self.expect_continue, self.body_rcv = Refused(refusal), True, False, None
        return len(data)


class GuardedChannel(HTTPChannel):
    """A connection that knows whether it has something in progress and when it must be done."""
    served = False

    def parser_class(self, adj) -> GuardedParser:  # waitress calls self.parser_class(adj)
        return GuardedParser(adj, self.server.admit)

    def service(self):
        self.served = True
        super().service()

    def busy(self) -> bool:
        """A request being served, a response being sent, or a signed-in body arriving."""
        request = self.request
        return bool(self.requests or self.total_outbufs_len
                    or (request is not None and request.headers_finished and request.signed_in))

    def waiting_since(self) -> float:
        """When the wait this connection is in began: its request's first byte, else its last activity."""
        return self.request.started if self.request is not None else self.last_activity

    def deadline(self, limits: Limits) -> float:
        """When a connection with nothing in progress is closed."""
        if self.request is not None:
            return self.request.started + limits.header_seconds
        if not self.served:
            return self.creation_time + limits.header_seconds
        return self.last_activity + limits.idle_seconds


class GuardedServer(TcpWSGIServer):
    """Accepts at every load: at the limit, closes the longest-waiting connections with nothing
    in progress; closes connections past their deadline every second."""
    channel_class = GuardedChannel

    def __init__(self, application, limits: Limits, admit, **kw):
        self.limits, self.admit = limits, admit
        super().__init__(application, **kw)
        self.connection_limit = self.adj.connection_limit

    def readable(self) -> bool:
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return self.accepting  # never stop accepting: make_room() keeps the count

    def handle_accept(self):
        super().handle_accept()
        excess = len(self.active_channels) - self.connection_limit
        if excess > 0:
            self.make_room(excess)

    def make_room(self, count: int) -> None:
        """Close the `count` connections waited on longest among those with nothing in progress
        (the one just accepted, when nothing else can go)."""
        idle = (c for c in list(self.active_channels.values()) if not c.busy())
        for channel in heapq.nsmallest(count, idle, key=GuardedChannel.waiting_since):
            channel.handle_close()

    def maintenance(self, now: float) -> None:
        """Close connections past their deadline (waitress's own: only those idle 120 s)."""
        for channel in list(self.active_channels.values()):
            if channel.busy():
                stalled = not channel.requests and channel.last_activity + self.limits.idle_seconds < now
                channel.will_close = channel.will_close or stalled
            elif channel.deadline(self.limits) < now:
                channel.will_close = True
