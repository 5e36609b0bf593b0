"""The audit log for administrators: a filtered, paged view and streamed TSV / JSON exports.

Filters (user, action, project, outcome, since, before) travel in the query string, so a view
is a link, and its export is the same link with another path. The service does the filtering
and refuses anyone but admins.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import abort, render_template, request, url_for
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.store.record_index import canonical_time
from portal.client import get_client
from portal.explorer.exports import _json_array, attachment, spooled, started, tsv_chunks

FILTERS = ("user", "action", "project", "outcome", "since", "before")
TIMES = ("since", "before")
FIELDS = ("at", "user", "action", "target", "outcome", "client", "detail_json")
PAGE_SIZE = 50
EXPORT_PAGE = 1000
FORMATS = {"tsv": "text/tab-separated-values", "json": "application/json"}


class BadFilter(ValueError):
    """A filter value that is not allowed; the message names the field."""


def filters_from(args) -> dict[str, str]:
    """The view's filters from a query string, times as UTC ISO; BadFilter names a bad one."""
    found = {name: args.get(name, "").strip() for name in FILTERS if args.get(name, "").strip()}
    for name in TIMES:
        if name in found:
            found[name] = utc_iso(name, found[name])
    for name, value in found.items():
        if len(value) > 200:
            raise BadFilter(f"{name}: at most 200 characters")
    return found


def utc_iso(name: str, text: str) -> str:
    """A time a person typed (a date, or a date and time; UTC unless it names a zone) as stored."""
    try:
        return canonical_time(text, name)
    except ValueError:
        raise BadFilter(f"{name}: {text!r} is not a time; give a date such as 2026-01-31, "
                        "or a date and time such as 2026-01-31T09:30") from None


def page():
    """One page of matching entries, newest first, with a link to the next."""
    shown = {name: request.args.get(name, "") for name in FILTERS}
    try:
        found = filters_from(request.args)
        result = get_client().audit(**found, limit=PAGE_SIZE, cursor=request.args.get("cursor", ""))
    except BadFilter as exc:
        return render_template("admin_audit.html", entries=[], shown=shown, error=str(exc)), 400
    except ERRORS as exc:
        return render_template("admin_audit.html", entries=[], shown=shown, error=exc.message), 400
    following = url_for("admin.audit", **found, cursor=result.next_cursor) if result.next_cursor else ""
    return render_template("admin_audit.html", entries=result.entries, shown=shown, error="",
                           first=url_for("admin.audit", **found) if request.args.get("cursor") else "",
                           following=following, exports={f: url_for("admin.audit_export", fmt=f, **found)
                                                         for f in FORMATS})


def export(fmt: str):
    """Every matching entry as an attachment, streamed page by page from the service."""
    if fmt not in FORMATS:
        abort(404, f"There is no audit export as {fmt!r}; use .tsv or .json.")
    try:
        rows = started(entries(filters_from(request.args)))
    except (BadFilter, *ERRORS) as exc:
        message = getattr(exc, "message", str(exc))
        return render_template("problem.html", heading="This export cannot be made", message=message,
                               back=url_for("admin.audit")), 400
    except (TTransportException, OSError):
        return render_template("problem.html", message="The metadata service cannot be reached.",
                               back=url_for("admin.audit")), 503
    body = spooled(tsv_chunks(FIELDS, rows) if fmt == "tsv" else _json_array(rows))  # then sent by the loop
    name = f"labcommons-audit-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
    return attachment(body, FORMATS[fmt], name)


def entries(found: dict[str, str]) -> Iterator[dict]:
    """Every matching entry as a dict (detail decoded in JSON, kept as text in TSV), newest first."""
    client, cursor = get_client(), ""
    while True:
        result = client.audit(**found, limit=EXPORT_PAGE, cursor=cursor)
        yield from (entry_dict(e) for e in result.entries)
        if not result.next_cursor:
            return
        cursor = result.next_cursor


def detail_fields(detail_json: str) -> list[tuple[str, str]]:
    """An entry's detail as (label, text) pairs for people, in place of its JSON."""
    try:
        detail = json.loads(detail_json or "{}")
    except ValueError:
        return [("detail", detail_json)]
    if not isinstance(detail, dict):
        return [("detail", readable(detail))]
    return [(key.replace("_", " "), readable(value)) for key, value in detail.items()]


def readable(value) -> str:
    """One detail value as text: yes/no, thousands separated, lists and mappings spelled out."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(readable(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {readable(v)}" for k, v in value.items()) or "none"
    return str(value)


def entry_dict(entry) -> dict:
    row = {name: getattr(entry, name) for name in FIELDS}
    row["detail"] = json.loads(entry.detail_json or "{}")
    return row
