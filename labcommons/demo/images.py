"""The demo's measurement images: one small imzML/ibd pair per measurement, shaped by how it was
acquired, some deliberately flawed.

An ImageSpec says how the measurement was acquired (raster, pixel size, polarity, m/z range,
resolving power, continuous or processed, profile or centroid, matrix) and which flaw, if any, the
pair has. The spectra carry the reference ions of ims.reference_ions at their m/z, off only by a
small calibration error (a file offset within OFFSET_PPM and PIXEL_PPM per pixel), so mass
accuracy QC has something to measure: lipid ions follow the tissue, matrix (or background) ions
the whole slide. LA-ICP images carry element ions instead. Profile peaks are Gaussian with the
width the resolving power gives; the axis samples each peak's window finely and the rest of the
range coarsely, which keeps files in kilobytes (an instrument's axis is uniform and thousands of
points longer).
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ims.reference_ions import defaults
from labcommons.demo.imzml import file_records, gradients, tissue_weight, write_spectra

MODES = ("continuous", "processed")
SPECTRUM_TYPES = ("profile", "centroid")
FLAWS = ("", "missing_pixels", "drift", "truncated")
DRIFT_PPM = 10.0         # the drifted image's calibration error
OFFSET_PPM = 1.0         # a good image's calibration offset lies within +- this
PIXEL_PPM = 0.8          # and each pixel's scatters around it by this much (sd)
POINTS_PER_FWHM = 5
WINDOW_FWHM = 2.0        # a peak's finely sampled window: this many FWHM either side ...
WINDOW_PPM = 15.0        # ... plus this, so a drifted peak stays inside it
COARSE_POINTS = 100      # the axis between the windows
DETECTION_COUNTS = 25.0  # a centroid is reported above this many counts
NOISE_PEAKS = 5          # mean number of noise centroids per processed spectrum
TRUNCATE_KEEP = 0.6      # a truncated ibd keeps this share of its bytes
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

# Tissue ions other than the reference ions, by polarity: abundant membrane lipids. Positive: SM 34:1,
# PC 36:1, PC 38:4 [M+H]+, PC 36:1, PC 38:4 [M+K]+; negative: FA 20:4, FA 22:6, PG 34:1, PS 36:1,
# PE 40:6, ST 24:1 [M-H]-.
TISSUE_IONS = {"positive": (703.5748, 788.6164, 810.6007, 826.5723, 848.5566),
               "negative": (303.2330, 327.2330, 747.5182, 788.5447, 790.5392, 888.6240)}
# Ions of each matrix in each polarity, beside its reference ion: DHB and CHCA clusters, 9-AA's
# dimer, DAN's molecular ions.
MATRIX_IONS = {("DHB", "positive"): (273.0394, 409.0554, 545.0715), ("CHCA", "positive"): (379.0925,),
               ("9-AA", "negative"): (387.1615,), ("DAN", "positive"): (159.0917,), ("DAN", "negative"): (157.0771,)}
MATRICES = {matrix for matrix, _ in MATRIX_IONS}
# Where no matrix ion shows, the slide still gives background: PDMS contaminant ions (positive) and
# sodium formate clusters from the solvent (negative). Without it a bare-slide line would look dropped.
BACKGROUND_IONS = {"positive": (73.0468, 147.0660, 207.0327, 221.0849, 281.0515, 355.0703, 429.0891),
                   "negative": (112.9856, 180.9730, 248.9604, 316.9478, 384.9352, 452.9226)}
# LA-ICP: singly charged isotopes (atomic mass less an electron); True where tissue holds them.
ELEMENT_IONS = ((22.98922, False), (23.98449, True), (30.97321, True), (38.96316, True),
                (43.95493, False), (55.93439, True), (62.92905, True), (65.92548, True),
                (87.90506, False), (207.97610, False))
_UUID_NAMESPACE = uuid.UUID("0c5a3e1b-7d2f-4a8e-b6c1-93d4e5f6a7b8")


@dataclass(frozen=True)
class ImageSpec:
    """How one measurement's pair is simulated; equal specs give equal bytes."""
    name: str
    width: int
    height: int
    seed: int
    mode: str = "continuous"
    spectrum_type: str = "profile"
    polarity: str = "positive"
    mz_low: float = 100.0
    mz_high: float = 1000.0
    resolving_power: float = 30000.0
    pixel_size_um: float = 20.0
    matrix: str = "DHB"       # whose cluster ions show; "none" for matrix-free methods
    elements: bool = False    # LA-ICP: element ions instead of molecules
    flaw: str = ""

    def __post_init__(self):
        for name, allowed in (("mode", MODES), ("spectrum_type", SPECTRUM_TYPES), ("flaw", FLAWS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {getattr(self, name)!r}")
        if self.width < 1 or self.height < 3 or not 0 < self.mz_low < self.mz_high:
            raise ValueError(f"an image needs at least 1x3 pixels and 0 < mz_low < mz_high, not "
                             f"{self.width}x{self.height} and {self.mz_low}..{self.mz_high}")


@dataclass(frozen=True)
class Peaks:
    """The ions an image shows: theoretical m/z, whether they follow the tissue, full height."""
    mz: np.ndarray
    on_tissue: np.ndarray
    height: np.ndarray


def write_image(directory: Path, spec: ImageSpec) -> tuple[list[dict], dict]:
    """Write <name>.imzML and <name>.ibd; (file records, imzML first; the header the file declares)."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    spectra = list(simulate(spec, rng))
    file_uuid = uuid.uuid5(_UUID_NAMESPACE, repr(spec))
    write_spectra(directory / spec.name, file_uuid, spectra, mode=spec.mode, spec_type=spec.spectrum_type,
                  polarity=spec.polarity, pixel_size_um=spec.pixel_size_um)
    if spec.flaw == "truncated":
        ibd = directory / f"{spec.name}.ibd"
        os.truncate(ibd, int(ibd.stat().st_size * TRUNCATE_KEEP))
    return file_records(directory, spec.name), header(spec, spectra)


def header(spec: ImageSpec, spectra: list) -> dict:
    """The measurement fields the written imzML declares: raster, pixel size, polarity, m/z range, kind."""
    low = min(float(mzs[0]) for _, mzs, _ in spectra)
    high = max(float(mzs[-1]) for _, mzs, _ in spectra)
    return {"raster_width": spec.width, "raster_height": spec.height, "pixel_size_um": spec.pixel_size_um,
            "polarity": spec.polarity, "mass_range_low": round(low, 4), "mass_range_high": round(high, 4),
            "spectrum_type": spec.spectrum_type, "imzml_mode": spec.mode}


def simulate(spec: ImageSpec, rng: np.random.Generator):
    """(x, y) and (m/z, intensity) arrays per pixel, in scan order, as the spec acquires them."""
    xs, ys = _pixels(spec)
    tissue = tissue_weight(xs, ys, spec.width, spec.height, rng)
    peaks = peak_table(spec, rng)
    amplitude = _abundances(xs, ys, spec, tissue, peaks, rng)
    offset = rng.uniform(-OFFSET_PPM, OFFSET_PPM) + (DRIFT_PPM if spec.flaw == "drift" else 0.0)
    ppm = offset + rng.normal(0.0, PIXEL_PPM, len(xs))
    if spec.spectrum_type == "centroid":
        arrays = _centroids(spec, peaks, amplitude, offset, ppm, rng)
    else:
        arrays = _profiles(spec, peaks, amplitude, tissue, ppm, rng)
    for x, y, (mzs, intensities) in zip(xs, ys, arrays):
        yield (int(x), int(y)), mzs, intensities


def _pixels(spec: ImageSpec) -> tuple[np.ndarray, np.ndarray]:
    """1-based x and y of the acquired pixels; missing_pixels loses the middle third of the lines."""
    ys, xs = np.mgrid[1:spec.height + 1, 1:spec.width + 1]
    xs, ys = xs.ravel(), ys.ravel()
    if spec.flaw != "missing_pixels":
        return xs, ys
    # The first and last lines stay, so the declared raster is still width x height.
    first = spec.height // 3 + 1
    kept = (ys < first) | (ys >= first + round(spec.height / 3))
    return xs[kept], ys[kept]


def peak_table(spec: ImageSpec, rng: np.random.Generator) -> Peaks:
    """The ions within the spec's m/z range, with a height each."""
    def in_range(mzs) -> list[float]:
        return [mz for mz in mzs if spec.mz_low < mz < spec.mz_high]

    if spec.elements:
        ions = [(mz, on_tissue) for mz, on_tissue in ELEMENT_IONS if in_range([mz])]
    else:
        references = [ion for ion in defaults(spec.polarity) if _matrix_of(ion.name) in (None, spec.matrix)]
        ions = [(ion.mz, _matrix_of(ion.name) is None) for ion in references if in_range([ion.mz])]
        ions += [(mz, True) for mz in in_range(TISSUE_IONS[spec.polarity])]
        slide = in_range(MATRIX_IONS.get((spec.matrix, spec.polarity), ())) or in_range(BACKGROUND_IONS[spec.polarity])
        ions += [(mz, False) for mz in slide]
    ions = sorted(ions)
    mz = np.array([m for m, _ in ions])
    on_tissue = np.array([t for _, t in ions], dtype=bool)
    height = np.where(on_tissue, rng.uniform(800, 3000, len(ions)), rng.uniform(300, 1000, len(ions)))
    return Peaks(mz, on_tissue, height)


def _matrix_of(ion_name: str) -> str | None:
    """The matrix a reference ion comes from ('DHB [M+H-H2O]+' -> 'DHB'), None for a tissue ion."""
    first = ion_name.split()[0]
    return first if first in MATRICES else None


def _abundances(xs, ys, spec: ImageSpec, tissue, peaks: Peaks, rng) -> np.ndarray:
    """Peak heights per pixel (pixels x peaks): tissue ions on the tissue, matrix ions suppressed there."""
    angles = rng.uniform(0, 2 * np.pi, len(peaks.mz))
    gradient = gradients(xs, ys, spec.width, spec.height, angles)
    jitter = rng.lognormal(0.0, 0.15, gradient.shape)
    where = np.where(peaks.on_tissue[None, :], tissue[:, None], 1.0 - 0.5 * tissue[:, None])
    return peaks.height[None, :] * gradient * jitter * where


def _profiles(spec: ImageSpec, peaks: Peaks, amplitude, tissue, ppm, rng):
    """Profile spectra: Gaussian peaks at each pixel's calibration over a chemical-noise baseline."""
    axis, coarse = profile_axis(spec, peaks.mz)
    sigma = peaks.mz / spec.resolving_power / FWHM_PER_SIGMA
    centres = peaks.mz[None, :] * (1.0 + ppm[:, None] * 1e-6)
    signal = np.zeros((len(ppm), len(axis)))
    for k, (mz, width) in enumerate(zip(peaks.mz, _half_windows(peaks.mz, spec.resolving_power))):
        lo, hi = np.searchsorted(axis, [mz - width, mz + width])
        signal[:, lo:hi] += amplitude[:, k:k + 1] * np.exp(
            -0.5 * ((axis[None, lo:hi] - centres[:, k:k + 1]) / sigma[k]) ** 2)
    span = spec.mz_high - spec.mz_low
    baseline = (3.0 + 20.0 * np.exp(-(axis - spec.mz_low) / (span / 4)))[None, :] * (1.0 + tissue[:, None])
    counts = rng.poisson(signal + baseline) + rng.normal(0.0, 1.5, signal.shape)
    intensities = np.clip(counts, 0.0, None).astype(np.float32)
    if spec.mode == "continuous":
        return ((axis, row) for row in intensities)
    # Processed: what stands above the noise floor, and the coarse points that sample the baseline.
    keep = (intensities > 2.0 * baseline + 10.0) | coarse[None, :]
    return ((axis[row], values[row]) for row, values in zip(keep, intensities))


def profile_axis(spec: ImageSpec, peak_mz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The m/z axis (fine in each peak's window, coarse elsewhere, ends included), and which points are coarse."""
    widths = _half_windows(peak_mz, spec.resolving_power)
    steps = peak_mz / spec.resolving_power / POINTS_PER_FWHM
    fine = [np.arange(mz - w, mz + w, step) for mz, w, step in zip(peak_mz, widths, steps)]
    coarse = np.linspace(spec.mz_low, spec.mz_high, COARSE_POINTS)
    inside = np.zeros(len(coarse), dtype=bool)
    for mz, width in zip(peak_mz, widths):
        inside |= np.abs(coarse - mz) <= width
    coarse = coarse[~inside | (coarse == spec.mz_low) | (coarse == spec.mz_high)]
    axis = np.concatenate([coarse, *fine]) if fine else coarse
    axis = np.unique(axis[(axis >= spec.mz_low) & (axis <= spec.mz_high)])
    return axis, np.isin(axis, coarse)


def _half_windows(peak_mz: np.ndarray, resolving_power: float) -> np.ndarray:
    return peak_mz * (WINDOW_FWHM / resolving_power + WINDOW_PPM * 1e-6)


def _centroids(spec: ImageSpec, peaks: Peaks, amplitude, offset, ppm, rng):
    """Centroid spectra: continuous ones share one peak list (its calibration is the file's),
    processed ones list each pixel's detected peaks and a few noise peaks."""
    counts = rng.poisson(amplitude).astype(np.float32)
    counts[counts < DETECTION_COUNTS] = 0.0
    if spec.mode == "continuous":
        axis = peaks.mz * (1.0 + offset * 1e-6)
        return ((axis, row) for row in counts)
    return (_pixel_centroids(spec, peaks.mz * (1.0 + p * 1e-6), row, rng) for p, row in zip(ppm, counts))


def _pixel_centroids(spec: ImageSpec, centres, counts, rng) -> tuple[np.ndarray, np.ndarray]:
    """One pixel's peak list: its detected ions (0.3 ppm of centroiding scatter) and noise peaks."""
    found = counts > 0
    mzs = centres[found] * (1.0 + rng.normal(0.0, 0.3, found.sum()) * 1e-6)
    noise = rng.uniform(spec.mz_low, spec.mz_high, max(1, rng.poisson(NOISE_PEAKS)))
    mzs = np.concatenate([mzs, noise])
    intensities = np.concatenate([counts[found], DETECTION_COUNTS + rng.exponential(10.0, len(noise))])
    order = np.argsort(mzs)
    return mzs[order], intensities[order].astype(np.float32)
