"""Open in Jupyter: how long from the click to the starter notebook, as the portal's page sees it.

Starts the metadata service (with a demo commons at scale 0.1), the portal and JupyterHub with
its proxy, each its own process on loopback, signs in to the portal as the demo technician, and
opens a measurement in Jupyter the way the progress page does: POST /jupyter/start, then
GET /jupyter/status every 0.1 s until the notebook is written and its address given. Cold: no
server running (the hub spawns one, in its bubblewrap sandbox where it runs); warm: the server is
up (only the checks and the notebook write). Prints `name: value` lines; the headline, the cold
median, last.

    .venv/bin/python bench/handoff.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
import requests  # noqa: E402

from labcommons.demo import create_demo  # noqa: E402
from labcommons.demo.accounts import PASSWORDS_FILE, read_passwords  # noqa: E402

sys.path.append(str(BENCH_DIR))
from harness import HOST, Service, free_port  # noqa: E402

USER = "tom"
READY_SECONDS = 120


@contextmanager
def process(argv: list[str], env: dict, log: Path, ready_url: str):
    """A child process, once ready_url answers 200; stopped at the end."""
    with log.open("wb") as sink:
        child = subprocess.Popen(argv, env=env, cwd=log.parent, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _answers(ready_url):
            if child.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{argv[2]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def signed_in(portal: str, password: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{portal}/signin", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    session.post(f"{portal}/signin", data={"csrf_token": token, "username": USER, "password": password},
                 timeout=30).raise_for_status()
    return session


def open_in_jupyter(session: requests.Session, portal: str, node: dict) -> float:
    """Seconds from the start request to the notebook's address, as the progress page polls."""
    context = {"kind": "measurement", "project": node["project_id"], "submitter_id": node["submitter_id"]}
    page = session.get(f"{portal}/jupyter/open/measurement/{node['project_id']}/{node['submitter_id']}", timeout=30)
    csrf = re.search(r'const csrf = "([^"]+)"', page.text).group(1)
    began = time.perf_counter()
    session.post(f"{portal}/jupyter/start", json=context, headers={"X-CSRFToken": csrf, "Origin": portal},
                 timeout=60).raise_for_status()
    while not (answer := session.get(f"{portal}/jupyter/status", params=context, timeout=60).json()).get("ready"):
        if "error" in answer:
            sys.exit(f"the hand-off failed: {answer['error']}")
        time.sleep(0.1)
    return time.perf_counter() - began


def stop_server(hub: str, token: str) -> None:
    headers = {"Authorization": f"token {token}"}
    requests.delete(f"{hub}/hub/api/users/{USER}/server", headers=headers, timeout=60)
    while requests.get(f"{hub}/hub/api/users/{USER}", headers=headers, timeout=30).json().get("servers"):
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as tmp:
        data_dir = Path(tmp) / "data"
        ports = {"hub_port": str(free_port()), "hub_api_port": str(free_port()),
                 "hub_proxy_api_port": str(free_port()), "portal_port": str(free_port())}
        with Service(data_dir, **ports) as service, service.client() as admin:
            create_demo(admin, data_dir / "storage", scale=0.1, passwords_path=data_dir / PASSWORDS_FILE)
            node = next(iter(admin.nodes("measurement")))
            portal, hub = f"http://{HOST}:{ports['portal_port']}", f"http://{HOST}:{ports['hub_port']}"
            env = dict(service.env, LABCOMMONS_PORTAL_URL=portal)
            with process([sys.executable, "-m", "labcommons.cli", "portal", "serve"], env,
                         data_dir.parent / "portal.log", f"{portal}/signin"), \
                 process([sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "hub" / "jupyterhub_config.py")],
                         env, data_dir.parent / "hub.log", f"{hub}/hub/api/"):
                session = signed_in(portal, read_passwords(data_dir / PASSWORDS_FILE)[USER])
                hub_token = (data_dir / "hub" / "portal-service-token").read_text().strip()
                cold, warm = [], []
                for number in range(1, rounds + 1):
                    cold.append(open_in_jupyter(session, portal, node))
                    warm.append(open_in_jupyter(session, portal, node))
                    stop_server(hub, hub_token)
                    print(f"round {number}/{rounds}: cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s", file=sys.stderr)
    print(f"rounds: {rounds}")
    print(f"handoff_warm_p50_s: {statistics.median(warm):.2f}")
    print(f"handoff_cold_max_s: {max(cold):.2f}")
    print(f"handoff_cold_p50_s: {statistics.median(cold):.2f}")


if __name__ == "__main__":
    main()
