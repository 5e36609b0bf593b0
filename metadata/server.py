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

from ground.settings import Settings, write_private
from ground.storage import Layout
from metadata import errors
from metadata.auth import Tokens
from metadata import flatten, templates as catalog
from metadata.dictionary import Dictionary
from metadata.idl import metadata_thrift as T
from metadata.service import MetadataService
from metadata.notifications import Notifier
from metadata.triggers import load_rules
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


# Calls that change something: each is audited, whatever its outcome. Every other call is
# audited when it is refused for lack of a valid token or of a right.
WRITES = {"launch", "cancel_run", "retry_run", "set_trigger_enabled", "submit", "delete_nodes", "save_cohort",
          "delete_cohort", "reindex", "create_token", "save_account", "set_grant", "sign_in", "sign_out_everywhere",
          "create_personal_token", "renew_personal_token", "revoke_personal_token", "set_tier_access_limit",
          "save_parameter_set"}
SECRET_ARGUMENTS = {"sign_in": 1, "save_account": 1}  # the password's position: never audited
_peer = threading.local()


def describe(name: str, args: tuple) -> tuple[str, dict]:
    """(target, detail) of a call for the audit log, without secrets or bulky bodies."""
    shown = [a for i, a in enumerate(args) if SECRET_ARGUMENTS.get(name) != i]
    first = shown[0] if shown else ""
    if hasattr(first, "project_id") and hasattr(first, "body"):  # a SubmitRequest
        return first.project_id, {"format": first.format, "dry_run": first.dry_run, "bytes": len(first.body or "")}
    target = first if isinstance(first, (str, int)) else (
        getattr(first, "name", "") or getattr(first, "kind", "") or getattr(first, "project_id", ""))
    return str(target), {"arguments": [a for a in shown[1:] if isinstance(a, (str, int, list, dict))][:4]}


class Guard:
    """Verifies the token of every call, audits, counts calls in flight, and maps errors."""

    def __init__(self, service: MetadataService, tokens: Tokens):
        self._service, self._tokens = service, tokens
        self._in_flight = 0
        self._idle = threading.Condition()
        for name in T.Metadata.thrift_services:
            setattr(self, name, self._guarded(getattr(service, name)))

    def _guarded(self, method):
        name = method.__name__

        @functools.wraps(method)
        def call(token, *args):
            with self._idle:
                self._in_flight += 1
            who = None
            try:
                who = self._service.registry.resolve(self._tokens.verify(token))
                result = method(who, *args)
                if name in WRITES and not getattr(args[0] if args else None, "dry_run", False):
                    self._audit(name, who, args, "ok")
                return result
            except errors.MetadataError as error:
                if name in WRITES or isinstance(error, (errors.BadToken, errors.Denied)):
                    self._audit(name, who, args, error.code)
                raise thrift_error(error) from None
            except Exception:
                log.exception("unexpected error in %s", method.__name__)
                raise  # the client gets Thrift's internal error; the log has the traceback
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()
        return call

    def _audit(self, name: str, who, args: tuple, outcome: str) -> None:
        """Record one call; a failure here is logged, never turned into the call's error."""
        try:
            target, detail = describe(name, args)
            user = who.user if who else "(no valid token)"
            client = getattr(_peer, "address", "")
            if name == "sign_in" and who is not None:  # the person signing in, through the portal
                user, detail = str(args[0]), {"via": who.user}
                client = str(args[2]) if len(args) > 2 and args[2] else client
            self._service.audit_log.record(user, name, target, detail, client, outcome)
        except Exception:
            log.exception("could not write the audit entry for %s", name)

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
        flattening = self.flattening_for(settings, dictionary)
        self.store.use_documents(flattening)
        service = MetadataService(self.store, dictionary, flattening, self.tokens,
                                  catalog.load(settings.templates_dir), load_rules(settings.triggers_dir),
                                  Notifier(self.store, settings.data_dir / "outbox", settings.smtp_host,
                                           settings.smtp_port, settings.mail_from, settings.mail_domain),
                                  settings.max_batch_entities, settings.max_batch_bytes,
                                  layout=Layout.from_settings(settings))
        self.guard = Guard(service, self.tokens)
        socket = TServerSocket(host=settings.host, port=settings.port,
                               client_timeout=IDLE_CLIENT_SECONDS * 1000)
        self.thrift = TThreadedServer(TProcessor(T.Metadata, self.guard), socket)
        self._stopping = threading.Event()

    @staticmethod
    def flattening_for(settings: Settings, dictionary: Dictionary) -> flatten.Flattening:
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
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()
        self._drain()

    def _handle(self, client) -> None:
        """Serve one connection, remembering its peer for the audit log."""
        peer = client.sock.getpeername()
        _peer.address = f"{peer[0]}:{peer[1]}"
        self.thrift.handle(client)

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
