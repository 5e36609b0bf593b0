"""A QC verdict's checks in words people use, for every page that shows one (the run page, the
runs list, a measurement's QC history, notifications): ims-qc's metric names become labels, shares
percentages and mass errors ppm. Plain text, no Dash, so Flask pages use it too."""
from __future__ import annotations

import re

# ims-qc's checks (workflow_templates/steps/qc_merge.py) for people: label, and how a value reads
QC_CHECKS = {"pair_integrity": ("imzML/ibd pair problems", "count"), "spectra": ("Spectra", "count"),
             "spectra_readable_fraction": ("Readable spectra", "share"),
             "pixel_completeness": ("Pixels with a spectrum", "share"), "dropped_lines": ("Dropped lines", "count"),
             "tic_median": ("Median total ion current", "count"), "peaks_mean": ("Mean peaks per spectrum", "number"),
             "mass_error_ppm": ("Median mass error (absolute)", "ppm")}
# a failing check as the worker words it (workflow_templates/worker.py check_text): "peaks_mean 0.22 (minimum 1)"
CHECK_TEXT = re.compile(r"(?P<metric>[a-z_]+) (?P<value>\S+)(?: \((?P<bounds>[^)]*)\))?")


def check_label(metric: str) -> str:
    """A QC check's name for people ("Pixels with a spectrum"); an unknown one as it is."""
    return QC_CHECKS.get(metric, (metric.replace("_", " ").capitalize() if metric else "", ""))[0]


def check_amount(metric: str, value) -> str:
    """A check's value or threshold with its unit: shares as percent, ppm, counts grouped."""
    kind = QC_CHECKS.get(metric, ("", ""))[1]
    if value is None:
        return "–"  # not assessed
    try:
        number = float(value)
    except (TypeError, ValueError):
        return shown(value)
    if kind == "share":
        return f"{number * 100:.4g}\u00a0%"  # a unit never wraps apart from its number
    if kind == "ppm":
        return f"{number:.2f}\u00a0ppm"
    if kind == "count":
        return f"{number:,.0f}"
    return f"{number:,.3g}" if kind == "number" else shown(value)


def failing_text(text: str) -> str:
    """A failing check as the worker words it ("pixel_completeness 0.6667 (minimum 0.8)") for
    people ("Pixels with a spectrum 66.7 % (minimum 80 %)"); other text as it is."""
    found = CHECK_TEXT.fullmatch(text or "")
    if not found or found["metric"] not in QC_CHECKS:
        return text
    metric = found["metric"]
    bounds = [part.split(" ", 1) for part in (found["bounds"] or "").split(", ") if " " in part]
    limits = ", ".join(f"{word} {check_amount(metric, bound)}" for word, bound in bounds)
    return f"{check_label(metric)} {check_amount(metric, found['value'])}" + (f" ({limits})" if limits else "")


def run_message(message: str) -> str:
    """A run's message with its failing checks for people ("succeeded; QC failed: <check>; ...")."""
    head, marker, checks = (message or "").partition("QC failed: ")
    if not marker:
        return message or ""
    return head + marker + "; ".join(failing_text(c) for c in checks.split("; "))


def shown(value) -> str:
    """A number as a report gives it, to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
