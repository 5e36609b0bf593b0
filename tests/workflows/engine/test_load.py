"""What the engine refuses at load: each unsupported feature and unknown variable, by name and place."""
import textwrap

import pytest

from workflow_templates.engines.local import LocalEngine
from workflow_templates.engines.spec import TemplateRefused, load

HEADER = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: t}
spec:
  entrypoint: main
"""


def spec_of(body: str) -> str:
    """HEADER followed by `body`, an indented block of spec fields."""
    return HEADER + textwrap.indent(textwrap.dedent(body), "  ")


def refused(body: str) -> list[str]:
    with pytest.raises(TemplateRefused) as caught:
        load(spec_of(body))
    return caught.value.problems


def test_unsupported_features_are_refused_with_their_names_and_places():
    problems = refused("""
      hooks: {exit: {template: cleanup}}
      volumes: [{name: data, emptyDir: {}}]
      templates:
      - name: main
        sidecars: [{name: db, image: postgres}]
        synchronization: {mutex: {name: m}}
        container: {image: alpine, command: [echo], volumeMounts: [{name: data, mountPath: /data}]}
        outputs:
          artifacts:
          - {name: a, path: /tmp/a, s3: {bucket: other, key: k}}
          - {name: b, path: /tmp/b, gcs: {key: k}}
      - name: cleanup
        resource: {action: create, manifest: "{}"}
      - name: wait
        suspend: {}
    """)
    text = "\n".join(problems)
    for expected in ["spec.hooks", "spec.volumes", "spec.templates[0](main).sidecars",
                     "spec.templates[0](main).synchronization",
                     "spec.templates[0](main).container.volumeMounts",
                     "spec.templates[0](main).outputs.artifacts[0].s3.bucket",
                     "spec.templates[0](main).outputs.artifacts[1].gcs",
                     "spec.templates[1](cleanup).resource", "spec.templates[2](wait).suspend"]:
        assert expected in text, (expected, problems)


def test_unknown_variables_are_refused_at_load_with_their_names():
    problems = refused("""
      arguments: {parameters: [{name: known, value: x}]}
      templates:
      - name: main
        steps:
        - - name: a
            template: echo
            arguments: {parameters: [{name: msg, value: "{{workflow.parameters.unknown}}"}]}
        - - name: b
            template: echo
            arguments: {parameters: [{name: msg, value: "{{steps.later.outputs.result}} {{item}}"}]}
      - name: echo
        inputs: {parameters: [{name: msg}]}
        container: {image: alpine, command: [echo, "{{inputs.parameters.mgs}} {{workflow.parameters.known}}"]}
    """)
    text = "\n".join(problems)
    assert "{{workflow.parameters.unknown}}" in text
    assert "{{steps.later.outputs.result}}" in text
    assert "{{item}}" in text  # no loop on that step
    assert "spec.templates[1](echo): unknown variable {{inputs.parameters.mgs}}" in text
    assert "workflow.parameters.known" not in text


def test_bad_calls_paths_and_expressions_are_refused():
    problems = refused("""
      templates:
      - name: main
        dag:
          tasks:
          - {name: a, templateRef: {name: other-template, template: echo}}
          - {name: b, template: missing, depends: "a.Finished"}
          - {name: c, template: echo, dependencies: [zz], when: "{{=inputs.parameters.x}}",
             continueOn: {failed: true}}
      - name: echo
        container: {image: alpine, command: [echo]}
        outputs: {parameters: [{name: p, valueFrom: {path: /etc/passwd}}]}
    """)
    text = "\n".join(problems)
    assert "'other-template' is another WorkflowTemplate" in text
    assert "calls unknown template 'missing'" in text
    assert "unknown task result 'a.Finished'" in text
    assert "depends on unknown task 'zz'" in text
    assert "expression {{=inputs.parameters.x}}: unknown variable inputs.parameters.x" in text
    assert "'/etc/passwd'" in text
    assert "tasks[1](b): depends cannot be mixed with dependencies" in text
    assert "tasks[2](c).continueOn: not available in a DAG that uses depends" in text


def test_engine_start_refuses_before_creating_anything(tmp_path):
    engine = LocalEngine(tmp_path / "s", tmp_path / "r")
    with pytest.raises(TemplateRefused, match="podSpecPatch"):
        engine.start(spec_of("""
          templates:
          - name: main
            podSpecPatch: "{}"
            container: {image: alpine, command: [echo]}
        """))
    assert not (tmp_path / "r").exists()


def test_placement_only_fields_are_accepted():
    spec = load(spec_of("""
      serviceAccountName: argo
      templates:
      - name: main
        nodeSelector: {disk: ssd}
        container: {image: "python:3.11", command: [python, -c, "pass"],
                    resources: {limits: {cpu: "1"}}}
    """))
    assert spec.entrypoint == "main"


def test_a_container_without_command_is_refused_because_its_entrypoint_is_unknown():
    problems = refused("""
      templates:
      - name: main
        container: {image: "labcommons/steps:1", args: [--shard, "1"]}
    """)
    assert problems == ["spec.templates[0](main).container.command: needed locally "
                        "(an image's entrypoint is not known here)"]


def test_dag_cycles_and_tasks_read_without_depending_on_them_are_refused():
    problems = refused("""
      templates:
      - name: main
        dag:
          tasks:
          - {name: a, template: echo, dependencies: [c]}
          - {name: b, template: echo, dependencies: [a]}
          - {name: c, template: echo, dependencies: [b]}
          - {name: d, template: echo}
          - {name: e, template: echo, arguments: {parameters: [{name: m, value: "{{tasks.d.outputs.result}}"}]}}
      - name: echo
        inputs: {parameters: [{name: m, default: ""}]}
        container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
    """)
    text = "\n".join(problems)
    assert "dependency cycle a -> c -> b -> a" in text
    assert "tasks[4](e): unknown variable {{tasks.d.outputs.result}}" in text


def test_outputs_need_a_source_the_template_kind_can_give():
    problems = refused("""
      templates:
      - name: main
        steps:
        - - {name: a, template: leaf}
        outputs:
          parameters: [{name: p, valueFrom: {path: /tmp/p}}]
          artifacts: [{name: x, path: /tmp/x}]
      - name: leaf
        container: {image: alpine, command: ["true"]}
        outputs: {parameters: [{name: q, valueFrom: {parameter: "x"}}]}
    """)
    text = "\n".join(problems)
    assert "spec.templates[0](main).outputs.parameters[0].valueFrom: needs parameter or expression here" in text
    assert "spec.templates[0](main).outputs.artifacts: output artifacts of steps/dag" in text
    assert "spec.templates[1](leaf).outputs.parameters[0].valueFrom: needs path here" in text


def test_an_image_chosen_per_item_or_parameter_is_refused():
    # Argo pulls whatever image the tag resolves to; the local engine runs the host's tools for
    # every image, so a template that picks its image per item or parameter cannot be honoured.
    problems = refused("""
      templates:
      - name: main
        steps:
        - - {name: each, template: tool, withItems: [alpine, debian], arguments: {parameters: [{name: image, value: "{{item}}"}]}}
      - name: tool
        inputs: {parameters: [{name: image}]}
        container: {image: "{{inputs.parameters.image}}", command: [sh, -c, "true"]}
    """)
    assert problems == ["spec.templates[1](tool).container.image: '{{inputs.parameters.image}}' is "
                        "chosen per item or parameter; the local engine runs every step with the "
                        "host's tools, so it cannot honour a choice of image"]


def test_documents_of_other_kinds_or_shapes_are_refused_by_place_never_with_a_traceback():
    # Argo's pre-v2 form wrote steps as a mapping and parameters as a mapping of names
    problems = refused("""
        templates:
        - name: main
          inputs: {parameters: {DO-PRINT: null}}
          steps:
          - PRINT: {template: main}
        """)
    assert problems == ["spec.templates[0].inputs.parameters: expected a list of mappings",
                        "spec.templates[0].steps[0]: expected a step group (a list of steps)"]
    for kind in ("CronWorkflow", "ConfigMap"):
        with pytest.raises(TemplateRefused, match=f"kind: '{kind}' is not run by the local engine"):
            load(HEADER.replace("WorkflowTemplate", kind) + "  templates: []\n")


def test_retry_limits_and_archive_stores_the_engine_cannot_honour_are_refused():
    problems = refused("""
        templates:
        - name: main
          retryStrategy: {limit: "{{workflow.parameters.n}}", backoff: {factor: twice}}
          archiveLocation: {archiveLogs: true, s3: {key: logs}}
          container: {image: alpine, command: [echo]}
        """)
    assert problems == [
        "spec.templates[0](main).archiveLocation.s3: not supported by the local engine",
        "spec.templates[0](main).retryStrategy.backoff.factor: 'twice' is not a number",
        "spec.templates[0](main).retryStrategy.limit: '{{workflow.parameters.n}}' is not a whole "
        "number (a limit taken from a parameter is not supported locally)"]
    assert not refused_or_none("archiveLocation: {archiveLogs: true}")


def refused_or_none(template_field: str) -> list[str]:
    """The problems of a one-container template with `template_field` added (none: it loads)."""
    try:
        load(spec_of(f"""
            templates:
            - name: main
              {template_field}
              container: {{image: alpine, command: [echo]}}
            """))
    except TemplateRefused as caught:
        return caught.problems
    return []
