"""Several processes serving the portal's one listening socket, and the parent that keeps them.

Why processes: the portal's work is Python (Dash callbacks, building and serializing figures),
so one process uses one core however many threads it has. The parent binds the socket once and
forks `count` children that each run the guarded waitress server (portal/server.py) on it,
with every guard of its own (connection limit, deadlines, eviction, the precheck). The kernel
hands a new connection to whichever child accepts first, so an idle child takes it from a busy
one, and a child that dies loses only its own connections, never the socket. The parent only
supervises: it starts a child again when one dies (pausing longer after each quick death), and
on SIGTERM or Ctrl-C stops them all.

Children share nothing but the socket and keep nothing another needs: sessions are signed
cookies, CSRF tokens live in the session, OAuth codes and tokens are sealed blobs whose one-time
use the service enforces (portal/notebooks/oauth.py), uploads are staged in the object store,
and sign-in throttling is the service's.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

FIRST_PAUSE_SECONDS = 0.5   # before starting a dead child again; doubles after each quick death
LAST_PAUSE_SECONDS = 30.0
STEADY_SECONDS = 10.0        # a child that lived this long died of something new: pause afresh
STOP_SECONDS = 10.0          # for the children to finish after SIGTERM, before SIGKILL
BACKLOG = 1024
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Stop(Exception):
    """SIGTERM or Ctrl-C reached the parent."""


def listening_socket(host: str, port: int) -> socket.socket:
    """The portal's socket, bound and listening, for every child to accept on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def supervise(count: int, run_child: Callable[[], None], say: Callable[[str], None] = print) -> None:
    """Keep `count` children running run_child() until SIGTERM or Ctrl-C, then stop them."""
    def stop(*_):
        raise Stop
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, when it started)
    pauses = [FIRST_PAUSE_SECONDS] * count
    try:
        for slot in range(count):
            _start(children, slot, run_child)
        while True:
            pid, status = os.wait()
            slot, started = children.pop(pid)
            lived = time.monotonic() - started
            pauses[slot] = FIRST_PAUSE_SECONDS if lived > STEADY_SECONDS else min(pauses[slot] * 2, LAST_PAUSE_SECONDS)
            say(f"portal worker {slot} (pid {pid}) {_ending(status)} after {lived:.1f}s; "
                f"starting it again in {pauses[slot]:g}s")
            time.sleep(pauses[slot])
            _start(children, slot, run_child)
    except Stop:
        pass
    finally:
        stop_all(children)


def _start(children: dict, slot: int, run_child: Callable[[], None]) -> None:
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _die_with(parent)
        _child(run_child)
    children[pid] = (slot, time.monotonic())


def _die_with(parent: int) -> None:
    """Have the kernel send this child SIGTERM when the parent dies, however it dies (a parent
    killed with SIGKILL would otherwise leave children serving the port)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux: the parent's SIGTERM handler still stops its children
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(0)


def _child(run_child: Callable[[], None]) -> None:
    """Run in a forked child: serve until told to stop, then leave without the parent's clean-up."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # waitress closes its sockets on SystemExit
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run_child()
    except (SystemExit, KeyboardInterrupt):
        pass
    except BaseException:  # noqa: BLE001 - the parent logs the exit and starts another
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def stop_all(children: dict[int, tuple[int, float]]) -> None:
    """SIGTERM every child, wait for them a while, then SIGKILL the rest."""
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while children and time.monotonic() < deadline:
        for pid in list(children):
            if _reaped(pid):
                children.pop(pid)
        time.sleep(0.05)
    for pid in children:
        _signal(pid, signal.SIGKILL)
        _reaped(pid, block=True)
    children.clear()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _reaped(pid: int, block: bool = False) -> bool:
    try:
        return os.waitpid(pid, 0 if block else os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def _ending(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
