"""Benchmark of the metadata service: bulk submission through Thrift, then single-node gets.

Starts the service as its own process on a fresh data dir and a free port, creates program
BENCH and project bench, submits cases then samples (each sample links to a stored case by
submitter_id) in batches, and times single-node gets of random ids on one client. Prints
`name: value` lines, the headline figure last.

    .venv/bin/python bench/metadata.py [--nodes 50000] [--gets 5000] [--store embedded]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is named metadata.py, and Python puts its folder first on sys.path: drop it, or
# `import metadata` below would import this script instead of the service's package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from thriftpy2.transport import TTransportException

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

sys.path.append(str(Path(__file__).resolve().parent))
from harness import cpu_ms  # noqa: E402

HOST = "127.0.0.1"
PROGRAM, PROJECT = "BENCH", "bench"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60
CASE_SHARE = 5  # one case in five nodes: 10,000 cases and 40,000 samples of 50,000
SEED = 20240601


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50_000, help="nodes to submit (default: 50,000)")
    parser.add_argument("--gets", type=int, default=5_000, help="single-node gets to time (default: 5,000)")
    parser.add_argument("--batch-size", type=int, default=500, help="entities per submission (default: 500)")
    parser.add_argument("--store", default="embedded", choices=("embedded", "elasticsearch"),
                        help="the service's store (default: embedded)")
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.gets < 1 or args.batch_size < 1:
        parser.error("--nodes must be at least 2, --gets and --batch-size at least 1")
    return args


def free_port() -> int:
    """A port nothing listens on now; the service binds it a moment later."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_service(data_dir: Path, port: int, store: str, log_path: Path) -> subprocess.Popen:
    """`labcommons metadata serve` in its own process, its log in log_path."""
    env = dict(os.environ, LABCOMMONS_DATA_DIR=str(data_dir), LABCOMMONS_PORT=str(port),
               LABCOMMONS_HOST=HOST, LABCOMMONS_STORE=store)
    with log_path.open("wb") as log:
        # cwd: `-m` puts the working directory first on sys.path, and bench/ would shadow metadata
        return subprocess.Popen([sys.executable, "-m", "labcommons.cli", "metadata", "serve"],
                                env=env, cwd=data_dir.parent, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(service: subprocess.Popen, data_dir: Path, port: int, log_path: Path) -> MetadataClient:
    """A client holding the admin token, once a health call succeeds; polls, never sleeps blind."""
    token_path = data_dir / "admin.token"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if service.poll() is not None:
            sys.exit(f"the service exited with {service.returncode}:\n{log_path.read_text()}")
        token = token_path.read_text().strip() if token_path.exists() else ""
        if token:
            client = MetadataClient(HOST, port, token)
            try:
                client.health()
                return client
            except (TTransportException, OSError, T.Unauthenticated):
                client.close()
        time.sleep(0.02)  # poll interval: the loop ends as soon as the service answers
    sys.exit(f"the service did not answer within {START_TIMEOUT_SECONDS}s:\n{log_path.read_text()}")


def stop_service(service: subprocess.Popen) -> None:
    """SIGTERM, then wait for the drain and checkpoint; kill only if it hangs."""
    if service.poll() is not None:
        return
    service.send_signal(signal.SIGTERM)
    try:
        service.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()


def create_project(client: MetadataClient) -> None:
    """Program BENCH and project bench, as tests/conftest.py creates its project."""
    client.submit(PROGRAM, [{"type": "program", "submitter_id": PROGRAM}])
    client.submit(PROJECT, [{"type": "project", "submitter_id": PROJECT, "name": "Benchmark",
                             "programs": {"submitter_id": PROGRAM}}])


def make_entities(count: int, rng: random.Random) -> list[dict]:
    """count nodes valid against the default dictionary: cases first, then samples linking to them."""
    cases = max(1, count // CASE_SHARE)
    entities = [case(i, rng) for i in range(cases)]
    entities += [sample(i, rng.randrange(cases), rng) for i in range(count - cases)]
    return entities


def case(i: int, rng: random.Random) -> dict:
    species = rng.choice(["human", "mouse", "rat"])
    return {"type": "case", "submitter_id": f"case-{i:06d}", "species": species,
            "sex": rng.choice(["female", "male", "unknown"]),
            "age_years": round(rng.uniform(20, 90) if species == "human" else rng.uniform(0.1, 2), 2),
            "strain": "" if species == "human" else rng.choice(["C57BL/6J", "Sprague Dawley", "Wistar"]),
            "diagnosis": rng.choice(["healthy", "chronic kidney disease", "hepatocellular carcinoma",
                                     "Alzheimer's disease model", "drug-induced liver injury"]),
            "treatment": rng.choice(["vehicle", "cisplatin 7 mg/kg", "none"])}


def sample(i: int, case_index: int, rng: random.Random) -> dict:
    return {"type": "sample", "submitter_id": f"sample-{i:06d}",
            "cases": {"submitter_id": f"case-{case_index:06d}"},
            "organ": rng.choice(["liver", "kidney", "brain", "heart", "lung"]),
            "tissue": rng.choice(["cortex", "medulla", "hippocampus", "left lobe"]),
            "preparation": rng.choice(["fresh frozen", "FFPE"]),
            "embedding": rng.choice(["gelatin", "CMC", "OCT", "none"]),
            "section_thickness_um": rng.choice([5, 10, 12, 20]),
            "matrix": rng.choice(["DHB", "CHCA", "9-AA", "DAN"]),
            "matrix_application": rng.choice(["sprayer", "sublimation"]),
            "weight_mg": round(rng.uniform(5, 200), 1),
            "collection_date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}


def submit_all(client: MetadataClient, entities: list[dict], batch_size: int) -> tuple[float, list[str]]:
    """Seconds spent submitting every batch, and the ids the service gave the nodes."""
    ids: list[str] = []
    columns = (TextColumn("submitting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("submit", total=len(entities))
        started = time.perf_counter()
        for start in range(0, len(entities), batch_size):
            batch = entities[start:start + batch_size]
            result = client.submit(PROJECT, batch)
            if result.created != len(batch):
                sys.exit(f"batch at {start}: created {result.created} of {len(batch)} nodes")
            ids.extend(e.id for e in result.entities)
            progress.advance(task, len(batch))
        elapsed = time.perf_counter() - started
    return elapsed, ids


def time_gets(client: MetadataClient, ids: list[str], count: int, rng: random.Random) -> list[float]:
    """Milliseconds of each of count gets of a random id, one call at a time."""
    timings = []
    for node_id in rng.choices(ids, k=count):
        started = time.perf_counter()
        client.get(node_id)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def run(args: argparse.Namespace) -> dict[str, object]:
    """Start the service, submit, get, stop; the figures by name, in print order."""
    rng = random.Random(SEED)
    entities = make_entities(args.nodes, rng)
    with tempfile.TemporaryDirectory(prefix="labcommons-bench-") as tmp:
        data_dir, port, log_path = Path(tmp) / "data", free_port(), Path(tmp) / "service.log"
        service = start_service(data_dir, port, args.store, log_path)
        try:
            with wait_ready(service, data_dir, port, log_path) as client:
                create_project(client)
                cpu_before = cpu_ms(service.pid)
                submit_seconds, ids = submit_all(client, entities, args.batch_size)
                submit_cpu = cpu_ms(service.pid) - cpu_before
                timings = time_gets(client, ids, args.gets, rng)
        finally:
            stop_service(service)
    return {"nodes": args.nodes, "batch_size": args.batch_size, "gets": args.gets, "store": args.store,
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "submit_seconds": round(submit_seconds, 2),
            # the service's CPU per 1,000 nodes moves far less than wall time on a shared machine
            "service_cpu_ms_per_1000_nodes": round(submit_cpu / args.nodes * 1000, 1),
            "get_p50_ms": round(percentile(timings, 50), 3), "get_p95_ms": round(percentile(timings, 95), 3),
            "submit_nodes_per_s": round(args.nodes / submit_seconds)}


def main(argv: list[str] | None = None) -> None:
    for name, value in run(parse_args(argv)).items():
        print(f"{name}: {value}", flush=True)


if __name__ == "__main__":
    main()
