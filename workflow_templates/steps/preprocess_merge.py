"""Collect the processed shards: their manifest, a summary, and optionally one imzML file.

    python -m workflow_templates.steps.preprocess_merge --manifest CONVERT/shards.json \
        --shards-dir PRE/shards --out-dir PRE --format parquet|imzml

Writes PRE/shards.json (the processed shards' paths, in the order of the input manifest, the
template's `manifest` output parameter), PRE/summary.json and, with --format imzml,
PRE/processed.imzML and PRE/processed.ibd (processed mode; centroid spectra when picked).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from pyimzml.ImzMLWriter import ImzMLWriter

from workflow_templates.steps import cli
from workflow_templates.steps.shards import per_shard, read_shard, write_json

FORMATS = ("parquet", "imzml")
IMZML_NAME = "processed"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="preprocess_merge", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=cli.existing_file, required=True,
                        help="the shard manifest written by convert (shards.json)")
    parser.add_argument("--shards-dir", type=cli.existing_dir, required=True,
                        help="directory of the preprocess outputs")
    parser.add_argument("--out-dir", type=Path, required=True, help="directory for the results")
    parser.add_argument("--format", choices=FORMATS, required=True, help="parquet or imzml")
    return parser


def processed_shards(manifest: Path, shards_dir: Path) -> list[Path]:
    """The processed shard for every input shard, in manifest order; one missing raises StepError."""
    return per_shard(manifest, shards_dir, lambda shard: shard.name, "--shards-dir", "processed shard")


def write_imzml(paths: list[Path], base: Path) -> tuple[Path, Path, int]:
    """Processed spectra as one processed-mode imzML/ibd pair at base(.imzML/.ibd).

    imzML cannot hold an empty spectrum, so pixels left with no points are skipped and counted.
    Both files are written under a `-part` name and renamed together when complete.
    """
    spec_type = "centroid" if read_shard(paths[0], "--shards-dir").metadata.get("centroided") == "true" else "profile"
    part = base.with_name(base.name + "-part")  # pyimzML drops any suffix of its base
    skipped = 0
    base.parent.mkdir(parents=True, exist_ok=True)
    with ImzMLWriter(str(part), mode="processed", spec_type=spec_type) as writer:
        for path in paths:
            spectra = read_shard(path, "--shards-dir")
            for mz, intensity, xyz in zip(spectra.mz, spectra.intensity, spectra.coords):
                if len(mz) == 0:
                    skipped += 1
                    continue
                writer.addSpectrum(mz, intensity, tuple(int(v) for v in xyz))
    for suffix in (".ibd", ".imzML"):
        os.replace(f"{part}{suffix}", base.with_suffix(suffix))
    return base.with_suffix(".imzML"), base.with_suffix(".ibd"), skipped


def merge(args: argparse.Namespace) -> dict:
    """Write the manifest, the summary and the optional imzML; return the summary."""
    out_dir = args.out_dir.resolve()
    paths = processed_shards(args.manifest, args.shards_dir)
    shards = [read_shard(path, "--shards-dir") for path in paths]
    summary = {"format": args.format, "shards": len(paths), "spectra": sum(len(s) for s in shards),
               "points": int(sum(len(mz) for s in shards for mz in s.mz)),
               "processing": shards[0].metadata.get("processing", ""),
               "centroided": shards[0].metadata.get("centroided") == "true"}
    if args.format == "imzml":
        imzml, ibd, skipped = write_imzml(paths, out_dir / IMZML_NAME)
        summary.update(imzml=str(imzml), ibd=str(ibd), empty_spectra_skipped=skipped)
    write_json(out_dir / "shards.json", [str(path) for path in paths])
    write_json(out_dir / "summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), merge, argv)


if __name__ == "__main__":
    main()
