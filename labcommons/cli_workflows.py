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

from labcommons.cli import Context, err, main, out, reports_errors
from metadata.idl import metadata_thrift as T

FINAL = ("succeeded", "failed", "cancelled")
STATUS_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan", "queued": "white"}


@click.command()
@click.pass_obj
@reports_errors
def templates(obj: Context):
    """The workflow templates you can launch."""
    table = Table("template", "title", "inputs", "parameters (default)", "standard", show_edge=False)
    for t in obj.client.templates():
        params = ", ".join(f"{p.name}={p.default_value}" if p.default_value else p.name for p in t.parameters)
        table.add_row(t.name, t.title, ", ".join(t.input_formats), params, "yes" if t.standard else "")
    out.print(table)


@click.command()
@click.argument("template")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="A template parameter.")
@click.option("--parameter-set", default="", help="Id of a parameter set to start from.")
@click.option("--force", is_flag=True, help="Launch even when an identical run exists.")
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit 1 unless it succeeds.")
@click.pass_obj
@reports_errors
def launch(obj: Context, template: str, inputs: tuple[str, ...], params: tuple[str, ...], parameter_set: str,
           force: bool, wait: bool):
    """Launch TEMPLATE on INPUTS (data file or measurement ids)."""
    result = obj.client.launch(template, list(inputs), parse_params(params), parameter_set, force)
    run = result.run
    if result.existing:
        out.print(f"an identical launch is already {run.status}: run {run.id} (use --force to run again)")
    else:
        out.print(f"launched {run.template} as run {run.id} ({run.status})")
    if wait:
        run = follow(obj.client, run.id)
        raise SystemExit(0 if run.status == "succeeded" else 1)


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
                return run
            time.sleep(poll_seconds)


def progress_line(run: T.Run) -> str:
    leaves = [s for s in run.steps if not s.children]
    done = sum(1 for s in leaves if s.phase in ("Succeeded", "Skipped", "Omitted"))
    bar = "█" * int(20 * done / len(leaves)) if leaves else ""
    style = STATUS_STYLE.get(run.status, "white")
    return f"[{style}]{run.status:<10}[/] {bar:<20} {done}/{len(leaves)} steps  {run.message}"


@click.command()
@click.option("--status", default="", help="queued, running, succeeded, failed or cancelled.")
@click.option("--template", default="")
@click.option("--user", "-u", "who", default="")
@click.option("--project", "-p", default="")
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
@reports_errors
def runs(obj: Context, status: str, template: str, who: str, project: str, limit: int):
    """Runs you may read, newest first."""
    page = obj.client.runs(status=status, template=template, user=who, project_id=project, limit=limit)
    table = Table(show_edge=False)
    table.add_column("run", no_wrap=True)
    for name in ("template", "status", "QC", "project", "by", "created", "message"):
        table.add_column(name, overflow="ellipsis", no_wrap=name != "message", min_width=6 if name == "QC" else None)
    for r in page.runs:
        table.add_row(r.id, r.template, status_text(r), outcome_text(r),
                      r.project_id, r.created_by, r.created_at[:19], r.message[:60])
    out.print(table)
    out.print(f"{len(page.runs)} of {page.total} run(s)")


def status_text(r) -> str:
    """The run's status, coloured; a run that succeeded but failed QC is never green."""
    return f"[{'yellow' if r.outcome == 'failed' else STATUS_STYLE.get(r.status, 'white')}]{r.status}[/]"


def outcome_text(r) -> str:
    """The run's verdict, coloured: QC failed in red, passed in green, none blank."""
    return {"failed": "[red]failed[/]", "passed": "[green]passed[/]"}.get(r.outcome, "")


@click.group()
def run():
    """One run: show, cancel, retry, logs."""


@run.command("show")
@click.argument("run_id")
@click.pass_obj
@reports_errors
def run_show(obj: Context, run_id: str):
    r = obj.client.run(run_id)
    out.print(f"run {r.id}  {r.template}  {status_text(r)}  {r.message}")
    if r.outcome:
        out.print(f"QC {outcome_text(r)}" + "".join(f"\n  failed: {check}" for check in r.failed_checks))
    out.print(f"project {r.project_id}  by {r.created_by}  created {r.created_at}  attempt {r.attempt}")
    out.print(f"parameters {r.parameters}  digest {r.template_digest[:12]}  inputs {', '.join(r.input_ids)}")
    table = Table("step", "phase", "exit", "started", "finished", "message", show_edge=False)
    for s in r.steps:
        table.add_row(s.name, s.phase, "" if s.exit_code < 0 else str(s.exit_code), s.started_at, s.finished_at,
                      s.message)
    out.print(table)
    if r.output_ids:
        out.print(f"outputs: {', '.join(r.output_ids)}")


@run.command("cancel")
@click.argument("run_id")
@click.pass_obj
@reports_errors
def run_cancel(obj: Context, run_id: str):
    r = obj.client.cancel_run(run_id)
    out.print(f"run {r.id}: {r.status}{' (stopping)' if r.cancel_requested else ''}")


@run.command("retry")
@click.argument("run_id")
@click.pass_obj
@reports_errors
def run_retry(obj: Context, run_id: str):
    r = obj.client.retry_run(run_id)
    out.print(f"run {r.id}: {r.status} again (attempt {r.attempt}); the failed steps run again")


@run.command("logs")
@click.argument("run_id")
@click.option("--step", default="", help="Only this step (by name); default: every step that ran.")
@click.pass_obj
@reports_errors
def run_logs(obj: Context, run_id: str, step: str):
    """The steps' logs (read from the storage root, so on the worker's machine)."""
    from ground.storage import NotReadable, open_checked, resolve
    found = obj.client.run(run_id)
    chosen = [s for s in found.steps if s.log_url and (not step or s.name == step)]
    if not chosen:
        raise RuntimeError(f"run {run_id} has no log{' for step ' + repr(step) if step else ''} yet")
    for s in chosen:
        out.rule(f"{s.name} ({s.phase})")
        try:
            with open_checked(resolve(s.log_url, obj.settings.storage_root, found.project_id)) as log:
                click.echo(log.read().decode(errors="replace"), nl=False)
        except (NotReadable, OSError) as error:
            err.print(f"[yellow]{error}[/]")


@click.command()
@click.pass_obj
@reports_errors
def triggers(obj: Context):
    """Trigger rules and whether each is enabled."""
    table = Table("trigger", "template", "enabled", "description", show_edge=False)
    for t in obj.client.triggers():
        table.add_row(t.name, t.template, "yes" if t.enabled else "no", t.description)
    out.print(table)


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
    runner = Worker(obj.client, catalog.load(obj.settings.templates_dir), obj.settings.storage_root,
                    name=name or default_name(), capacity=capacity, engine=engine_for(obj.settings),
                    heartbeat=heartbeat)
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


def engine_for(settings):
    """The local engine (default), or Argo when LABCOMMONS_ENGINE=argo (LABCOMMONS_ARGO_* settings)."""
    if settings.engine == "local":
        return None   # the worker makes its local engine
    from workflow_templates.engines.argo import ArgoEngine
    from workflow_templates.engines.argo_runs import ArgoRuns
    return ArgoRuns(ArgoEngine.from_env(), settings.storage_root)


for command in (templates, launch, runs, run, triggers, trigger, worker, worker_alive):
    main.add_command(command)
