"""A real portal (`labcommons portal serve`) over a real metadata service and a demo commons,
for the attacks in test_portal_*.py, with raw-socket helpers (loopback only, bounded waits).

- live_portal(data_dir, **env) -> Commons: the service, demo commons (scale 0.1) and portal as
  child processes; env adds variables to the portal's (its LABCOMMONS_PORTAL_* limits, TMPDIR).
- Commons.signed_in(user) -> a requests.Session signed in through the sign-in form.
- raw_request(commons, text) -> a connected socket that has sent `text`.
"""
from __future__ import annotations

import contextlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import requests

from labcommons.demo import create_demo
from labcommons.demo.accounts import PASSWORDS_FILE, read_passwords
from tests.e2e.browser import Portal
from tests.e2e.conftest import ServiceProcess

TIMEOUT = 30


@dataclass
class Commons:
    service: ServiceProcess
    portal: Portal
    admin: object  # the operator's MetadataClient

    @property
    def url(self) -> str:
        return self.portal.url

    def signed_in(self, user: str) -> requests.Session:
        password = read_passwords(self.service.data_dir / PASSWORDS_FILE)[user]
        session = requests.Session()
        answer = session.post(f"{self.url}/signin", timeout=TIMEOUT, data={
            "csrf_token": csrf_token(session.get(f"{self.url}/signin", timeout=TIMEOUT).text),
            "username": user, "password": password})
        assert answer.ok and "/signin" not in answer.url, answer.text[:500]
        return session


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


@contextlib.contextmanager
def live_portal(data_dir: Path, **env: str):
    service = ServiceProcess(data_dir).start()
    admin = service.client()
    portal = None
    try:
        create_demo(admin, data_dir / "storage", scale=0.1, passwords_path=data_dir / PASSWORDS_FILE)
        portal = Portal(service, env)
        yield Commons(service, portal, admin)
    finally:
        admin.close()
        if portal is not None:
            portal.stop()
        service.terminate()


def raw_request(commons: Commons, text: str = "", receive_buffer: int = 0) -> socket.socket:
    """A socket connected to the portal that has sent text (CRLF line ends); a small
    receive_buffer makes a slow reader whose kernel buffer fills at once."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", commons.portal.port))
    if text:
        sock.sendall(text.replace("\n", "\r\n").encode())
    return sock


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    """Whether the server closes the connection within `wait` seconds (reading what it sends)."""
    sock.settimeout(wait)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
