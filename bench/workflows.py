"""Workflows end to end: trigger-to-launch latency and the local engine's fan-out throughput.

Starts the metadata service and a worker (`labcommons worker`, the local engine) as their own
processes on a fresh data dir, with two small templates and one trigger rule:
- trigger to launch: for each of N measurements, registers its imzML file, then its ibd file,
  whose write fires the rule; the time from sending that write to the run being queued, and to
  the worker having started it on the engine (status running);
- fan-out: one run of a template with a 200-item `withItems` loop of trivial steps, timed from
  its start to its end, as steps per second.
- re-run: ims-qc (the shipped template) on one measurement (a simulated imzML of --qc-size pixels
  square, 128 by default: a small image, where a re-run's fixed part weighs most), then again with only a merge threshold
  (min-spectra) changed: qc-index, qc-pair and the shard steps are reused, qc-merge runs; `rerun_ratio` is the second run's seconds over the first's
  (bar: under 0.3), each timed from the launch to the run's success. With --qc-repeat N, N such
  pairs, each on a measurement of its own: the medians (of the seconds, and of the ratios).
`queued_to_launch_*` is the part after the write returned: the worker's wake-up and claim.
Prints `name: value` lines, the headline (trigger_to_launch_p95_ms, bar: under 150) last.

    .venv/bin/python bench/workflows.py [--measurements 40] [--items 200] [--qc-size 128] [--qc-repeat 1]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
import yaml  # noqa: E402

import metadata.client  # noqa: E402,F401 - the package, before bench/ (with its metadata.py) is on the path
from ground.settings import SHIPPED_TEMPLATES  # noqa: E402
from labcommons.demo.imzml import write_imzml_pair  # noqa: E402
sys.path.append(str(BENCH_DIR))
from harness import Service, create_project, data_file, measurement_batch  # noqa: E402

HINTS = {"imzml": {"type": "string", "filled_by": "input"}, "output-dir": {"type": "string", "filled_by": "run"}}
PARAMETERS = [{"name": "imzml", "description": "The input."}, {"name": "output-dir", "description": "Outputs."}]


def template(name: str, templates: list[dict], hints: dict | None = None, parameters: list | None = None) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": name, "annotations": {
                "labcommons.io/title": name, "labcommons.io/description": "A benchmark template.",
                "labcommons.io/inputs": "imzml", "labcommons.io/standard": "true",
                "labcommons.io/parameter-hints": json.dumps({**HINTS, **(hints or {})})}},
            "spec": {"entrypoint": "main", "arguments": {"parameters": PARAMETERS + (parameters or [])},
                     "templates": templates}}


def templates_dir(root: Path, items: int) -> Path:
    root.mkdir()
    quick = template("bench-quick", [{"name": "main", "container": {"image": "x", "command": ["true"]}}])
    fan = template("bench-fan-out", [
        {"name": "main", "steps": [[{"name": "each", "template": "one", "withItems": list(range(items)),
                                     "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]}}]]},
        {"name": "one", "inputs": {"parameters": [{"name": "i"}]},
         "container": {"image": "x", "command": ["true"]}}])
    for doc in (quick, fan):
        (root / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
    (root / "ims-qc.yaml").write_text((Path(SHIPPED_TEMPLATES) / "ims-qc.yaml").read_text())
    return root


def triggers_dir(root: Path) -> Path:
    root.mkdir()
    rule = {"name": "bench", "when": {"type": "data_file", "properties": {"data_format": "ibd"}},
            "context": {"follow": "measurements", "files": ["imzML", "ibd"]}, "launch": {"template": "bench-quick"}}
    (root / "bench.yaml").write_text(yaml.safe_dump(rule))
    return root


def empty_dir(root: Path) -> Path:
    root.mkdir()
    return root


def start_worker(svc: Service, log: Path) -> subprocess.Popen:
    env = dict(svc.env, LABCOMMONS_TOKEN=svc.token)
    with log.open("wb") as sink:
        return subprocess.Popen([sys.executable, "-m", "labcommons.cli", "worker", "--name", "bench"], env=env,
                                cwd=svc.data_dir.parent, stdout=sink, stderr=subprocess.STDOUT)


def wait_for(client, run_id: str, statuses: tuple[str, ...], timeout: float = 120) -> tuple[float, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.run(run_id)
        if run.status in statuses:
            return time.perf_counter(), run
        time.sleep(0.005)
    sys.exit(f"run {run_id} did not reach {statuses} within {timeout}s")


def stored_files(storage: Path, name: str) -> list[dict]:
    """The measurement's imzML and ibd entities, their (tiny) files written to the storage root."""
    storage.mkdir(parents=True, exist_ok=True)
    for fmt in ("imzML", "ibd"):
        (storage / f"{name}.{fmt}").write_bytes(b"x" * 10)
    return [data_file(name, fmt, storage) for fmt in ("imzML", "ibd")]


def trigger_latencies(client, project: str, storage: Path, count: int) -> tuple[list[float], list[float]]:
    queued, started = [], []
    for i in range(count):
        name = f"m-{i:04d}"
        imzml, ibd = stored_files(storage, name)
        client.submit(project, measurement_batch(name, storage)[:4] + [imzml])
        t0 = time.perf_counter()
        client.submit(project, [ibd])
        t1 = time.perf_counter()
        run = client.runs(limit=1).runs[0]
        assert run.status in ("queued", "running", "succeeded"), run.status
        t2, _ = wait_for(client, run.id, ("running", "succeeded", "failed"))
        queued.append((t1 - t0) * 1000)
        started.append((t2 - t0) * 1000)
        wait_for(client, run.id, ("succeeded", "failed"))
    return queued, started


def fan_out(client, project: str, storage: Path, items: int) -> float:
    imzml, ibd = stored_files(storage, "m-fan")
    client.set_trigger_enabled("bench", False)
    client.submit(project, measurement_batch("m-fan", storage)[:4] + [imzml, ibd])
    run = client.launch("bench-fan-out", [client.find(project, "m-fan")["id"]]).run
    t_start, _ = wait_for(client, run.id, ("running", "succeeded", "failed"))
    t_end, done = wait_for(client, run.id, ("succeeded", "failed"), timeout=600)
    if done.status != "succeeded":
        sys.exit(f"the fan-out run {done.status}: {done.message}")
    return items / (t_end - t_start)


def rerun(client, project: str, storage: Path, size: int, name: str = "m-qc", seed: int = 3) -> tuple[float, float, int]:
    """ims-qc, then ims-qc with only min-spectra changed: (first seconds, rerun seconds, steps reused)."""
    write_imzml_pair(storage, name, size, size, seed=seed)
    client.submit(project, measurement_batch(name, storage))
    measurement = client.find(project, name)["id"]
    times = []
    for threshold in ("1", "2"):
        t0 = time.perf_counter()
        run = client.launch("ims-qc", [measurement], {"min-spectra": threshold}).run
        t1, done = wait_for(client, run.id, ("succeeded", "failed"), timeout=600)
        if done.status != "succeeded":
            sys.exit(f"the ims-qc run {done.status}: {done.message}")
        times.append(t1 - t0)
    return times[0], times[1], sum(1 for s in done.steps if s.reused_from_run)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=40)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--qc-size", type=int, default=128, help="the re-run's imzML: pixels on a side")
    parser.add_argument("--qc-repeat", type=int, default=1, help="first run and re-run pairs (medians printed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labcommons-bench-wf-") as tmp:
        tmp = Path(tmp)
        settings = {"templates_dir": str(templates_dir(tmp / "templates", args.items)),
                    "triggers_dir": str(triggers_dir(tmp / "triggers")),
                    "lifecycle_dir": str(empty_dir(tmp / "lifecycle"))}  # the shipped rules name ims-qc
        with Service(tmp / "data", **settings) as svc, svc.client() as client:
            worker = start_worker(svc, tmp / "worker.log")
            try:
                project = create_project(client)
                storage = svc.data_dir / "storage" / project
                queued, started = trigger_latencies(client, project, storage, args.measurements)
                steps_per_s = fan_out(client, project, storage, args.items)
                pairs = [rerun(client, project, storage, args.qc_size, f"m-qc-{i}" if i else "m-qc", 3 + i)
                         for i in range(args.qc_repeat)]  # each on a measurement of its own: a true first run
            finally:
                worker.terminate()
                worker.wait(timeout=60)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"measurements: {args.measurements}")
    print(f"trigger_to_queued_p50_ms: {statistics.median(queued):.1f}")
    print(f"fan_out_items: {args.items}")
    print(f"steps_per_s: {steps_per_s:.1f}")
    first_s, rerun_s = (statistics.median(p[i] for p in pairs) for i in range(2))
    reused = min(p[2] for p in pairs)  # in every re-run
    print(f"qc_first_run_s: {first_s:.2f}")
    print(f"qc_rerun_s: {rerun_s:.2f}")
    print(f"qc_rerun_steps_reused: {reused}")
    print(f"rerun_ratio: {statistics.median(r / f for f, r, _ in pairs):.3f}")
    waits = [s - q for q, s in zip(queued, started)]  # the submit returned (run queued) -> the worker claimed it
    print(f"queued_to_launch_p50_ms: {statistics.median(waits):.1f}")
    print(f"queued_to_launch_p95_ms: {percentile(waits, 95):.1f}")
    print(f"trigger_to_launch_p50_ms: {statistics.median(started):.1f}")
    print(f"trigger_to_launch_p95_ms: {percentile(started, 95):.1f}")


if __name__ == "__main__":
    main()
