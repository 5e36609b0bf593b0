"""Bulk registration: a TSV of measurements, previewed as the service's dry run with every
problem placed at its row and column, then committed as one batch (all rows or none).

The TSV is the service's own submission format (metadata/entities.py): a `type` and a
`submitter_id` column, one column per property, links as `experiments.submitter_id`.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from flask import Blueprint, current_app, render_template, request
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.entities import tsv_header
from metadata.idl import metadata_thrift as T
from portal.client import UNREACHABLE, get_client
from portal.registration.dataset import writable_projects

bp = Blueprint("bulk", __name__)


@dataclass
class Row:
    number: int                                   # the TSV line, as the service counts it (header = 1)
    cells: list[tuple[str, list[str]]]            # (value, problems in this cell)
    problems: list[str] = field(default_factory=list)  # problems of the row as a whole


@dataclass
class Preview:
    header: list[str]
    rows: list[Row]
    general: list[str]

    @property
    def problems(self) -> int:
        return (len(self.general) + sum(len(r.problems) for r in self.rows)
                + sum(len(p) for r in self.rows for _, p in r.cells))


def template_columns(type_def: dict) -> list[str]:
    """The columns of a measurement TSV, without the ones the service fills in."""
    links = [link["name"] for link in type_def["links"]]
    return [c for c in tsv_header(list(type_def["properties"]), links) if c not in ("id", "project_id")]


def preview(text: str, issues) -> Preview:
    """The TSV as a table, each issue at its row and column (else its row, else the batch)."""
    lines = list(csv.reader(io.StringIO(text), delimiter="\t"))
    header = [h.strip() for h in lines[0]] if lines else []
    rows = {n: Row(n, [(cell, []) for cell in cells]) for n, cells in enumerate(lines[1:], start=2)}
    general = []
    for issue in issues:
        row, column = rows.get(issue.row), _column(header, issue.field)
        if row is not None and column is not None and column < len(row.cells):
            row.cells[column][1].append(issue.message)
        elif row is not None:
            row.problems.append(issue.message)
        else:
            general.append(issue.message)
    return Preview(header, [r for r in rows.values() if any(c.strip() for c, _ in r.cells)], general)


def _column(header: list[str], name: str) -> int | None:
    """The column an issue's field names: the property, or the link's `.submitter_id` column."""
    for candidate in (name, f"{name}.submitter_id", f"{name}.id"):
        if name and candidate in header:
            return header.index(candidate)
    return None


def read_upload() -> str:
    """The uploaded TSV's text; ValueError naming the field when there is none or it is not UTF-8."""
    upload = request.files.get("tsv")
    if upload is None or not upload.filename:
        raise ValueError("tsv: choose a TSV file to upload")
    limit = current_app.config["SETTINGS"].max_batch_bytes
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"tsv: the file is larger than the allowed {limit} bytes; split it")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("tsv: the file is not UTF-8 text; save it as UTF-8 tab-separated values") from None


@bp.route("/register/bulk")
def page(**shown):
    client = get_client()
    return render_template("register_bulk.html", projects=writable_projects(client),
                           columns=template_columns(client.dictionary()["measurement"]), **shown)


@bp.route("/register/bulk/preview", methods=("POST",))
def dry_run():
    """Preview: the service's dry run of the uploaded TSV."""
    project = request.form.get("project", "")
    try:
        text = read_upload()
    except ValueError as problem:
        return page(project=project, error=str(problem)), 400
    return _submit(project, text, dry_run=True)


@bp.route("/register/bulk/commit", methods=("POST",))
def commit():
    """Commit the previewed rows: one batch, all of them or none."""
    return _submit(request.form.get("project", ""), request.form.get("tsv", ""), dry_run=False)


def _submit(project: str, text: str, dry_run: bool):
    try:
        result = get_client().submit(project, body=text, fmt="tsv", dry_run=dry_run)
    except T.ValidationError as error:
        return page(project=project, table=preview(text, error.issues), error=error.message), 400
    except ERRORS as error:
        return page(project=project, error=error.message), 403 if isinstance(error, T.Forbidden) else 400
    except (TTransportException, OSError):
        return page(project=project, error=UNREACHABLE), 503
    return page(project=project, table=preview(text, []), result=result, tsv=text if dry_run else "")


def init_app(app) -> None:
    app.register_blueprint(bp)
