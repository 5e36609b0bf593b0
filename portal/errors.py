"""The portal's 404 and 403 pages, in the site's layout for Flask's pages and Dash's alike: they
say where you are (the address asked for) and offer the way back, home and to the page above.

An address no page has is answered by Dash's catch-all route (the page itself then shows
pages/not_found_404.py); `mark_unknown_paths` gives that answer the 404 status it deserves.
"""
from __future__ import annotations

from dataclasses import dataclass

from dash._pages import _path_to_page  # Dash's own matching of an address to a page: the same answer as its router
from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from portal import header

HOME = ("Explore (home)", "/explore")
ELSEWHERE = {"/account": "Your account", "/notifications": "Notifications"}
# pages filed under a section of the header whose address does not start with it
SECTIONS = {"measurement": "/browse", "lineage": "/runs", "admin": "/admin/users"}
DASH_CATCHALL = "/<path:path>"  # the endpoint of Dash's route for every other address


@dataclass(frozen=True)
class Problem:
    """What an error page says: its heading, its sentence, and the ways on (label, href)."""
    heading: str
    message: str
    ways: tuple[tuple[str, str], ...]

    @property
    def trail(self) -> list[tuple[str, str | None]]:
        """Breadcrumbs: the page above (when there is one besides home), then this page."""
        return [*self.ways[1:], (self.heading, None)]


def section_of(path: str) -> tuple[str, str] | None:
    """The page above an address: the header's section it sits in (label, href), if any."""
    first = path.strip("/").split("/")[0]
    href = SECTIONS.get(first, f"/{first}")
    for link in header.LINKS:
        if link.href == href:
            return link.label, link.href
    return (ELSEWHERE[href], href) if href in ELSEWHERE else None


def ways_back(path: str) -> tuple[tuple[str, str], ...]:
    """Home, then the section the address sits in (unless that is home)."""
    above = section_of(path)
    return (HOME,) if above is None or above[1] == HOME[1] else (HOME, above)


def not_found(path: str, why: str = "") -> Problem:
    return Problem("Page not found", why or f"There is no page at {path}.", ways_back(path))


def forbidden(path: str, why: str = "") -> Problem:
    return Problem("Not allowed", why or f"You may not open {path}. Ask an administrator if you need it.",
                   ways_back(path))


def page(problem: Problem, status: int):
    return render_template("problem.html", heading=problem.heading, message=problem.message, ways=problem.ways,
                           trail=problem.trail), status


def described(error: HTTPException) -> str:
    """A view's own words for the error (abort(404, "...")), not Werkzeug's stock sentence."""
    stock = type(error).description
    return "" if error.description == stock else error.description


def mark_unknown_paths(response):
    """After every request: an address no Dash page has is answered 404 (its page says so)."""
    if request.endpoint == DASH_CATCHALL and not _path_to_page(request.path.strip("/"))[0]:
        response.status_code = 404
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(404, lambda e: page(not_found(request.path, described(e)), 404))
    app.register_error_handler(403, lambda e: page(forbidden(request.path, described(e)), 403))
    app.after_request(mark_unknown_paths)
