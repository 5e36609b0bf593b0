"""Synthetic imaging mass spectrometry data, written as imzML/ibd pairs for the demo commons.

Each image is a tissue-shaped blob on a slide: inside it, lipid-like and matrix peaks whose
abundance varies across the tissue; outside it, baseline and noise only.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
from pyimzml.ImzMLWriter import ImzMLWriter

MODES = ("continuous", "processed")
MZ_LOW, MZ_HIGH = 400.0, 1000.0
AXIS_POINTS = 1500
PEAK_SIGMA = 0.35  # m/z; about twice the axis step, so every peak spans several points
# Positive-mode [M+H]+ / [M+K]+ ions of common tissue lipids, and DHB cluster ions.
LIPID_MZ = (703.575, 734.569, 760.585, 782.567, 788.616, 798.541, 810.601, 826.573, 848.557)
MATRIX_MZ = (409.055, 545.071, 681.087)
CHUNK_BYTES = 1 << 20
# Any fixed namespace works; it only has to stay the same so file UUIDs are reproducible.
_UUID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4d5e-9f60-7a8b9c0d1e2f")


def write_imzml_pair(directory: Path, name: str, width: int, height: int, seed: int,
                     mode: str = "continuous") -> list[dict]:
    """Write <name>.imzML and <name>.ibd in directory; one file record per file, imzML first."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if width < 1 or height < 1:
        raise ValueError(f"image must be at least 1x1 pixels, not {width}x{height}")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mzs = mz_axis()
    coords, intensities = simulate_image(mzs, width, height, rng)
    file_uuid = uuid.uuid5(_UUID_NAMESPACE, f"{name}/{width}x{height}/{seed}/{mode}")
    with _ReproducibleWriter(directory / name, file_uuid, mode=mode) as writer:
        for xy, spectrum in zip(coords, intensities):
            if mode == "processed":
                writer.addSpectrum(*_processed(mzs, spectrum, rng), xy)
            else:
                writer.addSpectrum(mzs, spectrum, xy)
    return [_file_record(directory / f"{name}.imzML", "imzML"),
            _file_record(directory / f"{name}.ibd", "ibd")]


def mz_axis() -> np.ndarray:
    """The shared m/z axis of continuous-mode images."""
    return np.linspace(MZ_LOW, MZ_HIGH, AXIS_POINTS)


def simulate_image(mzs: np.ndarray, width: int, height: int,
                   rng: np.random.Generator) -> tuple[list[tuple[int, int]], np.ndarray]:
    """1-based (x, y) per pixel in scan order, and float32 intensities (pixels x m/z points)."""
    ys, xs = np.mgrid[1:height + 1, 1:width + 1]
    xs, ys = xs.ravel(), ys.ravel()
    tissue = tissue_weight(xs, ys, width, height, rng)
    peaks = np.array(LIPID_MZ + MATRIX_MZ)
    shapes = np.exp(-0.5 * ((mzs[None, :] - peaks[:, None]) / PEAK_SIGMA) ** 2)
    signal = peak_abundances(xs, ys, width, height, tissue, rng) @ shapes
    # Chemical noise rises towards low m/z and is stronger on tissue than on bare slide.
    baseline = (4.0 + 25.0 * np.exp(-(mzs - MZ_LOW) / 150.0))[None, :] * (1.0 + tissue[:, None])
    counts = rng.poisson(signal + baseline) + rng.normal(0.0, 1.5, signal.shape)
    coords = [(int(x), int(y)) for x, y in zip(xs, ys)]
    return coords, np.clip(counts, 0.0, None).astype(np.float32)


def tissue_weight(xs: np.ndarray, ys: np.ndarray, width: int, height: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Per pixel, 1 inside a lobed elliptical tissue section, 0 on bare slide, soft at the edge."""
    cx, cy = (width + 1) / 2 + rng.normal(0, width / 20), (height + 1) / 2 + rng.normal(0, height / 20)
    ax, ay = width * rng.uniform(0.30, 0.40), height * rng.uniform(0.30, 0.40)
    theta = rng.uniform(0, np.pi)
    dx, dy = xs - cx, ys - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / ax
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / ay
    # A few lobes on the outline so sections do not all look like perfect ellipses.
    lobes = 1.0 + 0.12 * np.sin(rng.integers(2, 5) * np.arctan2(v, u) + rng.uniform(0, 2 * np.pi))
    r2 = (u ** 2 + v ** 2) / lobes ** 2
    return np.clip((1.0 - r2) * 4.0, 0.0, 1.0)


def peak_abundances(xs: np.ndarray, ys: np.ndarray, width: int, height: int, tissue: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Peak heights per pixel (pixels x peaks): each ion has its own gradient across the tissue."""
    n_peaks = len(LIPID_MZ) + len(MATRIX_MZ)
    heights = np.concatenate([rng.uniform(150, 1500, len(LIPID_MZ)), rng.uniform(80, 300, len(MATRIX_MZ))])
    xn, yn = 2 * (xs - 1) / max(width - 1, 1) - 1, 2 * (ys - 1) / max(height - 1, 1) - 1
    angles = rng.uniform(0, 2 * np.pi, n_peaks)
    # Gradients stay between 0.3 and 1 so no ion vanishes from part of the tissue.
    gradient = 0.65 + 0.35 * (np.cos(angles)[None, :] * xn[:, None] + np.sin(angles)[None, :] * yn[:, None])
    jitter = rng.lognormal(0.0, 0.15, (len(xs), n_peaks))
    return heights[None, :] * gradient.clip(0.3, 1.0) * jitter * tissue[:, None]


def _processed(mzs: np.ndarray, spectrum: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A processed-mode spectrum: the points above the noise floor, on a per-pixel recalibrated axis."""
    keep = spectrum > np.median(spectrum) * 2.0 + 10.0
    # Keep the strongest points too, so a bare-slide pixel still has a spectrum to write.
    keep[np.argpartition(spectrum, -16)[-16:]] = True
    drift_ppm = rng.normal(0.0, 3.0)
    return mzs[keep] * (1.0 + drift_ppm * 1e-6), spectrum[keep]


def checksums(path: Path) -> dict:
    """file_size, md5sum and sha256 of a file, read once in chunks."""
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return {"file_size": size, "md5sum": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _file_record(path: Path, data_format: str) -> dict:
    """What a data_file entity needs to know about a written file, plus where it is."""
    return {"file_name": path.name, "data_format": data_format, **checksums(path), "path": path}


class _ReproducibleWriter(ImzMLWriter):
    """ImzMLWriter whose UUID and run id come from its inputs, so equal inputs give equal bytes."""

    def __init__(self, base: Path, file_uuid: uuid.UUID, **kwargs):
        super().__init__(str(base), spec_type="profile", polarity="positive", **kwargs)
        # pyimzML starts the ibd with a random uuid4; overwrite it before any spectrum is added
        # so re-running the demo yields the same checksums.
        self.uuid = file_uuid
        self.ibd.seek(0)
        self.ibd.write(file_uuid.bytes)
        self.sha1 = hashlib.sha1(file_uuid.bytes)
        # The default run id is the full output path, which would make the XML depend on it.
        self.run_id = base.name
