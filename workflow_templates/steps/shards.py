"""Parquet shards of spectra (one row per spectrum), manifests, and atomic file writes.

A shard's columns: `index` (the spectrum's position in the source imzML), `x`, `y`, `z`
(1-based imzML coordinates), `mz` (list<float64>) and `intensity` (list<float32>). Its schema
metadata carries `labcommons.*` keys: the source file, the imzML mode, whether the spectra are
centroided, and the processing applied.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workflow_templates.steps.atomic import atomic as _atomic, write_json, write_text  # noqa: F401 - theirs to import here too
from workflow_templates.steps.cli import StepError

SCHEMA = pa.schema([
    ("index", pa.int64()), ("x", pa.int32()), ("y", pa.int32()), ("z", pa.int32()),
    ("mz", pa.list_(pa.float64())), ("intensity", pa.list_(pa.float32())),
])
META_PREFIX = "labcommons."


@dataclass
class Spectra:
    """A batch of spectra: positions, coordinates (n x 3) and one m/z and intensity array each."""
    index: np.ndarray
    coords: np.ndarray
    mz: list[np.ndarray]
    intensity: list[np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)

    def with_peaks(self, mz: list[np.ndarray], intensity: list[np.ndarray],
                   **metadata: str) -> "Spectra":
        """The same pixels with new spectra, and metadata updated."""
        return Spectra(self.index, self.coords, mz, intensity, {**self.metadata, **metadata})


def write_shard(path: Path, spectra: Spectra) -> None:
    """Write a batch of spectra as one Parquet file, atomically."""
    columns = [
        pa.array(spectra.index, pa.int64()),
        *(pa.array(spectra.coords[:, axis], pa.int32()) for axis in range(3)),
        _list_array(spectra.mz, np.float64), _list_array(spectra.intensity, np.float32),
    ]
    metadata = {f"{META_PREFIX}{key}": str(value) for key, value in spectra.metadata.items()}
    table = pa.Table.from_arrays(columns, schema=SCHEMA.with_metadata(metadata))
    with _atomic(path) as part, pa.OSFile(str(part), "wb") as sink:
        pq.write_table(table, sink)


def read_shard(path: Path, argument: str = "--shard") -> Spectra:
    """Read a shard written by write_shard; a file that is not one raises StepError."""
    try:
        with pa.OSFile(str(path), "rb") as source:
            table = pq.read_table(source)
    except (OSError, pa.ArrowException) as error:
        raise StepError(f"{argument}: {path} is not a readable Parquet shard ({error})") from None
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise StepError(f"{argument}: {path} is not a spectra shard: no column {', '.join(missing)}")
    coords = np.column_stack([table[axis].to_numpy() for axis in ("x", "y", "z")]).astype(np.int32)
    raw = table.schema.metadata or {}
    metadata = {key.decode()[len(META_PREFIX):]: value.decode() for key, value in raw.items()
                if key.decode().startswith(META_PREFIX)}
    return Spectra(table["index"].to_numpy(), coords.reshape(-1, 3), _split(table["mz"], np.float64),
                   _split(table["intensity"], np.float32), metadata)


def _list_array(arrays: list[np.ndarray], dtype) -> pa.ListArray:
    offsets = np.zeros(len(arrays) + 1, np.int32)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    values = np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def _split(column: pa.ChunkedArray, dtype) -> list[np.ndarray]:
    lists = column.combine_chunks()
    offsets = lists.offsets.to_numpy()
    values = lists.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return [values[start:end] for start, end in zip(offsets[:-1], offsets[1:])]


def read_manifest(path: Path, argument: str = "--manifest") -> list[Path]:
    """The shard paths listed in a manifest (a JSON list of paths)."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise StepError(f"{argument}: cannot read the shard manifest {path} ({error})") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StepError(f"{argument}: the shard manifest {path} must be a JSON list of paths")
    return [Path(item) for item in value]


def per_shard(manifest: Path, directory: Path, name, argument: str, what: str) -> list[Path]:
    """directory / name(shard) for every shard of the manifest, in its order; any missing raises StepError."""
    shards = read_manifest(manifest)
    paths = [directory / name(shard) for shard in shards]
    missing = [shard.name for shard, path in zip(shards, paths) if not path.is_file()]
    if missing:
        raise StepError(f"{argument}: no {what} for {len(missing)} shard(s) of {manifest}: "
                        f"{', '.join(missing[:5])}")
    return paths


# Parquet goes through pyarrow's own file handles, never a path: once pyopenms (which bundles a
# second Arrow) is loaded after pyarrow.fs, resolving a path to a filesystem raises
# "Attempted to register factory for scheme 'file'", and the steps' processes load both.
