"""Spawn progress: the hub's event stream for a starting server, relayed to the progress page.

GET /jupyter/progress?<the page's context> (text/event-stream, read with EventSource) checks,
as the user, that they may open what the page opens (a node, a cohort or a view, exactly as
/jupyter/status does), then relays
`GET /hub/api/users/<name>/server/progress` as the portal's hub service: the hub's token stays in
the portal. Each event is cleaned to {progress, message, ready, failed} (the hub's html_message
and url are dropped; message is text) and the stream always ends with ready or failed.

A stream holds one waitress worker thread, so it is bounded: it ends after STREAM_SECONDS (the
hub gives up on a spawn by then), and when the browser goes, the next write (at the latest the
hub's keepalive, every 8 s) fails and waitress closes this generator, which closes the hub stream.
And at most a quarter of the threads relay streams at once: a further one gets 503, and the
page polls /jupyter/status instead, so a class starting its notebooks together cannot take
every thread from the portal's pages.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Generator, Iterable, Iterator
from urllib.parse import quote

import requests
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_login import current_user

from metadata.idl import metadata_thrift as T
from portal.notebooks import jupyter
from portal.notebooks.jupyter import HUB_DOWN, SPAWN_FAILED, Hub

bp = Blueprint("hub_progress", __name__, url_prefix="/jupyter")
STREAM_SECONDS = 180  # hub/jupyterhub_config.py: Spawner.start_timeout (120 s) + http_timeout (60 s)
READ_SECONDS = 30     # the hub writes a keepalive every 8 s, so 30 s of silence means it is gone
MESSAGE_CHARS = 500
HUB_SLOW = ("Your notebook server is taking unusually long to start; retry, or ask an administrator to look "
            "at the hub's log.")


def server_sent_events(lines: Iterable[str]) -> Iterator[dict | None]:
    """The JSON events of a text/event-stream, one per blank-line-ended block; None for a block
    without data (the hub's keepalives), so the caller wakes up at least that often."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line:
            yield json.loads("\n".join(data)) if data else None
            data = []


def clean(event: dict) -> dict:
    """What the page may show of a hub event: progress as a number 0-100, message as plain
    text, and whether the spawn is over (ready or failed)."""
    cleaned: dict = {}
    progress = event.get("progress")
    if isinstance(progress, (int, float)) and not isinstance(progress, bool):
        cleaned["progress"] = max(0, min(100, round(progress)))
    if event.get("message"):
        cleaned["message"] = str(event["message"])[:MESSAGE_CHARS]
    for flag in ("ready", "failed"):
        if event.get(flag):
            cleaned[flag] = True
    return cleaned


def failed(message: str) -> dict:
    return {"progress": 100, "failed": True, "message": message}


def hub_events(hub: Hub, name: str, seconds: float = STREAM_SECONDS) -> Iterator[dict | None]:
    """The cleaned progress events of the user's default server, ending with ready or failed
    (the portal's own failed event when the hub cannot say); None at each keepalive."""
    deadline = time.monotonic() + seconds
    url = f"{hub.url}/hub/api/users/{quote(name)}/server/progress"
    try:
        with requests.get(url, headers={"Authorization": f"token {hub.token}"}, stream=True,
                          timeout=(10, READ_SECONDS)) as response:
            if response.status_code in (400, 404):  # neither starting nor running: it stopped
                yield failed(SPAWN_FAILED)
                return
            Hub._expect(response, "report your server's progress", 200)
            response.encoding = "utf-8"
            for event in server_sent_events(response.iter_lines(decode_unicode=True)):
                yield None if event is None else clean(event)
                if event and (event.get("ready") or event.get("failed")):
                    return
                if time.monotonic() > deadline:
                    yield failed(HUB_SLOW)
                    return
        yield failed(SPAWN_FAILED)  # the hub ended the stream without saying how the spawn ended
    except jupyter.HubError as error:
        yield failed(str(error))
    except (requests.RequestException, ValueError):  # the hub went away, or wrote something else
        yield failed(HUB_DOWN.format(url=hub.url))


def event_stream(events: Generator[dict | None, None, None]) -> Iterator[str]:
    """text/event-stream for the browser: each event as JSON data; a comment for a keepalive,
    whose write is what notices a browser that has gone (waitress then closes this generator)."""
    try:
        for event in events:
            yield ": keepalive\n\n" if event is None else f"data: {json.dumps(event)}\n\n"
    finally:
        events.close()  # and so the hub's stream, at once


@bp.route("/progress")
def progress():
    """The hub's progress events for the user's server, for what the user may open (the same
    context as /jupyter/status: a node, a cohort or a view)."""
    jupyter.opening(request.args.to_dict())
    slots = current_app.extensions["labcommons_progress_streams"]
    if not slots.acquire(blocking=False):
        return jsonify(error="too many progress streams at once; the page asks for the status instead"), 503
    try:
        events = hub_events(jupyter.hub(), current_user.name)  # hub and user read now, in the request
    except BaseException:
        slots.release()
        raise
    response = Response(event_stream(events), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(slots.release)  # when the server closes the stream, however it ended
    return response


# the service's refusals as /jupyter/status gives them (JSON with its reason), before any stream
for _refusal in (T.Forbidden, T.NotFound, T.ValidationError):
    bp.register_error_handler(_refusal, jupyter.refused)


def init_app(app: Flask) -> None:
    from portal.server import limits

    app.extensions["labcommons_progress_streams"] = threading.BoundedSemaphore(max(1, limits(app.config["SETTINGS"]).threads // 4))
    app.register_blueprint(bp)
