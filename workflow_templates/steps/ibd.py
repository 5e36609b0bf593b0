"""An imzML's spectrum index, and its spectra read straight from the .ibd with numpy.

pyimzML reads one spectrum per call (a seek and two reads); QC reads thousands of spectra, so
the index (each spectrum's offsets, lengths, coordinates: ims.header's spectrum index, the one
reading of it) is read once, saved beside the run's outputs, and each QC shard reads its spectra
from the .ibd in blocks: continuous files, whose intensity arrays lie at a regular stride, as one
strided 2-D view of the memory-mapped file; processed files spectrum by spectrum at their offsets. A spectrum whose bytes lie beyond the end
of the .ibd (a truncated file) is marked unreadable, never read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ims.header import Header

FIELDS = ("x", "y", "mz_offset", "mz_length", "int_offset", "int_length", "readable")


@dataclass
class Index:
    """Per spectrum (in imzML order): x, y, offsets and lengths of its two arrays, readable."""
    arrays: dict[str, np.ndarray]
    mz_dtype: str
    int_dtype: str
    continuous: bool

    def __len__(self) -> int:
        return len(self.arrays["x"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def save(self, path: Path) -> None:
        """Write the index as one .npz file (arrays) with its dtypes in a JSON header entry."""
        header = json.dumps({"mz_dtype": self.mz_dtype, "int_dtype": self.int_dtype,
                             "continuous": self.continuous})
        part = path.with_name(path.name + ".part.npz")
        np.savez(part, header=np.array(header), **self.arrays)
        part.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Index":
        with np.load(path) as saved:
            header = json.loads(str(saved["header"]))
            return cls({name: saved[name] for name in FIELDS}, **header)


def from_header(header: Header, ibd_size: int) -> Index:
    """The index of an imzML read by ims.header (its spectrum index), checked against the .ibd's size."""
    extents = header.extents
    arrays = {"x": extents["x"].astype(np.int32), "y": extents["y"].astype(np.int32),
              "mz_offset": extents["mz_offset"].copy(), "mz_length": extents["mz_length"].copy(),
              "int_offset": extents["intensity_offset"].copy(), "int_length": extents["intensity_length"].copy(),
              "readable": extents.ends() <= ibd_size}
    mz_dtype, int_dtype = header.dtypes
    return Index(arrays, mz_dtype, int_dtype, header.storage == "continuous")


def mz_bounds(index: Index, ibd: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) m/z over the readable spectra: first and last value of each m/z array."""
    keep = index["readable"] & (index["mz_length"] > 0)
    if not keep.any():
        return None
    size = np.dtype(index.mz_dtype).itemsize
    first = _gather(ibd, index["mz_offset"][keep], index.mz_dtype)
    last = _gather(ibd, index["mz_offset"][keep] + (index["mz_length"][keep] - 1) * size, index.mz_dtype)
    return float(first.min()), float(last.max())


def _gather(ibd: np.ndarray, offsets: np.ndarray, dtype: str) -> np.ndarray:
    """One value of dtype at each byte offset of the mapped file."""
    size = np.dtype(dtype).itemsize
    raw = ibd[offsets[:, None] + np.arange(size)[None, :]]
    return raw.copy().view(dtype).ravel()


def open_ibd(path: Path) -> np.ndarray:
    """The .ibd as a read-only byte array mapped from disk (empty file: an empty array)."""
    if Path(path).stat().st_size == 0:
        return np.zeros(0, np.uint8)
    return np.memmap(path, np.uint8, mode="r")


def spectra(index: Index, ibd: np.ndarray, rows: np.ndarray, block: int = 512
            ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(positions, m/z axis, intensities n x points) for the readable spectra among rows, in blocks
    that share one m/z axis: a continuous file's rows many at a time, a processed file's one by one
    (sorted by m/z when the file has them in another order)."""
    rows = rows[index["readable"][rows]]
    if index.continuous and _regular(index, rows):
        axis = _array(ibd, index["mz_offset"][rows[0]], index["mz_length"][rows[0]], index.mz_dtype, np.float64)
        for start in range(0, len(rows), block):
            part = rows[start:start + block]
            yield part, axis, _strided(index, ibd, part)
        return
    for row in rows:
        axis = _array(ibd, index["mz_offset"][row], index["mz_length"][row], index.mz_dtype, np.float64)
        values = _array(ibd, index["int_offset"][row], index["int_length"][row], index.int_dtype, np.float32)
        if (axis[1:] < axis[:-1]).any():   # imzML does not promise sorted m/z; QC's searches need it
            order = np.argsort(axis, kind="stable")
            axis, values = axis[order], values[order]
        yield np.array([row]), axis, values[None, :]


def _regular(index: Index, rows: np.ndarray) -> bool:
    """Whether rows share one m/z array and their intensity arrays lie at one stride, in order."""
    if len(rows) == 0:
        return False
    same = (index["mz_offset"][rows] == index["mz_offset"][rows[0]]).all() \
        and (index["int_length"][rows] == index["int_length"][rows[0]]).all()
    steps = np.diff(index["int_offset"][rows])
    return bool(same and (len(steps) == 0 or ((steps == steps[0]).all() and steps[0] > 0)))


def _strided(index: Index, ibd: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The intensity arrays of consecutive regularly spaced rows as one (rows x points) array."""
    dtype = np.dtype(index.int_dtype)
    start, length = int(index["int_offset"][rows[0]]), int(index["int_length"][rows[0]])
    stride = int(index["int_offset"][rows[1]] - start) if len(rows) > 1 else length * dtype.itemsize
    view = np.ndarray((len(rows), length), dtype, buffer=ibd, offset=start, strides=(stride, dtype.itemsize))
    return np.array(view, np.float32)


def _array(ibd: np.ndarray, offset, length, dtype: str, into) -> np.ndarray:
    """length values of dtype at a byte offset, converted to `into`."""
    return np.frombuffer(ibd, dtype, int(length), int(offset)).astype(into)
