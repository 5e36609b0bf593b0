"""The spawn-progress relay's pure parts (parsing and cleaning the hub's events), and its life
under waitress: a browser that goes away ends the relay. The relay against a real hub is
tests/hub/test_progress.py."""
from __future__ import annotations

import json
import socket
import threading
import time

from flask import Flask, Response

from portal.notebooks.progress import clean, event_stream, server_sent_events


def test_server_sent_events_yields_each_event_and_none_for_a_keepalive():
    lines = ["data: " + json.dumps({"progress": 50, "message": "Pulling image"}), "", "", "",
             "data: " + json.dumps({"ready": True}), ""]
    assert list(server_sent_events(lines)) == [{"progress": 50, "message": "Pulling image"}, None, None,
                                               {"ready": True}]


def test_clean_keeps_text_and_a_bounded_percentage_and_drops_the_hubs_html():
    event = {"progress": 250, "message": "<b>x</b>", "html_message": "<script>", "url": "/user/a/", "ready": True}
    assert clean(event) == {"progress": 100, "message": "<b>x</b>", "ready": True}  # the page shows it as text
    assert clean({"progress": -3.6, "failed": 1}) == {"progress": 0, "failed": True}
    assert clean({"progress": True, "message": ""}) == {}
    assert clean({"message": "x" * 900})["message"] == "x" * 500


def test_a_browser_that_goes_away_ends_the_relay_under_waitress():
    from waitress import create_server

    closed = threading.Event()

    def keepalives():  # a spawn that never ends: only the browser leaving can stop the relay
        try:
            while True:
                yield None
                time.sleep(0.05)
        finally:
            closed.set()

    app = Flask(__name__)
    app.add_url_rule("/progress", "progress", lambda: Response(event_stream(keepalives()),
                                                               mimetype="text/event-stream"))
    server = create_server(app, host="127.0.0.1", port=0, threads=1)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as browser:
            browser.sendall(b"GET /progress HTTP/1.1\r\nHost: portal\r\n\r\n")
            received = b""
            while b": keepalive" not in received:
                received += browser.recv(4096)
            assert b"text/event-stream" in received and not closed.is_set()
        assert closed.wait(10), "the relay kept running after the browser went"
    finally:
        server.close()
