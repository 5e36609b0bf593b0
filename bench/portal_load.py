"""The portal under load: signed-in users clicking facets in the explorer, or (--hostile) how long a
signed-in user waits for a page while idle sockets and slow readers pile up.

Both start the metadata service (a demo commons at scale 0.1) and the portal (`labcommons portal
serve`, default settings: one process per core, 8 threads each) as separate processes on loopback.

Explorer (default): `--users` signed-in users (each its own session) click facets for `--seconds`
with no pause between clicks, each click the way the browser makes it: the facet's callback (the
filter change), whose new state fans out to the five callbacks that read it (facets, results,
charts, chips, address bar), sent at once as Dash's renderer does. A click's time runs from the
first request to the last answer. Prints `name: value` lines, `explorer_clicks_per_s` last.

    .venv/bin/python bench/portal_load.py --users 25 [--seconds 30] [--workers N]

Hostile (--hostile): signs in as the demo technician and times GET /signin on a fresh connection
(`--requests` times, median and maximum): with nothing else going on; with `--silent` sockets open
that send nothing; and then with `--readers` clients each reading a ranged download of a 48 MiB
file at 10 KB/s. The headline, the median wait under both loads, last.

    .venv/bin/python bench/portal_load.py --hostile [--silent 1000] [--readers 32] [--requests 20]
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
from labcommons.demo import create_demo  # noqa: E402
from labcommons.demo.accounts import PASSWORDS_FILE, read_passwords  # noqa: E402

sys.path.append(str(BENCH_DIR))
from handoff import USER as TECHNICIAN, process, signed_in  # noqa: E402
from harness import HOST, Service, free_port  # noqa: E402

USER = TECHNICIAN  # handoff.signed_in signs in as its USER, the demo technician
KIND = "case"
FAN_OUT = ("explore-facets.children", "explore-results.children", "explore-charts.children",
           "explore-chips.children")  # the panels drawn from the view's state
# a click as the page's script posts it: the ticks write the address, the address the state
# (portal/pages/explore.py: the URL is the view's one source), then the panels at once
TICKS, FOLLOW = "ticks", "follow"
CLICK_TIMEOUT_SECONDS = 60
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


class Explorer:
    """One signed-in user of the explorer, posting callbacks as the page's script does."""

    def __init__(self, portal: str, session: requests.Session, specs: dict[str, dict], facets: dict[str, list]):
        self.portal, self.specs, self.facets = portal, specs, facets
        self.sessions = [session] + [_copy(session) for _ in FAN_OUT]  # one connection per request in flight
        self.pool = ThreadPoolExecutor(len(FAN_OUT))
        self.state = {"kind": KIND, "filter": None, "search": "", "sort": [], "page": 0, "chart": "bar",
                      "by": "", "hist": ""}

    def click(self, rng: random.Random) -> float | None:
        """Tick one value of a random facet (or untick it), then render the new state: seconds
        taken, or None when the view did not change."""
        field = rng.choice(sorted(self.facets))
        ticked = [rng.choice(self.facets[field])] if rng.random() < 0.7 else []
        term = {"type": "explore-term", "kind": KIND, "field": field}
        began = time.perf_counter()
        store = {"id": "explore-state", "property": "data", "value": self.state}
        answer = self.post(self.sessions[0], TICKS, [[{"id": term, "property": "value", "value": ticked}]],
                           [[{"id": term, "property": "id", "value": term}], store])
        address = (answer or {}).get("response", {}).get("explore-url")
        if address is None:  # the view already was so (a tick that was there): the page sends nothing more
            return None
        answer = self.post(self.sessions[0], FOLLOW, [{"id": "explore-url", "property": "search",
                                                       "value": address["search"]}], [store])
        changed = (answer or {}).get("response", {}).get("explore-state")
        if changed is None:
            return None
        self.state = changed["data"]
        store = [{"id": "explore-state", "property": "data", "value": self.state}]
        list(self.pool.map(lambda pair: self.post(pair[1], pair[0], store), zip(FAN_OUT, self.sessions[1:])))
        return time.perf_counter() - began

    def post(self, session: requests.Session, output: str, inputs: list, state: list = ()) -> dict | None:
        spec = self.specs[output]
        outputs = [_prop(o) for o in spec["output"].strip(".").split("...")]
        body = {"output": spec["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": inputs, "state": list(state), "changedPropIds": [_changed(inputs[0])]}
        answer = session.post(f"{self.portal}/_dash-update-component", json=body, timeout=CLICK_TIMEOUT_SECONDS,
                              headers={"Origin": self.portal})
        answer.raise_for_status()
        return answer.json() if answer.status_code == 200 else None


def _copy(session: requests.Session) -> requests.Session:
    copy = requests.Session()
    copy.cookies.update(session.cookies)
    return copy


def _prop(text: str) -> dict:
    target, _, prop = text.rpartition(".")
    return {"id": target, "property": prop.split("@")[0]}  # allow_duplicate outputs carry a hash suffix


def _changed(first) -> str:
    item = first[0] if isinstance(first, list) else first
    id_ = item["id"] if isinstance(item["id"], str) else json.dumps(item["id"], sort_keys=True, separators=(",", ":"))
    return f"{id_}.{item['property']}"


def callback_specs(session: requests.Session, portal: str) -> dict[str, dict]:
    """The explorer's callbacks by the output they are found by (the first of theirs named here)."""
    deps = session.get(f"{portal}/_dash-dependencies", timeout=30).json()
    found = {name: next(d for d in deps if name in d["output"]) for name in FAN_OUT}
    found[TICKS] = next(d for d in deps if "explore-url.search" in d["output"]
                        and "explore-term" in json.dumps(d["inputs"]))  # the term checklists' own
    found[FOLLOW] = next(d for d in deps if "explore-state.data" in d["output"]
                         and "explore-url" in json.dumps(d["inputs"]))
    return found


def term_values(admin) -> dict[str, list]:
    """Every term facet of the explored kind with the values it offers."""
    kind = next(k for k in admin.documents() if k.kind == KIND)
    numeric = {f.name for f in kind.fields if f.kind in ("integer", "number") and not f.multi}
    terms = [name for name in kind.facets if name not in numeric]
    result = admin.facets(KIND, terms)
    return {f.field: [b.value for b in f.buckets if b.value != "__missing__"] for f in result.facets
            if any(b.value != "__missing__" for b in f.buckets)}


def explorer_load(portal: str, password: str, admin, users: int, seconds: float) -> tuple[list[float], list, float]:
    """(click seconds, why each failed click failed, elapsed) of `users` users clicking for `seconds`."""
    first = signed_in(portal, password)
    specs, facets = callback_specs(first, portal), term_values(admin)
    explorers = [Explorer(portal, first if i == 0 else signed_in(portal, password), specs, facets)
                 for i in range(users)]
    times, failures, lock = [], [], threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds

    def user(index: int) -> None:
        rng = random.Random(index)
        while time.perf_counter() < deadline:
            try:
                took = explorers[index].click(rng)
            except (requests.RequestException, ValueError, KeyError) as error:
                with lock:
                    failures.append(f"{type(error).__name__}: {str(error)[:300]}")
                continue
            if took is not None:
                with lock:
                    times.append(took)
    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, failures, time.perf_counter() - start


def portal_env(service, workers: int | None) -> dict:
    return dict(service.env, **({"LABCOMMONS_PORTAL_WORKERS": str(workers)} if workers else {}))


def hostile(service, portal: str, port: int, admin, args) -> None:
    session = signed_in(portal, read_passwords(service.data_dir / PASSWORDS_FILE)[USER])
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


def explorer(service, portal: str, admin, args) -> None:
    password = read_passwords(service.data_dir / PASSWORDS_FILE)[USER]
    explorer_load(portal, password, admin, min(args.users, 3), 3)  # warm up: imports, caches, connections
    times, failed, elapsed = explorer_load(portal, password, admin, args.users, args.seconds)
    times = sorted(times) or [float("nan")]
    print(f"users: {args.users}")
    print(f"clicks: {len(times)}")
    print(f"failed_clicks: {len(failed)}")
    if failed:
        print(f"first_failure: {failed[0]}")
    print(f"click_p50_ms: {statistics.median(times) * 1000:.0f}")
    print(f"click_p95_ms: {times[int(0.95 * (len(times) - 1))] * 1000:.0f}")
    print(f"click_max_ms: {times[-1] * 1000:.0f}")
    print(f"explorer_clicks_per_s: {len(times) / elapsed:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, help="portal processes (default: the setting's, one per core)")
    parser.add_argument("--hostile", action="store_true", help="idle sockets and slow readers instead")
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        with Service(data_dir, portal_port=str(port)) as service, service.client() as admin:
            create_demo(admin, data_dir / "storage", scale=0.1, passwords_path=data_dir / PASSWORDS_FILE)
            portal = f"http://{HOST}:{port}"
            with process([sys.executable, "-m", "labcommons.cli", "portal", "serve"], portal_env(service, args.workers),
                         data_dir.parent / "portal.log", f"{portal}/signin"):
                if args.hostile:
                    hostile(service, portal, port, admin, args)
                else:
                    explorer(service, portal, admin, args)
                    log = (data_dir.parent / "portal.log").read_text()
                    if "Traceback" in log:
                        print(log[log.index("Traceback"):][:3000], file=sys.stderr)


if __name__ == "__main__":
    main()
