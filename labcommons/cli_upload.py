"""`labcommons upload`: an imzML + ibd pair into a project through the portal, resumable, all or
nothing (labcommons/uploading.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import requests

from labcommons.cli import Context, err, main, out, reports_errors
from labcommons.cli_resolve import Unresolved, node
from labcommons.uploading import CHUNK_BYTES, RETRIES, Portal, UploadError, load_fields, upload

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
MIB = 1024 * 1024


@main.command("upload")
@click.option("--project", "-p", required=True, help="Project to register into (you need a write grant on it).")
@click.option("--imzml", required=True, type=FILE, help="The .imzML file.")
@click.option("--ibd", required=True, type=FILE, help="Its .ibd file (the names need not match).")
@click.option("--measurement", "-m", default="",
              help="Attach the files to this existing measurement (its submitter id or id); it must have no files yet.")
@click.option("--new", "new_fields", type=FILE,
              help="Register a new measurement with these fields: a JSON object with submitter_id, experiment, "
                   "sample and the measurement's properties, named as on the portal's form; the properties "
                   "left out are read from the imzML's header.")
@click.option("--portal", "portal_url", help="The portal's address (default: LABCOMMONS_PORTAL_URL, else "
                                              "http://LABCOMMONS_PORTAL_HOST:LABCOMMONS_PORTAL_PORT).")
@click.option("--chunk-mib", type=click.IntRange(1, 64), default=CHUNK_BYTES // MIB, show_default=True,
              help="Send the files in chunks of this many MiB; an interrupted transfer loses at most one chunk.")
@click.option("--retries", type=click.IntRange(0, 20), default=RETRIES, show_default=True,
              help="After a broken connection, resume from the portal's offset this many times before giving up.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
@click.pass_obj
@reports_errors
def upload_command(obj: Context, project: str, imzml: Path, ibd: Path, measurement: str, new_fields: Path | None,
                   portal_url: str | None, chunk_mib: int, retries: int, progress: bool | None):
    """Upload an imzML + ibd pair and register it, all or nothing; run it again to resume an
    interrupted upload (only the rest is sent)."""
    if bool(measurement) == bool(new_fields):
        raise click.UsageError("give either --measurement ID (an existing measurement) or --new FIELDS.json")
    url = (portal_url or obj.settings.portal_public_url).rstrip("/")
    try:
        existing = node(obj.client, measurement, project)["submitter_id"] if measurement else ""
        fields = load_fields(new_fields) if new_fields else None
        answer = upload(Portal(url, obj.client.token), project, imzml, ibd, existing, fields,
                        sys.stderr.isatty() if progress is None else progress, chunk_mib * MIB, retries,
                        obj.client.dictionary()["measurement"]["properties"])
    except (UploadError, Unresolved) as error:
        err.print(f"[red]error:[/] {error}", highlight=False)
        sys.exit(1)
    except requests.RequestException as error:
        err.print(f"[red]error:[/] cannot reach the portal at {url} ({error}); give its address with --portal "
                  "or LABCOMMONS_PORTAL_URL, then run the same command again to resume", highlight=False)
        sys.exit(1)
    for sent in answer["files"]:
        resumed = f", resumed at byte {sent['resumed_at']}" if sent["resumed_at"] else ""
        out.print(f"{Path(sent['file']).name}: {sent['size']} bytes, md5 {sent['md5sum']} "
                  f"({sent['bytes_sent']} bytes sent{resumed})", highlight=False)
    out.print(f"registered measurement {answer['registered']} in project {project}: {url}{answer['href']}",
              highlight=False)
