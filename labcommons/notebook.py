"""The notebook helper: `lc = labcommons.connect()`, then datasets, cohorts and parameter sets.

A thin layer over metadata.client.MetadataClient (every call goes to the service as the
notebook's user); the client's own methods stay reachable on `lc` (`lc.get(id)`, `lc.runs()`)
and as `lc.client`. Spectra are read with pyimzML from the storage root, file:// URLs only, each
checked to lie in its project's folder, links resolved first (ground.storage.resolve, the
portal's own check), and opened without following a link (ground.storage.open_checked).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from metadata.auth import Identity
from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

RAW_LINK = "measurements"   # data_file -> measurement
TOKEN_KEY = "labcommons_token"  # the token's key in the hub's auth state (what /oauth/userinfo answers)


class ParameterError(ValueError):
    """Parameters the template refuses: `problems` maps each parameter to what is wrong with it
    (the message names the values it allows)."""

    def __init__(self, message: str, problems: dict[str, str]):
        super().__init__(message)
        self.problems = problems


class DatasetError(RuntimeError):
    """A dataset whose spectra cannot be read here; the message says why."""


class WriteAccessError(PermissionError):
    """Saving needs write access to a project the user may only read; the message says why and whom to ask."""


WRITE_ACCESS = ("Saving a parameter set needs write access to project {project!r}, because a saved set becomes part "
                "of that project's record, which its technicians launch workflows with, and {user} may only read "
                "it: ask the project's admins (a labcommons administrator grants write access on the portal's "
                "Admin > Users page), or give the tuned values to someone who has it.")


class Commons:
    """What `labcommons.connect()` returns: the helper, delegating anything else to the client."""

    def __init__(self, client: MetadataClient, storage_root: Path, source: str = "", portal_url: str = ""):
        self.client, self.storage_root, self.source = client, Path(storage_root), source
        self.portal_url = portal_url

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

    def upload(self, project: str, imzml, ibd, measurement: str = "", fields=None, progress: bool = True,
               **options) -> dict:
        """Upload an imzML + ibd pair through the portal and register it with a new measurement
        (`fields`: a dict or a JSON file) or an existing one (`measurement`: submitter id or id), all
        or nothing; call again to resume (labcommons/uploading.py: chunk_bytes, retries)."""
        from labcommons.cli_resolve import node
        from labcommons.uploading import Portal, load_fields, upload

        existing = node(self.client, measurement, project)["submitter_id"] if measurement else ""
        if fields is not None and not isinstance(fields, dict):
            fields = load_fields(fields)
        properties = self.client.dictionary()["measurement"]["properties"]
        return upload(Portal(self.portal_url, self.client.token), project, imzml, ibd, existing, fields,
                      progress, properties=properties, **options)

    def cohort(self, name: str) -> "Cohort":
        """A saved cohort by name (your own before one shared with a project)."""
        cohorts = self.client.cohorts()
        found = [c for c in cohorts if c.name == name]
        if not found:
            names = sorted({c.name for c in cohorts})
            raise LookupError(f"no cohort named {name!r}; yours and those shared with you: {', '.join(names) or 'none'}")
        return Cohort(self, sorted(found, key=lambda c: c.shared)[0])

    def cohort_by_id(self, cohort_id: str) -> "Cohort":
        """A saved cohort by its id, which (unlike a name) names one cohort; the service's
        NotFound when there is none you may read."""
        return Cohort(self, self.client.cohort(cohort_id))

    def cohort_from_filter(self, kind: str, filter: dict | None) -> "Cohort":
        """An unsaved cohort: the files behind a filter over `kind` documents (an explorer view)."""
        import json
        return Cohort(self, T.Cohort(id="", name="", kind=kind, filter_json=json.dumps(filter) if filter else ""))

    def can_write(self, project: str) -> bool:
        """Whether the user may write to the project (save parameter sets in it), as the service
        will decide: an admin, or a write grant on it."""
        who = self.client.whoami()
        return Identity(who.user, tuple(who.roles), dict(who.grants)).can_write(project)

    def write_access_note(self, project: str) -> str:
        """Why saving needs write access to the project, and whom to ask for it."""
        return WRITE_ACCESS.format(project=project, user=self.client.whoami().user)

    def template(self, name: str) -> T.WorkflowTemplate:
        """A workflow template of the catalog, by name."""
        templates = self.client.templates()
        for template in templates:
            if template.name == name:
                return template
        raise LookupError(f"no workflow template {name!r}; the catalog has {', '.join(t.name for t in templates)}")

    def tuner(self, template: str, dataset: "Dataset", spectra: "Spectra", name: str = "", values: dict | None = None):
        """Controls for the template's processing parameters over these spectra of the dataset,
        the spectrum before and after, and saving the tuned set as `name` (labcommons/tuning.py)."""
        from labcommons.tuning import Tuner
        return Tuner(self, self.template(template), dataset, spectra, name, values)

    def save_parameter_set(self, template: str, name: str, params: dict, dataset: str = "", notes: str = "",
                           project: str = "", source: str | None = None) -> T.ParameterSetRevision:
        """Save params as the newest revision of `name` (a new revision only when they changed);
        ParameterError names each parameter the template refuses and what it allows;
        WriteAccessError says why saving needs write access and whom to ask."""
        try:
            saved = self.client.save_parameter_set(template, name, params, project_id=project, notes=notes,
                                                   source=self.source if source is None else source,
                                                   dataset_id=dataset)
        except T.Forbidden:  # the only right the service checks beyond reading the dataset
            raise WriteAccessError(self.write_access_note(project or self._project_of(dataset))) from None
        except T.ValidationError as error:
            problems = {i.field.removeprefix("parameters."): i.message for i in error.issues or []
                        if i.field.startswith("parameters.")}
            raise (ParameterError(error.message, problems) if problems else ValueError(error.message)) from None
        return saved.revision

    def _project_of(self, dataset: str) -> str:
        return self.client.get(dataset)["project_id"] if dataset else "(none named)"

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
        self._layout = None   # (Layout, ibd path): read from the imzML once, on the first ion image

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
        """Spectra start .. start+limit-1 (in the imzML's order) as m/z and intensity arrays; an
        image's first pixels in scan order are often bare slide: tissue_spectra picks by TIC."""
        if limit < 1 or start < 0:
            raise ValueError(f"give a limit of 1 or more and a start of 0 or more, not limit={limit}, start={start}")
        from pyimzml.ImzMLParser import ImzMLParser

        from ground.storage import open_checked
        imzml, ibd = self._paths()
        with open_checked(imzml) as xml, open_checked(ibd) as binary:
            parser = ImzMLParser(xml, ibd_file=binary)
            chosen = range(start, min(start + limit, len(parser.coordinates)))
            pairs = [parser.getspectrum(i) for i in chosen]
            coordinates = [tuple(int(v) for v in parser.coordinates[i]) for i in chosen]
        return Spectra(coordinates, [p[0] for p in pairs], [p[1] for p in pairs])

    def tissue_spectra(self, limit: int = 5) -> Spectra:
        """`limit` spectra where the image has signal (usually tissue) rather than bare slide:
        pixels among the quarter with the highest TIC, spread over the image, the highest first
        (ims.layout.spread); read from the ibd at the offsets of the pair's layout. z is 1 (an
        image is 2-D)."""
        if limit < 1:
            raise ValueError(f"give a limit of 1 or more, not limit={limit}")
        from ims import images, layout as ims_layout
        layout, ibd = self._read_layout()
        chosen = ims_layout.spread(layout, self._readable(images.tic, layout, ibd), limit)
        pairs = self._readable(ims_layout.spectra, layout, ibd, chosen)
        coordinates = [(int(x), int(y), 1) for x, y in layout.positions()[chosen]]
        return Spectra(coordinates, [p[0] for p in pairs], [p[1] for p in pairs])

    def ion_image(self, mz: float, ppm: float | None = None, da: float | None = None):
        """The ion image of m/z ± ppm (or ± da Da) as a 2-D numpy array on the imzML grid:
        image[y - y0, x - x0] is pixel (x, y), (x0, y0) = self.origin; the summed intensity of the
        pixel's spectrum in the window, NaN where a pixel has no spectrum. ValueError
        (ims.images.WindowError) names an m/z or tolerance out of range and what is allowed."""
        from ims import images
        query = images.window(mz, ppm=ppm, da=da)
        layout, ibd = self._read_layout()
        return self._readable(images.ion_image, layout, ibd, query)

    @property
    def origin(self) -> tuple[int, int]:
        """imzML (x, y) of an ion image's [0, 0]: the lowest x and y of any pixel ((1, 1) usually)."""
        return self._read_layout()[0].origin

    def plot_ion_image(self, mz: float, ppm: float | None = None, da: float | None = None):
        """A Plotly heatmap of ion_image(mz, ppm=..., da=...) in imzML pixel coordinates (y down)."""
        import numpy as np
        import plotly.graph_objects as go

        from ims import images
        image, query = self.ion_image(mz, ppm=ppm, da=da), images.window(mz, ppm=ppm, da=da)
        (x0, y0), (height, width) = self.origin, image.shape
        figure = go.Figure(go.Heatmap(z=image, x=np.arange(width) + x0, y=np.arange(height) + y0,
                                      colorscale="Viridis", colorbar=dict(title=dict(text="Intensity (a.u.)"))))
        figure.update_layout(title=dict(text=f"{self.node['submitter_id']}: {query.label()}"), plot_bgcolor="#d0d0d0",
                             yaxis=dict(autorange="reversed", scaleanchor="x"))
        return figure

    def _read_layout(self):
        """(the pair's ims Layout, the ibd's checked path), read once per Dataset."""
        if self._layout is None:
            from ims.layout import read_pair
            imzml, ibd = self._paths()
            self._layout = (self._readable(read_pair, imzml, ibd), ibd)
        return self._layout

    @staticmethod
    def _readable(read, *args):
        """read(*args), the storage's refusals (ground.storage.NotReadable) as DatasetError."""
        from ground.storage import NotReadable
        try:
            return read(*args)
        except NotReadable as error:
            raise DatasetError(str(error)) from None

    def _measurement_id(self) -> str | None:
        if self.node["type"] == "measurement":
            return self.id
        links = [link["target_id"] for link in self.node["links"] if link["name"] == RAW_LINK]
        return links[0] if links else None

    def _paths(self) -> tuple[Path, Path]:
        """The checked paths of the imzML file and its ibd, in their project's folder of the storage root."""
        from ground.storage import NotReadable, resolve
        from metadata.datafiles import imzml_pair

        files = self.files
        if self.node["type"] == "data_file" and self.properties.get("data_format") == "imzML":
            files = [self.node] + [f for f in files if f["properties"].get("data_format") == "ibd"]
        pair = imzml_pair(files)
        if pair is None:
            raise DatasetError(f"{self.node['submitter_id']} has no imzML file with its ibd beside it")
        try:
            return tuple(resolve(f["properties"].get("storage_url", ""), self._commons.storage_root, f["project_id"])
                         for f in pair)
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

        from metadata.datafiles import MANIFEST_FIELDS
        rows = list(self._commons.client.manifest(self.cohort.kind, self.cohort.filter_json))
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=MANIFEST_FIELDS)  # columns even when empty


RENEW_TIMEOUT_SECONDS = 30
RENEW_FAILED = ("your labcommons token has expired and JupyterHub could not renew it ({why}). Sign in to the "
                "portal again, then restart your server (File > Hub Control Panel > Stop My Server, then Start) "
                "so it gets a new token")


def hub_token_renewer() -> Callable[[], str] | None:
    """In a JupyterHub single-user server: a function giving the user's current token from the
    hub. The hub keeps it in the user's auth state and renews it through the portal when older
    than a quarter of its lifetime (hub/jupyterhub_config.py), so it outlives the token this
    server started with. The server's own hub token may read that auth state, no other user's.
    None outside a hub server."""
    api, token, user = (os.environ.get(k, "") for k in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN",
                                                          "JUPYTERHUB_USER"))
    if not (api and token and user):
        return None

    def renew() -> str:
        import requests

        try:
            answer = requests.get(f"{api}/users/{quote(user)}", headers={"Authorization": f"token {token}"},
                                  timeout=RENEW_TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise _expired(f"the hub did not answer: {type(error).__name__}") from None
        if not answer.ok:  # the hub's refresh through the portal failed: signed out, disabled, chain over
            raise _expired(f"the hub answered {answer.status_code}")
        fresh = ((answer.json().get("auth_state") or {}).get("oauth_user") or {}).get(TOKEN_KEY, "")
        if not fresh:
            raise _expired("the hub holds no token for you")
        return fresh
    return renew


def _expired(why: str) -> T.Unauthenticated:
    return T.Unauthenticated(code="token_expired", message=RENEW_FAILED.format(why=why))


def notebook_source() -> str:
    """The running notebook's path, which Jupyter Server gives its kernels as JPY_SESSION_NAME
    (an absolute path when JupyterLab opened it): relative to the user's home when inside it, as
    the user sees it in JupyterLab's file browser."""
    path = os.environ.get("JPY_SESSION_NAME", "")
    home = os.environ.get("HOME", "")
    if path and home and os.path.isabs(path) and Path(path).is_relative_to(home):
        return Path(path).relative_to(home).as_posix()
    return path
