"""`make run` from an empty data dir to ready: how long `labcommons up` takes to seed the demo
commons and start every service, as a user waits for it; and how long the seeding alone takes.

Each round first times `create_demo` (files, nodes, QC launches, the broken pair's registration,
the demo accounts) against `labcommons metadata serve` on a fresh data dir, then runs
`labcommons up` on another fresh data dir with free ports and times, from its start, the banner
(every service answering, the demo seeded), and stops it with SIGTERM. Prints `name: value`
lines (medians over the rounds); the headline, seconds to the banner, last.

    .venv/bin/python bench/up.py [--rounds 1]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
from labcommons.demo import create_demo  # noqa: E402
from labcommons.demo.accounts import PASSWORDS_FILE  # noqa: E402

sys.path.append(str(BENCH_DIR))
from harness import Service, free_port  # noqa: E402

READY_SECONDS = 600
BANNER = "labcommons is running"


def seed_seconds(data_dir: Path) -> float:
    """Seconds create_demo takes at scale 1 against a fresh service."""
    with Service(data_dir) as service, service.client() as client:
        start = time.monotonic()
        print(create_demo(client, data_dir / "storage", passwords_path=data_dir / PASSWORDS_FILE), file=sys.stderr)
        return time.monotonic() - start


def ready_seconds(data_dir: Path) -> float:
    """Seconds from the start of `labcommons up` on an empty data dir to its banner."""
    env = {**os.environ, "LABCOMMONS_DATA_DIR": str(data_dir), "LABCOMMONS_PORT": str(free_port()),
           "LABCOMMONS_PORTAL_PORT": str(free_port()), "LABCOMMONS_HUB_PORT": str(free_port()),
           "LABCOMMONS_HUB_API_PORT": str(free_port()), "LABCOMMONS_HUB_PROXY_API_PORT": str(free_port())}
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "up"], env=env, cwd=data_dir,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in child.stdout:
            print(line, end="", file=sys.stderr)
            if BANNER in line:
                return time.monotonic() - start
            if time.monotonic() - start > READY_SECONDS:
                break
        sys.exit(f"labcommons up did not print its banner within {READY_SECONDS}s")
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    rounds = parser.parse_args().rounds
    seeds, ready = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-up-") as scratch:
            seeds.append(seed_seconds(Path(scratch) / "seed"))
            (Path(scratch) / "up").mkdir()
            ready.append(ready_seconds(Path(scratch) / "up"))
    print(f"rounds: {rounds}")
    print(f"cpu_count: {os.cpu_count()}")
    print(f"demo_seed_seconds: {statistics.median(seeds):.2f}")
    print(f"up_ready_seconds: {statistics.median(ready):.2f}")


if __name__ == "__main__":
    main()
