"""The portal under hostile load: how long a signed-in user waits for a page while idle sockets
and slow readers pile up.

Starts the metadata service (a demo commons at scale 0.1) and the portal (default limits: 8
threads) as separate processes on loopback, signs in as the demo technician, and times GET /signin
on a fresh connection (`--requests` times, median and maximum): with nothing else going on;
with `--silent` sockets open that send nothing; and then with `--readers` clients each reading a
ranged download of a 48 MiB file at 10 KB/s (4 times the worker threads by default). Prints `name: value` lines; the headline, the
median wait under both loads, last.

    .venv/bin/python bench/portal_load.py [--silent 1000] [--readers 32] [--requests 20]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
from labcommons.demo import create_demo  # noqa: E402
from labcommons.demo.accounts import PASSWORDS_FILE, read_passwords  # noqa: E402

sys.path.append(str(BENCH_DIR))
from handoff import process, signed_in  # noqa: E402
from harness import HOST, Service, free_port  # noqa: E402

USER = "tom"  # handoff.signed_in signs in as its USER, the demo technician
BIG_FILE_BYTES = 48 * 1024 * 1024


def waits_ms(session, portal: str, count: int) -> tuple[float, float]:
    """(median, max) milliseconds for GET /signin, each on a new connection."""
    seconds = []
    for _ in range(count):
        session.close()
        began = time.perf_counter()
        session.get(f"{portal}/signin", timeout=60, headers={"Connection": "close"}).raise_for_status()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def slow_reader(port: int, request: bytes, stop: threading.Event) -> socket.socket:
    """A client that sent request and reads 1 KB every 100 ms until stopped."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((HOST, port))
    sock.sendall(request)

    def read() -> None:
        while not stop.is_set() and sock.recv(1024):
            time.sleep(0.1)
    threading.Thread(target=read, daemon=True).start()
    return sock


def big_file(admin) -> str:
    node = next(admin.nodes("data_file"))
    with Path(node["properties"]["storage_url"].removeprefix("file://")).open("r+b") as handle:
        handle.truncate(BIG_FILE_BYTES)  # sparse: no disk used
    return node["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        with Service(data_dir, portal_port=str(port)) as service, service.client() as admin:
            create_demo(admin, data_dir / "storage", scale=0.1, passwords_path=data_dir / PASSWORDS_FILE)
            portal = f"http://{HOST}:{port}"
            with process([sys.executable, "-m", "labcommons.cli", "portal", "serve"], service.env,
                         data_dir.parent / "portal.log", f"{portal}/signin"):
                session = signed_in(portal, read_passwords(data_dir / PASSWORDS_FILE)[USER])
                quiet = waits_ms(session, portal, args.requests)
                silent = [socket.create_connection((HOST, port)) for _ in range(args.silent)]
                idle = waits_ms(session, portal, args.requests)
                for sock in silent:
                    sock.close()
                cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
                request = (f"GET /files/{big_file(admin)}/download HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n"
                           "Range: bytes=1000-\r\n\r\n").encode()
                stop = threading.Event()
                readers = [slow_reader(port, request, stop) for _ in range(args.readers)]
                time.sleep(1.5)
                loaded = waits_ms(session, portal, args.requests)
                stop.set()
                for sock in readers:
                    sock.close()
    print(f"silent_sockets: {args.silent}")
    print(f"slow_readers: {args.readers}")
    print(f"signin_quiet_p50_ms: {quiet[0]:.1f}")
    print(f"signin_silent_max_ms: {idle[1]:.1f}")
    print(f"signin_silent_p50_ms: {idle[0]:.1f}")
    print(f"signin_loaded_max_ms: {loaded[1]:.1f}")
    print(f"signin_loaded_p50_ms: {loaded[0]:.1f}")


if __name__ == "__main__":
    main()
