"""ims-qc on a generated continuous image through the worker's local engine, against a naive loop.

Writes a WIDTH x HEIGHT continuous imzML of POINTS m/z values (default 200 x 200 x 5,000: 40,000
spectra, an 800 MB .ibd), registers it as a measurement's files in a fresh commons (the metadata
service and `labcommons worker` as their own processes, the shipped templates, no trigger),
launches ims-qc with --spectra-per-shard and times the run from launch to succeeded. Then
computes the same per-spectrum metrics in one process with a pyimzML getspectrum loop (the naive
way) for the speed-up. Prints `name: value` lines, the headline (qc_seconds, bar: under 90) last.

    .venv/bin/python bench/qc.py [--width 200] [--height 200] [--points 5000] [--spectra-per-shard 5000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
sys.path.insert(0, str(REPO))
import numpy as np  # noqa: E402
from pyimzml.ImzMLParser import ImzMLParser  # noqa: E402

import metadata.client  # noqa: E402,F401 - the package, before bench/ (with its metadata.py) is on the path
from labcommons.demo.imzml import checksums  # noqa: E402
from tests.workflows.qc_data import tissue_image  # noqa: E402
from workflow_templates.steps import qc_metrics  # noqa: E402
from workflow_templates.steps.qc_index import reference_ions  # noqa: E402
sys.path.append(str(BENCH_DIR))
from harness import Service, create_project, measurement_batch  # noqa: E402
from workflows import empty_dir, start_worker, wait_for  # noqa: E402


def register(client, project: str, storage: Path, imzml: Path) -> str:
    """Register the measurement with its two real files; return the measurement's id."""
    batch = measurement_batch("m-qc", storage)
    for entry in batch[-2:]:
        path = imzml if entry["data_format"] == "imzML" else imzml.with_suffix(".ibd")
        sums = checksums(path)
        entry.update(file_name=path.name, storage_url=path.resolve().as_uri(), file_size=sums["file_size"],
                     md5sum=sums["md5sum"])
    client.submit(project, batch)
    return client.find(project, "m-qc")["id"]


def timed_run(client, measurement: str, per_shard: int) -> tuple[float, object]:
    t0 = time.perf_counter()
    run = client.launch("ims-qc", [measurement], {"spectra-per-shard": str(per_shard)}).run
    t1, done = wait_for(client, run.id, ("succeeded", "failed"), timeout=1800)
    if done.status != "succeeded":
        sys.exit(f"the ims-qc run {done.status}: {done.message}")
    return t1 - t0, done


def phases(run) -> dict[str, float]:
    """Seconds from the first start to the last finish of each template's steps (index, shards, merge)."""
    spans: dict[str, list] = {}
    for step in run.steps:
        if step.template in ("qc-index", "qc-shard", "qc-merge") and step.started_at and step.finished_at:
            spans.setdefault(step.template, []).append((_stamp(step.started_at), _stamp(step.finished_at)))
    return {name: max(end for _, end in span) - min(start for start, _ in span) for name, span in spans.items()}


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def naive(imzml: Path, snr: float = 3.0, window_ppm: float = 30.0) -> float:
    """Seconds for one process to compute the same per-spectrum metrics with pyimzML's getspectrum."""
    t0 = time.perf_counter()
    with ImzMLParser(str(imzml)) as parser:
        ions = np.array([ion["mz"] for ion in reference_ions("default", parser.polarity)])
        for i in range(len(parser.coordinates)):
            mz, intensity = parser.getspectrum(i)
            block = np.asarray(intensity, np.float32)[None, :]
            baseline, noise = qc_metrics.floor_and_noise(block)
            threshold = baseline + snr * noise
            block.sum(dtype=np.float64), qc_metrics.peak_counts(block, threshold, False)
            qc_metrics.ion_errors(np.asarray(mz, np.float64), block, threshold, ions, window_ppm, False)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--height", type=int, default=200)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--spectra-per-shard", type=int, default=5000)
    args = parser.parse_args(argv)
    spectra = args.width * args.height
    with tempfile.TemporaryDirectory(prefix="labcommons-bench-qc-") as tmp:
        tmp = Path(tmp)
        settings = {"triggers_dir": str(empty_dir(tmp / "triggers")), "lifecycle_dir": str(empty_dir(tmp / "lifecycle"))}
        with Service(tmp / "data", **settings) as svc, svc.client() as client:
            project = create_project(client)
            storage = svc.data_dir / "storage" / project
            storage.mkdir(parents=True, exist_ok=True)
            print(f"writing {spectra:,} spectra of {args.points:,} points", file=sys.stderr)
            imzml = tissue_image(storage, "m-qc", args.width, args.height, args.points)
            measurement = register(client, project, storage, imzml)
            worker = start_worker(svc, tmp / "worker.log")
            try:
                seconds, done = timed_run(client, measurement, args.spectra_per_shard)
            finally:
                worker.terminate()
                worker.wait(timeout=60)
            report = next(Path(p) for p in _outputs(client, done) if p.endswith("report.json"))
            passed = json.loads(report.read_text())["passed"]
        print("naive pyimzML loop", file=sys.stderr)
        naive_seconds = naive(imzml)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"spectra: {spectra}")
    print(f"points_per_spectrum: {args.points}")
    print(f"spectra_per_shard: {args.spectra_per_shard}")
    print(f"report_passed: {passed}")
    for name, span in phases(done).items():
        print(f"{name.replace('-', '_')}_seconds: {span:.1f}")
    print(f"naive_seconds: {naive_seconds:.1f}")
    print(f"qc_spectra_per_s: {spectra / seconds:.0f}")
    print(f"speedup_vs_naive: {naive_seconds / seconds:.2f}")
    print(f"qc_seconds: {seconds:.1f}")


def _outputs(client, run) -> list[str]:
    return [client.get(i)["properties"]["storage_url"].removeprefix("file://") for i in run.output_ids]


if __name__ == "__main__":
    main()
