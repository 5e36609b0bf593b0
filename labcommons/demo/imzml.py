"""Synthetic imaging mass spectrometry data, written as imzML/ibd pairs for the demo commons.

Each image is a tissue-shaped blob on a slide: inside it, lipid-like and matrix peaks whose
abundance varies across the tissue; outside it, baseline and noise only.
"""
from __future__ import annotations

import functools
import hashlib
import uuid
from pathlib import Path

import numpy as np
from pyimzml.ImzMLWriter import IMZML_TEMPLATE, ImzMLWriter
from pyimzml.compression import NoCompression
from wheezy.template import CoreExtension, DictLoader, Engine

MODES = ("continuous", "processed")
MZ_LOW, MZ_HIGH = 400.0, 1000.0
AXIS_POINTS = 1500
PEAK_SIGMA = 0.35  # m/z; about twice the axis step, so every peak spans several points
# Positive-mode [M+H]+ / [M+K]+ ions of common tissue lipids, and DHB cluster ions.
LIPID_MZ = (703.575, 734.569, 760.585, 782.567, 788.616, 798.541, 810.601, 826.573, 848.557)
MATRIX_MZ = (409.055, 545.071, 681.087)
CHUNK_BYTES = 1 << 20
# Any fixed namespace works; it only has to stay the same so file UUIDs are reproducible.
_UUID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4d5e-9f60-7a8b9c0d1e2f")


def write_imzml_pair(directory: Path, name: str, width: int, height: int, seed: int,
                     mode: str = "continuous") -> list[dict]:
    """Write <name>.imzML and <name>.ibd in directory; one file record per file, imzML first."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if width < 1 or height < 1:
        raise ValueError(f"image must be at least 1x1 pixels, not {width}x{height}")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mzs = mz_axis()
    coords, intensities = simulate_image(mzs, width, height, rng)
    file_uuid = uuid.uuid5(_UUID_NAMESPACE, f"{name}/{width}x{height}/{seed}/{mode}")
    spectra = ((xy, *(_processed(mzs, spectrum, rng) if mode == "processed" else (mzs, spectrum)))
               for xy, spectrum in zip(coords, intensities))
    write_spectra(directory / name, file_uuid, spectra, mode=mode)
    return file_records(directory, name)


def write_spectra(base: Path, file_uuid: uuid.UUID, spectra, mode: str, spec_type: str = "profile",
                  polarity: str = "positive", pixel_size_um: float | None = None) -> None:
    """Write base.imzML and base.ibd from ((x, y), m/z array, intensity array) in scan order."""
    with _ReproducibleWriter(base, file_uuid, mode, spec_type, polarity, pixel_size_um) as writer:
        for xy, mzs, intensities in spectra:
            writer.addSpectrum(mzs, intensities, xy)


def file_records(directory: Path, name: str) -> list[dict]:
    """The records of <name>.imzML and <name>.ibd in directory, imzML first."""
    return [_file_record(directory / f"{name}.imzML", "imzML"), _file_record(directory / f"{name}.ibd", "ibd")]


def mz_axis() -> np.ndarray:
    """The shared m/z axis of continuous-mode images."""
    return np.linspace(MZ_LOW, MZ_HIGH, AXIS_POINTS)


def simulate_image(mzs: np.ndarray, width: int, height: int,
                   rng: np.random.Generator) -> tuple[list[tuple[int, int]], np.ndarray]:
    """1-based (x, y) per pixel in scan order, and float32 intensities (pixels x m/z points)."""
    ys, xs = np.mgrid[1:height + 1, 1:width + 1]
    xs, ys = xs.ravel(), ys.ravel()
    tissue = tissue_weight(xs, ys, width, height, rng)
    peaks = np.array(LIPID_MZ + MATRIX_MZ)
    shapes = np.exp(-0.5 * ((mzs[None, :] - peaks[:, None]) / PEAK_SIGMA) ** 2)
    signal = peak_abundances(xs, ys, width, height, tissue, rng) @ shapes
    # Chemical noise rises towards low m/z and is stronger on tissue than on bare slide.
    baseline = (4.0 + 25.0 * np.exp(-(mzs - MZ_LOW) / 150.0))[None, :] * (1.0 + tissue[:, None])
    counts = rng.poisson(signal + baseline) + rng.normal(0.0, 1.5, signal.shape)
    coords = [(int(x), int(y)) for x, y in zip(xs, ys)]
    return coords, np.clip(counts, 0.0, None).astype(np.float32)


def tissue_weight(xs: np.ndarray, ys: np.ndarray, width: int, height: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Per pixel, 1 inside a lobed elliptical tissue section, 0 on bare slide, soft at the edge."""
    cx, cy = (width + 1) / 2 + rng.normal(0, width / 20), (height + 1) / 2 + rng.normal(0, height / 20)
    ax, ay = width * rng.uniform(0.30, 0.40), height * rng.uniform(0.30, 0.40)
    theta = rng.uniform(0, np.pi)
    dx, dy = xs - cx, ys - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / ax
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / ay
    # A few lobes on the outline so sections do not all look like perfect ellipses.
    lobes = 1.0 + 0.12 * np.sin(rng.integers(2, 5) * np.arctan2(v, u) + rng.uniform(0, 2 * np.pi))
    r2 = (u ** 2 + v ** 2) / lobes ** 2
    return np.clip((1.0 - r2) * 4.0, 0.0, 1.0)


def peak_abundances(xs: np.ndarray, ys: np.ndarray, width: int, height: int, tissue: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Peak heights per pixel (pixels x peaks): each ion has its own gradient across the tissue."""
    n_peaks = len(LIPID_MZ) + len(MATRIX_MZ)
    heights = np.concatenate([rng.uniform(150, 1500, len(LIPID_MZ)), rng.uniform(80, 300, len(MATRIX_MZ))])
    gradient = gradients(xs, ys, width, height, rng.uniform(0, 2 * np.pi, n_peaks))
    jitter = rng.lognormal(0.0, 0.15, (len(xs), n_peaks))
    return heights[None, :] * gradient * jitter * tissue[:, None]


def gradients(xs: np.ndarray, ys: np.ndarray, width: int, height: int, angles: np.ndarray) -> np.ndarray:
    """Per pixel and ion (pixels x angles), a linear gradient across the image in the ion's direction."""
    xn, yn = 2 * (xs - 1) / max(width - 1, 1) - 1, 2 * (ys - 1) / max(height - 1, 1) - 1
    gradient = 0.65 + 0.35 * (np.cos(angles)[None, :] * xn[:, None] + np.sin(angles)[None, :] * yn[:, None])
    # Gradients stay between 0.3 and 1 so no ion vanishes from part of the tissue.
    return gradient.clip(0.3, 1.0)


def _processed(mzs: np.ndarray, spectrum: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A processed-mode spectrum: the points above the noise floor, on a per-pixel recalibrated axis."""
    keep = spectrum > np.median(spectrum) * 2.0 + 10.0
    # Keep the strongest points too, so a bare-slide pixel still has a spectrum to write.
    keep[np.argpartition(spectrum, -16)[-16:]] = True
    drift_ppm = rng.normal(0.0, 3.0)
    return mzs[keep] * (1.0 + drift_ppm * 1e-6), spectrum[keep]


def checksums(path: Path) -> dict:
    """file_size, md5sum and sha256 of a file, read once in chunks."""
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return {"file_size": size, "md5sum": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _file_record(path: Path, data_format: str) -> dict:
    """What a data_file entity needs to know about a written file, plus where it is."""
    return {"file_name": path.name, "data_format": data_format, **checksums(path), "path": path}


class _ReproducibleWriter(ImzMLWriter):
    """ImzMLWriter whose UUID and run id come from its inputs, so equal inputs give equal bytes;
    it also declares the pixel size, which pyimzML's writer leaves out."""

    def __init__(self, base: Path, file_uuid: uuid.UUID, mode: str, spec_type: str, polarity: str,
                 pixel_size_um: float | None = None):
        # Not ImzMLWriter.__init__: it compiles its XML template again for every file, most of a
        # small file's writing time. These are the attributes it sets (pyimzML 1.5), with a
        # template compiled once per process, and a UUID that depends on the inputs only.
        self.mz_dtype, self.intensity_dtype, self.mode, self.spec_type = np.float64, np.float32, mode, spec_type
        self.mz_compression = self.intensity_compression = NoCompression()
        self.scan_direction, self.scan_pattern = "top_down", "one_way"
        self.scan_type, self.line_scan_direction = "horizontal_line", "line_left_right"
        # The default run id is the full output path, which would make the XML depend on it.
        self.run_id, self.filename, self.ibd_filename = base.name, f"{base}.imzML", f"{base}.ibd"
        self.xml, self.ibd = open(self.filename, "w"), open(self.ibd_filename, "wb+")
        self.sha1, self.uuid = hashlib.sha1(), file_uuid
        self._write_ibd(file_uuid.bytes)
        self.imzml_template = _template(None if pixel_size_um is None else float(pixel_size_um))
        self.spectra, self.first_mz, self.hashes, self.lru_cache = [], None, {}, {}  # the last two: mode "auto" only
        self._setPolarity(polarity)


_MAX_Y_LINE = ('<cvParam cvRef="IMS" accession="IMS:1000043" name="max count of pixels y" '
               'value="@{(max(s.coords[1] for s in spectra))!!s}"/>')
_IMS_CV = ('<cv uri="https://raw.githubusercontent.com/imzML/imzML/master/imagingMS.obo" '
           'fullName="Imaging MS Ontology" id="IMS" version="1.1.0"/>')


@functools.lru_cache(maxsize=64)
def _template(size: float | None):
    """pyimzML's imzML template, compiled; with a size, the pixel size declared too (and the IMS
    vocabulary the template uses listed)."""
    if size is None:
        return Engine(loader=DictLoader({"imzml": IMZML_TEMPLATE}), extensions=[CoreExtension()]).get_template("imzml")
    def param(accession: str, name: str, value: str) -> str:
        return (f'<cvParam cvRef="IMS" accession="IMS:{accession}" name="{name}" value="{value}" '
                'unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>')
    # wheezy reads '@' as markup: the values are plain numbers, the dimensions computed at render time
    extra = [param("1000046", "pixel size (x)", f"{size:g}"), param("1000047", "pixel size y", f"{size:g}"),
             param("1000044", "max dimension x", f"@{{int(round(max(s.coords[0] for s in spectra) * {size!r}))!!s}}"),
             param("1000045", "max dimension y", f"@{{int(round(max(s.coords[1] for s in spectra) * {size!r}))!!s}}")]
    text = IMZML_TEMPLATE.replace(_MAX_Y_LINE, "\n      ".join([_MAX_Y_LINE, *extra]))
    text = text.replace('<cvList count="2">', '<cvList count="3">\n    ' + _IMS_CV)
    assert text != IMZML_TEMPLATE, "pyimzML's template changed: update _MAX_Y_LINE"
    return Engine(loader=DictLoader({"imzml": text}), extensions=[CoreExtension()]).get_template("imzml")
