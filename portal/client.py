"""The metadata service as the portal reaches it: one client per request, holding the
signed-in user's token (opened on first use, closed when the request ends, like flaskr's db),
and the local operator's client used only to mint users' tokens at sign-in."""
from __future__ import annotations

from flask import Flask, current_app, g
from flask_login import current_user

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

UNREACHABLE = "The metadata service cannot be reached; try again in a moment."


def sentence(message: str) -> str:
    """A service message as a sentence for a page: `name: taken` -> `Name: taken.`"""
    return message[:1].upper() + message[1:] + "."


class UserClient(MetadataClient):
    """The signed-in user's client: remembers, for the request, that the service refused the
    session's token (signed out everywhere, account disabled), so the session can end."""

    def _call(self, name: str, *args):
        try:
            return super()._call(name, *args)
        except T.Unauthenticated as refused:
            g.token_refused = refused.message
            raise


def get_client() -> MetadataClient:
    """The signed-in user's client for this request."""
    if "client" not in g:
        settings = current_app.config["SETTINGS"]
        token = current_user.token if current_user.is_authenticated else ""
        g.client = UserClient(settings.host, settings.port, token)
    return g.client


def close_client(_error=None) -> None:
    """Called when the request's app context ends (after a streamed response has finished)."""
    client = g.pop("client", None)
    if client is not None:
        client.close()


def operator_client() -> MetadataClient:
    """A client holding the service's local operator (admin) token; the caller closes it."""
    settings = current_app.config["SETTINGS"]
    token = settings.admin_token_path.read_text().strip()
    return MetadataClient(settings.host, settings.port, token)


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_client)
