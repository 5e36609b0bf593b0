"""The layers (docs/architecture.md, "Layers"): every import of the project's packages, read from
the source (imports inside functions too), points down the order
ground <- {metadata, ims} <- {portal, workflow_templates, hub} <- labcommons, never up or sideways; the
worker, the engines and the notebook helper reach neither Flask nor Dash through anything they
import; the service imports no client-side package; configuration is read by ground.settings."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = {"ground": 0, "metadata": 1, "ims": 1, "portal": 2, "workflow_templates": 2, "hub": 2, "labcommons": 3}
WEB = {"flask", "flask_login", "flask_wtf", "dash"}
# what only clients of the service use: the web portal's stack, the hub's, the engines' SDK
CLIENT_SIDE = WEB | {"plotly", "waitress", "jupyterhub", "kubespawner", "oauthenticator", "argo_workflows"}
# hub/sso.py and hub/kubespawner.py also run in the chart's hub image, which has no labcommons
# package, so they read their environment themselves (docs/jupyterhub.md)
SELF_CONTAINED = {"hub/sso.py", "hub/kubespawner.py"}
ENV_READERS = SELF_CONTAINED


def sources() -> list[Path]:
    return sorted(p for package in LAYER for p in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def imports(path: Path) -> tuple[tuple[str, int], ...]:
    """(absolute dotted name, line) of every import in a file, wherever it stands."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names] + [(module, node.lineno)]
    return tuple(found)


def project_module(name: str) -> Path | None:
    """The file an imported name loads last (a module, or a package's __init__), None outside the project."""
    parts = name.split(".")
    if parts[0] not in LAYER:
        return None
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def loaded(path: Path) -> set[Path]:
    """The file and the __init__ of every package above it: what importing it runs."""
    parents = [p / "__init__.py" for p in path.relative_to(ROOT).parents if p != Path(".")]
    return {path, *(ROOT / p for p in parents if (ROOT / p).is_file())}


def reached(start: list[Path]) -> set[Path]:
    """Every project file that importing `start` may run, following imports inside functions too."""
    seen, todo = set(), [f for path in start for f in loaded(path)]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += [f for name, _ in imports(path) if (target := project_module(name)) for f in loaded(target)]
    return seen


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_every_import_points_down_the_layers():
    wrong = []
    for path in sources():
        layer = path.relative_to(ROOT).parts[0]
        for name, line in imports(path):
            top = name.split(".")[0]
            if top in LAYER and top != layer and LAYER[top] >= LAYER[layer]:
                wrong.append(f"{where(path, line)}: {layer} imports {name} (layer {LAYER[top]}, not below {LAYER[layer]})")
    assert not wrong, "imports that do not point down:\n" + "\n".join(sorted(set(wrong)))


def test_no_cycle_between_packages():
    arrows: dict[str, set[str]] = {}
    for path in sources():
        source = ".".join(path.relative_to(ROOT).parts[:1])
        arrows.setdefault(source, set()).update(
            top for name, _ in imports(path) if (top := name.split(".")[0]) in LAYER and top != source)
    assert find_cycle(arrows) is None


def find_cycle(arrows: dict[str, set[str]]) -> list[str] | None:
    """A path that comes back to where it started, if the graph has one."""
    def walk(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        return next((c for nxt in sorted(arrows.get(node, ())) if (c := walk(nxt, path + [node]))), None)
    return next((c for start in sorted(arrows) if (c := walk(start, []))), None)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_the_worker_engines_and_notebook_helper_reach_neither_flask_nor_dash():
    start = [ROOT / "workflow_templates" / "worker.py", ROOT / "labcommons" / "notebook.py",
             *sorted((ROOT / "workflow_templates" / "engines").glob("*.py"))]
    wrong = [f"{where(path, line)}: {name}" for path in reached(start) for name, line in imports(path)
             if name.split(".")[0] in WEB]
    assert not wrong, "the worker, the engines or the notebook helper reach a web framework:\n" + "\n".join(wrong)


def test_the_service_imports_no_client_side_package():
    wrong = [f"{where(path, line)}: {name}" for path in sorted((ROOT / "metadata").rglob("*.py"))
             for name, line in imports(path) if name.split(".")[0] in CLIENT_SIDE]
    assert not wrong, "metadata imports what only clients use:\n" + "\n".join(wrong)


def environment_reads(path: Path) -> list[tuple[str, int]]:
    """(variable, line) for each LABCOMMONS_* variable a file reads by name from an environment."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and _reads_environment(node.func) and node.args:
            key = node.args[0]
        elif isinstance(node, ast.Subscript) and _named(node.value, "environ"):
            key = node.slice
        else:
            continue
        if isinstance(key, ast.Constant) and str(key.value).startswith("LABCOMMONS_"):
            found.append((key.value, node.lineno))
    return found


def _reads_environment(func: ast.expr) -> bool:
    """os.getenv(...), or .get(...) on something named environ or env."""
    if isinstance(func, ast.Attribute) and func.attr == "getenv":
        return True
    return isinstance(func, ast.Attribute) and func.attr == "get" and _named(func.value, "environ", "env")


def _named(node: ast.expr, *names: str) -> bool:
    return (isinstance(node, ast.Name) and node.id in names) or (isinstance(node, ast.Attribute) and node.attr in names)


def test_configuration_is_read_by_the_settings_object():
    wrong = [f"{where(path, line)}: {variable}" for path in sources()
             if path.parts[len(ROOT.parts)] != "ground" and str(path.relative_to(ROOT)) not in ENV_READERS
             for variable, line in environment_reads(path)]
    assert not wrong, "LABCOMMONS_* read outside ground/settings.py:\n" + "\n".join(wrong)


def test_environment_reads_are_found(tmp_path):
    code = tmp_path / "reader.py"
    code.write_text("import os\na = os.environ.get('LABCOMMONS_A', '')\nb = environ['LABCOMMONS_B']\n"
                    "c = os.getenv('LABCOMMONS_C')\nd = os.environ.get('HOME')\n")
    assert environment_reads(code) == [("LABCOMMONS_A", 2), ("LABCOMMONS_B", 3), ("LABCOMMONS_C", 4)]
