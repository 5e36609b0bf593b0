"""The starter notebook, built without a hub: valid nbformat, names its context, and runs top
to bottom in a real kernel (nbclient) against a stand-in for the notebook helper (the real helper
runs it in tests/hub/test_handoff.py)."""
from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from portal.jupyter import notebook_path, starter_notebook

NODE = {"id": "0b7c-uuid", "project_id": "atlas-kidney", "submitter_id": "ak-meas-0001", "type": "measurement"}

# the helper's API as the notebook uses it: a few spectra as (m/z, intensity) arrays
STAND_IN = """import labcommons, numpy as np
from types import SimpleNamespace
class _Spectra:
    def __init__(self, limit):
        mz = np.linspace(100, 1000, 400)
        self.mz, self.intensity = [mz] * limit, [100 * np.abs(np.sin(mz / 7))] * limit
    def __len__(self): return len(self.mz)
class _Commons:
    saved = []
    def dataset(self, id):
        assert id == "0b7c-uuid"
        return SimpleNamespace(spectra=lambda limit: _Spectra(limit))
    def save_parameter_set(self, **kwargs):
        self.saved.append(kwargs)
        return SimpleNamespace(revision=1)
labcommons.connect = lambda: _Commons()"""


def test_the_starter_notebook_is_valid_and_names_its_context():
    notebook = starter_notebook("measurement", NODE)
    nbformat.validate(notebook)
    assert notebook.metadata["labcommons"] == {"kind": "measurement", "id": "0b7c-uuid",
                                               "project_id": "atlas-kidney", "submitter_id": "ak-meas-0001"}
    assert "DATASET = '0b7c-uuid'" in notebook.cells[1].source
    assert notebook_path("measurement", "ak/meas 1") == "labcommons/measurement-ak_meas_1.ipynb"


def test_the_starter_notebook_runs_top_to_bottom():
    notebook = starter_notebook("measurement", NODE)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(STAND_IN))
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    outputs = {i: cell.outputs for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    assert outputs[2][0]["data"]["text/plain"] == "5"  # five spectra loaded
    assert int(notebook.cells[6].outputs[0]["data"]["text/plain"]) > 0  # peaks picked
    assert notebook.cells[-1].outputs[0]["data"]["text/plain"] == "1"  # saved as revision 1
