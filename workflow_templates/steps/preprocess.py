"""Preprocess one shard with pyOpenMS: smoothing, baseline removal, peak picking.

    python -m workflow_templates.steps.preprocess --shard CONVERT/shard-00000.parquet \
        --out-dir PRE/shards --smoothing gaussian --smoothing-window "10 ppm" \
        --baseline tophat --baseline-window 10 --peak-picking true --snr 3

Writes PRE/shards/<shard name> (same name as the input): the same pixels with processed spectra,
in that order: smoothed, baseline removed, then centroided if peak picking is on. The shard's
metadata records the processing. Centroided spectra are copied as they are: smoothing, baseline
removal and peak picking apply to profile spectra (PeakPickerHiRes expects profile data), and the
metadata says they were skipped.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from workflow_templates.steps import cli, processing
from workflow_templates.steps.shards import Spectra, read_shard, write_shard

CENTROIDED = "none: centroided input (smoothing, baseline removal and peak picking apply to profile spectra)"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="preprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--shard", type=cli.existing_file, required=True, help="a Parquet shard")
    parser.add_argument("--out-dir", type=Path, required=True, help="directory for the processed shard")
    parser.add_argument("--smoothing", choices=processing.SMOOTHING, required=True)
    parser.add_argument("--smoothing-window", type=_width, required=True,
                        help="Gaussian width or Savitzky-Golay frame, e.g. '10 ppm' or '0.02 m/z'")
    parser.add_argument("--baseline", choices=processing.BASELINE, required=True)
    parser.add_argument("--baseline-window", type=cli.positive_float, required=True,
                        help="structuring element of the top-hat filter, in m/z")
    parser.add_argument("--peak-picking", type=cli.boolean, required=True, help="true or false")
    parser.add_argument("--snr", type=cli.non_negative_float, required=True,
                        help="signal-to-noise ratio a picked peak must reach")
    return parser


def _width(text: str) -> processing.Width:
    try:
        return processing.width(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def preprocess(spectra: Spectra, args: argparse.Namespace) -> Spectra:
    """The processed spectra of one batch, as the arguments say; centroided ones as they are."""
    if spectra.metadata.get("centroided") == "true":
        return spectra.with_peaks(spectra.mz, spectra.intensity, centroided="true", processing=CENTROIDED)
    mzs, intensities = [], []
    for mz, intensity in zip(spectra.mz, spectra.intensity):
        intensity = processing.smooth(mz, intensity, args.smoothing, args.smoothing_window)
        intensity = processing.remove_baseline(mz, intensity, args.baseline, args.baseline_window)
        if args.peak_picking:
            mz, intensity = processing.pick_peaks(mz, intensity, args.snr)
        mzs.append(mz)
        intensities.append(intensity)
    return spectra.with_peaks(mzs, intensities, centroided=str(args.peak_picking).lower(),
                              processing=_processing(args))


def _processing(args: argparse.Namespace) -> str:
    steps = [f"smoothing={args.smoothing}:{args.smoothing_window}",
             f"baseline={args.baseline}:{args.baseline_window}"]
    if args.peak_picking:
        steps.append(f"peak-picking=PeakPickerHiRes:snr={args.snr}")
    return ";".join(steps)


def run(args: argparse.Namespace) -> Path:
    """Process args.shard into args.out_dir under the same file name; return its path."""
    spectra = read_shard(args.shard)
    path = args.out_dir.resolve() / args.shard.name
    write_shard(path, preprocess(spectra, args))
    return path


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), run, argv)


if __name__ == "__main__":
    main()
