"""Accessible form controls for Dash pages: `Choices` (a fieldset of native checkboxes or radio
buttons under a legend) and `Select` (a native select with an accessible name).

They replace dcc.Checklist, dcc.RadioItems and dcc.Dropdown, whose Dash 4 markup puts each
choice's input inside a label with role "option" (axe: nested-interactive) and, for Dropdown,
keeps a focusable input under aria-hidden (axe: aria-hidden-focus); no prop changes either.
Their browser side is portal/assets/controls.js (plain React, loaded by Dash with the assets).
Both keep Dash's `value` contract, so callbacks read and write them like the components they
replace.
"""
from __future__ import annotations

from dash.development.base_component import Component

NAMESPACE = "portal_controls"  # window.portal_controls in controls.js


class _Control(Component):
    """A component drawn by controls.js: the given props, none of them wildcards."""
    _children_props: list[str] = []
    _base_nodes = ["children"]
    _namespace = NAMESPACE
    _props: tuple[str, ...] = ()

    def __init__(self, **props):
        self._prop_names = list(self._props)
        self.available_properties = list(self._props)
        self._valid_wildcard_attributes = []
        self.available_wildcard_properties = []
        unknown = set(props) - set(self._props)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no prop {', '.join(sorted(unknown))}; "
                            f"it takes {', '.join(self._props)}")
        super().__init__(**{name: value for name, value in props.items() if value is not None})


class Choices(_Control):
    """A fieldset of checkboxes (`multiple`, value: a list) or radio buttons (value: one);
    options: {"label", "value", and optionally "count" and "title" (the count's hint)}."""
    _type = "Choices"
    _props = ("id", "legend", "options", "value", "multiple", "className")


class Select(_Control):
    """A native select; `label` names it for assistive technology, `placeholder` is the empty
    choice offered when `clearable` (or when nothing is chosen yet)."""
    _type = "Select"
    _props = ("id", "label", "options", "value", "placeholder", "clearable", "disabled", "className")
