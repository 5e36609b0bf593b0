"""Interactive tuning of a workflow's processing parameters in a notebook: `lc.tuner(...)`.

A control per parameter the preview uses, bound to what the template declares (its enum, its
range, its unit: the launch form's own TemplateParameter), the spectrum before and after
processing with the picked peaks marked, and saving the tuned values as a parameter set. The
preview runs the workflow's own processing (workflow_templates/steps/processing.py, the pyOpenMS
calls of the `ims-preprocess` steps), so the peaks shown are the peaks a run picks.

Pure parts (controls, preview, figure) apart from the ipywidgets adapter (Tuner) that drives them,
so they are tested without a browser.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go

from metadata.idl import metadata_thrift as T
from workflow_templates.steps import processing

# the parameters the preview applies, in the order the workflow applies them
PREVIEWED = ("smoothing", "smoothing-window", "baseline", "baseline-window", "peak-picking", "snr")
SLIDER_STEPS = 200  # positions of a linear slider between its bounds
LOG_DECADES = 3  # a range spanning this many decades gets a logarithmic slider
ZERO_FLOOR = 1e-5  # a logarithmic slider from 0 starts at this fraction of its maximum
X_TITLE, Y_TITLE = "m/z", "intensity (a.u.)"
# A width parameter (a string whose unit the template declares as processing.WIDTH_UNIT: a number
# with its unit) slides over the number in its unit; its pattern caps it, these are sensible spans.
WIDTH_SLIDERS = {"ppm": (1.0, 10000.0), "m/z": (0.0001, 100.0)}


@dataclass(frozen=True)
class Control:
    """What one parameter's widget shows: kind is choice, toggle, slider or log-slider; a width
    slides over its number, the unit fixed (the parameter's value is both: `param`)."""
    name: str
    kind: str
    value: object
    description: str = ""
    options: tuple[str, ...] = ()
    minimum: float = 0.0
    maximum: float = 1.0
    step: float = 0.01
    unit: str = ""
    width: bool = False

    def param(self, value) -> object:
        """The parameter's value for a widget value: a width's number with its unit."""
        return str(processing.Width(float(value), self.unit)) if self.width else value


def controls(template: T.WorkflowTemplate, values: dict | None = None,
             names: tuple[str, ...] = PREVIEWED) -> list[Control]:
    """The controls of the template's parameters named (those the preview applies), at `values`
    where given, else at the template's defaults."""
    declared = {p.name: p for p in template.parameters}
    missing = [n for n in names if n not in declared]
    if missing:
        raise LookupError(f"template {template.name!r} declares no parameter {', '.join(map(repr, missing))}; "
                          f"it has {', '.join(sorted(declared))}")
    return [control(declared[n], (values or {}).get(n)) for n in names]


def control(parameter: T.TemplateParameter, value=None) -> Control:
    """One parameter's control: a choice for an enum, a toggle for a boolean, else a slider
    between the template's bounds (logarithmic when they span LOG_DECADES decades or more)."""
    text = parameter.default_value if value is None else value
    about = {"name": parameter.name, "description": parameter.description, "unit": parameter.unit or ""}
    if parameter.type == "boolean":
        return Control(kind="toggle", value=str(text).lower() == "true", **about)
    if parameter.enum_values:
        return Control(kind="choice", value=str(text), options=tuple(parameter.enum_values), **about)
    if parameter.type == "string" and parameter.unit == processing.WIDTH_UNIT:
        return _width_control(processing.width(text), about)
    if parameter.type not in ("number", "integer") or parameter.minimum is None or parameter.maximum is None:
        raise ValueError(f"parameter {parameter.name!r} has no range to slide over (type {parameter.type})")
    low, high, number = float(parameter.minimum), float(parameter.maximum), float(text)
    floor = low if low > 0 else high * ZERO_FLOOR
    if high / floor >= 10 ** LOG_DECADES:
        low = floor
        return Control(kind="log-slider", value=min(max(number, low), high), minimum=low, maximum=high,
                       step=(math.log10(high) - math.log10(low)) / SLIDER_STEPS, **about)
    step = 1.0 if parameter.type == "integer" else (high - low) / SLIDER_STEPS
    return Control(kind="slider", value=number, minimum=low, maximum=high, step=step, **about)


def _width_control(width: processing.Width, about: dict) -> Control:
    """A logarithmic slider over the width's number, in its unit."""
    low, high = WIDTH_SLIDERS[width.unit]
    return Control(kind="log-slider", value=min(max(width.value, low), high), minimum=low, maximum=high,
                   step=(math.log10(high) - math.log10(low)) / SLIDER_STEPS, width=True,
                   **{**about, "unit": width.unit})


@dataclass(frozen=True)
class Preview:
    """A spectrum after smoothing and baseline removal, and the peaks picked on it (none when
    peak picking is off); a centroided one as it is, its sticks the peaks."""
    intensity: np.ndarray
    peaks_mz: np.ndarray
    peaks_intensity: np.ndarray
    centroided: bool = False


def preview(mz, intensity, params: dict, centroided: bool = False) -> Preview:
    """What the workflow does to one spectrum with these parameters (its own functions); a
    centroided spectrum it copies as it is."""
    mz = np.asarray(mz, np.float64)
    if centroided:
        return Preview(np.asarray(intensity), mz, np.asarray(intensity), centroided=True)
    processed = processing.smooth(mz, np.asarray(intensity, np.float32), params["smoothing"],
                                  params["smoothing-window"])
    processed = processing.remove_baseline(mz, processed, params["baseline"], float(params["baseline-window"]))
    if not _true(params["peak-picking"]):
        return Preview(np.asarray(processed), np.zeros(0), np.zeros(0))
    peaks_mz, peaks_intensity = processing.pick_peaks(mz, processed, float(params["snr"]))
    return Preview(np.asarray(processed), peaks_mz, peaks_intensity)


def figure(mz, intensity, result: Preview, params: dict, title: str = "") -> go.Figure:
    """The spectrum before (grey) and after processing, the picked peaks marked on it."""
    picked = _picked(result, float(params["snr"])) if _true(params["peak-picking"]) else "peak picking off"
    if result.centroided:
        picked = f"{len(result.peaks_mz)} centroids, copied as they are (processing applies to profile spectra)"
    fig = go.Figure([
        go.Scatter(x=mz, y=intensity, name="before", mode="lines", line={"color": "#bbbbbb", "width": 1}),
        go.Scatter(x=mz, y=result.intensity, name="after smoothing and baseline removal", mode="lines",
                   line={"color": "#1f77b4", "width": 1.5}),
        go.Scatter(x=result.peaks_mz, y=result.peaks_intensity, name="picked peaks", mode="markers",
                   marker={"symbol": "triangle-down", "size": 9, "color": "#d62728"}),
    ])
    fig.update_layout(title={"text": f"{title + ': ' if title else ''}{picked}"}, xaxis_title=X_TITLE,
                      yaxis_title=Y_TITLE, legend={"orientation": "h", "y": -0.2}, margin={"t": 60},
                      hovermode="x")
    return fig


def _picked(result: Preview, snr: float) -> str:
    """How many peaks reach the S/N; when none does, what to try."""
    text = f"{len(result.peaks_mz)} peaks picked at S/N ≥ {snr:g}"
    if len(result.peaks_mz) or not len(result.intensity):
        return text
    return f"{text}: nothing stands out of this spectrum's noise (off the tissue?): try another spectrum or a lower S/N"


def strongest(spectra) -> int:
    """The spectrum with the most total intensity: where there is tissue, rather than bare slide
    (an image's first pixels in scan order are usually its slide's corner)."""
    totals = [float(np.sum(intensity)) for intensity in spectra.intensity]
    return int(np.argmax(totals)) if totals else 0


def _true(value) -> bool:
    return value is True or str(value).lower() == "true"


class Tuner:
    """The controls, the before/after figure of the chosen spectrum, and a Save button, as
    ipywidgets; `params` holds the tuned values, `save(name)` keeps them as a parameter set.
    Displayed by ending a cell with it. Made by Commons.tuner."""

    def __init__(self, commons, template: T.WorkflowTemplate, dataset, spectra, name: str = "",
                 values: dict | None = None):
        self._commons, self.template, self.dataset, self.spectra = commons, template, dataset, spectra
        self.controls = controls(template, values)
        self.params = {c.name: c.param(c.value) for c in self.controls}
        self.spectrum = strongest(spectra)
        self.name = name
        self._widget = None

    @property
    def project(self) -> str:
        """The project the dataset, and so a saved set, belongs to."""
        return self.dataset.node["project_id"]

    def figure(self) -> go.Figure:
        """The chosen spectrum before and after processing with the current parameters."""
        mz, intensity = self.spectra.mz[self.spectrum], self.spectra.intensity[self.spectrum]
        x, y, _ = self.spectra.coordinates[self.spectrum]
        centroided = self.dataset.node.get("spectrum_type") == "centroid"
        return figure(mz, intensity, preview(mz, intensity, self.params, centroided), self.params,
                      f"{self.dataset.node['submitter_id']}, pixel ({x}, {y})")

    def save(self, name: str = "", notes: str = "tuned in a notebook") -> T.ParameterSetRevision:
        """The tuned values as the newest revision of set `name` (the tuner's name by default);
        WriteAccessError (why, and whom to ask) when the user may not write to the project."""
        return self._commons.save_parameter_set(template=self.template.name, name=name or self.name,
                                                params=self.params, dataset=self.dataset.id, notes=notes,
                                                project=self.project)

    def set(self, **values) -> None:
        """Change parameters as the widgets do (`set(snr=5)`, `set(smoothing_window="20 ppm")`;
        names with - as _)."""
        for key, value in values.items():
            name = key.replace("_", "-")
            if name not in self.params:
                raise KeyError(f"{name!r} is not tuned here; tuned: {', '.join(self.params)}")
            self._widgets_or_params(name, self._slid(name, value))

    def control(self, name: str) -> Control:
        return next(c for c in self.controls if c.name == name)

    def _slid(self, name: str, value):
        """The widget value for a parameter value: a width's number (its control in that unit)."""
        control = self.control(name)
        if not control.width:
            return value
        width = processing.width(value)
        if width.unit != control.unit:
            changed = _width_control(width, {"name": name, "description": control.description, "unit": width.unit})
            self.controls[self.controls.index(control)] = changed
            if self._widget is not None:
                self._widget.replace(changed)
        return width.value

    def _widgets_or_params(self, name: str, value) -> None:
        if self._widget is not None:
            self._widget.controls[name].value = value  # the widget's observer updates params and the figure
        self.params[name] = self.control(name).param(value)

    @property
    def widget(self):
        """The ipywidgets box (made on first use)."""
        if self._widget is None:
            from labcommons.tuning_widgets import TunerWidget
            self._widget = TunerWidget(self)
        return self._widget.box

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
