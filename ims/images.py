"""Ion images: per pixel, the summed intensity of the points of its spectrum inside an m/z window.

Read straight from the ibd (memory-mapped) at the offsets of the pair's Layout, never spectrum by
spectrum through pyimzML: in continuous mode the window is one set of columns of the shared m/z
axis; in processed mode each spectrum's window is found in its m/z array (imzML writers list m/z
in increasing order), all spectra at once: through a sparse index of every STRIDE-th m/z, else by
binary search reading only the probed values. Both need sorted arrays, which the spec does not
promise: a file's first ion image reads every m/z array once to find those that are not sorted
(kept with the sparse index and the file's mapping, an MzIndex), and those spectra are summed
through a mask instead. Intensities are summed in float64, spectrum by spectrum, exactly as
`intensity[(mz >= low) & (mz <= high)].astype(float64).sum()` would.
"""
from __future__ import annotations

import hashlib
import math
import mmap
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ground.storage import NotReadable, open_checked
from ims.layout import Layout, check_spans

MZ_MAX = 100_000.0
LIMITS = {"ppm": 1000.0, "Da": 10.0}   # the widest half-window each unit allows
TYPED_TOLERANCE = re.compile(r"^\s*(\S+?)\s*(ppm|da)\s*$", re.IGNORECASE)
PEAKS = 10                              # top peaks listed for a mean spectrum
SCAN = 16                               # m/z values read past a window's start before searching
KEPT_MAPPINGS = 4                       # ibd files kept memory-mapped (the latest used)
POPULATE_BYTES = 1 << 30                # a continuous-mode ibd up to this size is mapped whole at once
STRIDE = 16                             # a processed spectrum's sparse index: every STRIDE-th m/z
MAX_SAMPLES = 8_000_000                 # values in a sparse index (64 MB); larger ones: binary search
GATHER = 4_000_000                      # values read from the file in one numpy gather
RUN = 1_000_000                         # m/z values checked for order at once (a few arrays of this size)
_MAPPINGS: OrderedDict[tuple, "Mapped"] = OrderedDict()
_LOCK = threading.Lock()


class WindowError(ValueError):
    """An m/z or tolerance outside what is allowed; `field` names it, the message says the range."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Window:
    """m/z ± tolerance, the tolerance in ppm of the m/z or in Da."""
    mz: float
    tolerance: float
    unit: str   # "ppm" or "Da"

    @property
    def half_width(self) -> float:
        return self.mz * self.tolerance * 1e-6 if self.unit == "ppm" else self.tolerance

    @property
    def low(self) -> float:
        return self.mz - self.half_width

    @property
    def high(self) -> float:
        return self.mz + self.half_width

    def label(self) -> str:
        """`m/z 760.5850 ± 5 ppm (760.5812–760.5888)`."""
        return f"{self.centre()} ({self.bounds()})"

    def centre(self) -> str:
        """`m/z 760.5850 ± 5 ppm`."""
        return f"m/z {self.mz:.4f} ± {self.tolerance:g} {self.unit}"

    def bounds(self) -> str:
        """`760.5812–760.5888`."""
        return f"{self.low:.4f}–{self.high:.4f}"

    def key(self) -> str:
        """The query as cache-key text: exact (repr of floats), so equal windows share an entry."""
        return f"{self.mz!r} {self.tolerance!r} {self.unit}"


def window(mz, ppm=None, da=None) -> Window:
    """The window m/z ± ppm or m/z ± Da (exactly one of them); WindowError names a field out of range."""
    centre = _number("m/z", mz, MZ_MAX, f"a number above 0 and at most {MZ_MAX:,.0f}")
    if (ppm is None) == (da is None):
        raise WindowError("tolerance", "give the tolerance either in ppm or in Da (one of them)")
    unit, value = ("ppm", ppm) if ppm is not None else ("Da", da)
    limit = LIMITS[unit]
    return Window(centre, _number(f"tolerance ({unit})", value, limit, f"a number above 0 and at most {limit:g} {unit}"),
                  unit)


def typed_window(mz, tolerance) -> Window:
    """The window of an m/z and a tolerance typed with its unit (`5 ppm`, `0.25 Da`), as in a form."""
    found = TYPED_TOLERANCE.match(str(tolerance if tolerance is not None else ""))
    if not found:
        raise WindowError("tolerance", "tolerance must be a number and its unit, ppm or Da (as in 5 ppm or 0.25 Da), "
                                       f"not {tolerance!r}")
    return window(mz, **{found[2].lower(): found[1]})


def _number(field: str, value, limit: float, allowed: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WindowError(field, f"{field} must be {allowed}, not {value!r}") from None
    if not (math.isfinite(number) and 0 < number <= limit):
        raise WindowError(field, f"{field} must be {allowed}, not {value!r}")
    return number


def ion_image(layout: Layout, ibd: Path, query: Window) -> np.ndarray:
    """The ion image of a checked ibd over its Layout's raster: NaN where a pixel has no spectrum,
    0 where its spectrum has no point in the window."""
    mapped = _mapped(layout, ibd)
    if mapped is None:
        return layout.on_grid(np.zeros(len(layout.spans)))
    return layout.on_grid(window_sums(mapped.bytes, layout, query, mapped.mz_index_of(layout)))


def tic(layout: Layout, ibd: Path) -> np.ndarray:
    """Per spectrum of a checked ibd, its total ion current: the float64 sum of its intensities
    (what the previews' TIC image shows and the notebook helper picks tissue pixels by)."""
    mapped = _mapped(layout, ibd)
    if mapped is None:
        return np.zeros(len(layout.spans))
    dtype = np.dtype(layout.dtypes[1])
    # a view of each spectrum in place: every value is read, and a gather would first build an index per value
    return np.array([np.frombuffer(mapped.bytes, dtype, count, offset).astype(np.float64).sum()
                     for offset, count in layout.spans[:, 2:4].tolist()], dtype=np.float64)


def _mapped(layout: Layout, ibd: Path) -> "Mapped | None":
    """The checked ibd memory-mapped once its Layout's arrays are shown to lie inside it; None when empty."""
    with open_checked(ibd) as binary:
        check_spans(layout.spans, layout.dtypes, binary)
        size = binary.seek(0, 2)
        if size == 0:
            return None
        return _mapping(binary, populate=not layout.continuous or size <= POPULATE_BYTES)


@dataclass(frozen=True)
class MzIndex:
    """What processed-mode windows need of a layout's m/z arrays, read once per file."""
    samples: np.ndarray | None   # the sparse index (see `sample`); None when too large
    unsorted: np.ndarray         # the spectra whose m/z do not increase: summed through a mask

    @classmethod
    def of(cls, buffer: np.ndarray, layout: Layout, sparse: bool = True) -> "MzIndex":
        offsets, lengths, dtype = layout.spans[:, 0], layout.spans[:, 1], layout.dtypes[0]
        return cls(sample(buffer, offsets, lengths, dtype) if sparse else None,
                   unsorted(buffer, offsets, lengths, dtype))


@dataclass
class Mapped:
    """An ibd memory-mapped as bytes, with the MzIndex of each processed layout read over it."""
    bytes: np.ndarray
    indexes: dict = field(default_factory=dict)

    def mz_index_of(self, layout: Layout) -> MzIndex | None:
        """The layout's MzIndex over this file, made on its first ion image; None in continuous mode."""
        if layout.continuous:
            return None
        key = hashlib.sha1(layout.spans.tobytes() + layout.dtypes[0].encode()).digest()
        with _LOCK:
            found = self.indexes.get(key)
        if found is None:
            found = MzIndex.of(self.bytes, layout)
            with _LOCK:
                self.indexes[key] = found
        return found


def _mapping(binary, populate: bool) -> Mapped:
    """The open ibd memory-mapped. The mapping of this very file (device, inode, size, modification
    time) made for an earlier image is used again, with its sparse indexes: its pages are mapped
    already. `populate` maps every page at once, one call rather than a fault per page touched
    (processed mode, whose sparse index reads every page, and any ibd up to POPULATE_BYTES: a
    first window elsewhere in the spectra then costs no faults). The caller opened the file
    through the path checks."""
    info = os.fstat(binary.fileno())
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    with _LOCK:
        if key not in _MAPPINGS:
            # Never closed by hand: numpy's views of it would make close() fail; it goes with them.
            flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
            _MAPPINGS[key] = Mapped(np.frombuffer(mmap.mmap(binary.fileno(), 0, flags=flags, prot=mmap.PROT_READ),
                                                  dtype=np.uint8))
            while len(_MAPPINGS) > KEPT_MAPPINGS:
                _MAPPINGS.popitem(last=False)
        _MAPPINGS.move_to_end(key)
        return _MAPPINGS[key]


def window_sums(buffer: np.ndarray, layout: Layout, query: Window, mz_index: MzIndex | None = None) -> np.ndarray:
    """Per spectrum, the float64 sum of its intensities whose m/z lies in [low, high]; in processed
    mode each window's start found through the MzIndex's samples when it has them, else by search
    (the MzIndex made here, without samples, when none is given)."""
    spans, (mz_type, intensity_type) = layout.spans, layout.dtypes
    if layout.continuous:
        axis = values(buffer, spans[:1, 0], int(spans[0, 1]), mz_type)[0]
        columns = np.flatnonzero((axis >= query.low) & (axis <= query.high))
        return _sums(buffer, spans[:, 2], columns, intensity_type)
    mz_index = mz_index or MzIndex.of(buffer, layout, sparse=False)
    if mz_index.samples is None:
        first = search(buffer, spans[:, 0], spans[:, 1], mz_type, query.low, right=False)
        last = _window_ends(buffer, spans[:, 0], spans[:, 1], first, mz_type, query.high)
    else:
        first, last = sampled_window(buffer, spans[:, 0], spans[:, 1], mz_type, query.low, query.high,
                                     mz_index.samples)
    sums = _ragged_sums(buffer, spans[:, 2], first, last - first, intensity_type)
    for number in mz_index.unsorted.tolist():
        sums[number] = _masked_sum(buffer, spans[number], layout.dtypes, query)
    return sums


def _masked_sum(buffer: np.ndarray, span: np.ndarray, dtypes: tuple[str, str], query: Window) -> float:
    """The window's sum of one spectrum whose m/z are not sorted, as the plain mask-and-sum gives it."""
    mz = np.frombuffer(buffer, dtypes[0], int(span[1]), int(span[0]))
    intensity = np.frombuffer(buffer, dtypes[1], int(span[3]), int(span[2]))
    return float(intensity[(mz >= query.low) & (mz <= query.high)].astype(np.float64).sum())


def unsorted(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: str) -> np.ndarray:
    """The numbers of the arrays (at offsets, of lengths) whose values decrease somewhere, every value
    read once, about RUN values at a time (arrays of one byte alignment together: one typed view)."""
    rows = np.flatnonzero(lengths > 1)
    shifts = offsets[rows] % np.dtype(dtype).itemsize
    found = []
    for shift in np.unique(shifts).tolist():   # one in the usual file
        aligned = rows[shifts == shift]
        totals = np.cumsum(lengths[aligned])
        for part in np.split(aligned, np.searchsorted(totals, np.arange(RUN, int(totals[-1]), RUN))):
            found.append(part[_decreasing(buffer, offsets[part], lengths[part], dtype, shift)])
    return np.sort(np.concatenate(found)) if found else rows


def _decreasing(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: str, shift: int) -> np.ndarray:
    """Per array (all at offsets of one alignment), whether some value is below the one before it:
    the arrays gathered into one run and compared with their neighbours at once."""
    size = np.dtype(dtype).itemsize
    typed = np.frombuffer(buffer, dtype=dtype, offset=shift, count=(len(buffer) - shift) // size)
    firsts = np.cumsum(lengths) - lengths                  # each array's first place in the run
    places = np.repeat((offsets - shift) // size - firsts, lengths)
    places += np.arange(len(places))
    run = typed[places]
    drops = np.flatnonzero(run[1:] < run[:-1]) + 1         # places whose value is below the one before
    rows = np.searchsorted(firsts, drops, side="right") - 1
    found = np.zeros(len(offsets), dtype=bool)
    found[rows[drops != firsts[rows]]] = True              # not where one array ends and the next starts
    return found


def sample(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: str) -> np.ndarray | None:
    """A sparse index of sorted arrays: every STRIDE-th value of each (rows: arrays), +inf past
    an array's end; None when it would hold more than MAX_SAMPLES values."""
    columns = np.arange(0, max(int(lengths.max(initial=0)), 1), STRIDE)
    if len(offsets) * len(columns) > MAX_SAMPLES:
        return None
    found = np.full((len(offsets), len(columns)), np.inf)
    rows = np.flatnonzero(lengths > 0)
    positions = np.minimum(columns, lengths[rows, None] - 1)
    found[rows] = np.where(columns < lengths[rows, None], values(buffer, offsets[rows], positions, dtype), np.inf)
    return found


def sampled_window(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: str, low: float,
                   high: float, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sorted array, (searchsorted(array, low, "left"), searchsorted(array, high, "right")) through
    its samples: k samples below low put the window's start among the STRIDE values after sample
    k - 1, read in one pass with the SCAN values after them, where a narrow window ends; a binary
    search only for the arrays whose window runs on past them."""
    below = (samples < low).sum(axis=1)
    base = np.where(below > 0, (below - 1) * STRIDE + 1, 0)
    first, last, rows = lengths.astype(np.int64), lengths.astype(np.int64), np.flatnonzero(base < lengths)
    positions = base[rows, None] + np.arange(STRIDE + SCAN)
    inside = positions < lengths[rows, None]
    block = values(buffer, offsets[rows], np.minimum(positions, lengths[rows, None] - 1), dtype)
    first[rows] = base[rows] + ((block < low) & inside).sum(axis=1)
    within = (block <= high) & inside
    last[rows] = base[rows] + within.sum(axis=1)
    longer = rows[within.all(axis=1)]
    last[longer] = search(buffer, offsets[longer], lengths[longer], dtype, high, right=True)
    return first, last


def _window_ends(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, first: np.ndarray, dtype: str,
                 high: float) -> np.ndarray:
    """Per array, searchsorted(array, high, "right") knowing it is >= first: the SCAN values from
    first read in one pass (a window is narrow, and they share first's cache line); a binary
    search only for the arrays whose window runs on past them."""
    ends, rows = first.copy(), np.flatnonzero(first < lengths)
    steps = np.arange(SCAN)
    ahead = values(buffer, offsets[rows], np.minimum(first[rows, None] + steps, lengths[rows, None] - 1), dtype)
    within = (ahead <= high) & (steps < (lengths[rows] - first[rows])[:, None])
    ends[rows] += within.sum(axis=1)
    longer = rows[within.all(axis=1)]
    ends[longer] = search(buffer, offsets[longer], lengths[longer], dtype, high, right=True)
    return ends


def _ragged_sums(buffer: np.ndarray, offsets: np.ndarray, first: np.ndarray, counts: np.ndarray,
                 dtype: str) -> np.ndarray:
    """Per spectrum, the sum of counts[i] intensities from index first[i]; spectra grouped by
    count, so each sum is numpy's sum of one row (the same result as summing that slice alone)."""
    sums = np.zeros(len(offsets))
    for count in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == count)
        starts = offsets[rows] + first[rows] * np.dtype(dtype).itemsize
        sums[rows] = _sums(buffer, starts, int(count), dtype)
    return sums


def search(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: str, value: float,
           right: bool) -> np.ndarray:
    """Per sorted array (at offsets, of lengths), numpy.searchsorted(array, value, side): every
    array searched at once, reading only the values each step probes."""
    low, high = np.zeros(len(offsets), dtype=np.int64), lengths.astype(np.int64)
    size = np.dtype(dtype).itemsize
    while (open_ := np.flatnonzero(low < high)).size:
        middle = (low[open_] + high[open_]) // 2
        probed = values(buffer, offsets[open_] + middle * size, 1, dtype)[:, 0]
        after = probed <= value if right else probed < value
        low[open_] = np.where(after, middle + 1, low[open_])
        high[open_] = np.where(after, high[open_], middle)
    return low


def values(buffer: np.ndarray, starts: np.ndarray, columns, dtype: str) -> np.ndarray:
    """(len(starts), columns) values of dtype: row i from byte offset starts[i], at the given
    column indices (one list for every row, or a row of them per start; the first `columns` when
    an int), gathered from the mapped file GATHER values at a time (the index arrays stay small)."""
    columns = np.arange(columns) if isinstance(columns, int) else np.asarray(columns, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    found = np.empty(np.broadcast_shapes((len(starts), 1), columns.shape), dtype=dtype)
    step = max(1, GATHER // max(found.shape[1], 1))
    for begin in range(0, len(starts), step):
        rows = slice(begin, begin + step)
        found[rows] = _gather(buffer, starts[rows], columns if columns.ndim < 2 else columns[rows], dtype)
    return found


def _gather(buffer: np.ndarray, starts: np.ndarray, columns: np.ndarray, dtype: str) -> np.ndarray:
    """values() of some rows, through typed views of the file (one per offset alignment)."""
    size = np.dtype(dtype).itemsize
    shifts = starts % size
    found = np.empty(np.broadcast_shapes((len(starts), 1), columns.shape), dtype=dtype)
    for shift in np.unique(shifts).tolist():  # one in the usual file, whose arrays all align alike
        rows = slice(None) if (shifts == shift).all() else shifts == shift
        typed = np.frombuffer(buffer, dtype=dtype, offset=shift, count=(len(buffer) - shift) // size)
        found[rows] = typed[((starts[rows] - shift) // size)[:, None] + (columns if columns.ndim < 2 else columns[rows])]
    return found


def _sums(buffer: np.ndarray, starts: np.ndarray, columns, dtype: str) -> np.ndarray:
    """Per start, the float64 sum of its row of values(...), GATHER values at a time (a wide
    window over many spectra never holds all its values at once)."""
    width = columns if isinstance(columns, int) else len(columns)
    step = max(1, GATHER // max(width, 1))
    parts = [values(buffer, starts[i:i + step], columns, dtype).astype(np.float64).sum(axis=1)
             for i in range(0, len(starts), step)]
    return np.concatenate(parts) if parts else np.zeros(0)


def top_peaks(mz: np.ndarray, intensity: np.ndarray, count: int = PEAKS,
              centroid: bool = False) -> list[tuple[float, float]]:
    """The `count` highest local maxima of a spectrum as (m/z, intensity), highest first; in
    centroid data every point is a peak (a neighbour's height says nothing of it)."""
    intensity = np.asarray(intensity, dtype=np.float64)
    if centroid:
        maxima = np.flatnonzero(intensity > 0)
    elif len(intensity) < 3:
        return []
    else:
        middle = intensity[1:-1]
        maxima = np.flatnonzero((middle > intensity[:-2]) & (middle >= intensity[2:]) & (middle > 0)) + 1
    best = maxima[np.argsort(-intensity[maxima], kind="stable")][:count]
    return [(float(mz[i]), float(intensity[i])) for i in best]
