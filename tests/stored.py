"""Where tests' data files are, as the service checks it.

- folder_url(settings, project): the file:// URL of a project's folder in the storage root; a
  data_file of that project has a storage_url under it (the service refuses any other).
- plant(server, project, entities): nodes written straight to the server's store, past the
  service's storage_url check, as a commons made before that check (or a tampered store) holds
  them; so that tests can show every reader refusing such a node on its own.
- with_spectra(admin, project=""): a measurement node with an imzML file (and its ibd): one
  without has nothing to open in Jupyter.
"""
from __future__ import annotations

import json
from pathlib import Path

from ground.storage import Layout, project_dir
from metadata.dictionary import Dictionary
from metadata.entities import parse
from metadata.submission import Planner


class Anywhere(Layout):
    """A layout that lets any storage_url through (what the service did before it checked)."""

    def problem(self, storage_url: str, project_id: str) -> None:
        return None


def folder_url(settings, project: str) -> str:
    return project_dir(Path(settings.storage_root).resolve(), project).as_uri()


def plant(server, project: str, entities: list[dict]) -> None:
    dictionary = Dictionary.load(server.settings.dictionary)
    planned = Planner(dictionary, server.store, project, "planted", Anywhere(Path("/"))).plan(
        parse(json.dumps(entities), "json", dictionary))
    server.store.apply(planned.writes, planned.parent_ids)


def with_spectra(admin, project: str = "") -> dict:
    """A measurement (its node) with an imzML file, in the project if one is named."""
    image = next(f for f in admin.nodes("data_file", project) if f["properties"]["data_format"] == "imzML")
    return admin.get(next(link["target_id"] for link in image["links"] if link["name"] == "measurements"))
