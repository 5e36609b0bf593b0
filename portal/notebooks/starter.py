"""The starter notebooks "Open in Jupyter" writes, and where they go: pure builders (a context
in, an nbformat notebook out), so they are tested without a hub. Names others chose (submitter
ids, cohort names) enter code cells only as Python literals (repr), so a name holding a line
break cannot add a line of code to a notebook someone else runs.

Every notebook loads a few spectra of one dataset into `spectra` (with `DATASET` its id: pixels
on the tissue, by TIC, spread over the image, not the scan's first pixels) and
then ends with the same cells, built once in `spectrum_cells`: the `ims-preprocess` parameters
tuned with controls over the spectrum before and after processing (labcommons/tuning.py), and
saving them as a set when the user may write to the project (else why not, and whom to ask).
What comes before differs: a measurement or an experiment names its
dataset; a cohort (saved, or the explorer's unsaved view) loads its manifest, summarises it and
picks its first imaged file.
"""
from __future__ import annotations

import hashlib
import json
import re

import nbformat
from nbformat import v4

from metadata.idl import metadata_thrift as T

# the folder starter notebooks go in, in the user's home; not a Python name, so it cannot pass for
# the labcommons package when a kernel runs in the home directory (an editable install is found
# after the current directory's namespace packages)
FOLDER = "labcommons-notebooks"
md, code = v4.new_markdown_cell, v4.new_code_cell
CONNECT = "import labcommons\n\nlc = labcommons.connect()\n"
# spectra on the tissue, spread over the image (an image's first pixels in scan order are often bare slide)
LOAD_SPECTRA = "dataset = lc.dataset(DATASET)\nspectra = dataset.tissue_spectra(limit=5)\nlen(spectra)"
HELPER = ("The helper reads the metadata service's address and your token from this server's environment "
          "(docs/notebooks.md).")


def dataset_notebook(kind: str, node: dict, measurements: list[dict] = ()) -> nbformat.NotebookNode:
    """A notebook for one measurement or experiment (given its measurements, imaged first): load
    a few spectra with the notebook helper, then the shared cells."""
    cells = [
        md(f"# {kind} {node['submitter_id']} (project `{node['project_id']}`)\n\n"
           f"Made by the labcommons portal's *Open in Jupyter*. {HELPER}"),
        code(f"{CONNECT}{_dataset_lines(kind, node, measurements)}{LOAD_SPECTRA}"),
        *spectrum_cells(node["submitter_id"]),
    ]
    return _notebook(cells, {"kind": kind, "id": node["id"], "project_id": node["project_id"],
                             "submitter_id": node["submitter_id"]})


def _dataset_lines(kind: str, node: dict, measurements) -> str:
    """DATASET: the measurement itself, or an experiment's first measurement (the helper reads
    spectra of a measurement), with the others listed to try."""
    if kind == "measurement":
        return f"DATASET = {node['id']!r}  # measurement {node['submitter_id']!r}\n"
    listed = "".join(f"    {m['id']!r},  # {m['submitter_id']!r}\n" for m in measurements)
    return (f"# the measurements of experiment {node['submitter_id']!r}\nMEASUREMENTS = [\n{listed}]\n"
            "DATASET = MEASUREMENTS[0]\n")


def cohort_notebook(cohort: T.Cohort, manifest_file: str) -> nbformat.NotebookNode:
    """A notebook for a saved cohort (loaded by its id: names are unique only per owner or
    project) or, when `cohort.id` is "", the explorer's view (its filter written into the cell)."""
    cells = [
        md(_cohort_heading(cohort, manifest_file)),
        code(f"{CONNECT}{_cohort_line(cohort)}\nmanifest = cohort.manifest()  # one row a file\nlen(manifest)"),
        code("import plotly.express as px\n\n"
             "summary = manifest.groupby(['project_id', 'data_format']).size().reset_index(name='files')\n"
             "px.bar(summary, x='project_id', y='files', color='data_format', title='Files per project and format')"),
        md("## The first imaged dataset\nThe first imzML file of the cohort (`lc.dataset` reads it with its ibd)."),
        code("imaged = manifest[manifest['data_format'] == 'imzML']\n"
             "if imaged.empty:\n"
             "    raise LookupError('this cohort has no imzML file, so the cells below have no spectra to show')\n"
             f"DATASET = imaged['id'].iloc[0]  # an imzML data file's id\n{LOAD_SPECTRA}"),
        *spectrum_cells(cohort.name or f"{cohort.kind}-view"),
    ]
    about = {"kind": "cohort", "id": cohort.id, "name": cohort.name} if cohort.id else \
        {"kind": "view", "filter": json.loads(cohort.filter_json or "null")}
    return _notebook(cells, {**about, "document_kind": cohort.kind, "manifest": manifest_file})


def _cohort_heading(cohort: T.Cohort, manifest_file: str) -> str:
    if cohort.id:
        where = f"shared in `{cohort.project_id}`" if cohort.shared else "private"
        title = f"# Cohort “{cohort.name}” ({cohort.kind} documents, {where}, by {cohort.owner})"
        source = (f"{cohort.description}\n\n" if cohort.description else "") + "The cohort is loaded by its id, " \
            "so this notebook follows it when its filter is saved again."
    else:
        title = f"# An explorer view ({cohort.kind} documents)"
        source = f"The view's filter, as it was when exported:\n\n```json\n{cohort.filter_json or '{}'}\n```"
    return (f"{title}\n\nMade by the labcommons portal's *Open in Jupyter* (export to workspace). {source} "
            f"The manifest lists only files in projects you may read. `{manifest_file}` next to this notebook "
            f"holds it as it was when the portal opened this notebook. {HELPER}")


def _cohort_line(cohort: T.Cohort) -> str:
    if cohort.id:
        return f"cohort = lc.cohort_by_id({cohort.id!r})  # {cohort.name!r}"
    return f"cohort = lc.cohort_from_filter({cohort.kind!r}, {json.loads(cohort.filter_json or 'null')!r})"


def spectrum_cells(name: str) -> list[nbformat.NotebookNode]:
    """The cells every starter notebook ends with, on `spectra` of `dataset`: the `ims-preprocess`
    parameters tuned interactively (labcommons/tuning.py), and saved as the set `<name>-tuned`
    (name made a valid set name) when the user may write to the dataset's project."""
    return [
        md("## Tune the preprocessing\nThe `ims-preprocess` workflow's parameters, each within the range the "
           "workflow declares. The figure shows a spectrum before and after the workflow's own smoothing and "
           "baseline removal, with the peaks it picks marked: move a control and it follows; `spectrum` picks "
           "another of the spectra loaded above. *Save as parameter set* keeps the values under the name given."),
        code(f"tuner = lc.tuner('ims-preprocess', dataset, spectra, name={set_name(name)!r})\ntuner"),
        md("The values as tuned, and the figure they give (it stays in the saved notebook; the controls above "
           "need a running kernel). `tuner.set(snr=5)` changes a value from code."),
        code("print(tuner.params)\ntuner.figure()"),
        md("## Save the tuned parameters\nA named parameter set, a new revision each time its values change; "
           "technicians pick it in the workflow's launch form. Saving writes to the dataset's project, so it "
           "needs write access there: the cell checks first, and says whom to ask when you may only read."),
        code("if lc.can_write(tuner.project):\n"
             "    saved = tuner.save(notes='tuned in the starter notebook')\n"
             "    print(f'Saved {saved.name!r}, revision {saved.revision}: technicians pick it in the '\n"
             "          'ims-preprocess launch form.')\n"
             "else:\n"
             "    print(lc.write_access_note(tuner.project))"),
    ]


def set_name(name: str) -> str:
    """`<name>-tuned` as a parameter set name (letters, digits, _ and -; at most 100)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:94] or "cohort"
    return f"{stem}-tuned"


def _notebook(cells: list, context: dict) -> nbformat.NotebookNode:
    notebook = v4.new_notebook(cells=cells)
    notebook.metadata["labcommons"] = context
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


# -- where they go -----------------------------------------------------------------------------

def notebook_path(kind: str, name: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return f"{FOLDER}/{kind}-{safe}.ipynb"


def cohort_path(cohort: T.Cohort) -> str:
    """A saved cohort's notebook, its name and its id's start (two cohorts may share a name);
    a view's, its kind and a digest of its filter (another filter, another notebook)."""
    if cohort.id:
        return notebook_path("cohort", f"{cohort.name}-{cohort.id[:8]}")
    digest = hashlib.sha256((cohort.filter_json or "").encode()).hexdigest()[:10]
    return notebook_path("view", f"{cohort.kind}-{digest}")


def manifest_path(notebook: str) -> str:
    """The manifest snapshot written next to a cohort's notebook."""
    return notebook.removesuffix(".ipynb") + ".manifest.tsv"
