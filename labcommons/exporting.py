"""Export every node of a type, page by page, as TSV or a JSON array: both submittable back."""
from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from rich.progress import Progress

from metadata.client import MetadataClient
from metadata.entities import submission_doc, tsv_header, tsv_row


def export_nodes(client: MetadataClient, type_name: str, project_id: str, fmt: str, output: Path | None) -> int:
    """Write the nodes to `output` (stdout when None), with a progress bar on stderr; returns the count."""
    schema = client.dictionary().get(type_name, {})
    properties = list(schema.get("properties", {}))
    links = [link["name"] for link in schema.get("links", [])]
    total = client.page(type_name, project_id, 1).total
    count = 0
    with _opened(output) as stream, Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"exporting {type_name}", total=total)
        writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        stream.write("[" if fmt == "json" else "")
        if fmt == "tsv":
            writer.writerow(tsv_header(properties, links))
        for node in client.nodes(type_name, project_id):
            if fmt == "tsv":
                writer.writerow(tsv_row(properties, links, node))
            else:
                stream.write(("," if count else "") + "\n" + json.dumps(submission_doc(node)))
            count += 1
            progress.advance(task)
        stream.write("\n]\n" if fmt == "json" else "")
    return count


@contextmanager
def _opened(output: Path | None):
    if output is None:
        yield sys.stdout
        return
    with output.open("w", encoding="utf-8", newline="") as stream:
        yield stream
