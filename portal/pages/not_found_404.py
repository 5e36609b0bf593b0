"""Dash's page for an address no page has (Dash finds it by its module name): the same words and
ways back as the Flask pages' 404 (portal/errors.py), in the Dash shell. The server answers such
an address with status 404 (errors.mark_unknown_paths)."""
from __future__ import annotations

import dash
from dash import html

from portal import errors
from portal.explorer.widgets import breadcrumbs

dash.register_page(__name__, path="/404", title="Page not found · labcommons", name="Not found")


def layout(**_query):
    """Dash passes the page no path; the routing callback's input holds it."""
    path = (dash.ctx.inputs or {}).get("_pages_location.pathname") or "this address"
    problem = errors.not_found(path)
    return html.Div([breadcrumbs(problem.trail, "breadcrumbs"), html.H1(problem.heading),
                     html.Div(html.Strong(problem.message), className="message", role="alert", id="problem-message"),
                     html.P([html.A(label, href=href, className="message-link") for label, href in problem.ways],
                            className="ways", id="problem-ways")], className="browse", id="not-found-page")
