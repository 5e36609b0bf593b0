"""deploy/Dockerfile, read as text (no Docker engine runs here, so the image is not built in CI):
a pinned base, a build stage apart from the runtime, a non-root user, no secrets, and a build
context that cannot carry data or credentials."""
from __future__ import annotations

import re
import shlex
import tomllib

from tests.deploy.conftest import DEPLOY, ROOT

SECRETISH = re.compile(r"KEY|TOKEN|PASSWORD|SECRET|CREDENTIAL", re.IGNORECASE)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def dockerfile() -> list[tuple[str, str]]:
    return instructions((DEPLOY / "Dockerfile").read_text())


def args() -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in dockerfile() if word == "ARG" and "=" in rest)


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage, FROM first."""
    found: list[list[tuple[str, str]]] = []
    for word, rest in dockerfile():
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
    return found


def test_every_base_image_is_pinned_to_an_exact_release_or_digest():
    for stage in stages():
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args()[m.group(1)], image)
        assert re.search(r"@sha256:[0-9a-f]{64}$", image) or re.search(r":\d+\.\d+\.\d+[\w.-]*$", image), image


def test_the_runtime_stage_copies_the_venv_from_a_build_stage():
    build, runtime = stages()
    assert re.search(r"\bAS build$", build[0][1])
    assert ("COPY", "--from=build /opt/labcommons /opt/labcommons") in runtime
    assert any(word == "RUN" and "pip install ." in rest for word, rest in build)
    # nothing is built or installed in the runtime stage, and it drops the installers it came with
    runtime_runs = " ".join(rest for word, rest in runtime if word == "RUN")
    assert "pip install" not in runtime_runs and "apt-get install" not in runtime_runs
    assert "pip uninstall --yes pip" in runtime_runs
    assert not any(word == "COPY" and "--from" not in rest for word, rest in runtime)


def test_the_image_runs_as_a_non_root_user():
    runtime = stages()[-1]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and (not user.isdigit() or int(user) >= 1000)
    # the manifests run as the same uid
    for component in ("metadata", "portal", "worker"):
        assert f"runAsUser: {user}" in (DEPLOY / "base" / f"{component}.yaml").read_text()


def test_no_secrets_are_baked_in():
    for word, rest in dockerfile():
        if word in ("ENV", "ARG", "LABEL"):
            for pair in shlex.split(rest):
                name = pair.split("=", 1)[0]
                assert not SECRETISH.search(name), f"{word} {name}: secrets come from the cluster at run time"
        if word in ("COPY", "ADD"):
            sources = [p for p in rest.split() if not p.startswith("--")][:-1]
            for source in sources:
                assert not re.search(r"(^|/)(\.env|data|\.venv|.*\.token|.*\.key)(/|$)", source), source
                assert source != ".", "COPY . would send the whole checkout"


def test_the_build_context_is_an_allow_list():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in rules if line.startswith("!")}
    assert {"pyproject.toml", "labcommons", "metadata", "portal", "thrift"} <= allowed
    assert not allowed & {"data", ".env", ".venv", ".git", "tests"}


def test_the_build_stage_copies_every_package_the_distribution_installs():
    """A package left out of the image is silently missing from the wheel (setuptools finds only
    what is there): the worker and the catalog would fail in the cluster, never here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    build = stages()[0]
    copied = {rest.split()[0] for word, rest in build if word == "COPY" and "--from" not in rest}
    allowed = {line.strip()[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip().startswith("!")}
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert packages <= allowed, f"not in the build context: {sorted(packages - allowed)}"


def test_the_image_exposes_both_services_and_runs_one_by_default():
    runtime = stages()[-1]
    assert ("EXPOSE", "9090 8050") in runtime
    (cmd,) = [rest for word, rest in runtime if word == "CMD"]
    assert cmd == '["labcommons", "metadata", "serve"]'
