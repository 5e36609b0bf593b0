"""One attempt of a container or script step: prepare its directory, run it, collect outputs."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from workflow_templates.engines.expressions import render
from ground import bwrap
from workflow_templates.engines.sandbox import Sight, bwrap_path, confined, host_path, sandboxed
from workflow_templates.engines.scope import input_scope

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
# what a step gets of the engine's environment (besides LC_*); a template's env adds to it
STEP_ENVIRONMENT = {"PATH", "HOME", "LANG", "TZ", "TERM", "USER", "LOGNAME", "PYTHONPATH", "VIRTUAL_ENV"}


class StepError(Exception):
    """The step cannot be started (a missing input artifact, an unwritable directory)."""


@dataclass
class Result:
    """How an attempt ended."""

    phase: str
    message: str = ""
    exit_code: int | None = None
    outputs: dict = field(default_factory=dict)


@dataclass
class Attempt:
    """A prepared step process: argv, environment and the directories it runs in."""

    template: dict
    step_dir: Path
    scope: dict
    argv: list[str]
    env: dict
    isolated: bool
    storage_root: Path
    sight: Sight
    process: subprocess.Popen | None = None
    ended_ns: int = 0
    _reader: threading.Thread | None = None

    @classmethod
    def prepare(cls, template, step_dir, inputs, artifacts, globals_, retries, storage_root,
                isolate, sight: Sight | None = None) -> "Attempt":
        """Lay out step_dir (tmp/, work/, the script), place input artifacts, render argv."""
        sight = sight or Sight()
        tmp, work = step_dir / "tmp", step_dir / "work"
        tmp.mkdir(parents=True, exist_ok=True)
        work.mkdir(exist_ok=True)
        isolated = bool(isolate and bwrap_path(sight.user))
        scope = leaf_scope(template, globals_, inputs, retries)
        body = template.get("script") or template["container"]
        argv = _argv(body, "script" in template, scope, step_dir)
        env = _environment(body, scope, tmp, isolated)
        attempt = cls(template, step_dir, scope, argv, env, isolated, Path(storage_root), sight)
        attempt._place_inputs(artifacts)
        if isolated:  # the sandbox user writes its scratch directories, inputs placed included
            for scratch in (tmp, work):
                bwrap.give(scratch, sight.user, recursive=True)
        return attempt

    def _host(self, path: str) -> Path:
        if Path(path).is_absolute() and Path(path).is_relative_to(self.storage_root.resolve()):
            return Path(path)  # the storage root is the same path inside the sandbox (bound back in)
        return host_path(path, self.step_dir / "tmp", self.step_dir / "work", self.isolated)

    def _place_inputs(self, artifacts: dict) -> None:
        for artifact in (self.template.get("inputs") or {}).get("artifacts") or []:
            source = artifacts.get(artifact["name"]) or artifact_source(artifact, self.scope)
            if source is None:
                if artifact.get("optional"):
                    continue
                raise StepError(f"input artifact {artifact['name']!r} was not supplied")
            target = self._host(render(artifact["path"], self.scope))
            target.parent.mkdir(parents=True, exist_ok=True)
            if "raw" in source:
                target.write_text(source["raw"])
                continue
            origin = self._in_storage(source["key"], artifact["name"])
            if not origin.exists():
                raise StepError(f"input artifact {artifact['name']!r}: no {source['key']!r} "
                                f"in the storage root")
            _copy(origin, target)

    def _in_storage(self, key: str, name: str) -> Path:
        """The storage root's file for `key`, refusing keys that climb out of it."""
        path = (self.storage_root / key).resolve()
        if not path.is_relative_to(self.storage_root.resolve()):
            raise StepError(f"artifact {name!r}: key {key!r} is outside the storage root")
        return path

    def start(self) -> None:
        """Start the process in its own process group (and, where possible, its sandbox)."""
        argv, _ = sandboxed(self.argv, self.step_dir, self.isolated, self.sight)
        log = open(self.step_dir / "main.log", "ab")
        try:
            self.process = subprocess.Popen(
                argv, cwd=self.step_dir / "work", env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        finally:
            log.close()
        self._reader = threading.Thread(target=self._tee, daemon=True)
        self._reader.start()

    def _tee(self) -> None:
        """Copy stdout into the log (stdout and stderr, as a pod's log) and into `stdout`."""
        with open(self.step_dir / "main.log", "ab") as log, \
                open(self.step_dir / "stdout", "wb") as out:
            for chunk in iter(lambda: self.process.stdout.read1(65536), b""):
                log.write(chunk)
                out.write(chunk)
                log.flush()

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """Kill the step's whole process group."""
        if self.process is not None and self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def finish(self, deadline: float | None) -> Result:
        """Wait for the process (killing it at the template's deadline); phase by exit code."""
        try:
            code = self.process.wait(timeout=float(deadline) if deadline else None)
            timed_out = False
        except subprocess.TimeoutExpired:
            self.kill()
            code, timed_out = self.process.wait(), True
        self.ended_ns = time.time_ns()  # when its files were last written, at the latest (engines/reuse.py)
        self._reader.join()
        self.process.stdout.close()
        code = 128 - code if code < 0 else code
        if timed_out:
            return Result("Failed", DEADLINE_MESSAGE, code)
        if code != 0:
            return Result("Failed", f"Error (exit code {code})", code)
        return Result("Succeeded", "", 0)

    def collect(self, result: Result, run_id: str, node_dir: str) -> Result:
        """Outputs of a finished step: result (stdout), parameters, artifacts into storage."""
        stdout = (self.step_dir / "stdout").read_text(errors="replace")
        outputs = {"result": stdout[:-1] if stdout.endswith("\n") else stdout}
        declared = self.template.get("outputs") or {}
        try:
            parameters = {p["name"]: self._parameter(p) for p in declared.get("parameters") or []}
            artifacts = {}
            for artifact in declared.get("artifacts") or []:
                key = self._store(artifact, run_id, node_dir)
                if key is not None:
                    artifacts[artifact["name"]] = key
        except StepError as error:
            return Result("Error", str(error), result.exit_code, outputs)
        if parameters:
            outputs["parameters"] = parameters
        if artifacts:
            outputs["artifacts"] = artifacts
        return Result(result.phase, result.message, result.exit_code, outputs)

    def _parameter(self, param: dict) -> str:
        source = param.get("valueFrom") or {}
        if "path" in source:
            path = self._output(render(source["path"], self.scope), param["name"])
            if path.is_file():
                text = path.read_text(errors="replace")
                return text[:-1] if text.endswith("\n") else text
        if "default" in source:
            return render(str(source["default"]), self.scope)
        raise StepError(f"output parameter {param['name']!r}: "
                        f"{source.get('path', '(no valueFrom.path)')} not found")

    def _output(self, path: str, name: str) -> Path:
        """Where a sandboxed step's output is on the host, refused when a link leads out of what
        the step could write (the engine, maybe root, would read for it what it cannot)."""
        host = self._host(path)
        writable = [self.step_dir / "tmp", self.step_dir / "work", *map(Path, self.sight.write)]
        if self.isolated and host.exists() and not confined(host, writable):
            raise StepError(f"output {name!r}: {path} leads out of the step's directories")
        return host

    def _store(self, artifact: dict, run_id: str, node_dir: str) -> str | None:
        path = self._output(render(artifact["path"], self.scope), artifact["name"])
        if not path.exists():
            if artifact.get("optional"):
                return None
            raise StepError(f"output artifact {artifact['name']!r}: {artifact['path']} not found")
        if "s3" in artifact:
            key = render(artifact["s3"]["key"], self.scope)
        else:
            key = (Path("runs") / run_id / node_dir / artifact["name"] / path.name).as_posix()
        _copy(path, self._in_storage(key, artifact["name"]))
        return key


def _argv(body: dict, script: bool, scope: dict, step_dir: Path) -> list[str]:
    """command + args (+ the script's file, last, as Argo's controller appends it to args),
    rendered; a leading python is the engine's."""
    argv = [render(str(c), scope) for c in body.get("command") or []]
    argv += [render(str(a), scope) for a in body.get("args") or []]
    if script:  # executable as Argo's executor writes it (0755): `command: [sh, -c]` runs it
        path = step_dir / "script"
        path.write_text(render(body.get("source", ""), scope))
        path.chmod(0o755)
        argv.append(str(path))
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the project's programs run with the engine's Python
    return argv


def _environment(body: dict, scope: dict, tmp: Path, isolated: bool) -> dict[str, str]:
    """Of the engine's environment only what a program needs (never its keys or tokens: the worker
    may hold LABCOMMONS_SECRET_KEY or a token there), the project importable, then the template's
    env values. A sandboxed step's home is its work directory."""
    env = {k: v for k, v in os.environ.items() if k in STEP_ENVIRONMENT or k.startswith("LC_")}
    if isolated:
        env["HOME"] = str(tmp.parent / "work")
    # `python` inside `sh -c` too finds the engine's interpreter (its venv) first.
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent),
                                                env.get("PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env["TMPDIR"] = "/tmp" if isolated else str(tmp)
    env.update({e["name"]: render(str(e.get("value", "")), scope) for e in body.get("env") or []})
    return env


def artifact_source(artifact: dict, scope: dict) -> dict | None:
    """Where an input artifact comes from: {"raw": text} or {"key": key in the storage root}."""
    if "raw" in artifact:
        return {"raw": render(artifact["raw"].get("data", ""), scope)}
    if "from" in artifact:
        return {"key": render(artifact["from"], scope)}
    if "s3" in artifact:
        return {"key": render(artifact["s3"]["key"], scope)}
    return None


def _copy(origin: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if origin.is_dir():  # links inside stay links: never followed by the engine
        shutil.copytree(origin, target, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copyfile(origin, target)


def leaf_scope(template: dict, globals_: dict, inputs: dict, retries: int) -> dict:
    scope = dict(globals_)
    scope.update(input_scope(inputs))
    for artifact in (template.get("inputs") or {}).get("artifacts") or []:
        scope[f"inputs.artifacts.{artifact['name']}.path"] = artifact["path"]
    for param in (template.get("outputs") or {}).get("parameters") or []:
        if "path" in (param.get("valueFrom") or {}):
            scope[f"outputs.parameters.{param['name']}.path"] = param["valueFrom"]["path"]
    for artifact in (template.get("outputs") or {}).get("artifacts") or []:
        scope[f"outputs.artifacts.{artifact['name']}.path"] = artifact["path"]
    scope["retries"] = str(retries)
    return scope
