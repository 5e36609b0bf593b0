"""The arrays behind a measurement's previews, read from an imzML/ibd pair (ims/layout.py).

`compute` reads every spectrum once (twice in processed mode) and keeps only summaries: the
total-ion-current (TIC) image, the mean spectrum, and the pair's Layout (where each pixel's
spectrum lies in the ibd file), so a pixel's spectrum or an ion image is later read straight from
the ibd without parsing the imzML.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ground.storage import open_checked
from ims import images, layout as ibd
from ims.layout import Layout

# Processed-mode spectra have an m/z axis each; their mean is summed into this many bins.
MEAN_BINS = 2000


@dataclass(frozen=True)
class Preview(Layout):
    """What the measurement page draws, beside the Layout it was read with."""
    tic: np.ndarray        # (height, width) TIC per pixel; NaN where the image has no spectrum
    mz: np.ndarray         # the mean spectrum's m/z axis
    mean: np.ndarray       # mean intensity per pixel with a spectrum
    binned: bool           # processed mode: the mean was summed into MEAN_BINS bins

    def brightest(self) -> tuple[int, int]:
        """imzML (x, y) of the pixel with the highest TIC (the page's first pixel spectrum)."""
        row, column = np.unravel_index(np.nanargmax(self.tic), self.tic.shape)
        return int(column) + self.origin[0], int(row) + self.origin[1]


def compute(imzml: Path, ibd_path: Path) -> Preview:
    """Read a checked imzML/ibd pair into a Preview (called once per file; see cache.py)."""
    with open_checked(imzml) as xml, open_checked(ibd_path) as binary:
        found = ibd.read(xml, binary, Path(imzml).name)
        mz, mean, binned = _mean_spectrum(found.spans, found.dtypes, binary)
    tic = found.on_grid(images.tic(found, ibd_path))   # the notebook helper's tissue pixels use the same sums
    return Preview(found.index, found.origin, found.spans, found.dtypes, tic=tic, mz=mz, mean=mean, binned=binned)


def spectrum(preview: Preview, ibd_path: Path, number: int) -> tuple[np.ndarray, np.ndarray]:
    """(m/z, intensity) of one spectrum, read on demand from the ibd file."""
    return ibd.spectrum(preview, ibd_path, number)


def _mean_spectrum(spans: np.ndarray, dtypes, binary) -> tuple[np.ndarray, np.ndarray, bool]:
    """(m/z, mean intensity, binned): on the shared axis in continuous mode, else binned."""
    if len(np.unique(spans[:, 0])) == 1:  # continuous mode: every spectrum points at one m/z array
        mz = ibd.read_array(binary, spans[0, 0], spans[0, 1], dtypes[0])
        total = np.zeros(len(mz))
        for span in spans:
            total += ibd.read_array(binary, span[2], span[3], dtypes[1])
        return mz, total / len(spans), False
    edges = _bin_edges(spans, dtypes, binary)
    total = np.zeros(len(edges) - 1)
    for span in spans:
        mz, intensity = ibd.read_spectrum(binary, span, dtypes)
        total += np.histogram(mz, bins=edges, weights=intensity)[0]
    return (edges[:-1] + edges[1:]) / 2, total / len(spans), True


def _bin_edges(spans: np.ndarray, dtypes, binary) -> np.ndarray:
    """MEAN_BINS equal bins from the lowest to the highest m/z of any spectrum."""
    low, high = np.inf, -np.inf
    for span in spans:
        mz = ibd.read_array(binary, span[0], span[1], dtypes[0])
        if len(mz):
            low, high = min(low, mz.min()), max(high, mz.max())
    if not np.isfinite(low):
        low, high = 0.0, 1.0
    return np.linspace(low, high if high > low else low + 1.0, MEAN_BINS + 1)
