"""Generated imzML/ibd pairs for the QC tests and bench/qc.py, written with pyimzML's ImzMLWriter.

`example_like` resembles imzML.org's public Example_Continuous / Example_Processed (3 x 3 pixels,
profile spectra of 8,399 points from m/z 100 to 800, a few peaks on a zero background, positive
mode), with two default reference ions among its peaks, and can carry one flaw: `truncated`
(the .ibd cut at 70 %), `shifted` (every m/z +10 ppm) or `missing` (a third of the pixels left
out). `tissue_image` writes a larger continuous image row by row, for the benchmark.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pyimzml.ImzMLWriter import ImzMLWriter

FLAWS = (None, "truncated", "shifted", "missing")
REFERENCE_PEAKS = (137.0233, 760.5851)   # DHB [M+H-H2O]+ and PC 34:1 [M+H]+, in ims.reference_ions
OTHER_PEAKS = (301.1412, 544.3398, 885.0)
SHIFT_PPM = 10.0


def spectra(mzs: np.ndarray, pixels: int, rng: np.random.Generator, peaks=REFERENCE_PEAKS + OTHER_PEAKS,
            sigma_points: float = 1.6) -> np.ndarray:
    """Profile spectra (pixels x points, float32): Gaussian peaks with per-pixel heights and
    Poisson counts, zero wherever the signal is below 2 counts (a sparse profile)."""
    sigma = sigma_points * float(np.median(np.diff(mzs)))
    heights = rng.uniform(400, 2000, (pixels, len(peaks))) * rng.lognormal(0, 0.1, (pixels, 1))
    shapes = np.exp(-0.5 * ((mzs[None, :] - np.asarray(peaks)[:, None]) / sigma) ** 2)
    signal = heights @ shapes
    counts = rng.poisson(signal).astype(np.float32)
    counts[signal < 2] = 0
    return counts


def example_like(directory: Path, name: str, mode: str = "continuous", flaw: str | None = None,
                 seed: int = 7, width: int = 3, height: int = 3) -> Path:
    """Write <name>.imzML/.ibd like the public example files, with the given flaw; the imzML's path."""
    rng = np.random.default_rng(seed)
    mzs = np.linspace(100.0, 800.0, 8399)
    intensities = spectra(mzs, width * height, rng)
    if flaw == "shifted":
        mzs = mzs * (1 + SHIFT_PPM * 1e-6)
    keep = np.ones(width * height, bool)
    if flaw == "missing":
        keep[rng.permutation(width * height)[: width * height // 3]] = False
    path = Path(directory) / f"{name}.imzML"
    with ImzMLWriter(str(path.with_suffix("")), mode=mode, spec_type="profile", polarity="positive") as writer:
        for number in np.flatnonzero(keep):
            y, x = divmod(int(number), width)
            spectrum = intensities[number]
            stored = spectrum > 0 if mode == "processed" else np.ones(len(mzs), bool)
            writer.addSpectrum(mzs[stored], spectrum[stored], (x + 1, y + 1))
    if flaw == "truncated":
        ibd = path.with_suffix(".ibd")
        os.truncate(ibd, int(ibd.stat().st_size * 0.7))
    return path


def tissue_image(directory: Path, name: str, width: int, height: int, points: int, seed: int = 3) -> Path:
    """Write a continuous width x height image of `points` m/z values (written row by row)."""
    rng = np.random.default_rng(seed)
    mzs = np.linspace(100.0, 1000.0, points)
    path = Path(directory) / f"{name}.imzML"
    with ImzMLWriter(str(path.with_suffix("")), mode="continuous", spec_type="profile", polarity="positive") as writer:
        for y in range(height):
            for x, spectrum in enumerate(spectra(mzs, width, rng)):
                writer.addSpectrum(mzs, spectrum, (x + 1, y + 1))
    return path
