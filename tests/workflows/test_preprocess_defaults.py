"""ims-preprocess with its shipped defaults on the demo's pairs: the peaks and the reference ions
come out where they are, within a few ppm, in both polarities, profile and centroid, continuous
and processed (labcommons.demo.images: peaks as narrow as each resolving power gives)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from ims.reference_ions import defaults
from labcommons.demo.images import ImageSpec, peak_table, write_image
from metadata.workflow_catalog import load_catalog
from workflow_templates.steps import convert, preprocess, processing
from workflow_templates.steps.shards import read_shard

PPM = 5.0  # calibration offset (<= 1 ppm) and per-pixel scatter (0.8 ppm sd) of the demo, with room
DEFAULTS = {p.name: p.default for p in load_catalog()["ims-preprocess"].parameters if p.default is not None}

KINDS = [  # (mode, spectrum type, polarity, resolving power): TOF-like and Orbitrap-like
    ("continuous", "profile", "positive", 30000.0), ("processed", "profile", "negative", 30000.0),
    ("continuous", "profile", "negative", 240000.0), ("processed", "profile", "positive", 120000.0),
    ("processed", "centroid", "positive", 30000.0), ("continuous", "centroid", "negative", 30000.0),
]


def _default_args(shard, out_dir) -> argparse.Namespace:
    options = [f"--{name}={DEFAULTS[name]}" for name in
               ("smoothing", "smoothing-window", "baseline", "baseline-window", "peak-picking", "snr")]
    return preprocess.parser().parse_args(["--shard", str(shard), "--out-dir", str(out_dir), *options])


def _ppm_off(found: np.ndarray, mz: float) -> float:
    return float(np.min(np.abs(found - mz)) / mz * 1e6) if len(found) else float("inf")


@pytest.mark.parametrize("mode, kind, polarity, resolving_power", KINDS)
def test_default_preprocessing_finds_the_demo_peaks_and_reference_ions(mode, kind, polarity, resolving_power,
                                                                       tmp_path):
    spec = ImageSpec(name="demo", width=5, height=4, seed=11, mode=mode, spectrum_type=kind, polarity=polarity,
                     resolving_power=resolving_power)
    records, _ = write_image(tmp_path / "pair", spec)
    (shard,) = convert.convert(records[0]["path"], tmp_path / "convert", 100)
    before, after = read_shard(shard), read_shard(preprocess.run(_default_args(shard, tmp_path / "pre")))
    assert after.metadata["centroided"] == "true"
    tissue = int(np.argmax([i.sum() for i in before.intensity]))
    centroids = after.mz[tissue]
    ions = peak_table(spec, np.random.default_rng(spec.seed))
    references = [mz for mz in ions.mz if any(abs(mz - r.mz) < 1e-6 for r in defaults(polarity))]
    assert references, "the demo image carries reference ions"
    assert max(_ppm_off(centroids, mz) for mz in references) < PPM
    found = [mz for mz in ions.mz if _ppm_off(centroids, mz) < PPM]
    assert len(found) >= 0.75 * len(ions.mz), (len(found), len(ions.mz))
    if kind == "centroid":  # copied as they are: PeakPickerHiRes expects profile data
        np.testing.assert_array_equal(centroids, before.mz[tissue])
        assert after.metadata["processing"] == preprocess.CENTROIDED


def test_the_default_smoothing_is_no_wider_than_high_resolution_peaks():
    window = processing.width(DEFAULTS["smoothing-window"])
    assert window.unit == "ppm"  # it follows m/z, as resolving power does; no longer 1 m/z everywhere
    assert window.mz_at(2000.0) < 0.1
    # GaussFilter's width is 8 sigma: its kernel's FWHM is 2.355 / 8 of it, below an Orbitrap
    # peak's FWHM at m/z 500 (~0.005 m/z at resolving power 100,000)
    assert window.mz_at(500.0) * 2.355 / 8 < 0.005


def test_a_narrow_gaussian_keeps_a_high_resolution_peak():
    """GaussFilter tabulates its kernel every 0.01 m/z; a 5 ppm kernel at m/z 300 must still keep a
    peak 1.25 ppm wide (R 800,000) sharp (broadened 1.5 times) rather than smear it over 0.01 m/z
    (a twentieth of its height)."""
    mz = np.linspace(299.99, 300.01, 401)  # 0.00005 m/z apart
    peak = np.exp(-0.5 * ((mz - 300.0) / (300.0 / 800000 / 2.355)) ** 2).astype(np.float32) * 1000
    smoothed = processing.smooth(mz, peak, "gaussian", "5 ppm")
    assert smoothed.max() > 0.5 * peak.max() and abs(mz[np.argmax(smoothed)] - 300.0) < 1e-4
    assert smoothed.sum() == pytest.approx(peak.sum(), rel=0.05)
