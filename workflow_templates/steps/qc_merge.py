"""Merge the shards' QC metrics into one report: JSON and mzQC, images, pass or fail.

    python -m workflow_templates.steps.qc_merge --index-dir QC/index --pair-dir QC/pair \
        --metrics-dir QC/shards --out-dir QC --min-spectra 1 --min-median-tic 0 --min-mean-peaks 0 \
        --min-pixel-completeness 0.8 --max-dropped-lines 0 --max-mass-error-ppm 5

Writes QC/report.json, QC/report.mzQC (HUPO-PSI mzQC 1.0), QC/tic.png, QC/missing.png (pixels
without a spectrum red, spectra the .ibd does not hold orange), QC/ppm.png (each pixel's median
reference-ion error, blue below zero, red above) and QC/passed ("true" or "false", the
template's `passed` output parameter). A failed check is a result, not an error: the program
still exits 0. Each check carries its value, threshold and direction (minimum or maximum); a
check that cannot be made (no reference ion found) is "not assessed" and does not fail. The
pair's integrity (qc_pair: UUID, recorded checksum, sizes) is a check like the others.
"""
from __future__ import annotations

import argparse
import json
import warnings
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np

from workflow_templates.steps import cli, ibd, mzqc, png, qc_metrics
from workflow_templates.steps.qc_shard import grid, rebin
from workflow_templates.steps.atomic import write_json, write_text

IMAGE_MIN_SIDE = 256   # pixels; small images are scaled up by an integer factor to about this
DROPPED_FRACTION = 0.05   # a line whose mean TIC is below this share of the median line's is dropped
GRADIENT_FLAG = 0.5       # a fitted change of TIC across the image above this share of its mean is flagged
MIN_ION_COVERAGE = 0.25   # share of acquired pixels an ion must be found in to count as found
ACQUIRED, MISSING, UNREADABLE = 0, 1, 2
STATUS_COLOURS = np.array([[200, 200, 200], [215, 48, 39], [253, 174, 97]])
PER_SPECTRUM = ("tic", "points", "baseline", "noise", "peaks")
THRESHOLDS = (   # (option, type, what passes)
    ("min-spectra", cli.positive_int, "fewest spectra a dataset must hold to pass"),
    ("min-median-tic", cli.non_negative_float, "lowest median TIC per spectrum that passes"),
    ("min-mean-peaks", cli.non_negative_float, "lowest mean number of peaks per spectrum that passes"),
    ("min-pixel-completeness", cli.fraction, "lowest share (0 to 1) of the grid with a readable spectrum that passes"),
    ("max-dropped-lines", cli.non_negative_int, "most rows and columns without signal that pass"),
    ("max-mass-error-ppm", cli.positive_float, "largest |median ppm error| of the reference ions that passes"),
)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qc_merge", description=__doc__.split("\n")[0])
    parser.add_argument("--index-dir", type=cli.existing_dir, required=True, help="the qc_index output directory")
    parser.add_argument("--pair-dir", type=cli.existing_dir, required=True, help="the qc_pair output directory")
    parser.add_argument("--metrics-dir", type=cli.existing_dir, required=True, help="directory of the qc_shard outputs")
    parser.add_argument("--out-dir", type=Path, required=True, help="directory for the report")
    for name, kind, meaning in THRESHOLDS:
        parser.add_argument(f"--{name}", type=kind, required=True, help=meaning)
    return parser


def load(index_dir: Path, metrics_dir: Path) -> tuple[dict, ibd.Index, dict]:
    """(dataset, index, per-spectrum values over every indexed spectrum, NaN where not read)."""
    try:
        dataset = json.loads((index_dir / "dataset.json").read_text())
        index = ibd.Index.load(index_dir / "index.npz")
    except (OSError, ValueError, KeyError) as error:
        raise cli.StepError(f"--index-dir: {index_dir} holds no readable qc_index output ({error})") from None
    paths = [metrics_dir / f"{shard.replace(':', '-')}.npz" for shard in dataset["shards"]]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise cli.StepError(f"--metrics-dir: no metrics for {len(missing)} shard(s): {', '.join(missing[:5])}")
    return dataset, index, _combined(dataset, len(index), [_read(path) for path in paths])


def _read(path: Path) -> dict:
    try:
        with np.load(path) as saved:
            return {key: saved[key] for key in saved.files}
    except (OSError, ValueError) as error:
        raise cli.StepError(f"--metrics-dir: {path.name} is not a qc_shard metrics file ({error})") from None


def _combined(dataset: dict, count: int, shards: list[dict]) -> dict:
    values = {key: np.full(count, np.nan) for key in PER_SPECTRUM}
    values["ppm"] = np.full((count, len(dataset["reference_ions"])), np.nan)
    for shard in shards:
        rows = shard["row"].astype(np.int64)
        for key in PER_SPECTRUM + ("ppm",):
            values[key][rows] = shard[key]
    values["mean_mz"], values["mean_sum"] = _summed_spectrum(dataset, shards)
    return values


def _summed_spectrum(dataset: dict, shards: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The shards' summed spectra added: on their common axis, else binned on the dataset's grid."""
    parts = [(s["mean_mz"], s["mean_sum"]) for s in shards if len(s["mean_mz"])]
    if not parts:
        return np.zeros(0), np.zeros(0)
    if all(np.array_equal(mz, parts[0][0]) for mz, _ in parts):
        return parts[0][0], np.sum([total for _, total in parts], axis=0)
    edges = grid(dataset)
    return (edges[:-1] + edges[1:]) / 2, np.sum([rebin(mz, total, edges) for mz, total in parts], axis=0)


def pixel_grid(index: ibd.Index, dataset: dict, per_spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(status image: acquired, missing or unreadable; the per-spectrum values on the grid, NaN elsewhere)."""
    (x0, x1), (y0, y1) = dataset["grid"]["x"], dataset["grid"]["y"]
    status = np.full((y1 - y0 + 1, x1 - x0 + 1), MISSING, np.int8)
    image = np.full(status.shape, np.nan)
    inside = (index["x"] >= x0) & (index["x"] <= x1) & (index["y"] >= y0) & (index["y"] <= y1)
    rows, cols = index["y"][inside] - y0, index["x"][inside] - x0
    status[rows, cols] = np.where(index["readable"][inside], ACQUIRED, UNREADABLE)
    image[rows, cols] = per_spectrum[inside]
    image[status != ACQUIRED] = np.nan
    return status, image


def profiles(tic: np.ndarray) -> dict:
    """Mean TIC per row and per column; dropped lines (inside the acquired area, no or almost no
    signal) and a linear gradient across the image, flagged when large."""
    acquired = np.isfinite(tic)
    result = {}
    for name, axis in (("rows", 1), ("columns", 0)):
        counts = acquired.sum(axis=axis)
        means = np.where(counts > 0, np.nansum(tic, axis=axis) / np.maximum(counts, 1), np.nan)
        result[name] = _rounded(means)
        result[f"dropped_{name}"] = _dropped(means, counts)
        result[f"{name}_gradient"] = _gradient(means)
    result["gradient_flagged"] = any(abs(result[f"{n}_gradient"] or 0) > GRADIENT_FLAG for n in ("rows", "columns"))
    return result


def _dropped(means: np.ndarray, counts: np.ndarray) -> list[int]:
    """0-based lines between the first and last acquired ones whose mean TIC is (almost) nothing."""
    present = np.flatnonzero(counts > 0)
    if len(present) == 0:
        return []
    inner = np.arange(present[0], present[-1] + 1)
    floor = DROPPED_FRACTION * np.nanmedian(means)
    return [int(i) for i in inner if counts[i] == 0 or means[i] < floor]


def _gradient(means: np.ndarray) -> float | None:
    """The change of a straight line fitted to the line means, first to last line, over their mean."""
    finite = np.flatnonzero(np.isfinite(means))
    if len(finite) < 3 or np.nanmean(means) <= 0:
        return None
    slope = np.polyfit(finite, means[finite], 1)[0]
    return round(float(slope * (len(means) - 1) / np.nanmean(means)), 4)


def mass_accuracy(dataset: dict, ppm: np.ndarray, acquired: int) -> dict:
    """Per reference ion: in how many pixels it was found and its median error; over the ions found
    in at least MIN_ION_COVERAGE of the pixels: each pixel's median error, their median and spread."""
    found_in = np.isfinite(ppm).sum(axis=0)
    counted = found_in >= max(1, MIN_ION_COVERAGE * acquired)
    ions = [{**ion, "pixels_found": int(n), "coverage": round(n / acquired, 4) if acquired else 0.0,
             "found": bool(ok), "median_ppm": _round(np.nanmedian(ppm[:, i])) if n else None}
            for i, (ion, n, ok) in enumerate(zip(dataset["reference_ions"], found_in, counted))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": pixels where no ion was found
        per_pixel = np.nanmedian(ppm[:, counted], axis=1) if counted.any() else np.full(len(ppm), np.nan)
    values = per_pixel[np.isfinite(per_pixel)]
    median = float(np.median(values)) if len(values) else None
    spread = float(qc_metrics.MAD_TO_SIGMA * np.median(np.abs(values - median))) if len(values) else None
    return {"assessed": median is not None, "median_ppm": _round(median), "spread_ppm": _round(spread),
            "pixels_measured": int(len(values)), "ions": ions, "per_spectrum": per_pixel}


def summary(dataset: dict, values: dict, status: np.ndarray, accuracy: dict, lines: dict, pair: dict) -> dict:
    """The dataset's metrics (see docs/workflows.md)."""
    read = np.isfinite(values["tic"])
    tic, peaks = values["tic"][read], values["peaks"][read]
    mz_range = dataset["mz_range"] or [None, None]
    return {
        "spectra": dataset["spectra"], "spectra_readable": int(read.sum()),
        "spectra_readable_fraction": _round(read.sum() / dataset["spectra"]),
        "spectra_empty": int((tic == 0).sum()), "shards": len(dataset["shards"]),
        "pixels_total": int(status.size), "pixels_acquired": int((status == ACQUIRED).sum()),
        "pixels_missing": int((status == MISSING).sum()), "pixels_unreadable": int((status == UNREADABLE).sum()),
        "pixel_completeness": _round((status == ACQUIRED).sum() / status.size),
        "tic_total": float(tic.sum()), "tic_median": _median(tic),
        "mz_min": mz_range[0], "mz_max": mz_range[1],
        "median_intensity": _median(values["baseline"][read]), "noise_level": _median(values["noise"][read]),
        "points_median": _median(values["points"][read]),
        "peaks_total": int(peaks.sum()), "peaks_median": _median(peaks),
        "peaks_mean": float(peaks.mean()) if len(peaks) else 0.0,
        "dropped_lines": len(lines["dropped_rows"]) + len(lines["dropped_columns"]),
        "mass_error_ppm": accuracy["median_ppm"], "mass_error_spread_ppm": accuracy["spread_ppm"],
        "pair_problems": len(pair["problems"]),
    }


def check(metric: str, value, threshold, direction: str, assessed: bool = True) -> dict:
    """One check: its value against a threshold that is a minimum or a maximum; one that cannot be
    made is 'not assessed' and passes."""
    passed = (not assessed) or (value >= threshold if direction == "minimum" else value <= threshold)
    status = "not assessed" if not assessed else ("passed" if passed else "failed")
    return {"metric": metric, "value": value, "threshold": threshold, "direction": direction,
            direction: threshold, "passed": bool(passed), "status": status}


def checks(metrics: dict, args: argparse.Namespace) -> list[dict]:
    """Every check of the report, in the order the run page lists them."""
    error = metrics["mass_error_ppm"]
    return [
        check("pair_integrity", metrics["pair_problems"], 0, "maximum"),
        check("spectra", metrics["spectra"], args.min_spectra, "minimum"),
        check("spectra_readable_fraction", metrics["spectra_readable_fraction"], 1.0, "minimum"),
        check("pixel_completeness", metrics["pixel_completeness"], args.min_pixel_completeness, "minimum"),
        check("dropped_lines", metrics["dropped_lines"], args.max_dropped_lines, "maximum"),
        check("tic_median", metrics["tic_median"], args.min_median_tic, "minimum"),
        check("peaks_mean", metrics["peaks_mean"], args.min_mean_peaks, "minimum"),
        check("mass_error_ppm", None if error is None else abs(error), args.max_mass_error_ppm, "maximum",
              assessed=error is not None),
    ]


def qc_merge(args: argparse.Namespace) -> dict:
    """Write report.json, report.mzQC, the images and passed under args.out_dir; return the report."""
    dataset, index, values = load(args.index_dir, args.metrics_dir)
    status, tic = pixel_grid(index, dataset, values["tic"])
    acquired = int((status == ACQUIRED).sum())
    accuracy = mass_accuracy(dataset, values["ppm"], acquired)
    lines = profiles(tic)
    pair = read_pair(args.pair_dir)
    metrics = summary(dataset, values, status, accuracy, lines, pair)
    results = checks(metrics, args)
    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    values["pixel_ppm"] = accuracy.pop("per_spectrum")
    images = _write_images(out_dir, status, tic, pixel_grid(index, dataset, values["pixel_ppm"])[1],
                           args.max_mass_error_ppm)
    report = {"passed": all(c["passed"] for c in results), "checks": results, "metrics": metrics,
              "dataset": _dataset(dataset), "tic_image": images["tic"], "images": images, "profiles": lines,
              "mass_accuracy": accuracy, "pair": pair, "mean_spectrum": _mean_spectrum(values, metrics["spectra_readable"]),
              "pixels": _pixels(index, values)}
    write_json(out_dir / "report.json", report, indent=None)
    mzqc.write(out_dir / "report.mzQC", report, dataset["source"], _version())
    write_text(out_dir / "passed", "true" if report["passed"] else "false")
    return report


def read_pair(pair_dir: Path) -> dict:
    """qc_pair's findings: what was compared and each difference."""
    try:
        pair = json.loads((pair_dir / "pair.json").read_text())
        if isinstance(pair.get("problems"), list) and isinstance(pair.get("checked"), list):
            return pair
    except (OSError, ValueError, AttributeError):
        pass
    raise cli.StepError(f"--pair-dir: {pair_dir} holds no qc_pair findings (pair.json)")


def _write_images(out_dir: Path, status: np.ndarray, tic: np.ndarray, ppm: np.ndarray, limit: float) -> dict:
    """tic.png, missing.png and ppm.png, each with its path, size and scale; the missing map also
    with its status per pixel (rows y, columns x: 0 acquired, 1 missing, 2 unreadable). The TIC
    and ppm values per pixel are in the report's `pixels`."""
    scale = max(1, IMAGE_MIN_SIDE // max(status.shape))
    pictures = {"tic": png.colorize(tic, scale), "missing": png.categorical(status, STATUS_COLOURS, scale),
                "ppm": png.diverging(ppm, 2 * limit, scale)}
    described = {}
    for name, rgb in pictures.items():
        png.write(out_dir / f"{name}.png", rgb)
        described[name] = {"path": str(out_dir / f"{name}.png"), "width": status.shape[1],
                           "height": status.shape[0], "scale": scale}
    described["missing"]["status"] = status.tolist()
    return described


def _dataset(dataset: dict) -> dict:
    keys = ("source", "mode", "spectrum_type", "polarity", "grid", "pixel_size_um",
            "mz_range", "reference_ions")
    return {**{key: dataset.get(key) for key in keys}, "centroided": dataset["centroided"] == "true"}


def _mean_spectrum(values: dict, spectra: int) -> dict:
    mean = values["mean_sum"] / max(spectra, 1)
    return {"mz": _rounded(values["mean_mz"], 5), "intensity": _rounded(mean),
            "top_peaks": qc_metrics.top_peaks(values["mean_mz"], mean)}


def _pixels(index: ibd.Index, values: dict) -> dict:
    """Per readable spectrum, in imzML order: x, y, TIC, peaks, noise and median ppm error."""
    read = np.isfinite(values["tic"])
    return {"x": index["x"][read].tolist(), "y": index["y"][read].tolist(), "tic": _rounded(values["tic"][read]),
            "peaks": values["peaks"][read].astype(int).tolist(), "noise": _rounded(values["noise"][read]),
            "ppm": _rounded(values["pixel_ppm"][read], 3)}


def _rounded(values: np.ndarray, digits: int = 6) -> list:
    """A JSON list: NaN as null, floats to `digits` significant digits."""
    return [None if not np.isfinite(v) else float(f"{v:.{digits}g}") for v in np.asarray(values, float)]


def _round(value, digits: int = 6):
    return None if value is None or not np.isfinite(value) else float(f"{value:.{digits}g}")


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else 0.0


def _version() -> str:
    try:
        return package_metadata.version("labcommons")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), qc_merge, argv)


if __name__ == "__main__":
    main()
