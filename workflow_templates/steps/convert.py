"""imzML (continuous or processed) -> Parquet shards of N spectra each, and their manifest.

    python -m workflow_templates.steps.convert --imzml IN.imzML --out-dir DIR --spectra-per-shard N

Writes DIR/shard-00000.parquet ..., DIR/shards.json (a JSON list of the shards' absolute paths,
the template's `shards` output parameter) and DIR/dataset.json (mode, centroided, spectra, shards, extent).
The .ibd file is read from beside the .imzML, as pyimzML does; the path is not resolved, so the
worker's staged links (input.imzML, input.ibd) pair files whatever their own names.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pyimzml.ImzMLParser import ImzMLParser

from workflow_templates.steps import cli
from workflow_templates.steps.shards import Spectra, write_json, write_shard


def parser() -> argparse.ArgumentParser:
    return cli.imzml_arguments(argparse.ArgumentParser(prog="convert", description=__doc__.split("\n")[0]),
                               "directory for shards and manifest")


def convert(imzml: Path, out_dir: Path, per_shard: int) -> list[Path]:
    """Write the shards, the manifest and dataset.json; return the shard paths."""
    ibd = imzml.with_suffix(".ibd")
    if not ibd.is_file():
        raise cli.StepError(f"--imzml: no .ibd file beside {imzml} (looked for {ibd.name})")
    out_dir = out_dir.resolve()
    for stale in out_dir.glob("shard-*.parquet"):  # left by an attempt with another shard size
        stale.unlink()
    with open_imzml(imzml) as source:
        kind = spectrum_kind(source)
        coords = np.asarray(source.coordinates, np.int32).reshape(-1, 3)
        paths = []
        for number, start in enumerate(range(0, len(coords), per_shard)):
            path = out_dir / f"shard-{number:05d}.parquet"
            write_shard(path, _batch(source, coords, start, per_shard, {"source": str(imzml), **kind}))
            paths.append(path)
    if not paths:
        raise cli.StepError(f"--imzml: {imzml} holds no spectra")
    write_json(out_dir / "shards.json", [str(path) for path in paths])
    write_json(out_dir / "dataset.json", _summary(imzml, kind, coords, paths, per_shard))
    return paths


def open_imzml(imzml: Path) -> ImzMLParser:
    """pyimzML's parser of an imzML; a file it cannot read raises StepError."""
    try:
        return ImzMLParser(str(imzml))
    except Exception as error:  # pyimzML raises whatever its XML parser or numpy raise
        raise cli.StepError(f"--imzml: {imzml} cannot be read as imzML ({error})") from None


def spectrum_kind(source: ImzMLParser) -> dict[str, str]:
    """{"mode": continuous|processed, "centroided": true|false} from the file's description."""
    described = source.metadata.file_description.param_by_name
    if "continuous" in described or "processed" in described:
        mode = "continuous" if "continuous" in described else "processed"
    else:  # no storage-mode term: continuous files point every spectrum at one m/z array
        mode = "continuous" if len(set(source.mzOffsets)) <= 1 else "processed"
    return {"mode": mode, "centroided": "true" if "centroid spectrum" in described else "false"}


def _batch(source: ImzMLParser, coords: np.ndarray, start: int, count: int,
           metadata: dict[str, str]) -> Spectra:
    index = np.arange(start, min(start + count, len(coords)), dtype=np.int64)
    spectra = [source.getspectrum(int(i)) for i in index]
    return Spectra(index, coords[index], [mz for mz, _ in spectra], [it for _, it in spectra], metadata)


def _summary(imzml: Path, kind: dict, coords: np.ndarray, paths: list[Path], per_shard: int) -> dict:
    return {
        "source": str(imzml), "mode": kind["mode"], "centroided": kind["centroided"] == "true",
        "spectra": int(len(coords)), "shards": len(paths), "spectra_per_shard": per_shard,
        "x_range": [int(coords[:, 0].min()), int(coords[:, 0].max())],
        "y_range": [int(coords[:, 1].min()), int(coords[:, 1].max())],
    }


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), lambda args: convert(args.imzml, args.out_dir, args.spectra_per_shard), argv)


if __name__ == "__main__":
    main()
