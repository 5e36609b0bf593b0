"""Per-spectrum QC metrics of one range of spectra, read straight from the .ibd.

    python -m workflow_templates.steps.qc_shard --index-dir QC/index --shard 0:5000 \
        --out-dir QC/shards --snr 3 --mass-window-ppm 30

Writes QC/shards/<start>-<stop>.npz: per readable spectrum its position, TIC, non-zero points,
baseline (median non-zero intensity), noise, peak count and each reference ion's ppm error (NaN
where not found), and the shard's summed spectrum for the mean spectrum (see qc_metrics for how
noise, peaks and ions are measured). Spectra are read in blocks (see ibd).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from workflow_templates.steps import cli, ibd, qc_metrics

PER_SPECTRUM = ("row", "tic", "points", "baseline", "noise", "peaks")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qc_shard", description=__doc__.split("\n")[0])
    parser.add_argument("--index-dir", type=cli.existing_dir, required=True, help="the qc_index output directory")
    parser.add_argument("--shard", type=spectrum_range, required=True, help="spectra START:STOP of the index")
    parser.add_argument("--out-dir", type=Path, required=True, help="directory for the metrics")
    parser.add_argument("--snr", type=cli.non_negative_float, required=True,
                        help="noise levels a peak must stand above the baseline to be counted")
    parser.add_argument("--mass-window-ppm", type=cli.positive_float, required=True,
                        help="how far from a reference ion's m/z its peak is looked for, in ppm")
    return parser


def spectrum_range(text: str) -> tuple[int, int]:
    """'START:STOP' with 0 <= START < STOP."""
    start, _, stop = text.partition(":")
    try:
        bounds = int(start), int(stop)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be START:STOP (two integers), not {text!r}") from None
    if not 0 <= bounds[0] < bounds[1]:
        raise argparse.ArgumentTypeError(f"must be START:STOP with 0 <= START < STOP, not {text!r}")
    return bounds


class MeanSpectrum:
    """The sum of a shard's spectra: on the shared axis (continuous), else binned on a fixed grid."""

    def __init__(self, dataset: dict):
        self.continuous = dataset["mode"] == "continuous"
        self.edges = grid(dataset)
        self.axis, self.total, self.binned = None, None, np.zeros(len(self.edges) - 1)

    def add(self, axis: np.ndarray, block: np.ndarray) -> None:
        summed = block.sum(axis=0, dtype=np.float64)
        if self.continuous and (self.axis is None or np.array_equal(self.axis, axis)):
            self.axis, self.total = axis, summed + (0 if self.total is None else self.total)
        else:
            self.binned += rebin(axis, summed, self.edges)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(m/z, summed intensity): the shared axis while every spectrum had it, else bin centres."""
        if self.axis is not None and not self.binned.any():
            return self.axis, self.total
        extra = rebin(self.axis, self.total, self.edges) if self.axis is not None else 0
        return (self.edges[:-1] + self.edges[1:]) / 2, self.binned + extra


def grid(dataset: dict) -> np.ndarray:
    """Bin edges of a binned mean spectrum over the dataset's m/z range."""
    low, high = dataset["mz_range"] or (0.0, 1.0)
    return np.linspace(low, high, dataset["mean_spectrum_bins"] + 1)


def rebin(mz: np.ndarray, intensity: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Intensities summed into the bins the edges bound (values outside go to the end bins)."""
    bins = np.clip(np.searchsorted(edges, mz, "right") - 1, 0, len(edges) - 2)
    return np.bincount(bins, weights=intensity, minlength=len(edges) - 1)


def shard_metrics(index: ibd.Index, data: np.ndarray, dataset: dict, rows: np.ndarray,
                  snr: float, window_ppm: float) -> dict[str, np.ndarray]:
    """The per-spectrum metrics and summed spectrum of the readable spectra among rows."""
    ions = np.array([ion["mz"] for ion in dataset["reference_ions"]], np.float64)
    centroided = dataset["centroided"] == "true"
    parts, mean = {key: [] for key in PER_SPECTRUM + ("ppm",)}, MeanSpectrum(dataset)
    for positions, axis, block in ibd.spectra(index, data, rows):
        baseline, noise = qc_metrics.floor_and_noise(block)
        threshold = baseline + snr * noise
        values = {"row": positions, "tic": block.sum(axis=1, dtype=np.float64),
                  "points": np.count_nonzero(block, axis=1), "baseline": baseline, "noise": noise,
                  "peaks": qc_metrics.peak_counts(block, threshold, centroided),
                  "ppm": qc_metrics.ion_errors(axis, block, threshold, ions, window_ppm, centroided)}
        for key, value in values.items():
            parts[key].append(value)
        mean.add(axis, block)
    result = {key: np.concatenate(value) if value else np.zeros(0) for key, value in parts.items()}
    result["ppm"] = result["ppm"].reshape(-1, len(ions))
    result["mean_mz"], result["mean_sum"] = mean.result()
    return result


def qc_shard(index_dir: Path, bounds: tuple[int, int], out_dir: Path, snr: float, window_ppm: float) -> Path:
    """Compute one range's metrics into out_dir/<start>-<stop>.npz; return its path."""
    try:
        dataset = json.loads((index_dir / "dataset.json").read_text())
        index = ibd.Index.load(index_dir / "index.npz")
    except (OSError, ValueError, KeyError) as error:
        raise cli.StepError(f"--index-dir: {index_dir} holds no readable qc_index output ({error})") from None
    if bounds[1] > len(index):
        raise cli.StepError(f"--shard: {bounds[0]}:{bounds[1]} lies beyond the {len(index)} spectra indexed")
    rows = np.arange(*bounds)
    metrics = shard_metrics(index, ibd.open_ibd(Path(dataset["ibd"])), dataset, rows, snr, window_ppm)
    path = out_dir.resolve() / f"{bounds[0]}-{bounds[1]}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part.npz")
    np.savez(part, **metrics)
    part.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), lambda args: qc_shard(args.index_dir, args.shard, args.out_dir, args.snr,
                                           args.mass_window_ppm), argv)


if __name__ == "__main__":
    main()
