"""Trigger storm: 1,000 identical trigger events at once must make exactly one run.

Trellis launched jobs from at-least-once messages and ran ~1 in 100 twice. Here every launch,
from a trigger or a person, is keyed by (template digest, parameters, inputs) and the key is
unique in the store. This starts the metadata service, registers a measurement with its imzML
and ibd files while the rule is off, turns the rule on, then replays the ibd file's write event
(`fire_triggers`) 1,000 times from 8 threads spread over 2 processes, all released together.
Prints `name: value` lines; the headline, duplicate_runs, last (it must be 0).

    .venv/bin/python bench/trigger_storm.py [--events 1000] [--threads 8] [--processes 2]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
import yaml  # noqa: E402

from metadata.client import MetadataClient  # noqa: E402

sys.path.append(str(BENCH_DIR))
from harness import HOST, Service, create_project, measurement_batch  # noqa: E402

HINTS = {"imzml": {"type": "string", "filled_by": "input"}, "output-dir": {"type": "string", "filled_by": "run"}}
TEMPLATE = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "storm-qc", "annotations": {
                "labcommons.io/title": "Storm QC", "labcommons.io/description": "Does nothing, once.",
                "labcommons.io/inputs": "imzml", "labcommons.io/standard": "true",
                "labcommons.io/parameter-hints": json.dumps(HINTS)}},
            "spec": {"entrypoint": "main",
                     "arguments": {"parameters": [{"name": "imzml", "description": "The input."},
                                                  {"name": "output-dir", "description": "Outputs."}]},
                     "templates": [{"name": "main", "container": {"image": "labcommons", "command": ["true"]}}]}}
RULE = {"name": "storm", "enabled": False, "when": {"type": "data_file", "properties": {"data_format": "ibd"}},
        "context": {"follow": "measurements", "files": ["imzML", "ibd"]}, "launch": {"template": "storm-qc"}}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8, help="threads in all, spread over the processes")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    if args.events < 1 or args.processes < 1 or args.threads < args.processes:
        parser.error("give at least 1 event, 1 process, and at least one thread per process")
    return args


def storm(port: int, token: str, node_id: str, threads: int, events: int, go, results) -> None:
    """One process: `threads` threads firing `events` events in all, after `go` is set."""
    counts = [events // threads + (1 if i < events % threads else 0) for i in range(threads)]
    run_ids: list[str] = []

    def fire(count: int) -> None:
        with MetadataClient(HOST, port, token) as client:
            client.health()          # connected before the start signal
            go.wait()
            for _ in range(count):
                run_ids.extend(r.run.id for r in client.fire_triggers([node_id]))
    pool = [threading.Thread(target=fire, args=(n,)) for n in counts]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(run_ids)


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labcommons-storm-") as tmp:
        tmp = Path(tmp)
        (tmp / "templates").mkdir()
        (tmp / "triggers").mkdir()
        (tmp / "templates" / "storm-qc.yaml").write_text(yaml.safe_dump(TEMPLATE))
        (tmp / "triggers" / "storm.yaml").write_text(yaml.safe_dump(RULE))
        with Service(tmp / "data", templates_dir=str(tmp / "templates"), triggers_dir=str(tmp / "triggers")) as svc, \
                svc.client() as admin:
            project = create_project(admin)
            admin.submit(project, measurement_batch("m-storm", svc.data_dir / "storage" / project))
            admin.set_trigger_enabled("storm", True)
            ibd = admin.find(project, "m-storm.ibd")["id"]
            context = multiprocessing.get_context("spawn")
            go, results = context.Event(), context.Queue()
            shares = [args.threads // args.processes + (1 if i < args.threads % args.processes else 0)
                      for i in range(args.processes)]
            events = [args.events * s // args.threads for s in shares]
            events[0] += args.events - sum(events)
            workers = [context.Process(target=storm, args=(svc.port, svc.token, ibd, s, e, go, results))
                       for s, e in zip(shares, events)]
            for worker in workers:
                worker.start()
            time.sleep(1.0)  # let every process connect; each waits for `go`
            started = time.perf_counter()
            go.set()
            answered = [rid for _ in workers for rid in results.get(timeout=600)]
            elapsed = time.perf_counter() - started
            for worker in workers:
                worker.join()
            runs = admin.runs(limit=500)
    print(f"events: {len(answered)}")
    print(f"threads: {args.threads}")
    print(f"processes: {args.processes}")
    print(f"events_per_s: {len(answered) / elapsed:.0f}")
    print(f"distinct_runs_answered: {len(set(answered))}")
    print(f"runs_created: {runs.total}")
    print(f"duplicate_runs: {runs.total - 1 if runs.total else 0}")


if __name__ == "__main__":
    main()
