"""A run as a Workflow Run RO-Crate (https://w3id.org/ro/wfrun): provenance to hand to others.

The crate conforms to the Process, Workflow and Provenance Run Crate profiles (0.5) and Workflow
RO-Crate 1.0: the template is the main entity (a ComputationalWorkflow written in Argo's language,
its YAML inside the crate when the catalog still holds the exact definition the run used, by its
digest), its parameters are FormalParameters, the run is a CreateAction whose objects are the
input files (with size and checksums, referenced where they are stored, not copied) and the
parameter values (PropertyValues, with the parameter set's revision), whose results are the
output files; each step the engine ran is a CreateAction with its times and outcome, tied to the
workflow's HowToStep by a ControlAction, all under the engine's OrganizeAction.

`gather` reads what the caller may read through the service; `build` is pure; `write_zip` saves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import yaml
from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from metadata.idl import metadata_thrift as T

PROFILE_BASE = "https://w3id.org/ro/wfrun"
PROFILE_VERSION = "0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
TERMS = "https://w3id.org/ro/terms/workflow-run"
ARGO = {"@id": "https://argoproj.github.io/workflows/", "@type": "ComputerLanguage", "name": "Argo Workflows",
        "alternateName": "Argo", "identifier": {"@id": "https://argoproj.github.io/workflows/"},
        "url": {"@id": "https://argoproj.github.io/workflows/"}}
ACTION_STATUS = {"succeeded": "CompletedActionStatus", "failed": "FailedActionStatus",
                 "cancelled": "FailedActionStatus", "running": "ActiveActionStatus", "queued": "PotentialActionStatus"}
STEP_STATUS = {"Succeeded": "CompletedActionStatus", "Failed": "FailedActionStatus", "Error": "FailedActionStatus",
               "Running": "ActiveActionStatus", "Pending": "PotentialActionStatus"}
PARAMETER_TYPES = {"integer": "Integer", "number": "Float", "boolean": "Boolean"}


@dataclass
class RunRecord:
    """Everything a crate says about one run, read from the service."""

    run: T.Run
    template: T.WorkflowTemplate | None = None
    files: dict[str, dict] = field(default_factory=dict)  # input and output nodes by id
    parameter_set: T.ParameterSetRevision | None = None
    document: dict | None = None  # the template as the run ran it, when the catalog still has it
    engine: str = "local"


def gather(client, run_id: str, catalog=None, engine: str = "local") -> RunRecord:
    """The run and what it names, as the caller may read them; `catalog` (metadata.templates)
    supplies the template's YAML when its digest is the run's."""
    run = client.run(run_id)
    template = next((t for t in client.templates() if t.name == run.template), None)
    files = {node_id: client.get(node_id) for node_id in [*run.input_ids, *run.output_ids]}
    parameter_set = client.parameter_set(run.parameter_set_id) if run.parameter_set_id else None
    entry = catalog.get(run.template) if catalog is not None else None
    document = entry.document if entry is not None and entry.digest == run.template_digest else None
    return RunRecord(run, template, files, parameter_set, document, engine)


def write_zip(record: RunRecord, path: Path) -> Path:
    """The crate of `record` as a zip at `path`."""
    build(record).write_zip(str(path))
    return path


def build(record: RunRecord) -> ROCrate:
    """The crate of one run (pure: nothing is read but the record)."""
    crate = ROCrate(gen_preview=False)
    crate.metadata.extra_contexts.append(TERMS)
    _profiles(crate)
    run = record.run
    crate.root_dataset["name"] = f"Run {run.submitter_id or run.id} of {run.template}"
    crate.root_dataset["description"] = (f"Provenance of labcommons run {run.id}: template {run.template} "
                                         f"(digest {run.template_digest}), project {run.project_id}.")
    crate.root_dataset["license"] = "https://spdx.org/licenses/CC-BY-4.0"
    workflow = _workflow(crate, record)
    action = _run_action(crate, record, workflow)
    crate.root_dataset["mentions"] = [action]
    _steps(crate, record, workflow, action)
    return crate


def _profiles(crate: ROCrate) -> None:
    profiles = [crate.add(ContextEntity(crate, f"{PROFILE_BASE}/{kind}/{PROFILE_VERSION}", properties={
        "@type": "CreativeWork", "name": f"{kind.title()} Run Crate", "version": PROFILE_VERSION}))
        for kind in ("process", "workflow", "provenance")]
    profiles.append(crate.add(ContextEntity(crate, WORKFLOW_RO_CRATE, properties={
        "@type": "CreativeWork", "name": "Workflow RO-Crate", "version": "1.0"})))
    crate.root_dataset["conformsTo"] = profiles


def _workflow(crate: ROCrate, record: RunRecord):
    run, template = record.run, record.template
    language = crate.add(ContextEntity(crate, ARGO["@id"], properties={k: v for k, v in ARGO.items() if k != "@id"}))
    properties = {"@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
                  "name": (template.title if template else "") or run.template,
                  "identifier": f"sha256:{run.template_digest}", "programmingLanguage": language}
    if template and template.description:
        properties["description"] = template.description
    if record.document is not None:
        source = BytesIO(yaml.safe_dump(record.document, sort_keys=False).encode())
        workflow = crate.add_file(source, f"workflow/{run.template}.yaml", properties=properties)
    else:  # described, not included: a contextual entity, as a data entity needs its file
        properties["@type"] = properties["@type"][1:]
        properties["comment"] = "The catalog no longer holds this digest, so the definition is not included."
        workflow = crate.add(ContextEntity(crate, f"#workflow-{run.template}", properties=properties))
    crate.mainEntity = workflow
    workflow["input"] = [_formal(crate, run.template, p) for p in (template.parameters if template else [])]
    workflow["output"] = [crate.add(ContextEntity(crate, f"#{run.template}-outputs", properties={
        "@type": "FormalParameter", "name": "outputs", "additionalType": "File", "valueRequired": False,
        "conformsTo": {"@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"}}))]
    return workflow


def _formal(crate: ROCrate, template: str, parameter: T.TemplateParameter):
    properties = {"@type": "FormalParameter", "name": parameter.name,
                  "additionalType": PARAMETER_TYPES.get(parameter.type, "Text"),
                  "valueRequired": bool(parameter.is_required),
                  "conformsTo": {"@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"}}
    if parameter.description:
        properties["description"] = parameter.description
    if parameter.default_value:
        properties["defaultValue"] = parameter.default_value
    return crate.add(ContextEntity(crate, f"#{template}-param-{parameter.name}", properties=properties))


def _run_action(crate: ROCrate, record: RunRecord, workflow):
    run = record.run
    objects = [_file(crate, record.files[i]) for i in run.input_ids if i in record.files]
    objects += [_value(crate, run.template, name, value) for name, value in sorted(run.parameters.items())]
    if record.parameter_set:
        objects.append(_parameter_set(crate, record.parameter_set))
    results = [_file(crate, record.files[i]) for i in run.output_ids if i in record.files]
    for result in results:
        result["exampleOfWork"] = {"@id": f"#{run.template}-outputs"}
    properties = {"@type": "CreateAction", "name": f"Run {run.submitter_id or run.id} of {run.template}",
                  "identifier": run.id, "actionStatus": {"@id": f"http://schema.org/{_status(run)}"},
                  "agent": _person(crate, run.created_by)}
    properties.update(_times(run.started_at or run.created_at, run.finished_at))
    if run.message and run.status in ("failed", "cancelled"):
        properties["error"] = run.message
    if run.outcome:
        properties["description"] = f"QC {run.outcome}" + (f": {'; '.join(run.failed_checks)}" if run.failed_checks else "")
    return crate.add_action(workflow, f"#run-{run.id}", object=objects, result=results, properties=properties)


def _status(run: T.Run) -> str:
    return ACTION_STATUS.get(run.status, "PotentialActionStatus")


def _times(started: str, finished: str) -> dict:
    return {key: value for key, value in (("startTime", started), ("endTime", finished)) if value}


def _person(crate: ROCrate, user: str):
    return crate.add(ContextEntity(crate, f"#user-{user}", properties={"@type": "Person", "name": user}))


def _file(crate: ROCrate, node: dict):
    """A data file where it is stored (not copied), with its size and checksums; another input
    (a measurement) as a contextual entity naming it."""
    props = node["properties"]
    entity_id = props.get("storage_url") if node["type"] == "data_file" else f"#node-{node['id']}"
    if crate.get(entity_id) is not None:  # a file that is both input and output is one entity
        return crate.get(entity_id)
    if node["type"] != "data_file":
        return crate.add(ContextEntity(crate, entity_id, properties={
            "@type": "CreativeWork", "name": node["submitter_id"], "identifier": node["id"],
            "additionalType": node["type"]}))
    properties = {"name": props.get("file_name", node["submitter_id"]), "identifier": node["id"],
                  "contentSize": str(props.get("file_size", "")), "encodingFormat": props.get("data_format", "")}
    properties.update({key: props[source] for key, source in (("sha256", "sha256"), ("md5", "md5sum"))
                       if props.get(source)})
    return crate.add_file(entity_id, properties=properties)


def _value(crate: ROCrate, template: str, name: str, value: str):
    return crate.add(ContextEntity(crate, f"#param-value-{name}", properties={
        "@type": "PropertyValue", "name": name, "value": value,
        "exampleOfWork": {"@id": f"#{template}-param-{name}"}}))


def _parameter_set(crate: ROCrate, revision: T.ParameterSetRevision):
    return crate.add(ContextEntity(crate, f"#parameter-set-{revision.id}", properties={
        "@type": "CreativeWork", "name": revision.name, "version": str(revision.revision),
        "identifier": revision.id, "description": f"Parameter set {revision.name} revision {revision.revision}"}))


def _steps(crate: ROCrate, record: RunRecord, workflow, run_action) -> None:
    """Provenance Run Crate: a HowToStep per template the workflow's leaves ran, one CreateAction
    per execution, tied by ControlActions under the engine's OrganizeAction."""
    leaves = [s for s in record.run.steps if not s.children and s.template]
    how_to: dict[str, object] = {}
    controls = []
    for step in leaves:
        if step.template not in how_to:
            how_to[step.template] = _how_to_step(crate, record.run.template, step.template, len(how_to) + 1)
        controls.append(_step_actions(crate, step, how_to[step.template]))
    workflow["step"] = list(how_to.values())
    engine = crate.add(ContextEntity(crate, f"#engine-{record.engine}", properties={
        "@type": "SoftwareApplication", "name": f"labcommons {record.engine} engine"}))
    crate.add(ContextEntity(crate, f"#organize-{record.run.id}", properties={
        "@type": "OrganizeAction", "name": f"Orchestration of run {record.run.id}", "instrument": engine,
        "object": controls, "result": run_action}))


def _how_to_step(crate: ROCrate, workflow_name: str, template: str, position: int):
    tool = crate.add(ContextEntity(crate, f"#tool-{template}", properties={
        "@type": "SoftwareApplication", "name": template}))
    return crate.add(ContextEntity(crate, f"#{workflow_name}-step-{template}", properties={
        "@type": "HowToStep", "name": template, "position": str(position), "workExample": tool}))


def _step_actions(crate: ROCrate, step: T.RunStep, how_to):
    properties = {"@type": "CreateAction", "name": step.name, "identifier": step.id,
                  "actionStatus": {"@id": f"http://schema.org/{STEP_STATUS.get(step.phase, 'PotentialActionStatus')}"}}
    properties.update(_times(step.started_at, step.finished_at))
    if step.message and step.phase in ("Failed", "Error"):
        properties["error"] = step.message
    if step.reused_from_run:
        properties["description"] = (f"not run: reused the outputs of run {step.reused_from_run} "
                                     f"(step {step.reused_from_step})")
    execution = crate.add_action(how_to["workExample"], f"#step-run-{step.id}", properties=properties)
    return crate.add(ContextEntity(crate, f"#control-{step.id}", properties={
        "@type": "ControlAction", "name": f"orchestrate {step.name}", "instrument": how_to, "object": execution}))
