"""Serving the portal: where it listens, and the waitress server behind `labcommons portal serve`."""
from __future__ import annotations

import os
import signal
import sys

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8050


class AddressError(ValueError):
    """LABCOMMONS_PORTAL_PORT is not a port number."""


def address(environ: dict[str, str] | None = None) -> tuple[str, int]:
    """(host, port) from LABCOMMONS_PORTAL_HOST / LABCOMMONS_PORTAL_PORT, else 127.0.0.1:8050."""
    environ = os.environ if environ is None else environ
    host = environ.get("LABCOMMONS_PORTAL_HOST") or DEFAULT_HOST
    raw = environ.get("LABCOMMONS_PORTAL_PORT") or str(DEFAULT_PORT)
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise AddressError(f"LABCOMMONS_PORTAL_PORT: {raw!r} is not a port number")
    return host, int(raw)


def serve(app, host: str, port: int, threads: int = 8) -> None:
    """Serve until SIGTERM or Ctrl-C; prints the URL once listening."""
    from waitress import create_server

    # Uploads of data files may be far larger than waitress's 1 GB default request body.
    limit = app.config["SETTINGS"].max_upload_bytes + 1024 * 1024
    server = create_server(app, host=host, port=port, threads=threads, max_request_body_size=limit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # waitress closes its sockets on SystemExit
    print(f"portal listening on http://{host}:{server.effective_port}/", flush=True)
    server.run()
