"""`labcommons` commands for workflows: the catalog, launches, runs, triggers and the worker."""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path

import click
from rich.live import Live
from rich.table import Table

from labcommons.cli import Context, completes, err, main, out, reports_errors
from labcommons.cli_output import Column, emit, output_option
from labcommons.cli_resolve import node_id, run_id as resolve_run
from metadata.idl import metadata_thrift as T

FINAL = ("succeeded", "failed", "cancelled")
STATUS_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan", "queued": "white"}
OUTCOME_STYLE = {"failed": "red", "passed": "green"}


@click.command()
@output_option
@click.pass_obj
@reports_errors
def templates(obj: Context, output: str):
    """The workflow templates you can launch."""
    emit(out, obj.client.templates(), (
        Column("template", lambda t: t.name, is_id=True), Column("title", lambda t: t.title),
        Column("inputs", lambda t: t.input_formats),
        Column("parameters (default)", lambda t: [f"{p.name}={p.default_value}" if p.default_value else p.name
                                                  for p in t.parameters]),
        Column("standard", lambda t: "yes" if t.standard else "", wide=True)), output)


@click.command()
@click.argument("template", shell_complete=completes(lambda client: [t.name for t in client.templates()]))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="A template parameter.")
@click.option("--project", default="", help="The project the INPUTS' submitter ids are in (default: the one "
              "readable project that has each).")
@click.option("--parameter-set", default="", help="Id of a parameter set to start from.")
@click.option("--force", is_flag=True, help="Launch even when an identical run exists.")
@click.option("--no-reuse", is_flag=True, help="Run every step, even one whose identical earlier run's "
              "outputs could be reused.")
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit 1 unless it succeeds.")
@click.pass_obj
@reports_errors
def launch(obj: Context, template: str, inputs: tuple[str, ...], params: tuple[str, ...], project: str,
           parameter_set: str, force: bool, no_reuse: bool, wait: bool):
    """Launch TEMPLATE on INPUTS: data files or measurements, by id or submitter id (e.g. ak-meas-0025)."""
    ids = [node_id(obj.client, ref, project) for ref in inputs]
    result = obj.client.launch(template, ids, parse_params(params), parameter_set, force, reuse=not no_reuse)
    run = result.run
    if result.existing:
        out.print(f"an identical launch is already {run.status}: run {run.id} (use --force to run again)")
    else:
        out.print(f"launched {run.template} as run {run.id} ({run.status}), named {run.submitter_id}",
                  highlight=False, soft_wrap=True)
    if wait:
        run = follow(obj.client, run.id)
        out.print(outcome_line(run), highlight=False, soft_wrap=True)
        raise SystemExit(0 if run.status == "succeeded" else 1)


def reused_text(step: T.RunStep) -> str:
    """A reused step's note: "reused from run X (step Y)"; "" for a step that ran."""
    return f"reused from run {step.reused_from_run} (step {step.reused_from_step})" if step.reused_from_run else ""


def outcome_line(run: T.Run) -> str:
    """How a followed run ended, on a line of its own."""
    outputs = f"; {len(run.output_ids)} output(s): {', '.join(run.output_ids)}" if run.output_ids else ""
    message = f": {run.message}" if run.message and run.message != run.status else ""
    return f"run {run.id} {run.status}{message}{outputs}"


def parse_params(params: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        parsed[name] = value
    return parsed


def follow(client, run_id: str, poll_seconds: float = 1.0) -> T.Run:
    """Show the run's progress (steps done of steps known) until it ends."""
    with Live(console=err, transient=False) as live:
        while True:
            run = client.run(run_id)
            live.update(progress_line(run))
            if run.status in FINAL:
                break
            time.sleep(poll_seconds)
    if not err.is_terminal:
        err.line()  # Live leaves a terminal on a fresh line, but not a file or pipe
    return run


def progress_line(run: T.Run) -> str:
    leaves = [s for s in run.steps if not s.children]
    done = sum(1 for s in leaves if s.phase in ("Succeeded", "Skipped", "Omitted"))
    bar = "█" * int(20 * done / len(leaves)) if leaves else ""
    style = STATUS_STYLE.get(run.status, "white")
    return f"[{style}]{run.status:<10}[/] {bar:<20} {done}/{len(leaves)} steps  {run.message}"


@click.command()
@click.option("--status", default="", help="queued, running, succeeded, failed or cancelled.")
@click.option("--template", default="", help="Only runs of this template.")
@click.option("--user", "-u", "who", default="", help="Only runs this user launched.")
@click.option("--project", "-p", default="", help="Only runs in this project.")
@click.option("--since", default="", help="Only runs created at or after this date or instant (ISO 8601).")
@click.option("--before", default="", help="Only runs created before this date or instant (ISO 8601).")
@click.option("--limit", default=50, show_default=True, help="At most this many runs.")
@output_option
@click.pass_obj
@reports_errors
def runs(obj: Context, status: str, template: str, who: str, project: str, since: str, before: str, limit: int,
         output: str):
    """Runs you may read, newest first."""
    page = obj.client.runs(status=status, template=template, user=who, project_id=project, limit=limit,
                           since=since, before=before)
    emit(out, page.runs, RUN_COLUMNS, output)
    if output in ("table", "wide"):
        out.print(f"{len(page.runs)} of {page.total} run(s)")


RUN_COLUMNS = (Column("id", lambda r: r.id, is_id=True), Column("name", lambda r: r.submitter_id, is_id=True, drops=True),
               Column("template", lambda r: r.template),
               Column("status", lambda r: r.status, style=lambda r: status_style(r)),
               Column("QC", lambda r: r.outcome, style=lambda r: OUTCOME_STYLE.get(r.outcome, "")),
               Column("project", lambda r: r.project_id, wide=True), Column("by", lambda r: r.created_by, wide=True),
               Column("created", lambda r: r.created_at[:19], wide=True),
               Column("message", lambda r: r.message, wide=True))
RUN_REF = click.argument("run_ref", metavar="RUN", shell_complete=completes(
    lambda client: [name for r in client.runs(limit=50).runs for name in (r.submitter_id, r.id)]))


def status_style(r) -> str:
    """The run's status colour; a run that succeeded but failed QC is never green."""
    return "yellow" if r.outcome == "failed" else STATUS_STYLE.get(r.status, "white")


def status_text(r) -> str:
    return f"[{status_style(r)}]{r.status}[/]"


def outcome_text(r) -> str:
    """The run's verdict, coloured: QC failed in red, passed in green, none blank."""
    return f"[{OUTCOME_STYLE[r.outcome]}]{r.outcome}[/]" if r.outcome in OUTCOME_STYLE else ""


@click.group()
def run():
    """One run: show, cancel, retry, logs, crate. RUN is its id, its name as the portal shows it, or an
    unambiguous id prefix."""


@run.command("show")
@RUN_REF
@click.pass_obj
@reports_errors
def run_show(obj: Context, run_ref: str):
    """The run's status, QC outcome, parameters, inputs, steps and outputs."""
    r = obj.client.run(resolve_run(obj.client, run_ref))
    out.print(f"run {r.id}  {r.template}  {status_text(r)}  {r.message}")
    if r.outcome:
        out.print(f"QC {outcome_text(r)}" + "".join(f"\n  failed: {check}" for check in r.failed_checks))
    out.print(f"project {r.project_id}  by {r.created_by}  created {r.created_at}  attempt {r.attempt}")
    out.print(f"parameters {r.parameters}  digest {r.template_digest[:12]}  inputs {', '.join(r.input_ids)}")
    table = Table("step", "phase", "exit", "started", "finished", "message", show_edge=False)
    for s in r.steps:
        table.add_row(s.name, s.phase, "" if s.exit_code < 0 else str(s.exit_code), s.started_at, s.finished_at,
                      s.message or ("reused" if s.reused_from_run else ""))
    out.print(table)
    for s in r.steps:   # below the table, whole: a run id does not fit a cell
        if s.reused_from_run:
            out.print(f"{s.name}: {reused_text(s)}", highlight=False, soft_wrap=True)
    if r.output_ids:
        out.print(f"outputs: {', '.join(r.output_ids)}")


@run.command("cancel")
@RUN_REF
@click.pass_obj
@reports_errors
def run_cancel(obj: Context, run_ref: str):
    """Cancel a queued or running run (its running steps are stopped)."""
    r = obj.client.cancel_run(resolve_run(obj.client, run_ref))
    out.print(f"run {r.id}: {r.status}{' (stopping)' if r.cancel_requested else ''}")


@run.command("retry")
@RUN_REF
@click.pass_obj
@reports_errors
def run_retry(obj: Context, run_ref: str):
    """Run a failed run's failed steps again."""
    r = obj.client.retry_run(resolve_run(obj.client, run_ref))
    out.print(f"run {r.id}: {r.status} again (attempt {r.attempt}); the failed steps run again")


@run.command("crate")
@RUN_REF
@click.option("-o", "--output", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the zip (default: run-<id>.crate.zip).")
@click.pass_obj
@reports_errors
def run_crate(obj: Context, run_ref: str, path: Path | None):
    """The run's provenance as a Workflow Run RO-Crate (a zip): template, inputs with checksums,
    parameters and parameter set, each step with its times and outcome, outputs."""
    from labcommons.cli import say_written
    from metadata import run_crate as crates, templates
    found = resolve_run(obj.client, run_ref)
    record = crates.gather(obj.client, found, templates.load(obj.settings.templates_dir), obj.settings.engine)
    path = path or Path(f"run-{found}.crate.zip")
    crates.write_zip(record, path)
    say_written(f"the RO-Crate of run {found}", path)


@run.command("logs")
@RUN_REF
@click.option("--step", default="", help="Only this step (by name); default: every step that ran.")
@click.pass_obj
@reports_errors
def run_logs(obj: Context, run_ref: str, step: str):
    """The steps' logs (read from the storage root, so on the worker's machine)."""
    from ground.storage import NotReadable, open_checked, resolve
    found = obj.client.run(resolve_run(obj.client, run_ref))
    chosen = [s for s in found.steps if s.log_url and (not step or s.name == step)]
    if not chosen:
        raise RuntimeError(f"run {found.id} has no log{' for step ' + repr(step) if step else ''} yet")
    for s in chosen:
        out.rule(f"{s.name} ({s.phase})")
        try:
            with open_checked(resolve(s.log_url, obj.settings.storage_root, found.project_id)) as log:
                click.echo(log.read().decode(errors="replace"), nl=False)
        except (NotReadable, OSError) as error:
            err.print(f"[yellow]{error}[/]")


@click.command()
@output_option
@click.pass_obj
@reports_errors
def triggers(obj: Context, output: str):
    """Trigger rules and whether each is enabled."""
    emit(out, obj.client.triggers(), (
        Column("trigger", lambda t: t.name, is_id=True), Column("template", lambda t: t.template),
        Column("enabled", lambda t: "yes" if t.enabled else "no"),
        Column("description", lambda t: t.description, wide=True)), output)


@click.command()
@click.argument("name")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.pass_obj
@reports_errors
def trigger(obj: Context, name: str, state: str):
    """Turn the trigger NAME on or off (admin)."""
    t = obj.client.set_trigger_enabled(name, state == "on")
    out.print(f"trigger {t.name} is {'enabled' if t.enabled else 'disabled'}")


@click.command()
@click.option("--name", default="", help="Worker name (default: worker@<host>; keep it across restarts).")
@click.option("--capacity", default=0, help="Runs at once (default: the number of cores).")
@click.option("--poll", default=0.25, show_default=True, help="Seconds between claims.")
@click.option("--heartbeat", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file touched each time round the loop, for `labcommons worker-alive`.")
@click.pass_obj
def worker(obj: Context, name: str, capacity: int, poll: float, heartbeat: Path | None):
    """Claim queued runs and run them on the local engine (or on Argo with LABCOMMONS_ENGINE=argo),
    until SIGTERM or Ctrl-C."""
    from metadata import templates as catalog
    from workflow_templates.worker import Worker, default_name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    templates = catalog.load(obj.settings.templates_dir, template_check(obj.settings))
    runner = Worker(obj.client, templates, obj.settings.storage_root,
                    name=name or default_name(), capacity=capacity, engine=engine_for(obj.settings),
                    heartbeat=heartbeat, janitor=janitor_for(obj, templates),
                    sweep_seconds=obj.settings.lifecycle_seconds)
    logging.getLogger(__name__).info("worker %s: up to %d run(s) at once", runner.name, runner.capacity)
    runner.serve(stop, poll)


@click.command("worker-alive")
@click.argument("heartbeat", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--within", default=120.0, show_default=True, help="Seconds the last heartbeat may be old.")
def worker_alive(heartbeat: Path, within: float):
    """Exit 0 if the worker writing HEARTBEAT (worker --heartbeat) went round its loop lately, else 1:
    a liveness probe that catches a hung worker, which reaching the service does not."""
    from workflow_templates.worker import is_alive

    alive, message = is_alive(heartbeat, within)
    click.echo(message, err=not alive)
    sys.exit(0 if alive else 1)


@click.command()
@click.option("--dry-run", is_flag=True, help="Show what the rules would do; delete nothing.")
@output_option
@click.pass_obj
@reports_errors
def lifecycle(obj: Context, dry_run: bool, output: str):
    """Apply the storage lifecycle rules now (or, with --dry-run, show the plan): run on the machine
    that holds the storage root, with a worker or admin token."""
    from metadata import templates as catalog

    janitor = janitor_for(obj, catalog.load(obj.settings.templates_dir, template_check(obj.settings)))
    plan = janitor.plan()
    emit(out, plan, (
        Column("rule", lambda p: p.rule), Column("action", lambda p: p.action),
        Column("project", lambda p: p.project), Column("run", lambda p: p.run_id, is_id=True),
        Column("template", lambda p: p.template, drops=True), Column("finished", lambda p: p.finished_at, wide=True),
        Column("files", lambda p: len(p.files)), Column("bytes", lambda p: p.bytes),
        Column("reason", lambda p: p.reason, drops=True)), output)
    if not dry_run:
        done = janitor.apply(plan)
        err.print(f"deleted {sum(d.files for d in done)} file(s) of {len(done)} run(s), "
                  f"{sum(d.bytes_freed for d in done)} bytes freed", highlight=False)


def janitor_for(obj: Context, templates):
    """The janitor of the storage root with the lifecycle rules in force (LABCOMMONS_LIFECYCLE_DIR)."""
    from metadata.errors import MetadataError
    from metadata.lifecycle import load_rules
    from workflow_templates.janitor import Janitor
    try:
        rules = load_rules(obj.settings.lifecycle_dir, templates)
    except MetadataError as error:   # a bad rule file: refused, naming the rule and the field
        raise RuntimeError(error.message) from None
    return Janitor(obj.client, templates, obj.settings.storage_root, rules)


def template_check(settings):
    """The catalog's check of each template: the local engine's refusals when runs go to it
    (Argo runs what its schema accepts); injected here, the layer that knows the engine."""
    if settings.engine != "local":
        return None
    from workflow_templates.engines.spec import refusals
    return refusals


def engine_for(settings):
    """The local engine (default), or Argo when LABCOMMONS_ENGINE=argo (LABCOMMONS_ARGO_* settings)."""
    if settings.engine == "local":
        return None   # the worker makes its local engine
    from workflow_templates.engines.argo import ArgoEngine
    from workflow_templates.engines.argo_runs import ArgoRuns
    return ArgoRuns(ArgoEngine.from_settings(settings), settings.storage_root)


for command in (templates, launch, runs, run, triggers, trigger, worker, worker_alive, lifecycle):
    main.add_command(command)
