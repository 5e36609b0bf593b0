"""The service's own records at a million: runs and audit entries listed through the metadata service.

Writes N synthetic runs (`workflow_run` nodes in 20 projects, statuses as a busy lab has them,
created over a year) and N audit entries (50 users, and one rare user with 20 entries) into the
embedded store through its bulk path (Store.apply in large batches, which also fills the records
index), starts the service on that data as its own process, and times through Thrift:
- the runs list: a page of 50 runs filtered by status and project, newest first, with the total;
- the audit log: a page of entries of the rare user.

Prints `name: value` lines, the headline (`runs_list_p50_ms`) last.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # this checkout, not whatever the venv has installed
BENCH_DIR = Path(__file__).resolve().parent
sys.path = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]

import numpy as np  # noqa: E402

from metadata.idl import metadata_thrift as T  # noqa: E402
from metadata.store.base import StoredNode, Write  # noqa: E402
from metadata.store.embedded import EmbeddedStore  # noqa: E402

sys.path.append(str(BENCH_DIR))
from harness import Service, cpu_ms  # noqa: E402

BATCH = 50_000
PROJECTS = [f"proj-{i:02d}" for i in range(20)]
STATUSES = (("succeeded", 0.80), ("failed", 0.15), ("cancelled", 0.04), ("running", 0.005), ("queued", 0.005))
ACTIONS = ("submit", "launch", "sign_in", "save_cohort", "get_node", "cancel_run")
RARE_USER, RARE_ENTRIES = "rare.user@lab.org", 20
START = datetime(2025, 12, 1, tzinfo=timezone.utc)
QUERIES = 200


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def times(count: int, rng):
    """`count` creation times over a year, ascending (records arrive in time order), batch by batch."""
    seconds = np.sort(rng.uniform(0, 365 * 86400, count))
    for start in range(0, count, BATCH):
        yield [iso(START + timedelta(seconds=float(s))) for s in seconds[start:start + BATCH]]


def run_nodes(count: int, rng):
    """Synthetic runs, in batches of Writes."""
    names, weights = zip(*STATUSES)
    statuses = rng.choice(names, count, p=weights)
    projects = rng.choice(PROJECTS, count)
    users = rng.integers(0, 40, count)
    for start, stamps in zip(range(0, count, BATCH), times(count, rng)):
        yield [Write(StoredNode(str(uuid.uuid4()), "workflow_run", str(projects[i]), f"run-{i:08d}", 1,
                                {"template": "qc-spectra", "status": str(statuses[i]), "attempt": 1,
                                 "parameters_json": "{}", "message": "done"}, [], at, at, f"user{users[i]}",
                                f"user{users[i]}"), None)
               for i, at in zip(range(start, start + len(stamps)), stamps)]


def audit_nodes(count: int, rng):
    """Synthetic audit entries: 50 users, RARE_ENTRIES of them the rare user's, spread through the log."""
    rare = set(rng.choice(count, RARE_ENTRIES, replace=False).tolist())
    users, actions = rng.integers(0, 50, count), rng.integers(0, len(ACTIONS), count)
    for start, stamps in zip(range(0, count, BATCH), times(count, rng)):
        batch = []
        for i, at in zip(range(start, start + len(stamps)), stamps):
            props = {"at": at, "user": RARE_USER if i in rare else f"user{users[i]}@lab.org",
                     "action": ACTIONS[actions[i]], "target": PROJECTS[i % 20], "detail_json": "{}",
                     "client": "10.0.0.1", "outcome": "ok"}
            batch.append(Write(StoredNode(str(uuid.uuid4()), "_audit", "~audit", f"a{i:09d}", 1, props, [], at, at),
                               None))
        yield batch


def build(path: Path, count: int) -> dict[str, float]:
    """Write the runs and audit entries; seconds each took."""
    rng, store, took = np.random.default_rng(7), EmbeddedStore(path, columnar=False), {}
    for name, batches in (("runs", run_nodes(count, rng)), ("audit", audit_nodes(count, rng))):
        began = time.perf_counter()
        for writes in batches:
            store.apply(writes, set())
        took[name] = time.perf_counter() - began
    store.close()
    return took


def timed(call, count: int) -> list[float]:
    """Milliseconds of each of `count` calls, after two untimed warm-ups."""
    call(), call()
    spent = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        spent.append((time.perf_counter() - began) * 1000)
    return spent


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="runs, and as many audit entries")
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--data", type=Path, help="a data dir to keep: built there when it holds no store yet, "
                                                  "else reused as built before (queries timed only)")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        if not (data / "metadata.duckdb").exists():
            took = build(data / "metadata.duckdb", args.rows)
            print(f"rows: {args.rows}")
            print(f"runs_build_per_s: {args.rows / took['runs']:.0f}")
            print(f"audit_build_per_s: {args.rows / took['audit']:.0f}")
        with Service(data) as service:
            client = service.client()
            runs = client._call("list_runs", T.RunQuery(status="failed", project_id="proj-07", limit=50))
            print(f"runs_list_total: {runs.total}")
            audit = client._call("audit", T.AuditQuery(user=RARE_USER, limit=100))
            print(f"audit_query_entries: {len(audit.entries)}")
            audit_ms = timed(lambda: client._call("audit", T.AuditQuery(user=RARE_USER, limit=100)), args.queries)
            page2 = lambda: client._call("list_runs", T.RunQuery(status="failed", project_id="proj-07",  # noqa: E731
                                                                  limit=50, cursor=runs.next_cursor))
            print(f"runs_list_page2_p50_ms: {statistics.median(timed(page2, args.queries)):.2f}")
            before = cpu_ms(service.process.pid)
            runs_ms = timed(lambda: client._call("list_runs", T.RunQuery(status="failed", project_id="proj-07",
                                                                         limit=50)), args.queries)
            # the service's CPU per call moves far less than wall time on a shared machine
            print(f"runs_list_service_cpu_ms_per_call: {(cpu_ms(service.process.pid) - before) / (args.queries + 2):.2f}")
            print(f"runs_list_p95_ms: {p(runs_ms, 95):.2f}")
            print(f"audit_query_p95_ms: {p(audit_ms, 95):.2f}")
            print(f"audit_query_p50_ms: {statistics.median(audit_ms):.2f}")
            print(f"runs_list_p50_ms: {statistics.median(runs_ms):.2f}")


if __name__ == "__main__":
    main()
