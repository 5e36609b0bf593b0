"""Index an imzML for QC: where each spectrum lies in the .ibd, what the header says, the shards.

    python -m workflow_templates.steps.qc_index --imzml IN.imzML --out-dir QC/index \
        --spectra-per-shard N --reference-ions default

Writes QC/index/index.npz (per spectrum: x, y, offsets and lengths of its arrays, whether its bytes
lie within the .ibd), QC/index/dataset.json (mode, spectrum type, polarity, pixel grid, m/z range,
the reference ions) and QC/index/shards.json (a JSON list of "start:stop" spectrum ranges, the
template's `shards` output parameter). The .ibd is read from beside the .imzML (the worker's
staged links pair files whatever their own names); only the first and last m/z of each
spectrum are read here.
"""
from __future__ import annotations

import argparse
from pathlib import Path


from ims.header import Header, HeaderError, read_header
from ims.reference_ions import defaults
from workflow_templates.steps import cli, ibd
from workflow_templates.steps.atomic import write_json

DEFAULT_IONS = "default"
MEAN_SPECTRUM_BINS = 20000   # processed data: the mean spectrum is binned on this many m/z bins


def parser() -> argparse.ArgumentParser:
    parser = cli.imzml_arguments(argparse.ArgumentParser(prog="qc_index", description=__doc__.split("\n")[0]),
                                 "directory for the index")
    parser.add_argument("--reference-ions", default=DEFAULT_IONS,
                        help="'default' (by polarity), or m/z values each optionally followed by a name, "
                             "separated by ';' (e.g. '760.5851 PC 34:1 [M+H]+; 782.5670')")
    return parser


def reference_ions(text: str, polarity: str | None) -> list[dict]:
    """The reference ions a parameter names: 'default' gives ims.reference_ions.defaults(polarity)."""
    if text.strip().lower() in ("", DEFAULT_IONS):
        return [{"name": ion.name, "mz": ion.mz} for ion in defaults(polarity or "")]
    return [_ion(entry.strip()) for entry in text.replace("\n", ";").split(";") if entry.strip()]


def _ion(entry: str) -> dict:
    number, _, name = entry.partition(" ")
    try:
        mz = float(number)
    except ValueError:
        mz = float("nan")
    if not 0 < mz < float("inf"):
        raise cli.StepError(f"--reference-ions: {number!r} is not an m/z value. Give each reference ion as "
                            "a positive number such as 760.5851, optionally followed by its name, and "
                            "separate the ions with ';'")
    return {"name": name.strip() or f"m/z {number}", "mz": mz}


def qc_index(imzml: Path, out_dir: Path, per_shard: int, ions_text: str) -> list[str]:
    """Write index.npz, dataset.json and shards.json; return the shard ranges."""
    ibd_path = imzml.with_suffix(".ibd")
    if not ibd_path.is_file():
        raise cli.StepError(f"--imzml: no .ibd file beside {imzml} (looked for {ibd_path.name})")
    read = _read(imzml)
    kind = {"mode": read.storage, "centroided": "true" if read.spectrum_type == "centroid" else "false"}
    index, header = ibd.from_header(read, ibd_path.stat().st_size), _header(read)
    ions = reference_ions(ions_text, header["polarity"])
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    index.save(out_dir / "index.npz")
    bounds = ibd.mz_bounds(index, ibd.open_ibd(ibd_path))
    shards = [f"{start}:{min(start + per_shard, len(index))}" for start in range(0, len(index), per_shard)]
    write_json(out_dir / "dataset.json", {
        "source": str(imzml), "ibd": str(ibd_path), "ibd_size": ibd_path.stat().st_size, **kind, **header,
        "spectra": len(index), "spectra_readable": int(index["readable"].sum()), "grid": _grid(index, header),
        "mz_range": list(bounds) if bounds else None, "reference_ions": ions,
        "mean_spectrum_bins": MEAN_SPECTRUM_BINS, "shards": shards})
    write_json(out_dir / "shards.json", shards)
    return shards


def _read(imzml: Path) -> Header:
    """The imzML's header and spectrum index (ims.header, as registration reads it); StepError when refused."""
    try:
        return read_header(imzml)
    except (HeaderError, OSError) as error:
        raise cli.StepError(f"--imzml: {imzml} cannot be read as imzML: {error}") from None


def _header(header: Header) -> dict:
    """What the imzML header says that QC reports: polarity, profile/centroid, declared grid, pixel size (µm)."""
    return {"polarity": header.polarity, "spectrum_type": header.spectrum_type,
            "declared_pixels": list(header.pixels or (None, None)),
            "pixel_size_um": list(header.pixel_size_um or (None, None))}


def _grid(index: ibd.Index, header: dict) -> dict:
    """The pixel grid: 1..the declared pixel counts when the header has them and they hold every
    spectrum, else the spectra's bounding box."""
    x, y = index["x"], index["y"]
    width, height = header["declared_pixels"]
    if width and height and x.min() >= 1 and y.min() >= 1 and x.max() <= width and y.max() <= height:
        return {"x": [1, int(width)], "y": [1, int(height)], "declared": True}
    return {"x": [int(x.min()), int(x.max())], "y": [int(y.min()), int(y.max())], "declared": False}


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), lambda args: qc_index(args.imzml, args.out_dir, args.spectra_per_shard,
                                           args.reference_ions), argv)


if __name__ == "__main__":
    main()
