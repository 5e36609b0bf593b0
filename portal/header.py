"""The header every page shares, defined once: the links (and who sees each), the user's name and
role, the unread notifications and Sign out. The Jinja pages (templates/base.html) and the Dash
shell (shell.py) both render `current()`, so no page's header can drift from another's.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from flask_login import current_user

from portal import notifications

WRITERS = ("technician", "admin")
EVERYONE = ()  # every signed-in user


@dataclass(frozen=True)
class Link:
    """A header link: its label, address, element id (shell-<name>) and the roles that see it."""
    label: str
    href: str
    name: str
    roles: tuple[str, ...] = EVERYONE
    dash: bool = True  # a Dash page: the Dash shell goes there without reloading

    def shown_to(self, roles: tuple[str, ...]) -> bool:
        return not self.roles or any(role in self.roles for role in roles)


LINKS = (
    Link("Explore", "/explore", "explore"),
    Link("Experiments", "/browse", "experiments"),
    Link("Runs", "/runs", "runs"),
    Link("Launch", "/launch", "launch"),
    Link("Parameter sets", "/parameter-sets", "parameter-sets"),
    Link("Dashboard", "/dashboard", "dashboard", ("admin", "analyst")),
    Link("Register", "/register", "register", WRITERS, dash=False),
    Link("Admin", "/admin/users", "admin", ("admin",), dash=False),
)


@dataclass(frozen=True)
class Header:
    """What the header shows to one signed-in user."""
    links: tuple[Link, ...]
    user: str
    role: str
    unread: int

    @property
    def notifications(self) -> str:
        return f"Notifications ({self.unread})" if self.unread else "Notifications"


def links_for(roles: tuple[str, ...]) -> tuple[Link, ...]:
    """The header's links a user with these roles sees, in the header's order."""
    return tuple(link for link in LINKS if link.shown_to(roles))


def current() -> Header | None:
    """The header of the signed-in user (None when nobody is signed in: the brand alone)."""
    if not current_user.is_authenticated:
        return None
    return Header(links_for(current_user.roles), current_user.name, current_user.role, notifications.unread_count())


def init_app(app: Flask) -> None:
    """Every Jinja page gets `header` (see templates/base.html)."""
    app.context_processor(lambda: {"header": current()})
