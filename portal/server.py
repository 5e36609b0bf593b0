"""Serving the portal: where it listens, and the waitress server behind `labcommons portal serve`."""
from __future__ import annotations

import os
import signal
import sys

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8050


class AddressError(ValueError):
    """A LABCOMMONS_PORTAL_* variable has a value that is not allowed; the message names it."""


def address(environ: dict[str, str] | None = None) -> tuple[str, int]:
    """(host, port) from LABCOMMONS_PORTAL_HOST / LABCOMMONS_PORTAL_PORT, else 127.0.0.1:8050."""
    environ = os.environ if environ is None else environ
    host = environ.get("LABCOMMONS_PORTAL_HOST") or DEFAULT_HOST
    raw = environ.get("LABCOMMONS_PORTAL_PORT") or str(DEFAULT_PORT)
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise AddressError(f"LABCOMMONS_PORTAL_PORT: {raw!r} is not a port number")
    return host, int(raw)


def secure_cookies(environ: dict[str, str] | None = None) -> bool:
    """Whether session cookies travel over HTTPS only: LABCOMMONS_PORTAL_SECURE_COOKIES (true or
    false) if set, else whether the public address LABCOMMONS_PORTAL_URL is https."""
    environ = os.environ if environ is None else environ
    raw = environ.get("LABCOMMONS_PORTAL_SECURE_COOKIES", "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    if raw:
        raise AddressError(f"LABCOMMONS_PORTAL_SECURE_COOKIES: {raw!r} is not true or false")
    return environ.get("LABCOMMONS_PORTAL_URL", "").lower().startswith("https://")


def serve(app, host: str, port: int, threads: int = 8) -> None:
    """Serve until SIGTERM or Ctrl-C; prints the URL once listening."""
    from waitress import create_server

    # Uploads of data files may be far larger than waitress's 1 GB default request body.
    limit = app.config["SETTINGS"].max_upload_bytes + 1024 * 1024
    server = create_server(app, host=host, port=port, threads=threads, max_request_body_size=limit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # waitress closes its sockets on SystemExit
    print(f"portal listening on http://{host}:{server.effective_port}/", flush=True)
    server.run()
