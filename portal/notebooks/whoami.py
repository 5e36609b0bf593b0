"""GET /api/whoami: which projects the holder of a metadata-service token may read, for the
zero-to-jupyterhub hub (hub/kubespawner.py's mount hook), whose image has no Thrift client.

The token comes as `Authorization: Bearer <token>` (the user's token from the hub's auth state,
minted at the pre-spawn refresh) and the service itself judges it: a forged, expired or revoked
token gets 401 and no project list. The answer tells the holder nothing the service would not tell
them over Thrift: their name and {"projects": [ids]}, or "all" for administrators and workers.
"""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.notebooks.oauth import service

bp = Blueprint("whoami", __name__, url_prefix="/api")
PATH = "/api/whoami"
EVERY_PROJECT = {"admin", "worker"}  # roles that read every project (the local spawner's rule too)


def readable(identity: T.Identity) -> list[str] | str:
    """The project ids the identity may read, or "all"."""
    return "all" if EVERY_PROJECT & set(identity.roles) else sorted(identity.grants)


def refusal(status: int, message: str):
    return jsonify(error=message), status, {"Cache-Control": "no-store"}


@bp.route("/whoami")
def whoami():
    """The bearer's name and readable projects, as the service sees the token now."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return refusal(401, "give the user's metadata-service token as 'Authorization: Bearer <token>'")
    try:
        with service(token.strip()) as client:
            identity = client.whoami()
    except T.Unauthenticated as refused:
        return refusal(401, f"the token is not accepted: {refused.message}")
    except ERRORS as refused:
        return refusal(403, refused.message)
    except (TTransportException, OSError):
        return refusal(503, "the metadata service cannot be reached; try again in a moment")
    return jsonify(user=identity.user, projects=readable(identity)), 200, {"Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
