"""The arrays behind a measurement's previews, read from an imzML/ibd pair with pyimzml.

`compute` reads every spectrum once (twice in processed mode) and keeps only summaries: the
total-ion-current (TIC) image, the mean spectrum, and where each pixel's spectrum lies in the
ibd file, so `spectrum` later reads one pixel straight from the ibd without parsing the imzML.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyimzml.ImzMLParser import ImzMLParser

from ground.storage import NotReadable, open_checked

# Processed-mode spectra have an m/z axis each; their mean is summed into this many bins.
MEAN_BINS = 2000
# A raster this large would not fit a browser's heatmap anyway; refuse it rather than allocate it.
MAX_PIXELS = 16_000_000
# imzML binary data is little-endian whatever the host (pyimzml's precision letters).
DTYPES = {"f": "<f4", "d": "<f8", "i": "<i4", "l": "<i8"}


@dataclass(frozen=True)
class Preview:
    """What the measurement page draws, and where each pixel's spectrum is in the ibd file."""
    tic: np.ndarray        # (height, width) TIC per pixel; NaN where the image has no spectrum
    index: np.ndarray      # (height, width) spectrum number per pixel; -1 where none
    origin: tuple[int, int]  # imzML (x, y) of tic[0, 0]; imzML coordinates start at 1
    mz: np.ndarray         # the mean spectrum's m/z axis
    mean: np.ndarray       # mean intensity per pixel with a spectrum
    binned: bool           # processed mode: the mean was summed into MEAN_BINS bins
    spans: np.ndarray      # (spectra, 4): m/z offset, m/z count, intensity offset, intensity count
    dtypes: tuple[str, str]  # numpy dtypes of the m/z and intensity arrays

    def spectrum_at(self, x: int, y: int) -> int | None:
        """The spectrum number of the pixel at imzML (x, y), or None outside the image."""
        row, column = y - self.origin[1], x - self.origin[0]
        if not (0 <= row < self.index.shape[0] and 0 <= column < self.index.shape[1]):
            return None
        number = int(self.index[row, column])
        return number if number >= 0 else None

    def brightest(self) -> tuple[int, int]:
        """imzML (x, y) of the pixel with the highest TIC (the page's first pixel spectrum)."""
        row, column = np.unravel_index(np.nanargmax(self.tic), self.tic.shape)
        return int(column) + self.origin[0], int(row) + self.origin[1]


def compute(imzml: Path, ibd: Path) -> Preview:
    """Read a checked imzML/ibd pair into a Preview (called once per file; see cache.py)."""
    with open_checked(imzml) as xml, open_checked(ibd) as binary:
        try:
            parser = ImzMLParser(xml, ibd_file=binary)
        except Exception as error:  # pyimzml raises whatever its XML parser or numpy raise
            raise NotReadable(f"{Path(imzml).name} cannot be read as imzML ({error})") from None
        spans = np.column_stack([parser.mzOffsets, parser.mzLengths, parser.intensityOffsets,
                                 parser.intensityLengths]).astype(np.int64)
        dtypes = (DTYPES[parser.mzPrecision], DTYPES[parser.intensityPrecision])
        _check_spans(spans, dtypes, binary)
        tic, index, origin = _image(np.asarray(parser.coordinates)[:, :2], spans, dtypes, binary)
        mz, mean, binned = _mean_spectrum(spans, dtypes, binary)
    return Preview(tic, index, origin, mz, mean, binned, spans, dtypes)


def spectrum(preview: Preview, ibd: Path, number: int) -> tuple[np.ndarray, np.ndarray]:
    """(m/z, intensity) of one spectrum, read on demand from the ibd file."""
    with open_checked(ibd) as binary:
        _check_spans(preview.spans[number:number + 1], preview.dtypes, binary)
        return _read(binary, preview.spans[number], preview.dtypes)


def _read(binary, span: np.ndarray, dtypes: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    return _array(binary, span[0], span[1], dtypes[0]), _array(binary, span[2], span[3], dtypes[1])


def _array(binary, offset: int, count: int, dtype: str) -> np.ndarray:
    binary.seek(int(offset))
    return np.frombuffer(binary.read(int(count) * np.dtype(dtype).itemsize), dtype=dtype).astype(np.float64)


def _check_spans(spans: np.ndarray, dtypes: tuple[str, str], binary) -> None:
    """Every array the imzML names lies inside the ibd file (a truncated upload does not)."""
    size = binary.seek(0, 2)
    ends = np.concatenate([spans[:, 0] + spans[:, 1] * np.dtype(dtypes[0]).itemsize,
                           spans[:, 2] + spans[:, 3] * np.dtype(dtypes[1]).itemsize])
    if len(spans) and (ends.max() > size or spans.min() < 0):
        raise NotReadable("the ibd file is shorter than its imzML says; it may be incomplete")


def _image(coords: np.ndarray, spans: np.ndarray, dtypes, binary) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The TIC image and the pixel -> spectrum index over the smallest raster holding every pixel."""
    if not len(coords):
        raise NotReadable("the imzML file holds no spectra")
    low, high = coords.min(axis=0), coords.max(axis=0)
    width, height = (high - low + 1).tolist()
    if width * height > MAX_PIXELS:
        raise NotReadable(f"the image is {width} x {height} pixels; previews stop at {MAX_PIXELS:,} pixels")
    index = np.full((height, width), -1, dtype=np.int64)
    index[coords[:, 1] - low[1], coords[:, 0] - low[0]] = np.arange(len(coords))
    tic = np.array([_array(binary, s[2], s[3], dtypes[1]).sum() for s in spans])
    image = np.where(index >= 0, tic[index], np.nan)
    return image, index, (int(low[0]), int(low[1]))


def _mean_spectrum(spans: np.ndarray, dtypes, binary) -> tuple[np.ndarray, np.ndarray, bool]:
    """(m/z, mean intensity, binned): on the shared axis in continuous mode, else binned."""
    if len(np.unique(spans[:, 0])) == 1:  # continuous mode: every spectrum points at one m/z array
        mz = _array(binary, spans[0, 0], spans[0, 1], dtypes[0])
        total = np.zeros(len(mz))
        for span in spans:
            total += _array(binary, span[2], span[3], dtypes[1])
        return mz, total / len(spans), False
    edges = _bin_edges(spans, dtypes, binary)
    total = np.zeros(len(edges) - 1)
    for span in spans:
        mz, intensity = _read(binary, span, dtypes)
        total += np.histogram(mz, bins=edges, weights=intensity)[0]
    return (edges[:-1] + edges[1:]) / 2, total / len(spans), True


def _bin_edges(spans: np.ndarray, dtypes, binary) -> np.ndarray:
    """MEAN_BINS equal bins from the lowest to the highest m/z of any spectrum."""
    low, high = np.inf, -np.inf
    for span in spans:
        mz = _array(binary, span[0], span[1], dtypes[0])
        if len(mz):
            low, high = min(low, mz.min()), max(high, mz.max())
    if not np.isfinite(low):
        low, high = 0.0, 1.0
    return np.linspace(low, high if high > low else low + 1.0, MEAN_BINS + 1)
