"""The experiments browser: programs and their projects (/browse), a project and its experiments
(/browse/<project>), an experiment and its measurements (/browse/<project>/experiment/<id>);
each measurement opens the measurement page (pages/measurement.py).

One page: the path under /browse names the level (browse_widgets.browse_route). Each level shows
its node's properties as the data dictionary describes them, its children with counts, and
breadcrumbs up. Everything is asked of the metadata service as the signed-in user, and what the
service refuses (a project without a grant) is shown in its own words.
"""
from __future__ import annotations

import dash
from dash import html

from portal.explorer import browse, widgets as w
from portal.notebooks.jupyter import open_button


def title(rest: str = "", **_path) -> str:
    route = w.browse_route(rest) or ()
    return " · ".join([*reversed(route), "Experiments", "labcommons"])


dash.register_page(__name__, path="/browse", path_template="/browse/<rest>", title=title, name="Experiments")


def layout(rest: str = "", **_query):
    """The level the path names; the service's message (and a way back) when it cannot be shown."""
    route = w.browse_route(rest)
    try:
        if route is None:
            body = [_problem(f"There is no page at /browse/{rest}.")]
        elif not route:
            body = _programs()
        elif len(route) == 1:
            body = _project(route[0])
        else:
            body = _experiment(*route)
    except browse.FAILURES as error:
        body = [_problem(browse.explain(error))]
    return html.Div(body, className="browse", id="experiments-page")


def _problem(text: str) -> html.Div:
    return w.message(text, [("all programs", "/browse")], id_="experiments-problem")


def _programs() -> list:
    """Every program, its properties and its projects with their counts."""
    dictionary, projects = browse.dictionary(), browse.nodes("project")
    sections = [w.breadcrumbs([("Experiments", None)], "experiments-breadcrumbs")]
    for program in browse.nodes("program"):
        name = program["submitter_id"]
        own = [p for p in projects if w.parent_name(p, "programs") == name]
        counts = {p["submitter_id"]: browse.readable_counts(p["submitter_id"], ("experiment", "measurement"))
                  for p in own}
        sections.append(html.Section([
            w.heading(dictionary["program"], name, program["properties"].get("full_name", "")),
            w.properties_table(program, dictionary["program"], f"experiments-program-{name}"),
            html.H3("Projects"), w.projects_table(name, own, counts),
        ], className="browse-card", id=f"experiments-program-card-{name}"))
    if len(sections) == 1:
        sections.append(html.Div("No programs yet.", className="empty"))
    return sections


def _project(project_id: str) -> list:
    """A project's properties, then (if the user may read it) its counts and experiments."""
    dictionary, project = browse.dictionary(), browse.project(project_id)
    program = w.parent_name(project, "programs")
    parts = [w.breadcrumbs([("Experiments", "/browse"), (program, "/browse"), (project_id, None)],
                           "experiments-breadcrumbs"),
             w.heading(dictionary["project"], project_id, project["properties"].get("name", "")),
             w.section("Properties", w.properties_table(project, dictionary["project"], "experiments-properties"))]
    try:
        counts = browse.counts(project_id)
        experiments = browse.nodes("experiment", project_id)
        measurements = browse.by_parent("measurement", project_id, "experiments")
    except browse.FAILURES as error:
        return parts + [_problem(browse.explain(error))]
    tally = " · ".join(w.counted(n, dictionary[t]["title"]) for t, n in counts.items())
    return parts + [html.Div(tally, className="tally", id="experiments-counts"),
                    w.section("Experiments", w.experiments_table(project_id, experiments, measurements))]


def _experiment(project_id: str, experiment_id: str) -> list:
    """An experiment's properties and its measurements, with their files' formats."""
    dictionary = browse.dictionary()
    experiment = browse.node(project_id, experiment_id, "experiment")
    program = w.parent_name(browse.project(project_id), "programs")
    measurements = browse.by_parent("measurement", project_id, "experiments").get(experiment["id"], [])
    files = browse.by_parent("data_file", project_id, "measurements")
    trail = [("Experiments", "/browse"), (program, "/browse"), (project_id, w.project_href(project_id)),
             (experiment_id, None)]
    return [w.breadcrumbs(trail, "experiments-breadcrumbs"),
            w.heading(dictionary["experiment"], experiment_id, experiment["properties"].get("protocol", "")),
            open_button("experiment", project_id, experiment_id, "experiments-jupyter",
                        imaged=any(browse.imzml_pair(files.get(m["id"], [])) for m in measurements)),
            w.section("Properties", w.properties_table(experiment, dictionary["experiment"], "experiments-properties")),
            w.section(f"Measurements ({len(measurements)})", w.measurements_table(project_id, measurements, files))]
