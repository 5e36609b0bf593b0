"""Step reuse across runs: a container or script step whose key equals that of an earlier succeeded
step takes that step's outputs instead of running (Galaxy's job cache; Argo's `memoize` maps onto
the same cache). The engine computes keys, records and verifies files; the cache it is given (the
worker's: the metadata service's step records) decides which earlier steps a run may see.

The key, sha256 of canonical JSON of:
- the step's template with every tag resolved (command, arguments, env, script, outputs: its
  content and the parameters it resolved), the run's own folder written as a placeholder, so runs
  that differ only in where they work share keys;
- the checksums of the files it is given that the run did not write: the run's inputs (the worker
  names them: the imzML and the ibd beside it, which no parameter names) and every path under the
  storage root, outside the run's folder, that a resolved value names;
- the keys of the steps before it in the template's structure (earlier step groups, the DAG tasks
  it depends on, transitively): what the run wrote that it may read counts by the keys of whoever
  wrote it, so a step reading a directory that its siblings fill at the same time still has one key.
With `memoize` the key is Argo's: `memoize.key` resolved, in the cache `memoize.cache.configMap.name`;
an entry older than `maxAge` is ignored (controller/operator.go, cache/cache.go).

What a step wrote, since the engine cannot see inside it: the files under the paths in the run's
folder that its resolved values name (its out-dir), changed between its start and its process's
end. A sibling writing the same directory at the same time may add its file to the record too
(nothing tells their writes apart): a file is never left out of its writer's record, and reuse
never writes over a file already there. After a succeeded step they are recorded with checksums.

Reusing a record: every recorded file must still be in the earlier run's folder, a regular file
with its size and sha256 (deleted or changed: the record is passed over); then each is copied into
this run's folder, never over a file already there, the earlier folder's path rewritten to this
one's in small text files (a manifest of paths) and in the output parameters.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import threading
from pathlib import Path
from typing import Protocol

from ground import bwrap
from workflow_templates.engines import golang
from workflow_templates.engines.expressions import ExpressionError, render
from workflow_templates.engines.phases import OMITTED, SKIPPED, deps

PLACEHOLDER = "{{labcommons.run-folder}}"
CACHE_KEY = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")  # Argo's cacheKeyRegex (cache/cache.go)
TEXT_LIMIT = 1 << 20  # files up to this size that hold the earlier folder's path get it rewritten
_sums: dict[tuple, str] = {}
_sums_lock = threading.Lock()


class StepCache(Protocol):
    """Where records are kept and found (the worker's cache asks the metadata service)."""

    def find(self, run_id: str, key: str, max_age: float | None) -> list[dict]:
        """Records this run may reuse for key (newest first): key, run_id, step, node_id, folder,
        files [{path, sha256, size}], outputs."""

    def record(self, run_id: str, record: dict) -> None:
        """Keep a succeeded step's record."""


class MemoizeError(ValueError):
    """A memoize the template gives that Argo would refuse at run time (the node errs)."""


def memo_key(template: dict, scope: dict) -> tuple[str, float | None] | None:
    """(the cache key, maxAge in seconds or None) of a memoized template; None when not memoized.
    Argo resolves the key with the template's scope and refuses a key outside its cacheKeyRegex."""
    memoize = template.get("memoize")
    if not memoize:
        return None
    try:
        key = render(str(memoize.get("key", "")), scope)
    except ExpressionError as error:
        raise MemoizeError(f"memoize.key: {error}") from None
    if not CACHE_KEY.match(key):
        raise MemoizeError(f"invalid cache key: {key}")
    max_age = str(memoize.get("maxAge") or "")
    try:
        seconds = duration(render(max_age, scope)) if max_age else None
    except (ValueError, ExpressionError) as error:
        raise MemoizeError(f"invalid maxAge: {error}") from None
    return f"memoize:{memoize['cache']['configMap']['name']}:{key}", seconds


def duration(text: str) -> float:
    """Go's time.ParseDuration, as Argo reads maxAge: a unit is needed ("180s", "24h"), except 0."""
    if re.fullmatch(r"[+-]?\d+", text.strip()) and text.strip().lstrip("+-") != "0":
        raise ValueError(f"time: missing unit in duration {text!r}")
    return golang.seconds(text)


def step_key(template: dict, scope: dict, folder: Path, storage_root: Path, inputs: list[str],
             upstream: list[str]) -> str | None:
    """The key of a container or script step (see the module's doc); None when it has none (a tag
    that cannot be resolved yet, output artifacts, whose keys name the run)."""
    if (template.get("outputs") or {}).get("artifacts"):
        return None
    body = {k: v for k, v in template.items() if k != "memoize"}
    try:
        resolved = _render_all(body, scope)
    except ExpressionError:
        return None
    named = [Path(v) for v in _strings(resolved) if _data_path(v, storage_root, folder)]
    files = {normal(str(p), folder): checksum(p) for p in sorted(set(named) | set(map(Path, inputs))) if p.exists()}
    material = {"template": normal(json.dumps(resolved, sort_keys=True), folder), "files": files,
                "upstream": upstream}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _render_all(value, scope: dict):
    if isinstance(value, str):
        return render(value, scope)
    if isinstance(value, list):
        return [_render_all(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: _render_all(v, scope) for k, v in value.items()}
    return value


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _data_path(value: str, storage_root: Path, folder: Path) -> bool:
    """A resolved value naming data the run did not write: a path under the storage root outside
    the run's folder (host tools and scratch paths are not data)."""
    if not value.startswith("/") or "\n" in value:
        return False
    path = Path(value)
    return path.is_relative_to(storage_root) and not path.is_relative_to(folder)


def normal(text: str, folder: Path) -> str:
    """text with the run's folder written as the placeholder (as JSON escapes it too)."""
    return text.replace(str(folder), PLACEHOLDER).replace(json.dumps(str(folder))[1:-1], PLACEHOLDER)


def placed(text: str, folder: Path) -> str:
    """JSON text with the placeholder written as this run's folder."""
    return text.replace(PLACEHOLDER, json.dumps(str(folder))[1:-1])


def checksum(path: Path) -> str:
    """sha256 of a file's content, or of a directory's files (relative path and sha256, sorted);
    remembered while the file's inode, size and change times stay the same."""
    if path.is_dir():
        listing = sorted((str(f.relative_to(path)), checksum(f)) for f in path.rglob("*") if f.is_file())
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    st = path.stat()
    identity = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _sums_lock:
        if identity in _sums:
            return _sums[identity]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    with _sums_lock:
        _sums[identity] = digest.hexdigest()
    return _sums[identity]


# --- the steps before a step --------------------------------------------------------------

def upstream(nodes: dict, node_id: str, templates: dict) -> list[str] | None:
    """The keys (with phases) of the leaf steps that ran before node_id in the template's
    structure; None when one of them ran without a key, or a DAG's template is unknown here."""
    found: set[str] = set()
    child, parent = node_id, nodes[node_id]["parent"]
    while parent is not None:
        node = nodes[parent]
        if node["type"] == "StepGroup":
            steps_id, index = parent.rsplit("[", 1)
            for earlier in range(int(index[:-1])):
                found |= leaves(nodes, f"{steps_id}[{earlier}]")
        elif node["type"] == "DAG":
            template = templates.get(node.get("template"))
            if template is None or "dag" not in template:
                return None
            for task in _before(child[len(parent) + 1:], template["dag"]["tasks"]):
                found |= leaves(nodes, f"{parent}.{task}")
        child, parent = parent, node["parent"]
    if child.endswith(".onExit"):  # the exit handler runs after the whole entrypoint
        found |= leaves(nodes, child[:-len(".onExit")])
    return _keys_of(nodes, found)


def _keys_of(nodes: dict, ids: set[str]) -> list[str] | None:
    keys = []
    for leaf in ids:
        node = nodes[leaf]
        if node["phase"] in (SKIPPED, OMITTED):
            keys.append(f"{node['phase']}:{node.get('template') or ''}")
        elif not node.get("reuse_key"):
            return None
        else:
            keys.append(f"{node['phase']}:{node['reuse_key']}")
    return sorted(keys)


def _before(name: str, tasks: list[dict]) -> set[str]:
    """The tasks `name` depends on, directly or through others."""
    by_name = {t["name"]: t for t in tasks}
    found, pending = set(), list(deps(by_name[name])) if name in by_name else []
    while pending:
        task = pending.pop()
        if task not in found and task in by_name:
            found.add(task)
            pending += deps(by_name[task])
    return found


def leaves(nodes: dict, node_id: str) -> set[str]:
    """The nodes without children under node_id (itself included)."""
    found, pending = set(), [node_id]
    while pending:
        current = pending.pop()
        if current not in nodes:
            continue
        children = nodes[current].get("children") or []
        if children:
            pending += children
        else:
            found.add(current)
    return found


# --- what a step wrote --------------------------------------------------------------------

def watched(template: dict, scope: dict, folder: Path, hidden: Path) -> list[Path]:
    """The paths in the run's folder (not the engine's own, `hidden`) that a step's resolved
    values name: where it may write."""
    try:
        values = set(_strings(_render_all({k: v for k, v in template.items() if k != "memoize"}, scope)))
    except ExpressionError:
        return []
    paths = {Path(v) for v in values if v.startswith("/") and "\n" not in v}
    return sorted(p for p in paths if p.is_relative_to(folder) and not p.is_relative_to(hidden))


def snapshot(paths: list[Path]) -> dict[Path, tuple]:
    """Every regular file under the paths (a file, or a directory's files): (inode, size, mtime)."""
    found = {}
    for path in paths:
        try:
            files = list(path.rglob("*")) if path.is_dir() else [path]
        except OSError:  # not the engine's to read: no step's files
            continue
        for each in files:
            try:
                st = each.lstat()
            except OSError:  # gone meanwhile (a `.part` renamed)
                continue
            if stat.S_ISREG(st.st_mode):
                found[each] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def written(before: dict, after: dict, claimed: dict) -> dict[Path, int]:
    """Files new or changed since `before` and not placed by reuse as they are: their mtimes (ns)."""
    return {p: st[2] for p, st in after.items() if before.get(p) != st and claimed.get(p) != st}


def mine(changed: dict[Path, int], ended: int) -> list[Path]:
    """The changed files a step whose process ended at `ended` may have written: each changed before
    then. A sibling writing the same directory at the same time adds its file too (the engine cannot
    tell their writes apart): better in two records than in none."""
    return sorted(p for p, mtime in changed.items() if mtime <= ended)


def file_entries(paths: list[Path], folder: Path) -> list[dict]:
    return [{"path": str(p.relative_to(folder)), "sha256": checksum(p), "size": p.stat().st_size} for p in paths]


# --- reusing a record ---------------------------------------------------------------------

def verified(record: dict, storage_root: Path) -> list[tuple[Path, str]] | None:
    """(source file, path relative to the folder) of each recorded file when every one is still in
    the earlier run's folder as recorded (size and sha256); None when any is missing or changed."""
    old = Path(record["folder"])
    if not old.is_absolute() or not old.resolve().is_relative_to(storage_root.resolve()):
        return None
    sources = []
    for entry in record["files"]:
        source = old / entry["path"]
        try:
            real = source.resolve(strict=True)
            ok = (real.is_relative_to(old.resolve()) and not source.is_symlink() and source.is_file()
                  and source.stat().st_size == entry["size"] and checksum(source) == entry["sha256"])
        except OSError:
            ok = False
        if not ok:
            return None
        sources.append((source, entry["path"]))
    return sources


def materialise(sources: list[tuple[Path, str]], old: Path, folder: Path, owner) -> list[Path]:
    """Copy the files into this run's folder (never over one already there), the earlier folder's
    path rewritten in small text files; returns the files placed. OSError when a directory on the
    way leads out of the folder (a link a running step made)."""
    placed_files, root = [], folder.resolve()
    for source, relative in sources:
        target = folder / relative
        if os.path.lexists(target):
            continue
        _make_dirs(target.parent, folder, owner)
        parent = target.parent.resolve()  # a step may have made a directory a link: never write through it
        if not parent.is_relative_to(root):
            raise OSError(f"{target.parent} leads out of the run's folder")
        target = parent / target.name
        part = target.with_name(f".{target.name}.reused")
        _copy(source, part, old, folder)
        try:
            os.link(part, target)  # never replaces: a file a running step wrote meanwhile stays
            bwrap.give(target, owner)
            placed_files.append(target)
        except FileExistsError:
            pass
        finally:
            part.unlink(missing_ok=True)
    return placed_files


def _make_dirs(path: Path, folder: Path, owner) -> None:
    missing = [p for p in [path, *path.parents] if p.is_relative_to(folder) and not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        bwrap.give(directory, owner)


def _copy(source: Path, target: Path, old: Path, folder: Path) -> None:
    if source.stat().st_size <= TEXT_LIMIT:
        data = source.read_bytes()
        if str(old).encode() in data:
            try:
                target.write_text(data.decode().replace(str(old), str(folder)))
                return
            except UnicodeDecodeError:
                pass
    shutil.copyfile(source, target)


def short_name(display: str) -> str:
    """A step's name as the run page says "reused from ... (step Y)": a loop child by its index
    only (its item may be a long path)."""
    return re.sub(r"\((\d+):.*\)$", r"(\1)", display)
