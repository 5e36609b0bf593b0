"""The frame around every Dash page: the header (who is signed in, sign-out) and the page."""
from __future__ import annotations

import dash
from dash import dcc, html
from flask_wtf.csrf import generate_csrf

from portal import notifications
from portal.auth import shown_user

WRITERS = ("technician", "admin")


def layout() -> html.Div:
    """Called for every page load (Dash's /_dash-layout), so it shows the current user."""
    return html.Div([header(shown_user()), html.Div(dash.page_container, className="page")])


def header(user: tuple[str, str] | None) -> html.Header:
    nav = [html.A("labcommons", href="/explore", className="brand"),
           dcc.Link("Explore", href="/explore", className="nav-link"),
           dcc.Link("Experiments", href="/browse", className="nav-link"),
           dcc.Link("Runs", href="/runs", className="nav-link"),
           dcc.Link("Parameter sets", href="/parameter-sets", className="nav-link", id="shell-parameter-sets")]
    if user is None:
        return html.Header(nav, className="site-header")
    name, role = user
    if role in WRITERS:  # a plain link: Register is a Flask page, not a Dash one
        nav.append(html.A("Register", href="/register", className="nav-link", id="shell-register"))
    if role in ("admin", "analyst"):
        nav.append(dcc.Link("Dashboard", href="/dashboard", className="nav-link", id="shell-dashboard"))
    if role == "admin":
        nav.append(html.A("Admin", href="/admin/users", className="nav-link", id="shell-admin"))
    signout = html.Form([dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
                         html.Button("Sign out", type="submit", className="link-button", id="shell-signout")],
                        method="POST", action="/signout", className="signout")
    unread = notifications.unread_count()
    bell = html.A(f"Notifications ({unread})" if unread else "Notifications", href="/notifications",
                  className="nav-link unread" if unread else "nav-link", id="shell-notifications")
    who = html.Span([html.A(html.Strong(name), href="/account", title="Your account and API tokens"),
                     f" · {role}"], className="who", id="shell-user")
    return html.Header(nav + [html.Div([bell, who, signout], className="user")], className="site-header")
