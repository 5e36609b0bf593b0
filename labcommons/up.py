"""`labcommons up`: run the whole commons on this machine as supervised child processes.

Starts each service, waits until it answers, seeds the demo commons into an empty store (a
`labcommons demo` child, while the worker, portal and hub start), prints what runs where, and on
Ctrl-C or SIGTERM stops every child gracefully. A child that dies is started again after a pause
that doubles with each quick death (up to RESTART_MAX_WAIT); after RESTART_GIVE_UP quick deaths in
a row, up stops everything and exits 1. Each restart is said on the console and in the child's log.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from labcommons.demo.accounts import PASSWORDS_FILE
from ground.settings import Settings
from metadata.client import MetadataClient

READY_TIMEOUT_SECONDS = 60
PROBE_TIMEOUT_SECONDS = 2
STOP_TIMEOUT_SECONDS = 30
RESTART_FIRST_WAIT = 1.0   # seconds before the first restart; doubled after each quick death
RESTART_MAX_WAIT = 30.0
QUICK_DEATH_SECONDS = 60   # a child that dies sooner than this after starting died quickly
RESTART_GIVE_UP = 5        # quick deaths in a row after which up gives up


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    address: str
    log: Path
    command: list[str]
    started: float = field(default_factory=time.monotonic)
    quick_deaths: int = 0
    restart_at: float | None = None  # when a dead child is to be started again


def run_commons(settings: Settings, seed_demo: bool = True) -> int:
    """Run until interrupted; 0 after a clean stop, 1 if a service failed."""
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    stop = _stop_on_signals()
    try:
        children.append(_start("metadata", [sys.executable, "-m", "labcommons.cli", "metadata", "serve"],
                               f"thrift://{settings.host}:{settings.port}", logs))
        client = _wait_for_metadata(settings, children[0])
        seeding = _seed_demo(logs) if seed_demo and not client.health().counts else None
        client.close()
        children.append(_start_worker(logs))
        children.append(_start_portal(settings, logs))
        children.append(_start_hub(settings, logs))
        if seeding is not None:
            print(_seeded(*seeding), flush=True)
        _print_banner(settings, children, _trigger_lines(settings, children))
        return _watch(children, stop)
    except ServiceFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    finally:
        _stop_all(children)


class ServiceFailed(RuntimeError):
    """A child service exited or never became ready."""


def _start(name: str, command: list[str], address: str, logs: Path) -> Child:
    print(f"starting the {name} service ...", flush=True)  # a line per stage: the first start takes a while
    log = logs / f"{name}.log"
    return Child(name, _spawn(command, log), address, log, command)


def _spawn(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_metadata(settings: Settings, child: Child) -> MetadataClient:
    """A client once the service answers health; ServiceFailed with its log tail otherwise."""
    _wait_ready(child, lambda: _metadata_answers(settings))
    return _admin_client(settings)


def _admin_client(settings: Settings) -> MetadataClient:
    return MetadataClient(settings.host, settings.port, settings.admin_token_path.read_text().strip())


def _metadata_answers(settings: Settings) -> bool:
    try:
        token = settings.admin_token_path.read_text().strip()
        # a short timeout: whatever answers on the port may not be our service at all
        with MetadataClient(settings.host, settings.port, token, PROBE_TIMEOUT_SECONDS) as probe:
            probe.health()
        return True
    except Exception:  # not listening yet, or the token file not written yet
        return False


def _wait_ready(child: Child, probe) -> None:
    """Poll probe() until it is true; ServiceFailed with the child's log tail if the child exits
    or the time runs out first."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise ServiceFailed(f"the {child.name} service exited with code {child.process.returncode}:\n"
                                f"{_tail(child.log)}")
        if probe():
            return
        time.sleep(0.2)
    raise ServiceFailed(f"the {child.name} service did not answer within {READY_TIMEOUT_SECONDS}s:\n{_tail(child.log)}")


def _seed_demo(logs: Path) -> tuple[subprocess.Popen, Path, int]:
    """Start `labcommons demo` as a child process, so writing the demo's files overlaps the other
    services' start; (the process, its log, where its output starts in the log)."""
    print("seeding the demo commons (first start) ...", flush=True)
    log = logs / "demo.log"
    start = log.stat().st_size if log.exists() else 0
    return _spawn([sys.executable, "-m", "labcommons.cli", "demo"], log), log, start


def _seeded(process: subprocess.Popen, log: Path, start: int) -> str:
    """The demo's summary once it has seeded; ServiceFailed with its output when it failed."""
    process.wait()
    with log.open(errors="replace") as text:
        text.seek(start)
        output = text.read().strip()
    if process.returncode:
        raise ServiceFailed(f"seeding the demo commons failed (exit code {process.returncode}; its log, "
                            f"{log}):\n{output[-3000:]}")
    return output


def _start_worker(logs: Path) -> Child:
    """The worker runs the commons' workflows with the local engine; it needs no port."""
    return _start("worker", [sys.executable, "-m", "labcommons.cli", "worker"], "local engine", logs)


def _start_portal(settings: Settings, logs: Path) -> Child:
    """Start the portal after the metadata service (it asks the service for everything)."""
    from portal.server import address

    host, port = address(settings)
    if _answers(host, port):  # else our probe could take another server's answer for the portal's
        raise ServiceFailed(f"the portal's port {host}:{port} is in use; set LABCOMMONS_PORTAL_PORT to another")
    child = _start("portal", [sys.executable, "-m", "labcommons.cli", "portal", "serve"],
                   f"http://{host}:{port}/", logs)
    _wait_ready(child, lambda: _http_ok(child.address + "signin"))
    return child


HUB_CONFIG = Path(__file__).resolve().parent.parent / "hub" / "jupyterhub_config.py"


def _start_hub(settings: Settings, logs: Path) -> Child:
    """Start JupyterHub (it starts its proxy and idle culler) after the portal, its sign-in."""
    if _answers(settings.hub_host, settings.hub_port):
        raise ServiceFailed(f"the hub's port {settings.hub_host}:{settings.hub_port} is in use; "
                            "set LABCOMMONS_HUB_PORT to another")
    child = _start("hub", [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
                   f"{settings.hub_public_url}/", logs)
    _wait_ready(child, lambda: _http_ok(f"{settings.hub_public_url}/hub/api/"))
    return child


def _answers(host: str, port: int) -> bool:
    """Whether something already accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False  # not listening yet


def _trigger_lines(settings: Settings, children: list[Child]) -> list[str]:
    """The banner's lines on the enabled triggers and the runs they started (asked of the service)."""
    portal = next((c.address for c in children if c.name == "portal"), "")
    try:
        with _admin_client(settings) as client:
            enabled = [t for t in client.triggers() if t.enabled]
            runs = {t.template: client.runs(template=t.template, limit=1).total for t in enabled}
    except Exception as error:  # the banner must not stop the commons; say why the lines are missing
        return [f"  triggers   (not listed: {error})"]
    return trigger_lines(enabled, runs, portal + "runs")


def trigger_lines(triggers, runs: dict[str, int], runs_url: str) -> list[str]:
    """For each enabled trigger: what it does, and how many runs of its template exist so far
    (the demo replays the shipped QC trigger on a few of its measurements: the worker runs those
    in the background)."""
    lines = []
    for trigger in triggers:
        count = runs.get(trigger.template, 0)
        lines += [f"  trigger    {trigger.name}: {trigger.description}",
                  f"             {count} {trigger.template} run{'s' if count != 1 else ''} so far, run by the worker "
                  f"in the background; follow them at {runs_url} or with `labcommons runs`"]
    return lines


def _print_banner(settings: Settings, children: list[Child], triggers: list[str] = ()) -> None:
    print("\nlabcommons is running:")
    for child in children:
        print(f"  {child.name:<10} {child.address:<28} pid {child.process.pid:<7} log {child.log}")
    for line in triggers:
        print(line)
    print(f"  data dir   {settings.data_dir.resolve()}")
    print(f"  admin token (for the CLI on this machine): {settings.admin_token_path.resolve()}")
    passwords = settings.data_dir / PASSWORDS_FILE
    if passwords.exists():
        print(f"  portal sign-in: demo users ana (analyst), tom (technician), ada (admin); "
              f"passwords in {passwords.resolve()}")
    print("\ntry:  .venv/bin/labcommons status    .venv/bin/labcommons ls case")
    print(f"stop: Ctrl-C, or kill -TERM {os.getpid()}\n", flush=True)


def _watch(children: list[Child], stop) -> int:
    """Restart children that die until a stop signal (0); ServiceFailed when one keeps dying."""
    while not stop():
        for child in children:
            _supervise(child, time.monotonic())
        time.sleep(0.5)
    print("stopping ...", flush=True)
    return 0


def _supervise(child: Child, now: float) -> None:
    """Start a dead child again when its wait is over; schedule that when it has just died."""
    if child.restart_at is not None:
        if now >= child.restart_at:
            child.process, child.started, child.restart_at = _spawn(child.command, child.log), now, None
            _say(child, f"{child.name} started again (pid {child.process.pid})")
        return
    code = child.process.poll()
    if code is None:
        return
    child.quick_deaths = child.quick_deaths + 1 if now - child.started < QUICK_DEATH_SECONDS else 1
    if child.quick_deaths >= RESTART_GIVE_UP:
        raise ServiceFailed(f"{child.name} died {child.quick_deaths} times in a row within {QUICK_DEATH_SECONDS}s "
                            f"of starting (last exit code {code}); giving up. Its log, {child.log}:\n{_tail(child.log)}")
    wait = min(RESTART_FIRST_WAIT * 2 ** (child.quick_deaths - 1), RESTART_MAX_WAIT)
    child.restart_at = now + wait
    _say(child, f"{child.name} exited with code {code}; restarting it in {wait:g}s (see {child.log})")


def _say(child: Child, message: str) -> None:
    """A supervision event: on the console, and in the child's own log where its story is."""
    print(f"up: {message}", file=sys.stderr, flush=True)
    try:
        with child.log.open("a") as log:
            log.write(f"[labcommons up {time.strftime('%Y-%m-%d %H:%M:%S')}] {message}\n")
    except OSError:
        pass  # a full disk must not stop the supervisor


def _stop_all(children: list[Child]) -> None:
    """SIGTERM every child, wait for a graceful exit, and SIGKILL only what will not stop."""
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    for child in children:
        try:
            child.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            child.process.kill()


def _stop_on_signals():
    """Install SIGINT/SIGTERM handlers; returns a function telling whether one arrived."""
    received = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: received.append(True))
    return lambda: bool(received)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
