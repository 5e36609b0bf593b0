"""The workflows dashboard at scale: `run_stats` over Thrift on an embedded store holding N runs.

    .venv/bin/python bench/dashboard.py [--runs 1000000] [--days 365] [--calls 20]

Writes N workflow_run records (spread evenly over the last --days days, three templates, twenty
projects, 85% succeeded of which a tenth failed QC, 10% failed, 5% cancelled, three leaf steps
each) straight into a fresh DuckDB file with the store's schema, starts the metadata service on
it in its own process (after building the store's run facts once, timed apart), and times the
dashboard's default query (the last 30 days, by day, every
project: what an admin's dashboard asks first) and a weekly one narrowed to one project and
template. Prints `name: value` lines; the headline, dashboard_p50_ms, last.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
import duckdb  # noqa: E402

from metadata.store.embedded import EmbeddedStore  # noqa: E402
from metadata.store.run_stats_sql import StatsWindow  # noqa: E402
sys.path.append(str(BENCH_DIR))
from harness import Service  # noqa: E402

STEPS = ("'[' || list_aggregate(list_transform([0, 1, 2], k -> '{\"id\": \"s' || k || '\", \"name\": \"step-' || k || "
         "'\", \"template\": \"step-' || k || '\", \"phase\": \"' || (CASE WHEN status = 'failed' AND k = 2 THEN 'Failed' "
         "ELSE 'Succeeded' END) || '\", \"children\": [], \"attempts\": ' || (CASE WHEN (i + k) % 50 = 0 THEN 2 ELSE 1 END) "
         "|| ', \"started_at\": \"' || strftime(ts + INTERVAL 30 SECOND, '%Y-%m-%dT%H:%M:%S+00:00') || "
         "'\", \"finished_at\": \"' || strftime(ts + INTERVAL 30 SECOND + to_seconds(20 + k * 10 + i % 7), "
         "'%Y-%m-%dT%H:%M:%S+00:00') || '\"}'), 'string_agg', ', ') || ']'")

FILL = f"""
INSERT INTO nodes
SELECT 'run-' || i, 'workflow_run', 'proj-' || (i % 20), 'run-' || i, 1,
  json_object('template', template, 'status', status, 'outcome', outcome,
              'started_at', strftime(ts + INTERVAL 30 SECOND, '%Y-%m-%dT%H:%M:%S.000+00:00'),
              'finished_at', strftime(ts + INTERVAL 30 SECOND + to_seconds(60 + i % 240), '%Y-%m-%dT%H:%M:%S.000+00:00'),
              'steps_json', {STEPS}),
  '[]', strftime(ts, '%Y-%m-%dT%H:%M:%S.000+00:00'), strftime(ts, '%Y-%m-%dT%H:%M:%S.000+00:00'), 'bench', 'bench'
FROM (SELECT i, ts, ['ims-qc', 'ims-convert', 'ims-preprocess'][1 + i % 3] AS template,
        CASE WHEN i % 20 < 17 THEN 'succeeded' WHEN i % 20 < 19 THEN 'failed' ELSE 'cancelled' END AS status,
        CASE WHEN i % 20 < 17 AND i % 3 = 0 THEN (CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'passed' END) END AS outcome
      FROM (SELECT i, now()::TIMESTAMP - to_seconds(CAST(i * ? AS BIGINT)) AS ts FROM range(?) t(i)))
ORDER BY ts
"""


def fill(data_dir: Path, runs: int, days: int) -> float:
    """Write the runs into a fresh store file; the seconds it took."""
    path = data_dir / "metadata.duckdb"
    data_dir.mkdir(parents=True)
    EmbeddedStore(path).close()   # the store's own schema
    started = time.perf_counter()
    with duckdb.connect(str(path)) as db:
        db.execute(FILL, [days * 86400 / runs, runs])
        db.execute("CHECKPOINT")
    return time.perf_counter() - started


def build_facts(data_dir: Path) -> float:
    """The store's first run_stats builds the runs' facts (a one-off: later calls read only the runs
    written since); timed here, in-process, as a store upgraded in place would pay it once."""
    store = EmbeddedStore(data_dir / "metadata.duckdb")
    started = time.perf_counter()
    store.run_stats(StatsWindow("2000-01-01", "2100-01-01"))
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def cpu_ms(pid: int) -> float:
    """The CPU time (user + system) a process has used, in ms: unlike wall time, what a query costs
    whatever else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(call, count: int) -> list[float]:
    call()   # the first call warms the service's caches (its open-runs set)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        seconds = fill(Path(tmp) / "data", args.runs, args.days)
        print(f"runs: {args.runs}")
        print(f"fill_seconds: {seconds:.1f}")
        print(f"facts_build_seconds: {build_facts(Path(tmp) / 'data'):.1f}")
        with Service(Path(tmp) / "data") as service, service.client() as client:
            rows = len(client.run_stats().rows)
            narrow = timed(lambda: client.run_stats(project_id="proj-3", template="ims-qc", bucket="week"), args.calls)
            before = cpu_ms(service.process.pid)
            default = timed(client.run_stats, args.calls)
            cpu = (cpu_ms(service.process.pid) - before) / (args.calls + 1)
    print(f"dashboard_rows: {rows}")
    print(f"dashboard_one_project_week_p50_ms: {statistics.median(narrow):.1f}")
    print(f"dashboard_service_cpu_ms_per_call: {cpu:.1f}")
    print(f"dashboard_p90_ms: {sorted(default)[int(len(default) * 0.9) - 1]:.1f}")
    print(f"dashboard_p50_ms: {statistics.median(default):.1f}")


if __name__ == "__main__":
    main()
