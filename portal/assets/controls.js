/* The portal's own form controls (their Python side: portal/controls.py).
 *
 * Dash 4's Checklist, RadioItems and Dropdown draw each choice as an input inside a label with
 * role "option" (an interactive control inside another: screen readers announce neither well),
 * and Dropdown adds an aria-hidden input that takes focus. These draw the browser's own controls
 * instead: a fieldset with a legend and native checkboxes or radio buttons, and a native select
 * with an accessible name. Plain React (Dash loads it), no build step.
 */
(function () {
    "use strict";
    const e = React.createElement;

    /* Dash's DOM id for a pattern-matching (dict) id: its keys sorted, as JSON. */
    function domId(id) {
        if (id === undefined || id === null || typeof id === "string") {
            return id;
        }
        return JSON.stringify(Object.keys(id).sort().reduce((o, k) => (o[k] = id[k], o), {}));
    }

    /* A fieldset of checkboxes (multiple) or radio buttons; options: {label, value, count, title, disabled}. */
    function Choices(props) {
        const {id, legend, options = [], value, multiple = true, className, setProps} = props;
        const chosen = multiple ? (value || []) : [value];
        const name = domId(id) || legend;
        const pick = v => setProps({value: multiple
            ? (chosen.includes(v) ? chosen.filter(x => x !== v) : chosen.concat([v])) : v});
        const items = options.map((option, i) => e("label",
            {key: i, className: "choice" + (chosen.includes(option.value) ? " selected" : "")},
            e("input", {type: multiple ? "checkbox" : "radio", name, value: String(option.value),
                        checked: chosen.includes(option.value), disabled: !!option.disabled,
                        onChange: () => pick(option.value)}),
            e("span", {className: "choice-label"}, option.label),
            option.count === undefined || option.count === null ? null
                : e("span", {className: "choice-count", title: option.title || undefined}, option.count)));
        const caption = legend ? e("legend", {}, legend) : null;
        return e("fieldset", {id: domId(id), className: "choices " + (className || "")}, caption, items);
    }

    /* A native select; its first option, empty, stands for "none" when the value may be cleared. */
    function Select(props) {
        const {id, label, options: list = [], value, placeholder, clearable = true, disabled, className, setProps} = props;
        const index = list.findIndex(option => option.value === value);
        const empty = clearable || index < 0
            ? [e("option", {key: "none", value: ""}, placeholder || "")] : [];
        const choices = list.map((option, i) => e("option", {key: i, value: String(i)}, option.label));
        return e("select", {
            id: domId(id), className: "select " + (className || ""), "aria-label": label,
            value: index < 0 ? "" : String(index), disabled: !!disabled,
            onChange: event => setProps({value: event.target.value === "" ? null : list[Number(event.target.value)].value}),
        }, empty.concat(choices));
    }

    window.portal_controls = {Choices, Select};
})();
