"""Both engines satisfy the one Engine protocol the worker types against (engines/engine.py): every
method it names exists on each engine and its run handle, and takes the protocol's arguments."""
import inspect

import pytest

from workflow_templates.engines.argo_runs import ArgoHandle, ArgoRuns
from workflow_templates.engines.engine import Engine, EngineRun
from workflow_templates.engines.local import LocalEngine, RunHandle


def members(protocol) -> dict:
    return {name: value for name, value in vars(protocol).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))}


@pytest.mark.parametrize("implementation, protocol", [
    (LocalEngine, Engine), (ArgoRuns, Engine), (RunHandle, EngineRun), (ArgoHandle, EngineRun)])
def test_each_engine_offers_every_method_with_the_protocol_s_arguments(implementation, protocol):
    for name, declared in members(protocol).items():
        offered = getattr(implementation, name, None)
        assert offered is not None, f"{implementation.__name__} has no {name}"
        if isinstance(declared, property):
            assert isinstance(offered, property), f"{implementation.__name__}.{name} is not a property"
            continue
        parameters = list(inspect.signature(declared).parameters.values())[1:]
        positional = [object() for p in parameters if p.default is inspect.Parameter.empty]
        keywords = {p.name: object() for p in parameters if p.default is not inspect.Parameter.empty}
        inspect.signature(offered).bind(object(), *positional, **keywords)  # TypeError names what is missing


def test_a_local_engine_and_its_runs_are_engines_to_the_worker(tmp_path):
    engine = LocalEngine(tmp_path / "storage", tmp_path / "runs", max_parallel=1)
    assert isinstance(engine, Engine)
    handle = engine.start({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                           "metadata": {"name": "one"},
                           "spec": {"entrypoint": "main", "templates": [
                               {"name": "main", "container": {"image": "alpine", "command": ["true"]}}]}},
                          {}, run_id="r1", project="")
    handle.wait(30)
    assert isinstance(handle, EngineRun) and handle.phase == "Succeeded"
