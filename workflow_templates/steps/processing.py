"""Spectrum processing with pyOpenMS: smoothing, baseline removal, peak picking, noise.

Every function takes and returns plain numpy arrays (m/z float64, intensity float32), so the
steps never hold pyOpenMS objects longer than one call.
"""
from __future__ import annotations

import functools

import numpy as np

SMOOTHING = ("none", "gaussian", "savitzky-golay")
BASELINE = ("none", "tophat")
SAVITZKY_GOLAY_ORDER = 2  # the lowest order that keeps peak heights; frames start at 3 points
MAD_TO_SIGMA = 1.4826  # scales a median absolute deviation to a normal standard deviation


def smooth(mz: np.ndarray, intensity: np.ndarray, method: str, window: float) -> np.ndarray:
    """Smoothed intensities: `window` is the Gaussian's width or the Savitzky-Golay frame, in m/z."""
    if method == "none" or len(mz) < 3:
        return intensity
    if method == "gaussian":
        algorithm = _configured(_openms().GaussFilter(), gaussian_width=float(window))
    elif method == "savitzky-golay":
        algorithm = _configured(_openms().SavitzkyGolayFilter(), frame_length=_frame(mz, window),
                                polynomial_order=SAVITZKY_GOLAY_ORDER)
    else:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHING)}, not {method!r}")
    spectrum = _spectrum(mz, intensity)
    algorithm.filter(spectrum)
    return spectrum.get_peaks()[1]


def remove_baseline(mz: np.ndarray, intensity: np.ndarray, method: str, window: float) -> np.ndarray:
    """Intensities minus the baseline; tophat: a morphological filter `window` m/z wide."""
    if method == "none" or len(mz) < 3:
        return intensity
    if method != "tophat":
        raise ValueError(f"baseline must be one of {', '.join(BASELINE)}, not {method!r}")
    algorithm = _configured(_openms().MorphologicalFilter(), method="tophat",
                            struc_elem_length=float(window), struc_elem_unit="Thomson")
    spectrum = _spectrum(mz, intensity)
    algorithm.filter(spectrum)
    return spectrum.get_peaks()[1]


def pick_peaks(mz: np.ndarray, intensity: np.ndarray, snr: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (m/z, intensity) of the profile peaks at least `snr` times the local noise."""
    if len(mz) < 3:
        return np.zeros(0), np.zeros(0, np.float32)
    picker = _configured(_openms().PeakPickerHiRes(), signal_to_noise=float(snr))
    picked = _openms().MSSpectrum()
    picker.pick(_spectrum(mz, intensity), picked)
    peaks_mz, peaks_intensity = picked.get_peaks()
    return np.asarray(peaks_mz, np.float64), np.asarray(peaks_intensity, np.float32)


def noise_level(intensity: np.ndarray) -> float:
    """Robust noise estimate: the median absolute deviation, scaled to a standard deviation."""
    if len(intensity) == 0:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(intensity - np.median(intensity))))


@functools.cache
def _openms():
    """pyopenms, imported on first use only: it bundles a second Arrow, and once loaded,
    pyarrow's path-based file access in the same process fails (see shards.py)."""
    import pyopenms
    return pyopenms


def _spectrum(mz: np.ndarray, intensity: np.ndarray):
    # pyOpenMS wants writable contiguous arrays; pyimzML and Arrow hand out read-only views.
    spectrum = _openms().MSSpectrum()
    spectrum.set_peaks(np.array(mz, np.float64), np.array(intensity, np.float32))
    return spectrum


def _configured(algorithm, **values):
    params = algorithm.getParameters()
    for name, value in values.items():
        params.setValue(name, value)
    algorithm.setParameters(params)
    return algorithm


def _frame(mz: np.ndarray, window: float) -> int:
    """The odd number of points (at least 3) that spans `window` m/z at the median spacing."""
    spacing = float(np.median(np.diff(mz))) or 1.0
    points = max(3, int(round(window / spacing)))
    return points if points % 2 else points + 1
