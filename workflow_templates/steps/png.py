"""A small PNG writer and colour map for the QC images (no imaging library needed)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Anchors of matplotlib's viridis, interpolated linearly: readable and colour-blind safe.
VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
                   dtype=np.float64)


def colorize(image: np.ndarray, scale: int = 1) -> np.ndarray:
    """An RGB uint8 picture of a 2-D array: NaN black, values scaled to viridis by min..max."""
    finite = np.isfinite(image)
    low, high = (image[finite].min(), image[finite].max()) if finite.any() else (0.0, 1.0)
    level = np.where(finite, (image - low) / ((high - low) or 1.0), 0.0)
    position = level * (len(VIRIDIS) - 1)
    lower = np.clip(position.astype(int), 0, len(VIRIDIS) - 2)
    fraction = (position - lower)[..., None]
    rgb = VIRIDIS[lower] * (1 - fraction) + VIRIDIS[lower + 1] * fraction
    rgb[~finite] = 0
    return _scaled(rgb.round().astype(np.uint8), scale)


def diverging(image: np.ndarray, limit: float, scale: int = 1) -> np.ndarray:
    """An RGB picture of signed values: blue (-limit or below), white (0), red (+limit or above); NaN black."""
    finite = np.isfinite(image)
    level = np.clip(np.where(finite, image, 0.0) / (limit or 1.0), -1.0, 1.0)[..., None]
    white, blue, red = np.array([247, 247, 247.0]), np.array([33, 102, 172.0]), np.array([178, 24, 43.0])
    rgb = np.where(level < 0, white + (blue - white) * -level, white + (red - white) * level)
    rgb[~finite] = 0
    return _scaled(rgb.round().astype(np.uint8), scale)


def categorical(codes: np.ndarray, palette: np.ndarray, scale: int = 1) -> np.ndarray:
    """An RGB picture of small integer codes, each drawn in its palette colour."""
    return _scaled(np.asarray(palette, np.uint8)[codes], scale)


def _scaled(rgb: np.ndarray, scale: int) -> np.ndarray:
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def encode(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (height, width, 3) uint8 array."""
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) \
        + _chunk(b"IEND", b"")


def write(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB array as a PNG file."""
    Path(path).write_bytes(encode(rgb))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
