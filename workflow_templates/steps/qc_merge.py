"""Merge per-shard QC metrics into a report: JSON metrics, a TIC image, pass or fail.

    python -m workflow_templates.steps.qc_merge --manifest CONVERT/shards.json --metrics-dir QC/shards \
        --out-dir QC --min-spectra 1 --min-median-tic 0 --min-mean-peaks 1

Writes QC/report.json, QC/tic.png and QC/passed ("true" or "false", the template's `passed`
output parameter). A failed check is a result, not an error: the program still exits 0.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from workflow_templates.steps import cli, png
from workflow_templates.steps.shards import per_shard, write_json, write_text

PER_PIXEL = ("index", "x", "y", "tic", "median_intensity", "noise", "peaks")
IMAGE_MIN_SIDE = 256  # pixels; small images are scaled up by an integer factor to about this


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qc_merge", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=cli.existing_file, required=True,
                        help="the shard manifest written by convert (shards.json)")
    parser.add_argument("--metrics-dir", type=cli.existing_dir, required=True,
                        help="directory of the qc_shard outputs")
    parser.add_argument("--out-dir", type=Path, required=True, help="directory for the report")
    parser.add_argument("--min-spectra", type=cli.positive_int, required=True,
                        help="fewest spectra a dataset must hold to pass")
    parser.add_argument("--min-median-tic", type=cli.non_negative_float, required=True,
                        help="lowest median TIC per spectrum that passes")
    parser.add_argument("--min-mean-peaks", type=cli.non_negative_float, required=True,
                        help="lowest mean number of picked peaks per spectrum that passes")
    return parser


def load_metrics(manifest: Path, metrics_dir: Path) -> list[dict]:
    """Each shard's metrics, in manifest order; a shard without metrics raises StepError."""
    paths = per_shard(manifest, metrics_dir, lambda shard: f"{shard.stem}.json", "--metrics-dir", "metrics")
    return [_read_metrics(path) for path in paths]


def _read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text())
        if set(metrics["pixels"]) >= set(PER_PIXEL):
            return metrics
    except (ValueError, KeyError, TypeError):
        pass
    raise cli.StepError(f"--metrics-dir: {path.name} is not a qc_shard metrics file")


def merged(shards: list[dict]) -> tuple[dict, dict]:
    """(dataset metrics, per-pixel arrays) over all shards."""
    pixels = {key: np.concatenate([np.asarray(s["pixels"][key], float) for s in shards])
              for key in PER_PIXEL}
    ranges = [(s["mz_min"], s["mz_max"]) for s in shards if s["mz_min"] is not None]
    metrics = {
        "spectra": int(sum(s["spectra"] for s in shards)), "shards": len(shards),
        "tic_total": float(sum(s["tic_sum"] for s in shards)),
        "tic_median": _median(pixels["tic"]),
        "mz_min": min(low for low, _ in ranges) if ranges else None,
        "mz_max": max(high for _, high in ranges) if ranges else None,
        "median_intensity": _median(pixels["median_intensity"]),
        "noise_level": _median(pixels["noise"]),
        "peaks_total": int(sum(s["peaks_sum"] for s in shards)),
        "peaks_median": _median(pixels["peaks"]),
        "peaks_mean": float(pixels["peaks"].mean()) if len(pixels["peaks"]) else 0.0,
        "snr": shards[0]["snr"] if shards else None,
    }
    return metrics, pixels


def checks(metrics: dict, min_spectra: int, min_median_tic: float, min_mean_peaks: float) -> list[dict]:
    """One entry per threshold: the metric, its value, the threshold and whether it passed."""
    rules = (("spectra", min_spectra), ("tic_median", min_median_tic),
             ("peaks_mean", min_mean_peaks))
    return [{"metric": name, "value": metrics[name], "minimum": minimum,
             "passed": bool(metrics[name] >= minimum)} for name, minimum in rules]


def tic_image(pixels: dict) -> np.ndarray:
    """TIC per pixel on the imzML grid (rows y, columns x); pixels without a spectrum NaN."""
    x, y = pixels["x"].astype(int), pixels["y"].astype(int)
    image = np.full((y.max() - y.min() + 1, x.max() - x.min() + 1), np.nan)
    image[y - y.min(), x - x.min()] = pixels["tic"]
    return image


def qc_merge(args: argparse.Namespace) -> dict:
    """Write report.json, tic.png and passed under args.out_dir; return the report."""
    shards = load_metrics(args.manifest, args.metrics_dir)
    metrics, pixels = merged(shards)
    results = checks(metrics, args.min_spectra, args.min_median_tic, args.min_mean_peaks)
    out_dir = args.out_dir.resolve()
    image = tic_image(pixels)
    scale = max(1, IMAGE_MIN_SIDE // max(image.shape))
    out_dir.mkdir(parents=True, exist_ok=True)
    png.write(out_dir / "tic.png", png.colorize(image, scale))
    passed = all(check["passed"] for check in results)
    report = {"passed": passed, "metrics": metrics, "checks": results,
              "shards": [{key: s[key] for key in s if key != "pixels"} for s in shards],
              "tic_image": {"path": str(out_dir / "tic.png"), "width": image.shape[1],
                            "height": image.shape[0], "scale": scale}}
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "passed", "true" if passed else "false")
    return report


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else 0.0


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), qc_merge, argv)


if __name__ == "__main__":
    main()
