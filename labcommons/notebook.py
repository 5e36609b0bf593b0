"""The notebook helper: `lc = labcommons.connect()`, then datasets, cohorts and parameter sets.

A thin layer over metadata.client.MetadataClient (every call goes to the service as the
notebook's user); the client's own methods stay reachable on `lc` (`lc.get(id)`, `lc.runs()`)
and as `lc.client`. Spectra are read with pyimzML from the storage root, file:// URLs only, each
checked to lie inside the root (portal.storage.resolve, the portal's own check).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

RAW_LINK = "measurements"   # data_file -> measurement


class ParameterError(ValueError):
    """Parameters the template refuses: `problems` maps each parameter to what is wrong with it
    (the message names the values it allows)."""

    def __init__(self, message: str, problems: dict[str, str]):
        super().__init__(message)
        self.problems = problems


class DatasetError(RuntimeError):
    """A dataset whose spectra cannot be read here; the message says why."""


class Commons:
    """What `labcommons.connect()` returns: the helper, delegating anything else to the client."""

    def __init__(self, client: MetadataClient, storage_root: Path, source: str = ""):
        self.client, self.storage_root, self.source = client, Path(storage_root), source

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "client":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.client, name)

    def __enter__(self) -> "Commons":
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def dataset(self, dataset_id: str) -> "Dataset":
        """A measurement or a data file, by id."""
        node = self.client.get(dataset_id)
        if node["type"] not in ("measurement", "data_file"):
            raise DatasetError(f"{dataset_id} is a {node['type']}, not a measurement or a data file")
        return Dataset(self, node)

    def cohort(self, name: str) -> "Cohort":
        """A saved cohort by name (your own before one shared with a project)."""
        found = [c for c in self.client.cohorts() if c.name == name]
        if not found:
            names = sorted({c.name for c in self.client.cohorts()})
            raise LookupError(f"no cohort named {name!r}; yours and those shared with you: {', '.join(names) or 'none'}")
        return Cohort(self, sorted(found, key=lambda c: c.shared)[0])

    def cohort_by_id(self, cohort_id: str) -> "Cohort":
        """A saved cohort by its id, which (unlike a name) names one cohort; the service's
        NotFound or Forbidden when there is none or it is not shared with you."""
        return Cohort(self, self.client.cohort(cohort_id))

    def cohort_from_filter(self, kind: str, filter: dict | None) -> "Cohort":
        """An unsaved cohort: the files behind a filter over `kind` documents (an explorer view)."""
        import json
        return Cohort(self, T.Cohort(id="", name="", kind=kind, filter_json=json.dumps(filter) if filter else ""))

    def save_parameter_set(self, template: str, name: str, params: dict, dataset: str = "", notes: str = "",
                           project: str = "", source: str | None = None) -> T.ParameterSetRevision:
        """Save params as the newest revision of `name` (a new revision only when they changed);
        ParameterError names each parameter the template refuses and what it allows."""
        try:
            saved = self.client.save_parameter_set(template, name, params, project_id=project, notes=notes,
                                                   source=self.source if source is None else source,
                                                   dataset_id=dataset)
        except T.ValidationError as error:
            problems = {i.field.removeprefix("parameters."): i.message for i in error.issues or []
                        if i.field.startswith("parameters.")}
            raise (ParameterError(error.message, problems) if problems else ValueError(error.message)) from None
        return saved.revision

    def parameter_sets(self, template: str = "", project: str = "") -> list[T.ParameterSet]:
        return self.client.parameter_sets(project, template)


@dataclass
class Spectra:
    """Spectra read from an imzML file: one (m/z, intensity) pair of arrays per spectrum."""
    coordinates: list[tuple[int, int, int]]
    mz: list
    intensity: list

    def __len__(self) -> int:
        return len(self.mz)

    def to_dataframe(self):
        """One row per spectrum: x, y, z, mz (array), intensity (array)."""
        import pandas as pd
        return pd.DataFrame({"x": [c[0] for c in self.coordinates], "y": [c[1] for c in self.coordinates],
                             "z": [c[2] for c in self.coordinates], "mz": self.mz, "intensity": self.intensity})


class Dataset:
    """A measurement (its raw imzML and ibd) or one data file, as the service returned it."""

    def __init__(self, commons: Commons, node: dict):
        self._commons, self.node = commons, node

    @property
    def id(self) -> str:
        return self.node["id"]

    @property
    def properties(self) -> dict:
        return self.node["properties"]

    @property
    def files(self) -> list[dict]:
        """The measurement's data files (a data file: itself and the other files of its measurement)."""
        client = self._commons.client
        measurement = self._measurement_id()
        if measurement is None:
            return [self.node]
        ids = [e.child_id for e in client.edges(measurement) if e.parent_id == measurement
               and e.child_type == "data_file" and e.link_name == RAW_LINK]
        return sorted((client.get(i) for i in ids), key=lambda f: f["properties"].get("file_name", ""))

    def spectra(self, limit: int = 10, start: int = 0) -> Spectra:
        """Spectra start .. start+limit-1 (in the imzML's order) as m/z and intensity arrays."""
        if limit < 1 or start < 0:
            raise ValueError(f"give a limit of 1 or more and a start of 0 or more, not limit={limit}, start={start}")
        from pyimzml.ImzMLParser import ImzMLParser

        from portal.storage import open_checked
        imzml, ibd = self._paths()
        with open_checked(imzml) as xml, open_checked(ibd) as binary:
            parser = ImzMLParser(xml, ibd_file=binary)
            chosen = range(start, min(start + limit, len(parser.coordinates)))
            pairs = [parser.getspectrum(i) for i in chosen]
            coordinates = [tuple(int(v) for v in parser.coordinates[i]) for i in chosen]
        return Spectra(coordinates, [p[0] for p in pairs], [p[1] for p in pairs])

    def _measurement_id(self) -> str | None:
        if self.node["type"] == "measurement":
            return self.id
        links = [link["target_id"] for link in self.node["links"] if link["name"] == RAW_LINK]
        return links[0] if links else None

    def _paths(self) -> tuple[Path, Path]:
        """The checked paths of the imzML file and its ibd, inside the storage root."""
        from portal.browse import imzml_pair
        from portal.storage import NotReadable, resolve

        files = self.files
        if self.node["type"] == "data_file" and self.properties.get("data_format") == "imzML":
            files = [self.node] + [f for f in files if f["properties"].get("data_format") == "ibd"]
        pair = imzml_pair(files)
        if pair is None:
            raise DatasetError(f"{self.node['submitter_id']} has no imzML file with its ibd beside it")
        try:
            return tuple(resolve(f["properties"].get("storage_url", ""), self._commons.storage_root) for f in pair)
        except NotReadable as error:
            raise DatasetError(str(error)) from None


class Cohort:
    """A saved cohort: its filter over one kind of document."""

    def __init__(self, commons: Commons, cohort: T.Cohort):
        self._commons, self.cohort = commons, cohort

    @property
    def name(self) -> str:
        return self.cohort.name

    def manifest(self):
        """The cohort's files as a pandas DataFrame, one row per file (the service's manifest)."""
        import pandas as pd

        from portal.exports import MANIFEST_FIELDS
        rows = list(self._commons.client.manifest(self.cohort.kind, self.cohort.filter_json))
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=MANIFEST_FIELDS)  # columns even when empty


def notebook_source() -> str:
    """The running notebook's path, which Jupyter Server gives its kernels as JPY_SESSION_NAME."""
    return os.environ.get("JPY_SESSION_NAME", "")
