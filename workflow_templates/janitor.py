"""The janitor: applies the storage lifecycle rules (metadata/lifecycle.py) to the runs' folders.

It runs beside the steps, where the files are (the worker calls it every LABCOMMONS_LIFECYCLE_SECONDS;
`labcommons lifecycle` on demand): the service may not see the storage root. `plan` reads and
deletes nothing; `apply` deletes what the plan says, then reports each run's deletion to the service,
which keeps it on the run and in the audit log.

Before a rule deletes anything of a succeeded run it checks in the graph that the run's outputs are
safe (as Trellis checks that every essential output exists): each registered output's file is
there with its registered size, and a template that declares outputs has at least one registered;
otherwise the run is kept and the plan says why. Registered outputs, links (the staged raw data) and anything
whose real path leaves the run's folder are never deleted, whatever a pattern says.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from ground.storage import NotReadable, resolve, run_dir
from metadata.idl import metadata_thrift as T
from metadata.lifecycle import Rule

log = logging.getLogger(__name__)
PAGE = 500
GIGABYTE = 1024 ** 3


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Planned:
    """One line of the plan: what a rule does to one run (delete or keep) or one project (warn)."""
    rule: str
    action: str                      # delete, keep (and why), warn (a quota passed)
    project: str
    run_id: str = ""
    template: str = ""
    finished_at: str = ""
    files: tuple[tuple[str, int], ...] = ()   # (path relative to the run's folder, bytes)
    reason: str = ""
    used_bytes: int = 0              # a quota line: the project's storage use

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.files) or self.used_bytes


@dataclass
class Janitor:
    client: object                   # a MetadataClient with the worker (or admin) role
    catalog: object                  # metadata.templates.Catalog
    storage_root: Path
    rules: list[Rule]
    clock: Callable[[], datetime] = field(default=utc_now)

    def plan(self, usage: dict[str, int] | None = None) -> list[Planned]:
        """What the enabled rules would do now; nothing is deleted. `usage`: each project's bytes
        (measured here when a quota rule needs it and none is given)."""
        planned = []
        for rule in (r for r in self.rules if r.enabled):
            if rule.is_quota:
                usage = self.usage() if usage is None else usage
                planned += _over_quota(rule, usage)
            else:
                planned += self._deletions(rule)
        return planned

    def apply(self, plan: list[Planned] | None = None) -> list[T.RunDeletion]:
        """Delete what the plan says (a fresh plan by default), report each run's deletion, then
        each project's storage use (with its quota) for the dashboard and the quota alerts."""
        usage = self.usage()
        done = []
        for item in plan if plan is not None else self.plan(usage):
            if item.action == "warn":
                log.warning("project %s uses %.1f GB, more than rule %s allows (%s)", item.project,
                            item.used_bytes / GIGABYTE, item.rule, item.reason)
            elif item.action == "delete":
                done.append(self._delete(item))
                usage[item.project] = usage.get(item.project, 0) - done[-1].bytes_freed
        self.client.report_storage([T.StorageUse(project_id=project, bytes=max(0, used), quota_bytes=self._quota_of(project))
                                    for project, used in sorted(usage.items())])
        return done

    def usage(self) -> dict[str, int]:
        """Each project's bytes in the storage root (its folder: raw data and runs)."""
        return {p.name: folder_bytes(p) for p in sorted(self.storage_root.iterdir())
                if p.is_dir() and not p.name.startswith(".")} if self.storage_root.is_dir() else {}

    def _quota_of(self, project: str) -> int:
        """The smallest quota an enabled rule sets for the project, in bytes; 0 for none."""
        quotas = [r.quota_gigabytes for r in self.rules if r.enabled and r.is_quota
                  and (not r.projects or project in r.projects)]
        return int(min(quotas) * GIGABYTE) if quotas else 0

    # -- planning ---------------------------------------------------------------------------

    def _deletions(self, rule: Rule) -> list[Planned]:
        cutoff = self.clock() - timedelta(days=rule.age_days)
        planned = []
        for run in (r for status in rule.statuses for r in self._runs(status, rule.template)):
            if run.finished_at and _when(run.finished_at) <= cutoff:
                item = self._plan_run(rule, run)
                planned += [item] if item is not None else []
        return planned

    def _runs(self, status: str, template: str):
        """Every run of a status (and template), page by page."""
        offset = 0
        while True:
            page = self.client.runs(status=status, template=template, limit=PAGE, offset=offset)
            yield from page.runs
            offset += len(page.runs)
            if not page.runs or offset >= page.total:
                return

    def _plan_run(self, rule: Rule, run: T.Run) -> Planned | None:
        """The run's files the rule deletes, or why it keeps them; None when there are none left."""
        folder = run_dir(self.storage_root, run.project_id, run.id)
        if not any(_matching(folder, rule, set())):
            return None   # cleaned already (most runs, most sweeps): the graph is not asked
        registered, problem = self._registered(run)
        files = tuple(_matching(folder, rule, registered))
        if not files:
            return None
        action = "keep" if problem else "delete"
        return Planned(rule.name, action, run.project_id, run.id, run.template, run.finished_at, files, problem)

    def _registered(self, run: T.Run) -> tuple[set[Path], str]:
        """(the real paths of the run's registered outputs, why they are not safe or "")."""
        paths, problem = set(), ""
        for output_id in run.output_ids:
            node = self.client.get(output_id)
            props = node["properties"]
            try:
                path = resolve(props.get("storage_url", ""), self.storage_root, run.project_id)
            except NotReadable as error:
                problem = problem or f"registered output {node['submitter_id']} is not there: {error}"
                continue
            paths.add(path)
            if path.stat().st_size != int(props.get("file_size", -1)):
                problem = problem or f"registered output {node['submitter_id']} is not the size it was registered with"
        return paths, problem or (self._undeclared(run, paths) if run.status == "succeeded" else "")

    def _undeclared(self, run: T.Run, registered: set[Path]) -> str:
        """Why a succeeded run has no registered output though its template declares some, or ""."""
        template = self.catalog.get(run.template)
        if template is None:
            return f"the template {run.template!r} is not installed here, so its outputs cannot be checked"
        if template.entry.outputs and not registered:
            return f"the template declares outputs ({template.entry.outputs[0].path}, ...) but none is registered"
        return ""

    # -- deleting ---------------------------------------------------------------------------

    def _delete(self, item: Planned) -> T.RunDeletion:
        """Delete one run's planned files, then report what went (all, or as far as it got)."""
        folder = run_dir(self.storage_root, item.project, item.run_id)
        gone, freed, message = [], 0, ""
        for relative, size in item.files:
            try:
                _unlink_inside(folder, relative)
            except OSError as error:
                message = f"stopped at {relative}: {error}; {len(item.files) - len(gone)} file(s) remain"
                break
            gone.append(relative)
            freed += size
        _prune(folder, gone)
        deletion = T.RunDeletion(run_id=item.run_id, rule=item.rule, paths=gone, files=len(gone),
                                 bytes_freed=freed, complete=not message, message=message)
        self.client.record_deletion(deletion)
        log.info("rule %s deleted %d file(s), %d bytes, of run %s%s", item.rule, len(gone), freed, item.run_id,
                 f" ({message})" if message else "")
        return deletion


def _over_quota(rule: Rule, usage: dict[str, int]) -> list[Planned]:
    """A warning for each project the quota rule covers whose use passes it."""
    return [Planned(rule.name, "warn", project, used_bytes=used, reason=f"quota {rule.quota_gigabytes:g} GB")
            for project, used in sorted(usage.items())
            if (not rule.projects or project in rule.projects) and used > rule.quota_gigabytes * GIGABYTE]


def _matching(folder: Path, rule: Rule, registered: set[Path]):
    """(relative path, bytes) of each regular file in the run's folder the rule deletes."""
    for directory, _, names in os.walk(folder):   # links to folders are not followed
        for name in sorted(names):
            path = Path(directory) / name
            relative = path.relative_to(folder).as_posix()
            if rule.matches(relative) and not path.is_symlink() and path.resolve() not in registered:
                yield relative, path.lstat().st_size


def _unlink_inside(folder: Path, relative: str) -> None:
    """Delete a regular file of the run's folder: never a link, never through one."""
    path = folder / relative
    if path.is_symlink() or not path.resolve().is_relative_to(folder.resolve()):
        raise OSError(f"{relative} is a link or leads out of the run's folder")
    path.unlink(missing_ok=True)


def _prune(folder: Path, gone: list[str]) -> None:
    """Remove the folders the deletion emptied (deepest first), never the run's folder itself."""
    parents = sorted({p for relative in gone for p in Path(relative).parents if p != Path(".")},
                     key=lambda p: len(p.parts), reverse=True)
    for parent in parents:
        try:
            (folder / parent).rmdir()
        except OSError:
            pass   # not empty: something else stays in it


def folder_bytes(folder: Path) -> int:
    """The bytes of the regular files under a folder (links not followed)."""
    total = 0
    for directory, _, names in os.walk(folder):
        for name in names:
            try:
                stat = os.lstat(os.path.join(directory, name))
            except OSError:
                continue   # deleted while we walked
            total += stat.st_size if not os.path.islink(os.path.join(directory, name)) else 0
    return total


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
