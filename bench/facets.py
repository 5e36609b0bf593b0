"""Facet queries over 1,000,000 file documents, through the metadata service, against pandas.

Loads synthetic file documents (8 facet fields of cardinality 3 to 200, 2 numeric fields) into
the embedded store through its bulk path, starts the service on that data as its own process,
and times what the explorer asks on every filter change: all 8 facets (each excluding its own
clauses) plus a 20-bin histogram under a 2-clause filter; and a sorted page of 50 hits. Then 8
clients at once, each on its own connection with a filter of its own, for `--seconds`. Then it
stops the service (which saves its columnar copy beside the database) and starts it again, and
times the first call after that start. Last, it computes the same facet counts with pandas
group-bys on string columns.

Prints `name: value` lines, the headline (`facets_p50_ms`) last.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # this checkout, not whatever the venv has installed
sys.path = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import yaml  # noqa: E402

from metadata import flatten  # noqa: E402
from metadata.client import MetadataClient  # noqa: E402
from metadata.dictionary import Dictionary  # noqa: E402
from metadata.store.embedded import EmbeddedStore  # noqa: E402

sys.path.append(str(Path(__file__).resolve().parent))  # after `metadata`, which bench/metadata.py would shadow
from harness import cpu_ms  # noqa: E402

CARDINALITIES = {"f3": 3, "f5": 5, "f8": 8, "f12": 12, "f20": 20, "f50": 50, "f100": 100, "f200": 200}
FILTER = {"AND": [{"IN": {"f5": ["v1", "v2"]}}, {">=": {"size_mb": 10}}]}


def dictionary_files(directory: Path) -> None:
    """A one-type dictionary (`item`, in a project) and its flattening into `file` documents."""
    for name in ("program.yaml", "project.yaml"):
        (directory / name).write_text((Path(flatten.__file__).parent / "dictionary/default" / name).read_text())
    properties = {f: {"type": "string", "enum": [f"v{i}" for i in range(n)], "description": f}
                  for f, n in CARDINALITIES.items()}
    properties |= {"size_mb": {"type": "number", "description": "size"},
                   "age": {"type": "integer", "description": "age"}}
    (directory / "item.yaml").write_text(yaml.safe_dump(
        {"id": "item", "title": "Item", "description": "x", "category": "data_file", "links": [],
         "properties": properties}))
    fields = list(CARDINALITIES) + ["size_mb", "age"]
    (directory.parent / "flattening.yaml").write_text(yaml.safe_dump(
        {"documents": {"file": {"root": "item", "properties": fields, "facets": fields}},
         "manifest": {"document": "file", "fields": ["id"], "from": {}}}))


def synthetic(rows: int, seed: int = 3) -> pa.Table:
    """Documents with skewed categorical values (zipf-like) and two numerics, a few missing."""
    rng = np.random.default_rng(seed)
    columns = {"id": [f"{i:08d}" for i in range(rows)], "submitter_id": [f"s{i}" for i in range(rows)],
               "project_id": np.where(rng.random(rows) < 0.5, "bench-a", "bench-b").tolist()}
    for field, n in CARDINALITIES.items():
        weights = 1 / np.arange(1, n + 1)
        columns[field] = np.char.add("v", rng.choice(n, rows, p=weights / weights.sum()).astype(str)).tolist()
    columns["size_mb"] = np.round(rng.lognormal(3, 1, rows), 2)
    age = rng.integers(0, 90, rows).astype(object)
    age[rng.random(rows) < 0.05] = None
    columns["age"] = pa.array(age.tolist(), pa.int64())
    return pa.table(columns)


def load(data_dir: Path, directory: Path, table: pa.Table) -> None:
    dictionary = Dictionary.load(directory)
    store = EmbeddedStore(data_dir / "metadata.duckdb")
    store.use_documents(flatten.load(dictionary, directory.parent / "flattening.yaml"))
    store.load_documents("file", table)
    store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(data_dir: Path, directory: Path, columnar: bool) -> tuple[subprocess.Popen, MetadataClient]:
    port = free_port()  # the client's port names it
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               LABCOMMONS_DATA_DIR=str(data_dir), LABCOMMONS_PORT=str(port),
               LABCOMMONS_DICTIONARY=str(directory), LABCOMMONS_FLATTENING=str(directory.parent / "flattening.yaml"),
               LABCOMMONS_COLUMNAR_FACETS="1" if columnar else "0")
    process = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "metadata", "serve"], env=env,
                               cwd=data_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            client = MetadataClient("127.0.0.1", port, (data_dir / "admin.token").read_text().strip())
            client.health()
            return process, client
        except Exception:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the metadata service did not start")


def stop_service(process: subprocess.Popen, client: MetadataClient) -> float:
    """SIGTERM, wait for the drain and the saved copy; the service's peak resident memory (MB)."""
    peak = peak_rss_mb(process.pid)
    client.close()
    process.send_signal(signal.SIGTERM)
    process.wait(300)
    return peak


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), from /proc; NaN elsewhere."""
    try:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration, ValueError):
        return float("nan")


def client_filter(index: int) -> dict:
    """Each concurrent client's own view: another pair of f5 values, another size bound."""
    return {"AND": [{"IN": {"f5": [f"v{index % 5}", f"v{(index + 2) % 5}"]}}, {">=": {"size_mb": 5 + 3 * index}}]}


def concurrent_calls(port: int, token: str, clients: int, seconds: float) -> float:
    """Facet calls (8 facets + histogram) per second, `clients` clients at once, each its own view."""
    done, deadline = [0] * clients, time.monotonic() + seconds

    def run(index: int) -> None:
        with MetadataClient("127.0.0.1", port, token) as client:
            while time.monotonic() < deadline:
                client.facets("file", list(CARDINALITIES), client_filter(index))
                client.histogram("file", "size_mb", client_filter(index), bins=20)
                done[index] += 1
    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def timed(call, runs: int) -> list[float]:
    call()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def pandas_facets(frame, runs: int) -> list[float]:
    """The same facet counts: each facet under the filter minus its own clauses."""
    in_f5, big = frame["f5"].isin(["v1", "v2"]), frame["size_mb"] >= 10

    def facets():
        for field in CARDINALITIES:
            mask = big if field == "f5" else in_f5 & big
            frame.loc[mask, field].value_counts(dropna=False)
        frame.loc[in_f5, "size_mb"].pipe(np.histogram, bins=20)

    return timed(facets, runs)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-columnar", action="store_true", help="the service asks DuckDB for every count (before)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20, help="of the concurrent clients' calls")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory, data_dir = Path(tmp) / "dictionary", Path(tmp) / "data"
        directory.mkdir()
        data_dir.mkdir()
        dictionary_files(directory)
        table = synthetic(args.rows)
        started = time.perf_counter()
        load(data_dir, directory, table)
        load_s = time.perf_counter() - started
        process, client = start_service(data_dir, directory, not args.no_columnar)
        try:
            def explore():
                client.facets("file", list(CARDINALITIES), FILTER)
                client.histogram("file", "size_mb", FILTER, bins=20)

            cold_ms = first_call_ms(explore)  # the first start also builds the service's columnar copy
            cpu_before = cpu_ms(process.pid)
            facets = timed(explore, args.runs)
            # what the service spent per call (timed() makes one warm-up call more): steadier than
            # wall time on a shared machine
            service_cpu = (cpu_ms(process.pid) - cpu_before) / (args.runs + 1)
            pages = timed(lambda: client.hits("file", FILTER, sort=[("size_mb", True)], limit=50), args.runs)
            token = (data_dir / "admin.token").read_text().strip()
            per_s = concurrent_calls(client.port, token, args.clients, args.seconds)
        finally:
            peak_mb = stop_service(process, client)
        process, client = start_service(data_dir, directory, not args.no_columnar)  # takes up the saved copy
        try:
            first_ms = first_call_ms(lambda: (client.facets("file", list(CARDINALITIES), FILTER),
                                              client.histogram("file", "size_mb", FILTER, bins=20)))
        finally:
            peak_mb = max(peak_mb, stop_service(process, client))
        import pandas
        frame = table.to_pandas()
        for field in CARDINALITIES:
            frame[field] = frame[field].astype("string")
        pandas_times = pandas_facets(frame, args.runs)
    facets_p50 = statistics.median(facets)
    print(f"rows: {args.rows}\nruns: {args.runs}\nfacet_fields: {len(CARDINALITIES)}\n"
          f"columnar: {not args.no_columnar}\npython: {platform.python_version()}\ncpu_count: {os.cpu_count()}\npandas: {pandas.__version__}")
    print(f"load_seconds: {load_s:.1f}")
    print(f"first_facets_cold_ms: {cold_ms:.1f}")
    print(f"first_facets_ms: {first_ms:.1f}")
    print(f"facets_p95_ms: {percentile(facets, 95):.1f}")
    print(f"service_cpu_ms_per_facets_call: {service_cpu:.1f}")
    print(f"facets_calls_per_s_{args.clients}_clients: {per_s:.1f}")
    print(f"service_peak_rss_mb: {peak_mb:.0f}")
    print(f"page_p50_ms: {statistics.median(pages):.1f}")
    print(f"pandas_facets_p50_ms: {statistics.median(pandas_times):.1f}")
    print(f"speedup_vs_pandas: {statistics.median(pandas_times) / facets_p50:.1f}")
    print(f"facets_p50_ms: {facets_p50:.1f}")


def first_call_ms(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
