"""The demo commons: a realistic imaging-MS lab, with real imzML files, submitted over Thrift.

Deterministic: running it again writes the same nodes and files, so a re-run reports them
unchanged and restores any demo node a user edited (nodes users added are left alone).

Every measurement gets its imzML/ibd pair, written by a few processes at once. The nodes are
submitted while the service's triggers are paused, so registering 600 pairs does not start 600 QC
runs on a small machine; the triggers are then restored and replayed for `qc_at_start` only (the
first good image of each kind and the first of each flaw), whose verdicts the worker has ready
within minutes. Any other measurement's QC starts with `labcommons launch ims-qc <measurement>`.
The broken pair goes through the portal's registration, as a technician's upload would, and
its refusal is reported.
"""
from __future__ import annotations

import importlib
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from rich.progress import Progress

from labcommons.demo.accounts import ensure_demo_accounts
from labcommons.demo.entities import DemoCommons, ImagingSpec, demo_commons
from labcommons.demo.images import write_image
from labcommons.demo.registration import register_broken_pair
from metadata.client import MetadataClient

WRITERS = 4  # processes writing pairs; more than the cores, as part of the work is file I/O
REGISTRATION = "portal.registration.dataset"


def create_demo(client: MetadataClient, storage_root: Path, scale: float = 1.0, seed: int = 7,
                passwords_path: Path | None = None) -> str:
    """Write the demo's files under storage_root and submit its nodes; with passwords_path, also
    the demo accounts (ana analyst, tom technician, ada admin) with grants on the demo projects."""
    commons = demo_commons(seed=seed, scale=scale)
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        steps = len(commons.programs) + len(commons.project_nodes) + len(commons.projects) + len(commons.imaging)
        task = progress.add_task("creating the demo commons", total=steps)
        files = write_files(commons, Path(storage_root), lambda: progress.advance(task))
        with _triggers_paused(client):
            for project_id, entities in _batches(commons, files):
                result = client.submit(project_id, entities)
                for key in totals:
                    totals[key] += getattr(result, key)
                progress.advance(task)
    summary = (f"demo commons: {totals['created']} nodes created, {totals['updated']} updated, "
               f"{totals['unchanged']} unchanged; {sum(map(len, files.values()))} data files in {storage_root}")
    summary += "\n" + _start_qc(client, commons.qc_at_start)
    if commons.broken_pair is not None:
        summary += "\n" + register_broken_pair(client, Path(storage_root), commons.broken_pair)
    if passwords_path is not None:
        projects = [p["submitter_id"] for p in commons.project_nodes]
        new = ensure_demo_accounts(client, passwords_path, projects)
        summary += f"\ndemo accounts {', '.join(new) or 'kept'} (passwords in {passwords_path})"
    return summary


def _batches(commons: DemoCommons, files: dict[str, list[dict]]) -> list[tuple[str, list[dict]]]:
    """(project_id, entities) in dependency order: programs, projects, then each project's nodes and files."""
    batches = [(p["submitter_id"], [p]) for p in commons.programs]
    batches += [(p["submitter_id"], [p]) for p in commons.project_nodes]
    return batches + [(pid, entities + files.get(pid, [])) for pid, entities in commons.projects.items()]


def write_files(commons: DemoCommons, storage_root: Path, advance) -> dict[str, list[dict]]:
    """Write every measurement's pair (in parallel), align its node with the file's header;
    data_file entities per project."""
    measurements = {(pid, e["submitter_id"]): e for pid, entities in commons.projects.items()
                    for e in entities if e["type"] == "measurement"}
    files: dict[str, list[dict]] = {}
    workers = min(WRITERS, (os.cpu_count() or 1) * 2)
    with ProcessPoolExecutor(workers) as pool:
        jobs = [(storage_root / spec.project_id / spec.measurement, spec.image) for spec in commons.imaging]
        written = pool.map(write_image, *zip(*jobs), chunksize=8) if jobs else []
        # The workers are forked by now: import the portal's registration (Flask, Dash: seconds)
        # for the broken pair meanwhile, on a thread, as nothing forks after it.
        threading.Thread(target=importlib.import_module, args=(REGISTRATION,), daemon=True).start()
        for spec, (records, header) in zip(commons.imaging, written):
            measurements[spec.project_id, spec.measurement].update(header)
            files.setdefault(spec.project_id, []).extend(data_file_entity(r, spec.measurement) for r in records)
            advance()
    return files


@contextmanager
def _triggers_paused(client: MetadataClient):
    """Disable the enabled triggers for the block, then enable them again (even after an error)."""
    paused = [t.name for t in client.triggers() if t.enabled]
    for name in paused:
        client.set_trigger_enabled(name, False)
    try:
        yield paused
    finally:
        for name in paused:
            client.set_trigger_enabled(name, True)


def _start_qc(client: MetadataClient, chosen: list[ImagingSpec]) -> str:
    """Replay the triggers on the chosen measurements' imzML files: their QC starts now."""
    ids = [client.find(spec.project_id, f"{spec.measurement}.imzML")["id"] for spec in chosen]
    launched = client.fire_triggers(ids) if ids else []
    if not launched:
        return "QC not started: no enabled trigger launches a run on the demo's files (`labcommons triggers`)"
    flawed = [f"{s.measurement} ({s.image.flaw.replace('_', ' ')})" for s in chosen if s.image.flaw]
    return (f"QC started for {len(launched)} of the demo's measurements (a good image of each kind, and the flawed "
            f"{', '.join(flawed) or 'none'}); the others wait for `labcommons launch ims-qc <measurement>`")


def data_file_entity(meta: dict, measurement: str) -> dict:
    """A data_file node for a file written to the storage root, linked to its measurement."""
    return {"type": "data_file", "submitter_id": f"{measurement}.{meta['data_format']}",
            "file_name": meta["file_name"], "data_format": meta["data_format"],
            "file_size": meta["file_size"], "md5sum": meta["md5sum"], "sha256": meta["sha256"],
            "storage_url": Path(meta["path"]).resolve().as_uri(), "data_category": "raw",
            "measurements": {"submitter_id": measurement}}
