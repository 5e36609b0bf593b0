"""Helpers of the registration tests: a good form, the upload and JSON posts as the page's
script makes them (CSRF header), and what the staging area holds."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from tests.imzml_files import pair_bytes

# a real pair: registration checks that the ibd belongs to the imzML before it writes anything
with tempfile.TemporaryDirectory() as _directory:
    IMZML, IBD = pair_bytes(Path(_directory), width=4, height=3, points=400)


def values(place: dict, **changes) -> dict:
    good = {"submitter_id": "new-run-1", "experiment": place["experiment"], "sample": place["sample"],
            "instrument": "timsTOF fleX", "ionisation": "MALDI", "polarity": "positive", "pixel_size_um": "20"}
    return good | changes


def token(client) -> str:
    page = client.get("/account").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def send(client, project: str, name: str, body: bytes | None, headers: dict | None = None, **extra):
    headers = {"X-CSRFToken": token(client), "Content-Type": "application/octet-stream", **(headers or {})}
    if body is not None:
        extra["data"] = body
    return client.post("/register/uploads", query_string={"project": project, "file_name": name},
                       headers=headers, **extra)


def post(client, path: str, body: dict):
    return client.post(path, json=body, headers={"X-CSRFToken": token(client)})


def staging(server) -> list:
    root = server.settings.storage_root / ".staging"
    return sorted(p.name for p in root.rglob("*")) if root.exists() else []


def register_pair(client, place: dict, vals: dict):
    ids = [send(client, place["project"], name, body).get_json()["upload_id"]
           for name, body in (("run.imzML", IMZML), ("run.ibd", IBD))]
    return post(client, "/register/commit", {"project": place["project"], "values": vals, "uploads": ids})
