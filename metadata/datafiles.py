"""What readers of data_file records share, whatever layer they sit in (the portal's previews
and exports, the notebook helper): which files make an imaging dataset, and a manifest's columns.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath

# the columns of a manifest row (metadata/flattening.yaml's manifest.fields), also when there are none
MANIFEST_FIELDS = ("id", "file_name", "data_format", "file_size", "md5sum", "storage_url",
                   "project_id", "case", "sample", "measurement")


def imzml_pair(files: list[dict]) -> tuple[dict, dict] | None:
    """The first imzML data_file and its ibd (same name stem, else the only ibd); None without."""
    by_format = defaultdict(list)
    for file in files:
        by_format[file["properties"].get("data_format")].append(file)
    for image in by_format["imzML"]:
        stem = PurePosixPath(image["properties"].get("file_name", "")).stem
        same = [f for f in by_format["ibd"] if PurePosixPath(f["properties"].get("file_name", "")).stem == stem]
        pair = same or (by_format["ibd"] if len(by_format["ibd"]) == 1 else [])
        if pair:
            return image, pair[0]
    return None
