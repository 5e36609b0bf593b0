"""The service calls behind the experiments browser and the measurement page.

Every call goes to the metadata service as the signed-in user (portal.client.get_client), so
the service decides what the user may read: a project without a grant answers Forbidden, which
the pages show. Files are read only for a measurement the service has just returned to the user.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from flask import current_app, g
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.datafiles import imzml_pair
from metadata.idl import metadata_thrift as T
from portal.client import get_client
from portal.explorer import queries
from portal.previews import cache, imzml
from ground.storage import NotReadable, resolve
from ims.images import Window

PROJECT_COUNTS = ("case", "sample", "experiment", "measurement", "data_file")


class WrongType(Exception):
    """A URL names a node of another type than its page shows (a sample on /measurement/...)."""


MAX_QC_RUNS = 10   # the measurement page's QC history: the newest runs with an outcome
FAILURES = (*ERRORS, TTransportException, OSError, NotReadable, WrongType)


def explain(error: Exception) -> str:
    """A failure as a sentence for people (the service's own message where it refused)."""
    if isinstance(error, (NotReadable, WrongType)):
        return str(error)
    return queries.explain(error)[0]


def dictionary() -> dict:
    """The data dictionary by type name, asked once per request."""
    if "dictionary" not in g:
        g.dictionary = get_client().dictionary()
    return g.dictionary


def nodes(type_name: str, project_id: str = "") -> list[dict]:
    """Every node of a type (in a project) the user may read, by submitter_id."""
    return sorted(get_client().nodes(type_name, project_id), key=lambda n: n["submitter_id"])


def node(project_id: str, submitter_id: str, type_name: str) -> dict:
    """A node by project and submitter_id; WrongType when it is not a `type_name`."""
    found = get_client().find(project_id, submitter_id)
    if found["type"] != type_name:
        raise WrongType(f"{submitter_id!r} in project {project_id!r} is {_a(found['type'])}, not {_a(type_name)}")
    return found


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def project(project_id: str) -> dict:
    """A project node (projects are named by their own id)."""
    return node(project_id, project_id, "project")


def count(type_name: str, project_id: str) -> int:
    """How many nodes of a type the project holds (the service's total; no rows fetched)."""
    return get_client().page(type_name, project_id, limit=1).total


def counts(project_id: str, types=PROJECT_COUNTS) -> dict[str, int]:
    return {type_name: count(type_name, project_id) for type_name in types}


def readable_counts(project_id: str, types: tuple[str, ...]) -> dict[str, int] | str:
    """The project's counts, or the service's message when the user may not read it."""
    try:
        return counts(project_id, types)
    except T.Forbidden as refused:
        return refused.message


def by_parent(type_name: str, project_id: str, link: str) -> dict[str, list[dict]]:
    """The project's nodes of a type grouped by the parent their `link` names (one paged listing,
    rather than one edges call per parent)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for child in nodes(type_name, project_id):
        for target in targets(child, link):
            groups[target["target_id"]].append(child)
    return groups


def targets(child: dict, link: str) -> list[dict]:
    return [each for each in child["links"] if each["name"] == link]


def files_of(measurement: dict) -> list[dict]:
    """The measurement's data_file children (from its edges), by file name."""
    ids = [edge.child_id for edge in get_client().edges(measurement["id"])
           if edge.parent_id == measurement["id"] and edge.child_type == "data_file"]
    return sorted((get_client().get(i) for i in ids), key=lambda f: f["properties"].get("file_name", ""))


def qc_runs(files: list[dict], limit: int = MAX_QC_RUNS) -> list:
    """The runs that used these files and have a QC outcome, newest first (at most limit)."""
    client = get_client()
    ids = {edge.child_id for f in files for edge in client.edges(f["id"])
           if edge.parent_id == f["id"] and edge.child_type == "workflow_run"}
    runs = [run for run in (client.run(i) for i in sorted(ids)) if run.outcome]
    return sorted(runs, key=lambda r: (r.finished_at or r.created_at, r.id), reverse=True)[:limit]


def preview(project_id: str, submitter_id: str) -> tuple[imzml.Preview, Path]:
    """The cached previews of a measurement's imzML file and the path of its ibd, asked afresh
    from the service as the user each time (so only files the user may read are read)."""
    found, paths, _ = _previewed(project_id, submitter_id)
    return found, paths[1]


def ion_image(project_id: str, submitter_id: str, query: Window) -> tuple[imzml.Preview, np.ndarray]:
    """The measurement's Preview and its cached ion image for the query, asked afresh from the
    service as the user (as `preview`), keyed by both files' recorded checksums."""
    found, paths, pair = _previewed(project_id, submitter_id)
    sums = [cache.recorded_checksum(f["properties"]) for f in pair]
    sums[0] = sums[0] or f"sha256:{_readable(pair[0], cache.file_sha256, paths[0])}"
    settings = current_app.config["SETTINGS"]
    return found, _readable(pair[1], cache.ion_image, found, paths, tuple(sums), query,
                            cache.cache_dir(settings.data_dir), settings.preview_cache_bytes)


def _previewed(project_id: str, submitter_id: str) -> tuple[imzml.Preview, list[Path], tuple[dict, dict]]:
    """(the cached Preview, the checked paths, the data_file nodes) of a measurement's imzML/ibd pair."""
    measurement = node(project_id, submitter_id, "measurement")
    pair = imzml_pair(files_of(measurement))
    if pair is None:
        raise NotReadable("This measurement has no imzML file with its ibd, so there is nothing to preview.")
    settings = current_app.config["SETTINGS"]
    image, paths = pair[0], [resolve(f["properties"].get("storage_url", ""), settings.storage_root, f["project_id"])
                             for f in pair]
    found = _readable(image, cache.preview, *paths, image["properties"].get("sha256", ""),
                      cache.cache_dir(settings.data_dir), settings.preview_cache_bytes)
    return found, paths, pair


def _readable(file: dict, read, *args):
    """read(*args); an OSError (the storage root's files, not the service) said as NotReadable."""
    try:
        return read(*args)
    except OSError as error:
        raise NotReadable(f"{file['properties'].get('file_name')} cannot be read: {error.strerror}") from None


def pixel_spectrum(project_id: str, submitter_id: str, x: int | None = None, y: int | None = None):
    """(preview, x, y, m/z, intensity) at imzML pixel (x, y), by default the brightest pixel."""
    result, ibd = preview(project_id, submitter_id)
    if x is None or y is None:
        x, y = result.brightest()
    number = result.spectrum_at(x, y)
    if number is None:
        raise NotReadable(f"Pixel ({x}, {y}) has no spectrum.")
    try:
        return (result, x, y, *imzml.spectrum(result, ibd, number))
    except OSError as error:
        raise NotReadable(f"{ibd.name} cannot be read: {error.strerror}") from None
