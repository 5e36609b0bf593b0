"""The frame around every Dash page: the shared header (portal/header.py) and the page.

The frame is drawn once per page load; moving between Dash pages only swaps the page, so
`refresh` redraws the header's inside at each such move (the unread count, the links). Not at the
load itself: the page's Location reports its path once as it mounts, and the header drawn with the
page is current then; redrawing it would swap the buttons under a user's click.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html, no_update
from flask_wtf.csrf import generate_csrf

from portal import header as site


def layout() -> html.Div:
    """Called for every page load (Dash's /_dash-layout), so it shows the current user."""
    return html.Div([header(site.current()), dcc.Store(id="header-path"),
                     html.Main(dash.page_container, className="page", id="main")])


def init_app(dash_app: dash.Dash) -> None:
    """The frame on this Dash app (on the app, not Dash's process-wide list of callbacks, which
    only the first app made in a process would take)."""
    dash_app.layout = layout
    dash_app.callback(Output("site-header", "children"), Output("header-path", "data"),
                      Input("_pages_location", "pathname"), State("header-path", "data"),
                      prevent_initial_call=True)(refresh)


def refresh(path, shown_at):
    """Another Dash page, reached without a page load: the header as it is now; the first path
    a page load reports is where its header was drawn, so that is only remembered."""
    if shown_at is None:
        return no_update, path
    return header(site.current()).children, path


def header(shown: site.Header | None) -> html.Header:
    """The same header as templates/base.html renders, as Dash components."""
    brand = html.A("labcommons", href="/explore", className="brand")
    if shown is None:
        return html.Header([brand], className="site-header", id="site-header")
    nav = html.Nav([_link(link) for link in shown.links], className="site-nav", **{"aria-label": "Main"})
    signout = html.Form([dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
                         html.Button("Sign out", type="submit", className="link-button", id="shell-signout")],
                        method="POST", action="/signout", className="signout")
    bell = html.A(shown.notifications, href="/notifications", id="shell-notifications",
                  className="nav-link unread" if shown.unread else "nav-link")
    who = html.Span([html.A(html.Strong(shown.user), href="/account", title="Your account and API tokens"),
                     f" · {shown.role}"], className="who", id="shell-user")
    return html.Header([brand, nav, html.Div([bell, who, signout], className="user")], className="site-header",
                       id="site-header")


def _link(link: site.Link):
    """A Dash page's link moves without reloading; a Flask page's is a plain link."""
    make = dcc.Link if link.dash else html.A
    return make(link.label, href=link.href, className="nav-link", id=f"shell-{link.name}")
