"""The tuner's ipywidgets (labcommons/tuning.py holds what they show): a widget per control,
a spectrum chooser, the figure, and the Save button with its outcome. Imported only when a
tuner is displayed, so the helper works without a notebook frontend."""
from __future__ import annotations

import functools
import html
import math

import ipywidgets as W
from IPython.display import clear_output, display

from labcommons.notebook import ParameterError, WriteAccessError

WIDE = {"description_width": "14em"}  # room for "smoothing-window (m/z)"
LAYOUT = {"width": "38em"}


def control_widget(control) -> W.ValueWidget:
    """The widget for one Control: its name (and unit) as the label, its description as the tooltip."""
    label = f"{control.name} ({control.unit})" if control.unit else control.name
    common = {"description": label, "tooltip": control.description, "style": WIDE, "layout": LAYOUT}
    if control.kind == "toggle":
        return W.Checkbox(value=control.value, indent=True, **common)
    if control.kind == "choice":
        return W.Dropdown(options=control.options, value=control.value, **common)
    sliding = {"step": control.step, "continuous_update": False, "readout_format": ".3g", **common}
    if control.kind == "log-slider":
        return W.FloatLogSlider(value=control.value, base=10, min=math.log10(control.minimum),
                                max=math.log10(control.maximum), **sliding)
    return W.FloatSlider(value=control.value, min=control.minimum, max=control.maximum, **sliding)


class TunerWidget:
    """The box a Tuner shows; each change updates the tuner's params and redraws the figure."""

    def __init__(self, tuner):
        self.tuner = tuner
        self.controls = {c.name: control_widget(c) for c in tuner.controls}
        for name, widget in self.controls.items():
            widget.observe(functools.partial(self._changed, name), "value")
        self.spectrum = W.IntSlider(value=tuner.spectrum, min=0, max=max(len(tuner.spectra) - 1, 0),
                                    description="spectrum", style=WIDE, layout=LAYOUT, continuous_update=False,
                                    disabled=len(tuner.spectra) < 2)
        self.spectrum.observe(self._spectrum_changed, "value")
        self.plot = W.Output()
        self.name = W.Text(value=tuner.name, description="parameter set", style=WIDE, layout=LAYOUT)
        self.save_button = W.Button(description="Save as parameter set", icon="save", button_style="primary")
        self.save_button.on_click(self._save)
        self.status = W.HTML()
        self.box = W.VBox([W.HTML(f"<b>{tuner.template.title or tuner.template.name}</b>: parameters"),
                           *self.controls.values(), self.spectrum, self.plot,
                           W.HBox([self.name, self.save_button]), self.status])
        self._offer_saving()
        self.render()

    def render(self) -> None:
        with self.plot:
            clear_output(wait=True)
            display(self.tuner.figure())

    def replace(self, control) -> None:
        """Show a new widget for a control whose kind or unit changed (a width set in another unit)."""
        old, new = self.controls[control.name], control_widget(control)
        new.observe(functools.partial(self._changed, control.name), "value")
        self.controls[control.name] = new
        self.box.children = tuple(new if child is old else child for child in self.box.children)

    def _changed(self, name: str, change) -> None:
        self.tuner.params[name] = self.tuner.control(name).param(change["new"])
        self.render()

    def _spectrum_changed(self, change) -> None:
        self.tuner.spectrum = change["new"]
        self.render()

    def _offer_saving(self) -> None:
        """Saving checked first: a reader sees why it needs write access, not a refusal later."""
        commons, project = self.tuner._commons, self.tuner.project
        if not commons.can_write(project):
            self.save_button.disabled = True
            self.status.value = _note(commons.write_access_note(project))

    def _save(self, _button) -> None:
        self.tuner.name = self.name.value.strip()
        try:
            saved = self.tuner.save()
        except (WriteAccessError, ParameterError, ValueError) as refused:
            self.status.value = _note(str(refused))
            return
        self.status.value = _note(f"Saved {saved.name!r}, revision {saved.revision}: technicians pick it in the "
                                  f"{saved.template} launch form.", ok=True)


def _note(text: str, ok: bool = False) -> str:
    colour = "var(--jp-success-color1, green)" if ok else "var(--jp-warn-color1, #b35900)"
    return f'<div style="color: {colour}; max-width: 60em">{html.escape(text, quote=False)}</div>'
