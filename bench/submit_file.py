"""Submitting a large TSV file through the CLI: `labcommons submit` of 1,000,000 rows.

Starts the metadata service as its own process on a fresh data dir, creates program BENCH and
project bench, writes a TSV of N rows (one case in five, then samples each linking to an
earlier case, as bench/metadata.py submits them), and times `labcommons submit FILE -p bench`
as its own process, from start to exit (the CLI streams the file in batches of --batch-size).
With --rows below 1,000,000, `submit_1m_rows_seconds` is extrapolated linearly and says so.
Prints `name: value` lines, the headline last.

    .venv/bin/python bench/submit_file.py [--rows 1000000] [--batch-size 1000]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
import metadata.client  # noqa: E402,F401 - the package, before bench/ (with its metadata.py) is on the path
sys.path.append(str(BENCH_DIR))
from harness import Service, cpu_ms, create_project  # noqa: E402

MILLION = 1_000_000
CASE_SHARE = 5
COLUMNS = ["type", "submitter_id", "species", "sex", "age_years", "organ", "preparation", "weight_mg",
           "cases.submitter_id"]


def write_tsv(path: Path, rows: int, rng: random.Random) -> None:
    """rows entities: cases first, then samples linking to them, in the CLI's TSV form."""
    cases = max(1, rows // CASE_SHARE)
    with path.open("w", encoding="utf-8") as out:
        out.write("\t".join(COLUMNS) + "\n")
        for i in range(cases):
            out.write(f"case\tcase-{i:07d}\t{rng.choice(['human', 'mouse', 'rat'])}\t"
                      f"{rng.choice(['female', 'male'])}\t{rng.randint(1, 90)}\t\t\t\t\n")
        for i in range(rows - cases):
            out.write(f"sample\tsample-{i:07d}\t\t\t\t{rng.choice(['liver', 'kidney', 'brain'])}\t"
                      f"{rng.choice(['fresh frozen', 'FFPE'])}\t{rng.uniform(5, 200):.1f}\tcase-{rng.randrange(cases):07d}\n")


def submit(service: Service, path: Path, batch_size: int) -> float:
    """Seconds the CLI took to submit the whole file."""
    env = dict(service.env, LABCOMMONS_TOKEN=service.token)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "labcommons.cli", "submit", str(path), "-p", "bench",
                           "--batch-size", str(batch_size), "--no-progress"], env=env, cwd=path.parent,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the CLI failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=MILLION, help="rows in the file (default: 1,000,000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="the CLI's --batch-size (default: 1,000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labcommons-bench-") as tmp:
        path = Path(tmp) / "entities.tsv"
        write_tsv(path, args.rows, random.Random(20240601))
        file_mb = path.stat().st_size / 1e6
        with Service(Path(tmp) / "data") as service:
            with service.client() as client:
                create_project(client)
            cpu_before = cpu_ms(service.process.pid)
            seconds = submit(service, path, args.batch_size)
            service_cpu = cpu_ms(service.process.pid) - cpu_before
            with service.client() as client:
                stored = client.page("case", "bench", limit=1).total + client.page("sample", "bench", limit=1).total
    if stored != args.rows:
        sys.exit(f"{stored} nodes stored of {args.rows} rows")
    for name, value in {"rows": args.rows, "batch_size": args.batch_size, "file_mb": round(file_mb, 1),
                        "python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "submit_seconds": round(seconds, 1), "submit_rows_per_s": round(args.rows / seconds),
                        "service_cpu_ms_per_1000_rows": round(service_cpu / args.rows * 1000, 1),
                        "extrapolated": args.rows != MILLION,
                        "submit_1m_rows_seconds": round(seconds * MILLION / args.rows, 1)}.items():
        print(f"{name}: {value}", flush=True)


if __name__ == "__main__":
    main()
