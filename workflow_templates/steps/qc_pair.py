"""Check that an imzML and the ibd beside it belong together, for the QC report.

    python -m workflow_templates.steps.qc_pair --imzml IN.imzML --out-dir QC/pair

Writes QC/pair/pair.json: `checked` (what was compared: UUID, the checksum the imzML records,
sizes) and `problems` (one sentence per difference; none when the pair belongs together), as
ims.pair compares them at registration. A pair registered before that check, or an ibd changed
since, is caught here. Problems are a result, not an error: the program exits 0 and qc_merge
fails the report's `pair_integrity` check. It runs beside qc_index and the shards, so reading the
whole ibd for its checksum adds no time to the run when a core is free.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ims.pair import check_pair
from workflow_templates.steps import cli
from workflow_templates.steps.atomic import write_json


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qc_pair", description=__doc__.split("\n")[0])
    parser.add_argument("--imzml", type=cli.staged_file, required=True,
                        help="the .imzML file (or the worker's link to it); its .ibd must lie beside it")
    parser.add_argument("--out-dir", type=Path, required=True, help="directory for pair.json")
    return parser


def qc_pair(imzml: Path, out_dir: Path) -> dict:
    """Compare the pair and write pair.json; return what it holds."""
    ibd = imzml.with_suffix(".ibd")
    if not ibd.is_file():
        raise cli.StepError(f"--imzml: no .ibd file beside {imzml} (looked for {ibd.name})")
    report = check_pair(imzml, ibd)
    result = {"checked": report.checked, "problems": report.problems, "ibd_bytes": report.ibd_bytes}
    write_json(out_dir.resolve() / "pair.json", result)
    return result


def main(argv: list[str] | None = None) -> None:
    cli.run(parser(), lambda args: qc_pair(args.imzml, args.out_dir), argv)


if __name__ == "__main__":
    main()
