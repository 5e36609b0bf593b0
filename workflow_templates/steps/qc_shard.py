"""Per-shard QC metrics: spectra, TIC, m/z range, median intensity, noise, peak count.

    python -m workflow_templates.steps.qc_shard --shard DIR/shard-00000.parquet --out-dir QC --snr 3

Writes QC/<shard name>.json: the shard's totals and, per spectrum (so the merge computes exact
medians and the TIC image), index, x, y, tic, median_intensity, noise and peaks. Peaks are
counted with pyOpenMS' PeakPickerHiRes at the given signal-to-noise ratio (in centroided data,
every point with intensity above 0 is a peak); noise is the scaled
median absolute deviation of the spectrum's intensities.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from workflow_templates.steps import cli, processing
from workflow_templates.steps.shards import Spectra, read_shard, write_json


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qc_shard", description=__doc__.split("\n")[0])
    parser.add_argument("--shard", type=cli.existing_file, required=True, help="a Parquet shard")
    parser.add_argument("--out-dir", type=Path, required=True, help="directory for the metrics JSON")
    parser.add_argument("--snr", type=cli.non_negative_float, required=True,
                        help="signal-to-noise ratio a peak must reach to be counted")
    return parser


def shard_metrics(spectra: Spectra, snr: float) -> dict:
    """The metrics of one batch of spectra (see the module docstring)."""
    pixels = {key: [] for key in ("index", "x", "y", "tic", "median_intensity", "noise", "peaks")}
    centroided = spectra.metadata.get("centroided") == "true"
    for i, (mz, intensity) in enumerate(zip(spectra.mz, spectra.intensity)):
        pixels["index"].append(int(spectra.index[i]))
        pixels["x"].append(int(spectra.coords[i, 0]))
        pixels["y"].append(int(spectra.coords[i, 1]))
        pixels["tic"].append(float(intensity.sum(dtype=np.float64)))
        pixels["median_intensity"].append(float(np.median(intensity)) if len(intensity) else 0.0)
        pixels["noise"].append(processing.noise_level(intensity))
        pixels["peaks"].append(_peak_count(mz, intensity, snr, centroided))
    nonempty = [mz for mz in spectra.mz if len(mz)]
    return {
        "spectra": len(spectra), "tic_sum": float(np.sum(pixels["tic"])),
        "mz_min": float(min(mz.min() for mz in nonempty)) if nonempty else None,
        "mz_max": float(max(mz.max() for mz in nonempty)) if nonempty else None,
        "peaks_sum": int(np.sum(pixels["peaks"])), "snr": snr, "pixels": pixels,
    }


def _peak_count(mz: np.ndarray, intensity: np.ndarray, snr: float, centroided: bool) -> int:
    """Peaks picked at snr from a profile spectrum; a centroided spectrum's points are its peaks."""
    if centroided:
        return int(np.count_nonzero(intensity > 0))
    return len(processing.pick_peaks(mz, intensity, snr)[0])


def qc_shard(shard: Path, out_dir: Path, snr: float) -> Path:
    """Compute one shard's metrics into out_dir/<shard stem>.json; return its path."""
    metrics = {"shard": str(shard), **shard_metrics(read_shard(shard), snr)}
    path = out_dir.resolve() / f"{shard.stem}.json"
    write_json(path, metrics, indent=None)  # per-pixel lists: compact
    return path


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), lambda args: qc_shard(args.shard, args.out_dir, args.snr), argv)


if __name__ == "__main__":
    main()
