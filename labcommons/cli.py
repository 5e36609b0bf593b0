"""The `labcommons` command: run the commons, and submit, read and export metadata over Thrift.

Every command except `up`, `metadata serve` and `portal serve` is a client of the running metadata service.
Errors print the service's message (and each located problem) and exit non-zero.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from thriftpy2.transport import TTransportException

from labcommons import resolve_token
from labcommons.cli_output import Column, emit, output_option
from labcommons.cli_resolve import node as find_node, node_id as resolve_node
from ground import settings as settings_module
from metadata.client import ERRORS, MetadataClient

DEFAULT_BATCH = 1000
out = Console()
err = Console(stderr=True)


class Context:
    """What every client command needs: settings and a lazily opened client."""

    def __init__(self, host: str | None, port: int | None, token: str | None):
        self.settings = settings_module.load()
        self.host = host or self.settings.host
        self.port = port or self.settings.port
        self._token = token
        self._client: MetadataClient | None = None

    @property
    def client(self) -> MetadataClient:
        if self._client is None:
            self._client = MetadataClient(self.host, self.port, self._token or resolve_token(self.settings))
        return self._client


def completes(names):
    """A shell_complete callback offering the `names(client)` that start with what was typed."""
    def complete(ctx: click.Context, param, incomplete: str) -> list[str]:
        root = ctx.find_root().params
        try:
            client = Context(root.get("host"), root.get("port"), root.get("token")).client
            return [name for name in names(client) if name.startswith(incomplete)]
        except (*ERRORS, TTransportException, ConnectionError, RuntimeError, settings_module.SettingsError):
            return []  # no service, no completions: never a traceback in the shell
    return complete


def reports_errors(command):
    """Turn service errors, unreachable services and bad settings into a message and exit 1."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            sys.stderr.close()  # the reader (e.g. `| head`) has gone: stop quietly
            sys.exit(0)
        except ERRORS as error:
            _print_error(error)
        except (TTransportException, ConnectionError) as error:
            ctx = click.get_current_context().find_object(Context)
            err.print(f"[red]error:[/] cannot reach the metadata service at {ctx.host}:{ctx.port} ({error}); "
                      "is it running? Start it with `make run`.")
        except (RuntimeError, settings_module.SettingsError) as error:
            err.print(f"[red]error:[/] {error}")
        sys.exit(1)
    return run


def _print_error(error) -> None:
    err.print(f"[red]error ({error.code}):[/] {error.message}", highlight=False)
    issues = getattr(error, "issues", None) or []
    if issues:
        table = Table("where", "field", "problem", show_edge=False)
        for issue in issues:
            where = f"row {issue.row}" if issue.row else (f"entity {issue.index}" if issue.index >= 0 else "")
            table.add_row(where, issue.field, issue.message)
        err.print(table)


@click.group()
@click.option("--host", help="Metadata service host (default: LABCOMMONS_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Metadata service port (default: LABCOMMONS_PORT or 9090).")
@click.option("--token", help="Your token (default: LABCOMMONS_TOKEN, else the local operator's token file).")
@click.version_option(package_name="labcommons")
@click.pass_context
def main(ctx, host, port, token):
    """labcommons: a research data commons for lab teams."""
    try:
        ctx.obj = Context(host, port, token)
    except settings_module.SettingsError as error:
        raise click.UsageError(str(error)) from None


@main.command()
@click.option("--demo/--no-demo", default=True, help="Seed the demo commons when the store is empty.")
@click.pass_obj
def up(obj: Context, demo: bool):
    """Start the whole commons on this machine, in the foreground (Ctrl-C stops it)."""
    from labcommons.up import run_commons
    sys.exit(run_commons(obj.settings, seed_demo=demo))


@main.group()
def metadata():
    """The metadata service."""


@metadata.command("serve")
@click.option("--host", "bind_host", help="Address to listen on (default: LABCOMMONS_HOST).")
@click.option("--port", "bind_port", type=int, help="Port to listen on (default: LABCOMMONS_PORT).")
@click.pass_obj
def serve(obj: Context, bind_host: str | None, bind_port: int | None):
    """Run the metadata service in the foreground until SIGTERM or Ctrl-C."""
    import dataclasses
    import logging

    from metadata.server import main as serve_main

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from metadata.errors import MetadataError

    settings = dataclasses.replace(obj.settings, host=bind_host or obj.settings.host,
                                   port=bind_port or obj.settings.port)
    from labcommons.cli_workflows import template_check
    try:
        serve_main(settings, template_check(settings))
    except MetadataError as error:  # a bad dictionary, flattening, template or trigger rule
        err.print(f"[red]error:[/] the metadata service cannot start: {error.message}", highlight=False)
        sys.exit(1)


@main.group("portal")
def portal_group():
    """The web portal: the explorer, sign-in and exports."""


@portal_group.command("serve")
@click.option("--host", "bind_host", help="Address to listen on (default: LABCOMMONS_PORTAL_HOST or 127.0.0.1).")
@click.option("--port", "bind_port", type=int, help="Port to listen on (default: LABCOMMONS_PORTAL_PORT or 8050).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes serving it (default: LABCOMMONS_PORTAL_WORKERS, else one per core).")
def portal_serve(bind_host: str | None, bind_port: int | None, workers: int | None):
    """Run the portal (waitress, in several processes) in the foreground until SIGTERM or Ctrl-C."""
    from dataclasses import replace

    from portal import create_app
    from portal.server import address, limits, serve

    try:
        settings = settings_module.load()
    except settings_module.SettingsError as error:
        raise click.UsageError(str(error)) from None
    (host, port), serve_limits = address(settings), limits(settings)
    serve_limits = serve_limits if workers is None else replace(serve_limits, workers=workers)
    serve(create_app({"SETTINGS": settings}), bind_host or host, port if bind_port is None else bind_port,
          serve_limits)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--project", "-p", required=True, help="Project the entities belong to.")
@click.option("--format", "fmt", type=click.Choice(["json", "tsv"]),
              help="File format (default: from the file's extension).")
@click.option("--dry-run", is_flag=True, help="Validate and report what would change; write nothing.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=DEFAULT_BATCH, show_default=True,
              help="Entities per transaction: a larger file is sent in batches, in file order.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
@click.pass_obj
@reports_errors
def submit(obj: Context, file: Path, project: str, fmt: str | None, dry_run: bool, batch_size: int,
           progress: bool | None):
    """Submit a JSON or TSV file of entities to a project, in batches of --batch-size entities,
    each all or nothing; an interrupted run, run again, continues after the last batch written."""
    from labcommons.cli_submit import submit_file

    fmt = fmt or ("tsv" if file.suffix.lower() in (".tsv", ".txt") else "json")
    if dry_run:
        _dry_run(obj, file, project, fmt)
        return
    show = err.is_terminal if progress is None else progress
    try:
        totals = submit_file(obj.client, file, project, fmt, batch_size, show)
    except ValueError as error:
        raise click.BadParameter(f"{file}: {error}", param_hint="FILE") from None
    if totals.resumed.entities:
        err.print(f"continued after the {totals.resumed.entities:,} entities an earlier run had written")
    out.print(f"{totals.entities} entities: {totals.created} were created, {totals.updated} were "
              f"updated, {totals.unchanged} unchanged")


def _dry_run(obj: Context, file: Path, project: str, fmt: str) -> None:
    """The whole file in one call that writes nothing (a batched dry run could not see earlier batches' nodes)."""
    try:
        body = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter(f"{file} is not UTF-8 text", param_hint="FILE") from None
    result = obj.client.submit(project, body=body, fmt=fmt, dry_run=True)
    out.print(f"{len(result.entities)} entities: {result.created} would be created, {result.updated} would be "
              f"updated, {result.unchanged} unchanged (dry run: nothing written)")


@main.command()
@click.argument("node_id")
@click.option("--project", "-p", help="The project NODE_ID's submitter id is in (default: the one readable project "
              "that has it).")
@click.pass_obj
@reports_errors
def get(obj: Context, node_id: str, project: str | None):
    """Print one node as JSON; NODE_ID is its id or its submitter id (as the portal shows it)."""
    node = find_node(obj.client, node_id, project or "")
    click.echo(json.dumps(node, indent=2))


@main.command("ls")
@click.argument("type_name", metavar="TYPE")
@click.option("--project", "-p", default="", help="Only this project (default: all you can read).")
@click.option("--limit", default=50, show_default=True, help="At most this many rows.")
@output_option
@click.pass_obj
@reports_errors
def list_nodes(obj: Context, type_name: str, project: str, limit: int, output: str):
    """List nodes of a type."""
    page = obj.client.page(type_name, project, limit)
    emit(out, page.nodes, NODE_COLUMNS, output)
    if output in ("table", "wide"):
        out.print(f"{len(page.nodes)} of {page.total} {type_name} node(s)")


NODE_COLUMNS = (Column("id", lambda n: n.id, is_id=True),
                Column("submitter_id", lambda n: n.submitter_id, is_id=True, drops=True),
                Column("project", lambda n: n.project_id), Column("version", lambda n: n.version, wide=True),
                Column("updated_at", lambda n: n.updated_at, wide=True))


@main.command()
@click.argument("type_name", metavar="TYPE")
@click.option("--project", "-p", default="", help="Only this project (default: all you can read).")
@click.option("--format", "fmt", type=click.Choice(["tsv", "json"]), default="tsv", show_default=True,
              help="TSV (one row per node, submittable back) or a JSON array.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@click.pass_obj
@reports_errors
def export(obj: Context, type_name: str, project: str, fmt: str, output: Path | None):
    """Export every node of a type as TSV (submittable back) or JSON."""
    from labcommons.exporting import export_nodes
    count = export_nodes(obj.client, type_name, project, fmt, output)
    if output is not None:
        say_written(f"{count} {type_name} node(s) as {fmt.upper()}", output)


def say_written(what: str, path: Path) -> None:
    """The line that tells what a command wrote where (on stderr, so stdout stays data)."""
    err.print(f"wrote {what} to {path}", highlight=False, soft_wrap=True)


@main.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--project", "-p", required=True, help="Project the nodes belong to.")
@click.pass_obj
@reports_errors
def delete(obj: Context, ids: tuple[str, ...], project: str):
    """Delete nodes by id or submitter id (refused while any has children)."""
    deleted = obj.client.delete(project, [resolve_node(obj.client, ref, project) for ref in ids])
    out.print(f"deleted {len(deleted)} node(s)")


@main.command()
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0.01, 10),
              help="Multiply the demo's size (cases, samples, measurements).")
@click.pass_obj
@reports_errors
def demo(obj: Context, scale: float):
    """(Re)create the demo commons: programs, projects, cases ... and real imzML files."""
    from labcommons.demo import create_demo
    from labcommons.demo.accounts import PASSWORDS_FILE
    summary = create_demo(obj.client, obj.settings.storage_root, scale=scale,
                          passwords_path=obj.settings.data_dir / PASSWORDS_FILE)
    out.print(summary, soft_wrap=True, markup=False, highlight=False)  # as it is: `up` shows it from a log


@main.command()
@click.pass_obj
@reports_errors
def reindex(obj: Context):
    """Rebuild every flattened document (cases, files) from the graph (admin only)."""
    with err.status("rebuilding documents ..."):
        counts = obj.client.reindex()
    out.print(", ".join(f"{count:,} {kind} documents" for kind, count in counts.items()) or "no document kinds")


@main.command()
@click.option("--to", "target", type=click.Choice(["elasticsearch"]), required=True, help="The store to fill.")
@click.option("--from", "source", type=click.Path(dir_okay=False, path_type=Path),
              help="The DuckDB file (default: metadata.duckdb in LABCOMMONS_DATA_DIR).")
@click.option("--es-url", help="Elasticsearch URL (default: LABCOMMONS_ES_URL).")
@click.option("--index-prefix", help="Index prefix (default: LABCOMMONS_ES_INDEX_PREFIX).")
@click.option("--force", is_flag=True, help="Delete the target's indices under the prefix first.")
@click.pass_obj
def migrate(obj: Context, target: str, source: Path | None, es_url: str | None, index_prefix: str | None,
            force: bool):
    """Copy the embedded store (with the service stopped) into Elasticsearch; verify counts and checksums."""
    from labcommons import migrate as migration
    from metadata.dictionary import Dictionary
    from metadata.server import Server

    s = obj.settings
    try:
        flattening = Server.flattening_for(s, Dictionary.load(s.dictionary))
        rows = migration.to_elasticsearch(source or s.database_path, es_url or s.es_url,
                                          index_prefix or s.es_index_prefix, flattening, force=force,
                                          shards=s.es_shards, replicas=None if s.es_replicas < 0 else s.es_replicas,
                                          ca_certs=s.es_ca_certs, progress=True)
    except migration.MigrateError as error:
        err.print(f"[red]error:[/] {error}")
        sys.exit(1)
    out.print(migration.table(rows, "ES" if target == "elasticsearch" else target))
    if bad := [row.name for row in rows if not row.ok]:
        err.print(f"[red]error:[/] the copy differs from the source in: {', '.join(bad)}")
        sys.exit(1)
    out.print(f"migrated {sum(r.source.count for r in rows if not r.name.startswith('(')):,} nodes: "
              "counts and checksums match")


@main.group()
def token():
    """Tokens for scripts and notebooks."""


@token.command("create")
@click.option("--user", "-u", required=True, help="The user the token names.")
@click.option("--role", "-r", "roles", multiple=True, help="admin, analyst or technician (repeatable).")
@click.option("--grant", "-g", "grants", multiple=True, metavar="PROJECT[:read|write]",
              help="Project access (repeatable); default access is read.")
@click.option("--ttl", default=0, help="Lifetime in seconds (default: the service's).")
@click.pass_obj
@reports_errors
def token_create(obj: Context, user: str, roles: tuple[str, ...], grants: tuple[str, ...], ttl: int):
    """Mint a token (admin only); prints it alone on stdout, so it can be captured."""
    issued = obj.client.create_token(user, list(roles), parse_grants(grants), ttl)
    click.echo(issued.token)
    err.print(f"token for {user}, roles {', '.join(issued.identity.roles) or 'none'}, "
              f"grants {issued.identity.grants or 'none'}")


@token.command("personal")
@click.argument("name")
@click.option("--ttl", default=0, help="Lifetime in seconds (default: the service's).")
@click.pass_obj
@reports_errors
def token_personal(obj: Context, name: str, ttl: int):
    """Create a named personal token for yourself (shown once; list and revoke it later)."""
    issued = obj.client.create_personal_token(name, ttl)
    click.echo(issued.token)
    err.print(f"personal token {name!r} (id {issued.identity.token_id}) for {issued.identity.user}")


@token.command("list")
@output_option
@click.pass_obj
@reports_errors
def token_list(obj: Context, output: str):
    """Your personal tokens (an admin sees everyone's)."""
    emit(out, obj.client.personal_tokens(), (
        Column("id", lambda t: t.id, is_id=True), Column("name", lambda t: t.name), Column("user", lambda t: t.user),
        Column("created", lambda t: t.created_at, wide=True), Column("expires", lambda t: t.expires_at, wide=True),
        Column("revoked", lambda t: "yes" if t.revoked else "")), output)


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
@reports_errors
def token_revoke(obj: Context, token_id: str):
    """Revoke one of your personal tokens; it stops working at once."""
    obj.client.revoke_personal_token(token_id)
    out.print(f"revoked {token_id}")


@main.group()
def user():
    """Accounts: users, roles and project grants (admin only)."""


@user.command("add")
@click.argument("name")
@click.option("--role", "-r", "roles", multiple=True, required=True, help="admin, analyst or technician.")
@click.option("--grant", "-g", "grants", multiple=True, metavar="PROJECT[:read|write]", help="Project access.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_obj
@reports_errors
def user_add(obj: Context, name: str, roles: tuple[str, ...], grants: tuple[str, ...], password_stdin: bool):
    """Create (or update) an account; asks for its password."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt(
        "password", hide_input=True, confirmation_prompt=True)
    account = obj.client.save_account(name, password, list(roles), parse_grants(grants))
    out.print(f"account {account.user}: roles {', '.join(account.roles)}; grants {account.grants or 'none'}")


@user.command("grant")
@click.argument("name")
@click.argument("project")
@click.option("--access", type=click.Choice(["read", "write"]), default="read", show_default=True,
              help="read (see and export) or write (also submit and delete).")
@click.pass_obj
@reports_errors
def user_grant(obj: Context, name: str, project: str, access: str):
    """Grant a user access to a project (applies to their tokens at once)."""
    account = obj.client.set_grant(name, project, access)
    out.print(f"{account.user} now has {account.grants}")


@user.command("revoke")
@click.argument("name")
@click.argument("project")
@click.pass_obj
@reports_errors
def user_revoke(obj: Context, name: str, project: str):
    """Take a project away from a user (applies to their tokens at once)."""
    account = obj.client.set_grant(name, project, "")
    out.print(f"{account.user} now has {account.grants or 'no grants'}")


@user.command("list")
@output_option
@click.pass_obj
@reports_errors
def user_list(obj: Context, output: str):
    """Every account with its roles and grants."""
    emit(out, obj.client.accounts(), (
        Column("user", lambda a: a.user, is_id=True), Column("roles", lambda a: a.roles),
        Column("grants", lambda a: [f"{p}:{g}" for p, g in sorted(a.grants.items())]),
        Column("disabled", lambda a: "yes" if a.disabled else "")), output)


@user.command("sign-out")
@click.argument("name")
@click.pass_obj
@reports_errors
def user_sign_out(obj: Context, name: str):
    """Sign a user out everywhere: every token issued to them so far stops working."""
    obj.client.sign_out_everywhere(name)
    out.print(f"{name} is signed out everywhere")


@main.command()
@click.option("--user", "-u", "who", default="", help="Only this user's actions.")
@click.option("--action", "-a", default="", help="Only this action (e.g. submit, sign_in).")
@click.option("--project", "-p", default="", help="Only calls about this project.")
@click.option("--outcome", default="", help="Only this outcome: ok, or a refusal's code.")
@click.option("--since", default="", help="ISO time, inclusive.")
@click.option("--before", default="", help="ISO time, exclusive.")
@click.option("--limit", default=50, show_default=True, help="At most this many entries.")
@output_option
@click.pass_obj
@reports_errors
def audit(obj: Context, who: str, action: str, project: str, outcome: str, since: str, before: str, limit: int,
          output: str):
    """The audit log, newest first (admin only)."""
    page = obj.client.audit(who, action, since, before, limit=limit, project=project, outcome=outcome)
    emit(out, page.entries, (
        Column("at", lambda e: e.at), Column("user", lambda e: e.user), Column("action", lambda e: e.action),
        Column("target", lambda e: e.target), Column("outcome", lambda e: e.outcome),
        Column("client", lambda e: e.client, wide=True)), output)


@main.command("tier-access")
@click.argument("limit", type=int, required=False)
@click.option("--granularity", type=int, help="Round unreadable shares down to multiples of this (default 10).")
@click.option("--fields", help='Tier-visible fields: comma-separated facets, or "default" (the enum facets).')
@click.pass_obj
@reports_errors
def tier_access(obj: Context, limit: int | None, granularity: int | None, fields: str | None):
    """Show, or (admin) set, tiered access: facet counts from projects a user cannot read are shown
    only where they reach LIMIT documents, rounded down to the granularity, and only under filters
    on tier-visible fields. 0 turns it off (such data is hidden). docs/admin.md, "Tiered access"."""
    if granularity is None and fields is None:
        if limit is not None:
            obj.client.set_tier_access_limit(limit)
    else:
        now = obj.client.tier_access()
        obj.client.set_tier_access(now.limit if limit is None else limit,
                                   now.granularity if granularity is None else granularity, _chosen(fields, now))
    current = obj.client.tier_access()
    if not current.limit:
        out.print("tier-access limit: off (data of projects a user cannot read is hidden)")
        return
    out.print(f"tier-access limit: {current.limit}\ngranularity: {current.granularity}")
    out.print(f"tier-visible: {', '.join(current.visible_fields) or 'none'}", soft_wrap=True)


def _chosen(fields: str | None, now) -> list[str] | None:
    """The tier-visible fields to set: the option's, or those in force; None means the default."""
    if fields is None:
        return None if now.default_fields else list(now.visible_fields)
    return None if fields == "default" else [f.strip() for f in fields.split(",") if f.strip()]


def parse_grants(grants: tuple[str, ...]) -> dict[str, str]:
    """`proj` or `proj:write` options as a grants mapping."""
    parsed = {}
    for grant in grants:
        project, _, access = grant.partition(":")
        parsed[project] = access or "read"
    return parsed


@main.command()
@click.pass_obj
@reports_errors
def whoami(obj: Context):
    """Who the token names, with roles and grants."""
    identity = obj.client.whoami()
    click.echo(json.dumps({"user": identity.user, "roles": identity.roles, "grants": identity.grants,
                           "expires_at": identity.expires_at}, indent=2))


@main.command()
@click.pass_obj
@reports_errors
def status(obj: Context):
    """The service's health and node counts."""
    health = obj.client.health()
    out.print(f"metadata service at {obj.host}:{obj.port}: {health.status} "
              f"(version {health.version}, store {health.store})")
    for type_name, count in sorted(health.counts.items()):
        out.print(f"  {type_name:<14} {count:>8,}")


import labcommons.cli_workflows  # noqa: E402,F401 - registers the workflow commands on `main`
import labcommons.cli_stats  # noqa: E402,F401 - registers `stats` on `main`
import labcommons.cli_upload  # noqa: E402,F401 - registers `upload` on `main`

if __name__ == "__main__":
    from labcommons.cli import main as registered  # under `python -m`, the module that has them all
    registered()
