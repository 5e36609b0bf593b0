"""The metadata service process: a threaded thriftpy2 server, the token check and error mapping.

Every IDL method's first argument is the caller's token; `Guard` verifies it before the handler
runs and turns domain errors into the IDL's typed exceptions. On SIGTERM or SIGINT the server
stops accepting, lets calls in flight finish, checkpoints the store and exits.
"""
from __future__ import annotations

import functools
import logging
import signal
import socket
import threading
import time

from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TServerSocket

from labcommons.settings import Settings, write_private
from metadata import errors
from metadata.auth import Tokens
from metadata import flatten
from metadata.dictionary import Dictionary
from metadata.idl import metadata_thrift as T
from metadata.service import MetadataService
from metadata.store import open_store

log = logging.getLogger("labcommons.metadata")
IDLE_CLIENT_SECONDS = 600
DRAIN_SECONDS = 30
LOCAL_ADMIN = "local-admin"


def thrift_error(error: errors.MetadataError):
    """The IDL exception for a domain error."""
    if isinstance(error, errors.Invalid):
        issues = [T.Issue(index=p.index, row=p.row, field=p.field, message=p.message) for p in error.problems]
        return T.ValidationError(code=error.code, message=error.message, issues=issues)
    kind = {errors.Missing: T.NotFound, errors.Clash: T.Conflict,
            errors.Denied: T.Forbidden, errors.BadToken: T.Unauthenticated}[type(error)]
    return kind(code=error.code, message=error.message)


class Guard:
    """Verifies the token of every call, counts calls in flight, and maps errors."""

    def __init__(self, service: MetadataService, tokens: Tokens):
        self._service, self._tokens = service, tokens
        self._in_flight = 0
        self._idle = threading.Condition()
        for name in T.Metadata.thrift_services:
            setattr(self, name, self._guarded(getattr(service, name)))

    def _guarded(self, method):
        @functools.wraps(method)
        def call(token, *args):
            with self._idle:
                self._in_flight += 1
            try:
                return method(self._tokens.verify(token), *args)
            except errors.MetadataError as error:
                raise thrift_error(error) from None
            except Exception:
                log.exception("unexpected error in %s", method.__name__)
                raise  # the client gets Thrift's internal error; the log has the traceback
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()
        return call

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False if the timeout passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


class Server:
    """The service wired to its store, ready to serve on host:port."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tokens = Tokens(settings.signing_key(), settings.token_ttl_seconds)
        self.store = open_store(settings)
        dictionary = Dictionary.load(settings.dictionary)
        flattening = self._flattening(settings, dictionary)
        self.store.use_documents(flattening)
        service = MetadataService(self.store, dictionary, flattening, self.tokens,
                                  settings.max_batch_entities, settings.max_batch_bytes)
        self.guard = Guard(service, self.tokens)
        socket = TServerSocket(host=settings.host, port=settings.port,
                               client_timeout=IDLE_CLIENT_SECONDS * 1000)
        self.thrift = TThreadedServer(TProcessor(T.Metadata, self.guard), socket)
        self._stopping = threading.Event()

    @staticmethod
    def _flattening(settings: Settings, dictionary: Dictionary) -> flatten.Flattening:
        """The configured flattening; the shipped one fits only the shipped dictionary."""
        if settings.flattening or settings.dictionary is None:
            return flatten.load(dictionary, settings.flattening)
        log.warning("LABCOMMONS_DICTIONARY is set without LABCOMMONS_FLATTENING: exploration has no documents")
        return flatten.Flattening.none()

    def write_admin_token(self) -> None:
        """The local operator's token, readable only by the user running the service."""
        token, _ = self.tokens.mint(LOCAL_ADMIN, ["admin"], {}, self.settings.token_ttl_seconds * 3)
        write_private(self.settings.admin_token_path, token)

    def listen(self) -> int:
        """Bind and listen (before serve, so callers can learn the port); returns the port."""
        self.thrift.trans.listen()
        return self.bound_port()

    def serve(self) -> None:
        """Serve until stop() (or SIGTERM/SIGINT when installed), then drain and close."""
        if self.thrift.trans.sock is None:
            self.listen()
        log.info("metadata service listening on %s:%s (store: %s)",
                 self.settings.host, self.bound_port(), self.store.name)
        while not self._stopping.is_set():
            try:
                client = self.thrift.trans.accept()
            except OSError:
                break  # the listening socket was closed by stop()
            # thriftpy2 sets TCP_NODELAY only on client sockets; without it here, Nagle holds
            # the tail of every multi-packet reply until the client's delayed ACK (~40 ms).
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # daemon: idle client connections must not keep a stopping process alive
            threading.Thread(target=self.thrift.handle, args=(client,), daemon=True).start()
        self._drain()

    def bound_port(self) -> int:
        return self.thrift.trans.sock.getsockname()[1]

    def stop(self, *_signal_args) -> None:
        """Stop accepting connections; serve() then drains calls in flight and closes the store."""
        self._stopping.set()
        self.thrift.trans.close()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _drain(self) -> None:
        started = time.monotonic()
        if not self.guard.wait_idle(DRAIN_SECONDS):
            log.warning("calls still running after %ss; closing anyway", DRAIN_SECONDS)
        self.store.close()
        log.info("metadata service stopped after draining for %.1fs", time.monotonic() - started)


def main(settings: Settings) -> None:
    """Run the service in the foreground until SIGTERM or SIGINT."""
    server = Server(settings)
    server.write_admin_token()
    server.install_signal_handlers()
    server.serve()
