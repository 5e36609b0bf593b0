"""Ion images of a generated WIDTH x HEIGHT imzML pair (default 200 x 200): continuous mode with
--points m/z points per spectrum, and processed mode with about --peaks points per spectrum.

Per mode: the first read (the measurement page's previews: every spectrum once; the notebook
helper's layout: the imzML read by ims.header), the first ion image (the ibd mapped, in processed
mode its MzIndex made: the sparse index and the unsorted spectra), then ion images of --queries different windows (each one new,
as a user's next m/z is, so nothing comes from the ion image cache), and one straightforward
pyimzML loop computing the same image; the notebook helper's tissue spectra (every spectrum's TIC
from the mapped ibd, five pixels picked, read); and what looking over a preview cache of 10,000
ion images costs a portal process. Prints `<mode>_*` lines and, last, `ion_image_ms`: the slower
mode's median ion image after the first read.

    .venv/bin/python bench/previews.py                  # 200 x 200, 5,000 points (an 800 MB ibd)
    .venv/bin/python bench/previews.py --size 50        # a quick run
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]

import numpy as np  # noqa: E402
from pyimzml.ImzMLParser import ImzMLParser  # noqa: E402
from pyimzml.ImzMLWriter import ImzMLWriter  # noqa: E402

from ims import images  # noqa: E402
from ims.layout import read_pair, spectra, spread  # noqa: E402
from portal.previews import cache, imzml  # noqa: E402

MZ_LOW, MZ_HIGH = 400.0, 1000.0
PRUNED_ENTRIES = 10_000   # entries in the cache looked over (a listing's cost is per entry, not per byte)


def write(base: Path, size: int, points: int, peaks: int, mode: str) -> tuple[Path, Path]:
    """A size x size image; continuous: one axis of `points`; processed: ~`peaks` sorted m/z each."""
    rng = np.random.default_rng(5)
    axis = np.linspace(MZ_LOW, MZ_HIGH, points)
    with ImzMLWriter(str(base), mode=mode) as writer:
        for y in range(1, size + 1):
            for x in range(1, size + 1):
                mz = axis if mode == "continuous" else np.sort(rng.uniform(MZ_LOW, MZ_HIGH, rng.integers(peaks // 2,
                                                                                                      peaks * 3 // 2)))
                writer.addSpectrum(mz, rng.gamma(2.0, 50.0, len(mz)).astype(np.float32), (x, y))
    return base.with_suffix(".imzML"), base.with_suffix(".ibd")


def naive_ms(imzml_path: Path, query: images.Window) -> float:
    """The same image by a pyimzML loop (the imzML parsed first, not timed)."""
    parser = ImzMLParser(str(imzml_path))
    started = time.perf_counter()
    for number in range(len(parser.coordinates)):
        mz, intensity = parser.getspectrum(number)
        intensity[(mz >= query.low) & (mz <= query.high)].astype(np.float64).sum()
    return (time.perf_counter() - started) * 1000


def measure(mode: str, paths: tuple[Path, Path], queries: int) -> float:
    started = time.perf_counter()
    imzml.compute(*paths)
    print(f"{mode}_previews_first_read_s: {time.perf_counter() - started:.2f}")
    started = time.perf_counter()
    layout = read_pair(*paths)
    print(f"{mode}_layout_read_s: {time.perf_counter() - started:.2f}")
    windows = [images.window(m, ppm=10) for m in np.linspace(450.0, 950.0, queries)]
    started = time.perf_counter()
    images.ion_image(layout, paths[1], images.window(425.0, ppm=10))   # maps the ibd, makes the MzIndex
    print(f"{mode}_first_ion_image_ms: {(time.perf_counter() - started) * 1000:.1f}")
    times = []
    for query in windows:
        started = time.perf_counter()
        images.ion_image(layout, paths[1], query)
        times.append((time.perf_counter() - started) * 1000)
    wide = time.perf_counter()
    images.ion_image(layout, paths[1], images.window(700.0, da=5))
    print(f"{mode}_ion_image_wide_5da_ms: {(time.perf_counter() - wide) * 1000:.1f}")
    started = time.perf_counter()
    chosen = spread(layout, images.tic(layout, paths[1]), 5)   # the notebook helper's tissue_spectra
    spectra(layout, paths[1], chosen)
    print(f"{mode}_tissue_spectra_ms: {(time.perf_counter() - started) * 1000:.1f}")
    naive = naive_ms(paths[0], windows[0])
    median = statistics.median(times)
    print(f"{mode}_ion_image_max_ms: {max(times):.1f}")
    print(f"{mode}_naive_pyimzml_loop_ms: {naive:.0f}")
    print(f"{mode}_speedup_vs_naive: {naive / median:.0f}")
    print(f"{mode}_ion_image_ms: {median:.1f}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--peaks", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=9)
    options = parser.parse_args()
    print(f"pixels: {options.size ** 2}")
    print(f"continuous_points: {options.points}")
    print(f"processed_points_mean: {options.peaks}")
    with tempfile.TemporaryDirectory(prefix="bench-previews-") as folder:
        medians = []
        for mode in ("continuous", "processed"):
            print(f"writing {mode} ...", file=sys.stderr)
            paths = write(Path(folder) / mode, options.size, options.points, options.peaks, mode)
            print(f"{mode}_ibd_mb: {paths[1].stat().st_size / 1e6:.0f}")
            medians.append(measure(mode, paths, options.queries))
        print(f"cache_prune_look_ms_{PRUNED_ENTRIES}_entries: {prune_look_ms(Path(folder) / 'cache'):.1f}")
    print(f"ion_image_ms: {max(medians):.1f}")


def prune_look_ms(directory: Path) -> float:
    """What a portal process pays when it looks over a preview cache of PRUNED_ENTRIES ion images
    and finds it within its bound: one listing, nothing removed (small images: only their number counts)."""
    (directory / "ions").mkdir(parents=True)
    image = np.zeros((10, 10))
    for number in range(PRUNED_ENTRIES):
        np.save(directory / "ions" / f"{number:064x}.npy", image)
    started = time.perf_counter()
    cache.prune(directory, 1 << 62)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
