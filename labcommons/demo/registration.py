"""The demo's broken pair: an imzML with another image's ibd, registered the way a technician's
upload is (staged, then the portal's registration commit), so the demo shows the refusal a real
lab would get rather than writing the pair into the store itself.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import fsspec

from labcommons.demo.entities import BrokenPair
from labcommons.demo.images import write_image
from metadata.client import MetadataClient


def register_broken_pair(client: MetadataClient, storage_root: Path, broken: BrokenPair) -> str:
    """Stage the mismatched pair and commit it through portal.registration; what happened, as a line."""
    from portal.objects import ObjectStore
    from portal.registration import dataset

    store = ObjectStore(fsspec.filesystem("file"), str(Path(storage_root).resolve()), "file")
    user = client.whoami().user
    with tempfile.TemporaryDirectory(prefix="demo-broken-pair-") as scratch:
        imzml = write_image(Path(scratch) / "imzml", broken.image)[0][0]["path"]
        ibd = write_image(Path(scratch) / "ibd", broken.other)[0][1]["path"]
        upload_ids = [_stage(store, path, user, broken.project_id) for path in (imzml, ibd)]
    what = f"the broken pair {broken.project_id}/{broken.image.name} (an imzML with another image's ibd)"
    try:
        dataset.register(client, store, user, broken.project_id, broken.values, upload_ids,
                         client.dictionary()["measurement"])
    except dataset.Refused as refused:
        return f"registration refused {what}: {refused}"
    return f"WARNING: registration accepted {what}: the portal does not check that an imzML and its ibd belong together"


def _stage(store, path: Path, user: str, project: str) -> str:
    """Stage one file as an upload to the portal would; its upload id."""
    from portal.registration import uploads

    with open(path, "rb") as stream:
        who = {"user": user, "project": project, "file_name": path.name}
        return uploads.stage(store, stream, path.stat().st_size, None, who).upload_id
