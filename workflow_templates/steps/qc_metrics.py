"""QC metrics of a block of spectra sharing one m/z axis, vectorized over the block's rows.

Noise is measured as MALDIquant's and Cardinal's peak pickers do (a median absolute deviation
scaled to a standard deviation), over each spectrum's non-zero intensities: a zero is a point
an instrument or exporter dropped, not a measurement, and sparse profile spectra are mostly
zeros (their plain median and MAD are 0). A peak is a local maximum (higher than the
HALF_WINDOW points either side, Cardinal's default window of 5) standing `snr` noise levels above
the spectrum's median non-zero intensity, which stands for the baseline; in centroided data each
point above zero is a peak. A reference ion is found in a spectrum when its most intense point
near the ion's m/z is such a peak; its m/z is the apex refined by a Gaussian through the apex and
its two neighbours (exact for Gaussian peak shapes), and its error in ppm is
1e6 x (observed - theoretical) / theoretical.
"""
from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826   # scales a median absolute deviation to a normal standard deviation
HALF_WINDOW = 2


def floor_and_noise(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per spectrum: the median of its non-zero intensities and 1.4826 x their MAD (0, 0 for none)."""
    if block.shape[1] == 0:
        return np.zeros(len(block)), np.zeros(len(block))
    measured = block != 0
    if measured.all():  # dense spectra: a partition per row, no sort
        median = np.median(block, axis=1)
        return median, MAD_TO_SIGMA * np.median(np.abs(block - median[:, None]), axis=1)
    count = measured.sum(axis=1)
    median = _masked_median(np.where(measured, block, np.inf), count)
    deviations = np.where(measured, np.abs(block - median[:, None]), np.inf)
    return median, MAD_TO_SIGMA * _masked_median(deviations, count)


def _masked_median(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of each row's `count` finite values (the others are +inf, so they sort last)."""
    ordered = np.sort(values, axis=1)
    rows = np.arange(len(values))
    low, high = np.maximum((count - 1) // 2, 0), np.minimum(count // 2, values.shape[1] - 1)
    with np.errstate(invalid="ignore"):
        middle = 0.5 * (ordered[rows, low].astype(np.float64) + ordered[rows, high])
    return np.where(count > 0, middle, 0.0)


def local_maxima(block: np.ndarray) -> np.ndarray:
    """Points higher than the HALF_WINDOW points before them and at least as high as those after."""
    width = block.shape[1]
    padded = np.pad(block, ((0, 0), (HALF_WINDOW, HALF_WINDOW)), constant_values=-np.inf)
    mask = np.ones(block.shape, bool)
    for step in range(1, HALF_WINDOW + 1):
        mask &= block > padded[:, HALF_WINDOW - step:HALF_WINDOW - step + width]
        mask &= block >= padded[:, HALF_WINDOW + step:HALF_WINDOW + step + width]
    return mask


def peak_counts(block: np.ndarray, threshold: np.ndarray, centroided: bool) -> np.ndarray:
    """Peaks per spectrum: points above zero (centroided), else local maxima above threshold."""
    if centroided:
        return np.count_nonzero(block > 0, axis=1)
    return np.count_nonzero(local_maxima(block) & (block > threshold[:, None]), axis=1)


def ion_errors(axis: np.ndarray, block: np.ndarray, threshold: np.ndarray, ions: np.ndarray,
               window_ppm: float, centroided: bool) -> np.ndarray:
    """ppm error of each reference ion in each spectrum (rows x ions); NaN where not found."""
    errors = np.full((len(block), len(ions)), np.nan)
    for column, ion in enumerate(ions):
        errors[:, column] = _ion_error(axis, block, threshold, float(ion), window_ppm, centroided)
    return errors


def _ion_error(axis, block, threshold, ion, window_ppm, centroided) -> np.ndarray:
    reach = ion * window_ppm * 1e-6
    low, high = np.searchsorted(axis, ion - reach, "left"), np.searchsorted(axis, ion + reach, "right")
    if not centroided:  # the apex may lie one point outside the window while its centre lies inside
        low, high = max(low - 1, 1), min(high + 1, len(axis) - 1)
    if high <= low:
        return np.full(len(block), np.nan)
    rows = np.arange(len(block))
    apex = low + np.argmax(block[:, low:high], axis=1)
    height = block[rows, apex]
    if centroided:
        observed, found = axis[apex], height > 0
    else:
        observed, found = _gaussian_apex(axis, block, rows, apex)
        found &= height > threshold
    ppm = (observed - ion) / ion * 1e6
    return np.where(found & (np.abs(ppm) <= window_ppm), ppm, np.nan)


def _gaussian_apex(axis, block, rows, apex) -> tuple[np.ndarray, np.ndarray]:
    """(m/z of the Gaussian through apex and neighbours, whether apex is a positive local maximum)."""
    left, top, right = (block[rows, apex + shift].astype(np.float64) for shift in (-1, 0, 1))
    found = (left > 0) & (right > 0) & (top >= left) & (top >= right)
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b, c = np.log(left), np.log(top), np.log(right)
        curvature = a - 2 * b + c
        shift = np.where(found & (curvature < 0), 0.5 * (a - c) / curvature, 0.0)
    spacing = (axis[apex + 1] - axis[apex - 1]) / 2
    return axis[apex] + shift * spacing, found


def top_peaks(axis: np.ndarray, spectrum: np.ndarray, count: int = 10) -> list[dict]:
    """The `count` most intense local maxima of a (mean) spectrum, most intense first."""
    if len(spectrum) == 0:
        return []
    tops = np.flatnonzero(local_maxima(spectrum[None, :])[0] & (spectrum > 0))
    best = tops[np.argsort(spectrum[tops])[::-1][:count]]
    return [{"mz": round(float(axis[i]), 5), "intensity": float(spectrum[i])} for i in best]
