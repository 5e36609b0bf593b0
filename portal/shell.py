"""The frame around every Dash page: the shared header (portal/header.py) and the page."""
from __future__ import annotations

import dash
from dash import dcc, html
from flask_wtf.csrf import generate_csrf

from portal import header as site


def layout() -> html.Div:
    """Called for every page load (Dash's /_dash-layout), so it shows the current user."""
    return html.Div([header(site.current()), html.Main(dash.page_container, className="page", id="main")])


def header(shown: site.Header | None) -> html.Header:
    """The same header as templates/base.html renders, as Dash components."""
    brand = html.A("labcommons", href="/explore", className="brand")
    if shown is None:
        return html.Header([brand], className="site-header")
    nav = html.Nav([_link(link) for link in shown.links], className="site-nav", **{"aria-label": "Main"})
    signout = html.Form([dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
                         html.Button("Sign out", type="submit", className="link-button", id="shell-signout")],
                        method="POST", action="/signout", className="signout")
    bell = html.A(shown.notifications, href="/notifications", id="shell-notifications",
                  className="nav-link unread" if shown.unread else "nav-link")
    who = html.Span([html.A(html.Strong(shown.user), href="/account", title="Your account and API tokens"),
                     f" · {shown.role}"], className="who", id="shell-user")
    return html.Header([brand, nav, html.Div([bell, who, signout], className="user")], className="site-header")


def _link(link: site.Link):
    """A Dash page's link moves without reloading; a Flask page's is a plain link."""
    make = dcc.Link if link.dash else html.A
    return make(link.label, href=link.href, className="nav-link", id=f"shell-{link.name}")
