"""The QC report as HUPO-PSI mzQC 1.0 (written with pymzqc): one run quality for the imzML, its
metrics as PSI-MS QC terms (MS:4000xxx). What the vocabulary has no term for stays in report.json
only: pixel completeness, row and column profiles, the images, and mass accuracy (PSI-MS's
"observed mass accuracy", MS:4000072, is an identification-based metric that an mzQC validator
accepts only with an identification input file; reference ions are not one).
"""
from __future__ import annotations

import importlib.util
import json
import sys
import types
from datetime import datetime, timezone
from pathlib import Path


class _Deferred(types.ModuleType):
    """A module imported at its first use: pymzqc imports pandas (half a second, most of
    qc_merge's run on a small image) only to read dates, which writing never does."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def _defer(name: str) -> None:
    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        sys.modules[name] = _Deferred(name)


_defer("pandas")
from mzqc import MZQCFile as qc  # noqa: E402 - after pandas is made lazy

from workflow_templates.steps.atomic import write_text

PSI_MS = qc.ControlledVocabulary(name="Proteomics Standards Initiative Mass Spectrometry Ontology",
                                 uri="https://github.com/HUPO-PSI/psi-ms-CV/releases/download/v4.1.206/psi-ms.obo",
                                 version="4.1.206")
IMZML_FORMAT = qc.CvParameter(accession="MS:1002838", name="mzML format")  # imzML is mzML with an ibd
SOFTWARE_URI = "https://github.com/labcommons/labcommons"
TIC_TABLE = "MS:4000104"


def build(report: dict, imzml: str, version: str) -> qc.MzQcFile:
    """The mzQC document of a report (qc_merge's dict)."""
    metadata = qc.MetaDataParameters(
        label=Path(imzml).name,
        inputFiles=[qc.InputFile(location=Path(imzml).absolute().as_uri(), name=Path(imzml).name,
                                 fileFormat=IMZML_FORMAT)],
        analysisSoftware=[qc.AnalysisSoftware(accession="MS:1000799", name="custom unreleased software tool",
                                              value="labcommons ims-qc", version=version, uri=SOFTWARE_URI,
                                              description=DEFINITIONS["MS:1000799"])])
    return qc.MzQcFile(creationDate=datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None),
                       version="1.0.0", description="Imaging MS quality control of one imzML/ibd pair",
                       runQualities=[qc.RunQuality(metadata=metadata, qualityMetrics=metrics(report))],
                       controlledVocabularies=[PSI_MS])  # PSI-MS carries the unit terms too


# The vocabulary's own definitions: a validator refuses a term whose description differs.
DEFINITIONS = {
    "MS:1000799": "A software tool that has not yet been released. The value should describe the software. Please "
                  "do not use this term for publicly available software - contact the PSI-MS working group in "
                  "order to have another CV term added.",
    "MS:4000059": "The number of MS1 events in the run.",
    "MS:4000099": "Number of MS1 scans where the scans' peaks intensity sums to 0 (i.e. no peaks or only "
                  "0-intensity peaks).",
    "MS:4000155": "The area under the total ion chromatogram.",
    "MS:4000104": "Tabular representation of the total ion current detected in each of a series of mass spectra.",
    "MS:4000222": "The minimum and maximum m/z among detected peaks in MS1 spectra in a single MS run, reported "
                  "as a [min, max] tuple.",
}
COUNT = qc.CvParameter(accession="UO:0000189", name="count unit")
MZ = qc.CvParameter(accession="MS:1000040", name="m/z")


def metrics(report: dict) -> list[qc.QualityMetric]:
    """The report's metrics that PSI-MS names."""
    m = report["metrics"]
    found = [
        _metric("MS:4000059", "number of MS1 spectra", m["spectra_readable"], COUNT),   # spectra read
        _metric("MS:4000099", "number of empty MS1 scans", m["spectra_empty"], COUNT),
        _metric("MS:4000155", "area under TIC", m["tic_total"]),     # the sum of every intensity
        _metric(TIC_TABLE, "total ion currents", _tic_table(report)),   # per pixel: TIC and peaks
    ]
    if m["mz_min"] is not None:
        found.append(_metric("MS:4000222", "MS1 observed m/z bounds", [m["mz_min"], m["mz_max"]], MZ))
    return found


def _metric(accession: str, name: str, value, unit=None) -> qc.QualityMetric:
    metric = qc.QualityMetric(accession=accession, name=name, value=value, description=DEFINITIONS[accession])
    if unit is not None:
        metric.unit = unit
    return metric


def _tic_table(report: dict) -> dict:
    """Per spectrum: its pixel as its identifier, its TIC and peak count (PSI-MS table columns)."""
    pixels = report["pixels"]
    return {"MS:1000767": [f"x={x} y={y}" for x, y in zip(pixels["x"], pixels["y"])],
            "MS:1000285": pixels["tic"], "MS:1003059": pixels["peaks"]}


def write(path: Path, report: dict, imzml: str, version: str) -> None:
    """Write the mzQC file (JSON), atomically. pymzqc serialises the document without its TIC table
    (its clean-up runs regular expressions over the whole text, most of qc_merge's time on a large
    image), then the table goes back in as it is: plain lists, nothing to clean."""
    document = build(report, imzml, version)
    [table] = [m for m in document.runQualities[0].qualityMetrics if m.accession == TIC_TABLE]
    rows, table.value = table.value, {}
    text = json.loads(qc.JsonSerialisable.to_json(document, readability=0))
    for metric in text["mzQC"]["runQualities"][0]["qualityMetrics"]:
        if metric["accession"] == TIC_TABLE:
            metric["value"] = rows
    write_text(path, json.dumps(text))
