"""The demo commons: a realistic imaging-MS lab, with real imzML files, submitted over Thrift.

Deterministic: running it again writes the same nodes and files, so a re-run reports them
unchanged and restores any demo node a user edited (nodes users added are left alone).
"""
from __future__ import annotations

import sys
from pathlib import Path

from rich.progress import Progress

from labcommons.demo.accounts import ensure_demo_accounts
from labcommons.demo.entities import DemoCommons, ImagingSpec, demo_commons
from labcommons.demo.imzml import write_imzml_pair
from metadata.client import MetadataClient


def create_demo(client: MetadataClient, storage_root: Path, scale: float = 1.0, seed: int = 7,
                passwords_path: Path | None = None) -> str:
    """Write the demo's files under storage_root and submit its nodes; with passwords_path, also
    the demo accounts (ana analyst, tom technician, ada admin) with grants on the demo projects."""
    commons = demo_commons(seed=seed, scale=scale)
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        steps = len(commons.programs) + len(commons.project_nodes) + len(commons.projects) + len(commons.imaging)
        task = progress.add_task("creating the demo commons", total=steps)
        files = _write_files(commons.imaging, Path(storage_root), lambda: progress.advance(task))
        for project_id, entities in _batches(commons, files):
            result = client.submit(project_id, entities)
            for key in totals:
                totals[key] += getattr(result, key)
            progress.advance(task)
    summary = (f"demo commons: {totals['created']} nodes created, {totals['updated']} updated, "
               f"{totals['unchanged']} unchanged; {sum(map(len, files.values()))} data files in {storage_root}")
    if passwords_path is not None:
        projects = [p["submitter_id"] for p in commons.project_nodes]
        new = ensure_demo_accounts(client, passwords_path, projects)
        summary += f"; demo accounts {', '.join(new) or 'kept'} (passwords in {passwords_path})"
    return summary


def _batches(commons: DemoCommons, files: dict[str, list[dict]]) -> list[tuple[str, list[dict]]]:
    """(project_id, entities) in dependency order: programs, projects, then each project's nodes and files."""
    batches = [(p["submitter_id"], [p]) for p in commons.programs]
    batches += [(p["submitter_id"], [p]) for p in commons.project_nodes]
    return batches + [(pid, entities + files.get(pid, [])) for pid, entities in commons.projects.items()]


def _write_files(specs: list[ImagingSpec], storage_root: Path, advance) -> dict[str, list[dict]]:
    """Write each imaging spec's imzML + ibd pair; data_file entities per project."""
    files: dict[str, list[dict]] = {}
    for spec in specs:
        directory = storage_root / spec.project_id / spec.measurement
        for meta in write_imzml_pair(directory, spec.measurement, spec.width, spec.height, spec.seed, spec.mode):
            files.setdefault(spec.project_id, []).append(data_file_entity(meta, spec.measurement))
        advance()
    return files


def data_file_entity(meta: dict, measurement: str) -> dict:
    """A data_file node for a file written to the storage root, linked to its measurement."""
    return {"type": "data_file", "submitter_id": f"{measurement}.{meta['data_format']}",
            "file_name": meta["file_name"], "data_format": meta["data_format"],
            "file_size": meta["file_size"], "md5sum": meta["md5sum"], "sha256": meta["sha256"],
            "storage_url": Path(meta["path"]).resolve().as_uri(), "data_category": "raw",
            "measurements": {"submitter_id": measurement}}
