"""Where each spectrum of an imzML/ibd pair lies: its pixel and its arrays' offsets in the ibd.

The imzML is read once (`read`), by ims.header's streamed pass, the one reader of its spectrum
index; after that a spectrum, or a slice of every spectrum, is read straight from the ibd at its
offsets, without parsing the XML again. The raster is the smallest one holding every pixel, so
images of the pair (TIC, ion images) share one geometry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ground.storage import NotReadable, open_checked
from ims.header import Header, HeaderError, read_header

# A raster this large would not fit a browser's heatmap anyway; refuse it rather than allocate it.
MAX_PIXELS = 16_000_000
# the share of pixels with the highest TIC counted as tissue when spectra are picked to show (spread)
TISSUE_SHARE = 0.25


@dataclass(frozen=True)
class Layout:
    """The pair's raster and, per spectrum, where its m/z and intensity arrays are in the ibd."""
    index: np.ndarray      # (height, width) spectrum number per pixel; -1 where none
    origin: tuple[int, int]  # imzML (x, y) of index[0, 0]; imzML coordinates start at 1
    spans: np.ndarray      # (spectra, 4): m/z offset, m/z count, intensity offset, intensity count
    dtypes: tuple[str, str]  # numpy dtypes of the m/z and intensity arrays

    def spectrum_at(self, x: int, y: int) -> int | None:
        """The spectrum number of the pixel at imzML (x, y), or None outside the image."""
        row, column = y - self.origin[1], x - self.origin[0]
        if not (0 <= row < self.index.shape[0] and 0 <= column < self.index.shape[1]):
            return None
        number = int(self.index[row, column])
        return number if number >= 0 else None

    @property
    def continuous(self) -> bool:
        """Continuous mode: every spectrum points at one m/z array."""
        return bool(len(self.spans)) and bool((self.spans[:, 0] == self.spans[0, 0]).all())

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        """Per-spectrum values placed on the raster, NaN where a pixel has no spectrum."""
        return np.where(self.index >= 0, np.asarray(values, dtype=np.float64)[self.index], np.nan)

    def positions(self) -> np.ndarray:
        """(spectra, 2): the imzML (x, y) of each spectrum's pixel."""
        rows, columns = np.nonzero(self.index >= 0)
        found = np.zeros((len(self.spans), 2), dtype=np.int64)
        found[self.index[rows, columns]] = np.column_stack([columns + self.origin[0], rows + self.origin[1]])
        return found


def spread(layout: Layout, values: np.ndarray, count: int, share: float = TISSUE_SHARE) -> list[int]:
    """The numbers of `count` spectra among the `share` with the highest values (the TIC: signal,
    usually tissue, rather than bare slide), spread over the image: the highest first, then each
    the pixel farthest from those already chosen (ties: the higher value)."""
    values = np.asarray(values, dtype=np.float64)
    ranked = np.argsort(-values, kind="stable")
    candidates = ranked[:max(count, math.ceil(share * len(ranked)))]
    if not len(candidates) or count < 1:
        return []
    where = layout.positions()[candidates].astype(np.float64)
    chosen, nearest = [0], np.full(len(candidates), np.inf)
    while len(chosen) < min(count, len(candidates)):
        nearest = np.minimum(nearest, ((where - where[chosen[-1]]) ** 2).sum(axis=1))
        chosen.append(int(np.argmax(nearest)))   # the first of equals: candidates run highest first
    return [int(candidates[i]) for i in chosen]


def read(xml, binary, name: str = "the imzML file") -> Layout:
    """The Layout of an imzML (an open stream) and its ibd (an open stream); NotReadable if the
    header is refused (ims.header's sentences, each at its line) or an array lies past the end of
    the ibd."""
    try:
        header = read_header(xml)
    except HeaderError as error:
        raise NotReadable(f"{name} cannot be read as imzML: {error}") from None
    return from_header(header, binary)


def from_header(header: Header, binary) -> Layout:
    """The Layout of a read header over its ibd (an open stream)."""
    extents = header.extents
    spans = np.column_stack([extents["mz_offset"], extents["mz_length"], extents["intensity_offset"],
                             extents["intensity_length"]])
    check_spans(spans, header.dtypes, binary)
    index, origin = grid(np.column_stack([extents["x"], extents["y"]]))
    return Layout(index, origin, spans, header.dtypes)


def read_pair(imzml: Path, ibd: Path) -> Layout:
    """The Layout of a checked imzML/ibd pair, opened without following links."""
    with open_checked(imzml) as xml, open_checked(ibd) as binary:
        return read(xml, binary, Path(imzml).name)


def grid(coords: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixel -> spectrum index over the smallest raster holding every pixel, and its origin."""
    if not len(coords):
        raise NotReadable("the imzML file holds no spectra")
    low, high = coords.min(axis=0), coords.max(axis=0)
    width, height = (high - low + 1).tolist()
    if width * height > MAX_PIXELS:
        raise NotReadable(f"the image is {width} x {height} pixels; previews stop at {MAX_PIXELS:,} pixels")
    index = np.full((height, width), -1, dtype=np.int64)
    index[coords[:, 1] - low[1], coords[:, 0] - low[0]] = np.arange(len(coords))
    return index, (int(low[0]), int(low[1]))


def spectrum(layout: Layout, ibd: Path, number: int) -> tuple[np.ndarray, np.ndarray]:
    """(m/z, intensity) of one spectrum, read on demand from the ibd file."""
    return spectra(layout, ibd, [number])[0]


def spectra(layout: Layout, ibd: Path, numbers) -> list[tuple[np.ndarray, np.ndarray]]:
    """(m/z, intensity) of each numbered spectrum, read from the ibd file opened once."""
    spans = layout.spans[list(numbers)]
    with open_checked(ibd) as binary:
        check_spans(spans, layout.dtypes, binary)
        return [read_spectrum(binary, span, layout.dtypes) for span in spans]


def read_spectrum(binary, span: np.ndarray, dtypes: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    return read_array(binary, span[0], span[1], dtypes[0]), read_array(binary, span[2], span[3], dtypes[1])


def read_array(binary, offset: int, count: int, dtype: str) -> np.ndarray:
    """count values of dtype at offset of an open ibd, as float64."""
    binary.seek(int(offset))
    return np.frombuffer(binary.read(int(count) * np.dtype(dtype).itemsize), dtype=dtype).astype(np.float64)


def check_spans(spans: np.ndarray, dtypes: tuple[str, str], binary) -> None:
    """Every array the imzML names lies inside the ibd file (a truncated upload does not)."""
    size = binary.seek(0, 2)
    ends = np.concatenate([spans[:, 0] + spans[:, 1] * np.dtype(dtypes[0]).itemsize,
                           spans[:, 2] + spans[:, 3] * np.dtype(dtypes[1]).itemsize])
    if len(spans) and (ends.max() > size or spans.min() < 0):
        raise NotReadable("the ibd file is shorter than its imzML says; it may be incomplete")
