"""Downloads of the explorer's current view, streamed with no row cap.

The view comes from the same query string as the explorer page (tab, filter, search), so an
export link is the page's link with another path:

- /export/manifest.tsv, /export/manifest.json: the files behind the view, every data type at
  once (from the Cases tab: every file of the matching cases), page by page from the service;
- /export/table.tsv: every matching document of the tab (the case table from the Cases tab),
  through pages of hits.

The worker thread writes the whole export to a spooled temporary file (in memory up to
SPOOL_MEMORY_BYTES) as fast as the service pages it, then hands the file to the server's event
loop (wsgi.file_wrapper), which sends it at the reader's pace: a slow reader costs no worker
thread. A bad filter, or a service error on any page, gets a message page with a way back rather
than a broken download.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import tempfile
import time
from collections.abc import Iterable, Iterator

from flask import Blueprint, render_template, request, send_file
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS, MetadataClient
from metadata.datafiles import MANIFEST_FIELDS
from portal.client import UNREACHABLE, get_client
from portal.explorer import queries, state as st

bp = Blueprint("exports", __name__, url_prefix="/export")
HITS_PAGE = 1000
MANIFEST_PAGE = 1000
ROWS_PER_CHUNK = 500
SPOOL_MEMORY_BYTES = 1024 * 1024


@bp.route("/manifest.tsv")
def manifest_tsv():
    return _export(_manifest_rows, lambda kind, rows: tsv_chunks(MANIFEST_FIELDS, rows), "manifest", "tsv")


@bp.route("/manifest.json")
def manifest_json():
    return _export(_manifest_rows, lambda kind, rows: _json_array(rows), "manifest", "json")


@bp.route("/table.tsv")
def table_tsv():
    return _export(lambda kind, flt: all_hits(get_client(), kind.kind, flt),
                   lambda kind, rows: tsv_chunks(table_fields(kind), rows), "table", "tsv")


def _manifest_rows(kind, filter_: dict | None) -> Iterator[dict]:
    return get_client().manifest(kind.kind, filter_, page_size=MANIFEST_PAGE)


def _export(rows_for, render, name: str, extension: str):
    """Read the view from the query string, write every row out, then send them as an attachment."""
    try:
        kind, filter_ = queries.view_filter(request.args.to_dict(flat=False))
        body = spooled(render(kind, rows_for(kind, filter_)))
    except st.BadQuery as exc:
        return _problem(str(exc))
    except ERRORS as exc:
        return _problem(exc.message, getattr(exc, "issues", None) or [])
    except (TTransportException, OSError):
        return _problem(UNREACHABLE, status=503)
    filename = f"labcommons-{kind.kind}-{name}-{time.strftime('%Y%m%d-%H%M%S')}.{extension}"
    mimetype = "application/json" if extension == "json" else "text/tab-separated-values"
    return attachment(body, mimetype, filename)


def spooled(chunks: Iterable[str]):
    """The text written to a temporary file (in memory while small), rewound."""
    out = tempfile.SpooledTemporaryFile(SPOOL_MEMORY_BYTES)
    try:
        for chunk in chunks:
            out.write(chunk.encode())
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def attachment(body, mimetype: str, filename: str):
    """A spooled UTF-8 body as a download the server's event loop sends (the file closes with it)."""
    size = body.seek(0, 2)
    body.seek(0)
    response = send_file(body, mimetype=mimetype, as_attachment=True, download_name=filename,
                         conditional=False, max_age=0)
    # set whole: Werkzeug appends a charset to text/* types itself, so one passed in came twice
    response.content_type = f"{mimetype}; charset=utf-8"
    response.content_length = size
    return response


def _problem(message: str, issues=(), status: int = 400):
    found = [(issue.field, issue.message) for issue in issues]
    return render_template("problem.html", message=message, issues=found, back="/explore"), status


def started(rows: Iterator[dict]) -> Iterator[dict]:
    """The same rows with the first already fetched, so a service error surfaces before sending."""
    rows = iter(rows)
    first = next(rows, None)
    return rows if first is None else itertools.chain([first], rows)


def all_hits(client: MetadataClient, kind: str, filter_: dict | None) -> Iterator[dict]:
    """Every matching document, in id order, page by page."""
    for offset in itertools.count(0, HITS_PAGE):
        _, docs = client.hits(kind, filter_, sort=[("id", False)], limit=HITS_PAGE, offset=offset)
        yield from docs
        if len(docs) < HITS_PAGE:
            return


def table_fields(kind) -> list[str]:
    """The table export's columns: the kind's columns first, then its other non-record fields."""
    names = [f.name for f in kind.fields if not f.nested]
    return list(dict.fromkeys(["id", *kind.columns, *names]))


def tsv_chunks(fields: Iterable[str], rows: Iterator[dict]) -> Iterator[str]:
    """A header line, then the rows as TSV in chunks; lists are joined with commas."""
    fields = list(fields)
    yield "\t".join(fields) + "\n"
    for batch in _batched(rows, ROWS_PER_CHUNK):
        out = io.StringIO()
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerows([tsv_cell(row.get(name)) for name in fields] for row in batch)
        yield out.getvalue()


def tsv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(tsv_cell(v) if not isinstance(v, dict) else json.dumps(v) for v in value)
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _json_array(rows: Iterator[dict]) -> Iterator[str]:
    """A JSON array, one object per line, produced in chunks."""
    yield "["
    first = True
    for batch in _batched(rows, ROWS_PER_CHUNK):
        text = ",".join("\n" + json.dumps(row) for row in batch)
        yield text if first else "," + text
        first = False
    yield "\n]\n"


def _batched(rows: Iterator[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
