"""Reading an imzML's header and checking its pair, as registration does at a large image.

Writes a continuous `--width` x `--height` image (one spectrum per pixel, `--points` m/z points)
with pyimzML's ImzMLWriter, then times ims.header.read_header (the streamed expat pass: the header
and the spectrum index every layer reads) against pyimzML's ImzMLParser on the same file (which
reads the same offsets and coordinates), and ims.pair.check_pair (the header plus one SHA-1 pass
over the ibd). `index_vs_pyimzml` is read_header's CPU time over pyimzML's (1 or less: no slower;
`_wall`: the same in wall-clock time, which a shared machine's load moves more).

Prints `name: value` lines, the headline (`header_spectra_per_s`) last.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # this checkout, not whatever the venv has installed
BENCH_DIR = Path(__file__).resolve().parent
sys.path = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]

import numpy as np  # noqa: E402
from pyimzml.ImzMLParser import ImzMLParser  # noqa: E402
from pyimzml.ImzMLWriter import ImzMLWriter  # noqa: E402

from ims.header import read_header  # noqa: E402
from ims.pair import check_pair  # noqa: E402


def write(directory: Path, width: int, height: int, points: int) -> tuple[Path, Path]:
    mzs, intensities = np.linspace(400.0, 1000.0, points), np.ones(points, dtype=np.float32)
    with ImzMLWriter(str(directory / "bench"), mode="continuous", polarity="positive", spec_type="profile") as writer:
        for y in range(1, height + 1):
            for x in range(1, width + 1):
                writer.addSpectrum(mzs, intensities, (x, y))
    return directory / "bench.imzML", directory / "bench.ibd"


def timed(call, repeat: int = 1, clock=time.perf_counter) -> float:
    """The best of `repeat` runs: the machine is shared, and the best is the one least disturbed."""
    return timed_in_turn([call], repeat, clock)[0]


def timed_in_turn(calls: list, repeat: int, clock=time.perf_counter) -> list[float]:
    """The best of `repeat` runs of each call, run in turn so that all meet the same load."""
    best = [float("inf")] * len(calls)
    for _ in range(repeat):
        for number, call in enumerate(calls):
            start = clock()
            call()
            best[number] = min(best[number], clock() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--height", type=int, default=200)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()} cpus {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as directory:
        print("writing the image...", file=sys.stderr)
        imzml, ibd = write(Path(directory), args.width, args.height, args.points)
        spectra = args.width * args.height
        print(f"spectra: {spectra}")
        print(f"imzml_mb: {imzml.stat().st_size / 1e6:.1f}")
        print(f"ibd_mb: {ibd.stat().st_size / 1e6:.1f}")
        both = [lambda: ImzMLParser(str(imzml)).m.close(), lambda: read_header(imzml)]
        pyimzml_seconds, seconds = timed_in_turn(both, args.repeat)
        # CPU seconds of this process: what other processes' load changes least
        pyimzml_cpu, header_cpu = timed_in_turn(both, args.repeat, time.process_time)
        print(f"pyimzml_parser_seconds: {pyimzml_seconds:.2f}")
        print(f"pair_check_seconds: {timed(lambda: check_pair(imzml, ibd), args.repeat):.2f}")
        tracemalloc.start()
        read_header(imzml)
        print(f"header_peak_mb_traced: {tracemalloc.get_traced_memory()[1] / 1e6:.1f}")
        tracemalloc.stop()
        print(f"header_seconds: {seconds:.2f}")
        print(f"index_vs_pyimzml_wall: {seconds / pyimzml_seconds:.2f}")
        print(f"index_vs_pyimzml: {header_cpu / pyimzml_cpu:.2f}")
        print(f"header_spectra_per_s: {spectra / seconds:.0f}")


if __name__ == "__main__":
    main()
