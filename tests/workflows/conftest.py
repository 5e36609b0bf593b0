"""Fixtures for the workflow templates and their step programs.

- imzml:        factory: imzml(mode) -> path of a small demo .imzML (its .ibd beside it), written
                once per session with labcommons.demo.imzml (real pyimzML files).
- spectra_of:   factory: spectra_of(imzml path) -> (coordinates, [(mz, intensity), ...]) read
                with pyimzML, the reference the step outputs are checked against.
- converted:    factory: converted(mode, per_shard) -> (out dir, shard paths) after running the
                convert program into a fresh directory under tmp_path.
"""
from __future__ import annotations

import pytest
from pyimzml.ImzMLParser import ImzMLParser

from labcommons.demo.imzml import write_imzml_pair
from workflow_templates.steps import convert

WIDTH, HEIGHT = 12, 10  # 120 spectra: a few shards, a tissue blob and bare slide around it


@pytest.fixture(scope="session")
def imzml(tmp_path_factory):
    written = {}

    def make(mode: str = "continuous"):
        if mode not in written:
            directory = tmp_path_factory.mktemp(f"imzml-{mode}")
            written[mode] = write_imzml_pair(directory, "sample", WIDTH, HEIGHT, seed=5, mode=mode)[0]["path"]
        return written[mode]
    return make


@pytest.fixture(scope="session")
def spectra_of():
    def read(path):
        with ImzMLParser(str(path)) as parser:
            return list(parser.coordinates), [parser.getspectrum(i) for i in range(len(parser.coordinates))]
    return read


@pytest.fixture
def converted(imzml, tmp_path):
    def run(mode: str = "continuous", per_shard: int = 50):
        out_dir = tmp_path / f"convert-{mode}-{per_shard}"
        return out_dir, convert.convert(imzml(mode), out_dir, per_shard)
    return run
