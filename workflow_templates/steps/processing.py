"""Spectrum processing with pyOpenMS: smoothing, baseline removal, peak picking, noise.

Every function takes and returns plain numpy arrays (m/z float64, intensity float32), so the
steps never hold pyOpenMS objects longer than one call.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

SMOOTHING = ("none", "gaussian", "savitzky-golay")
BASELINE = ("none", "tophat")
SAVITZKY_GOLAY_ORDER = 2  # the lowest order that keeps peak heights; frames start at 3 points
MAD_TO_SIGMA = 1.4826  # scales a median absolute deviation to a normal standard deviation
NOISE_WINDOW = 200.0  # m/z: PeakPickerHiRes's noise window (SignalToNoise:win_len)
NOISE_STEP = 25.0  # m/z between the noise estimates interpolated in between
GAUSS_TABLE_WIDTH = 0.32  # m/z: a GaussFilter kernel this wide (8 sigma) has 4 table points per sigma

# A smoothing width: a positive decimal with its unit, ppm (scaling with m/z, as resolving power
# does) or m/z; a bare number is m/z. Under 100,000 ppm or 1,000 m/z. ims-preprocess.yaml's
# parameter hint carries the same pattern, so a launch refuses what the step would.
_POSITIVE = r"0*(?:[1-9][0-9]{{0,{digits}}}(?:\.[0-9]*)?|\.[0-9]*[1-9][0-9]*)"
WIDTH_PATTERN = (r"\s*(?:" + _POSITIVE.format(digits=4) + r"\s*ppm|" + _POSITIVE.format(digits=2)
                 + r"(?:\s*m/z)?)\s*")
WIDTH_UNIT = "ppm or m/z"  # the unit a width parameter's hint declares
WIDTH_TEXT = ("a positive width with its unit, under 100000 ppm or 1000 m/z (e.g. 10 ppm, 0.02 m/z; "
              "a bare number is m/z)")


@dataclass(frozen=True)
class Width:
    """A smoothing width: value in unit, ppm or m/z."""
    value: float
    unit: str

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"

    def mz_at(self, mz: float) -> float:
        """The width in m/z at this m/z."""
        return self.value * mz * 1e-6 if self.unit == "ppm" else self.value


def width(text) -> Width:
    """The Width a parameter value says (a number alone is m/z); ValueError says what is allowed."""
    if isinstance(text, Width):
        return text
    if not isinstance(text, (str, int, float)) or isinstance(text, bool) or \
            not re.fullmatch(WIDTH_PATTERN, str(text)):
        raise ValueError(f"must be {WIDTH_TEXT}, not {text!r}")
    number = re.match(r"\s*([0-9.]+)", str(text)).group(1)
    return Width(float(number), "ppm" if "ppm" in str(text) else "m/z")


def smooth(mz: np.ndarray, intensity: np.ndarray, method: str, window) -> np.ndarray:
    """Smoothed intensities: `window` (a Width or its text) is the Gaussian's width (8 sigma, at
    most the peaks' FWHM; in ppm it follows m/z) or what the Savitzky-Golay frame spans."""
    if method == "none" or len(mz) < 3:
        return intensity
    window = width(window)
    if method == "gaussian":
        return _gauss_smoothed(mz, intensity, window)
    if method == "savitzky-golay":
        algorithm = _configured(_openms().SavitzkyGolayFilter(), frame_length=_frame(mz, window),
                                polynomial_order=SAVITZKY_GOLAY_ORDER)
    else:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHING)}, not {method!r}")
    spectrum = _spectrum(mz, intensity)
    algorithm.filter(spectrum)
    return spectrum.get_peaks()[1]


def _gauss_smoothed(mz: np.ndarray, intensity: np.ndarray, window: Width) -> np.ndarray:
    """GaussFilter of this width (8 sigma). A ppm width is a constant width on the log m/z axis (in
    ppm units), where GaussFilter runs with one kernel (its use_ppm_tolerance recomputes the kernel
    at every point, "much slower" by its documentation). GaussFilter tabulates its kernel every 0.01
    axis units, so a narrower kernel (high resolving power) would be a 0.01-wide triangle: the axis
    is stretched until the kernel spans GAUSS_TABLE_WIDTH, which changes nothing else (the filter
    has no other scale)."""
    mz = np.asarray(mz, np.float64)
    axis = np.log(np.maximum(mz, 1e-6)) * 1e6 if window.unit == "ppm" else mz
    stretch = max(1.0, GAUSS_TABLE_WIDTH / window.value)
    algorithm = _configured(_openms().GaussFilter(), gaussian_width=window.value * stretch)
    spectrum = _spectrum(axis * stretch, intensity)
    algorithm.filter(spectrum)
    smoothed = spectrum.get_peaks()[1]
    # Where the kernel does not reach the next point (sparser sampling than the width), GaussFilter
    # gives 0; a kernel that narrow averages nothing, so the point keeps its value.
    return np.where((smoothed == 0) & (intensity != 0), intensity, smoothed).astype(np.float32)


def remove_baseline(mz: np.ndarray, intensity: np.ndarray, method: str, window: float) -> np.ndarray:
    """Intensities minus the baseline; tophat: a morphological filter at least `window` m/z wide
    where the points lie densest."""
    if method == "none" or len(mz) < 3:
        return intensity
    if method != "tophat":
        raise ValueError(f"baseline must be one of {', '.join(BASELINE)}, not {method!r}")
    # In points, not Thomson: MorphologicalFilter turns Thomson into points by the spectrum's
    # average spacing, which on a sparse (processed) or unevenly sampled axis spans a few points,
    # narrower than a peak, and removes the peaks with the baseline.
    points = min(_frame(mz, Width(float(window), "m/z")), len(mz) if len(mz) % 2 else len(mz) - 1)
    algorithm = _configured(_openms().MorphologicalFilter(), method="tophat",
                            struc_elem_length=float(points), struc_elem_unit="DataPoints")
    spectrum = _spectrum(mz, intensity)
    algorithm.filter(spectrum)
    return spectrum.get_peaks()[1]


def pick_peaks(mz: np.ndarray, intensity: np.ndarray, snr: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (m/z, intensity) of the profile peaks at least `snr` times the local noise."""
    if len(mz) < 3:
        return np.zeros(0), np.zeros(0, np.float32)
    picker = _configured(_openms().PeakPickerHiRes(), signal_to_noise=0.0)
    picked = _openms().MSSpectrum()
    picker.pick(_spectrum(mz, intensity), picked)
    peaks_mz, peaks_intensity = (np.asarray(a) for a in picked.get_peaks())
    if snr > 0 and len(peaks_mz):
        keep = peaks_intensity >= snr * local_noise(mz, intensity, peaks_mz)
        peaks_mz, peaks_intensity = peaks_mz[keep], peaks_intensity[keep]
    return np.asarray(peaks_mz, np.float64), np.asarray(peaks_intensity, np.float32)


def local_noise(mz: np.ndarray, intensity: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The noise at the m/z `at`: PeakPickerHiRes's rule (the median intensity within NOISE_WINDOW
    m/z), with each point weighted by the m/z it samples. On an evenly sampled profile that is its
    plain median; on a processed (sparse) one, whose points below the noise floor were dropped, the
    stored points are mostly peak, and an unweighted median (PeakPickerHiRes's own estimator) calls
    weaker peaks noise. Zero points (nothing measured) are left out."""
    mz, intensity = np.asarray(mz, np.float64), np.asarray(intensity, np.float64)
    weights = np.gradient(mz) if len(mz) > 1 else np.ones(len(mz))
    measured = intensity > 0
    mz, intensity, weights = mz[measured], intensity[measured], weights[measured]
    if not len(mz) or not len(at):
        return np.zeros(len(at))
    # estimates every NOISE_STEP m/z, only where asked for, interpolated in between
    centres = np.arange(min(at) - NOISE_STEP, max(at) + 2 * NOISE_STEP, NOISE_STEP)
    bounds = np.searchsorted(mz, np.stack([centres - NOISE_WINDOW / 2, centres + NOISE_WINDOW / 2]))
    noise = [_weighted_median(intensity[lo:hi], weights[lo:hi]) for lo, hi in bounds.T]
    return np.interp(at, centres, noise)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    if not len(values):
        return 0.0
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


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


def _frame(mz: np.ndarray, window: Width) -> int:
    """The odd number of points (at least 3) that spans `window` at the median spacing (in ppm,
    the median spacing relative to m/z)."""
    steps = np.diff(mz) / (mz[1:] * 1e-6 if window.unit == "ppm" else 1.0)
    spacing = float(np.median(steps)) or 1.0
    points = max(3, int(round(window.value / spacing)))
    return points if points % 2 else points + 1
