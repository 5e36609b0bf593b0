"""Expression tags `{{=...}}` (Argo v3.1+, the expr language with Argo's functions), evaluated by
workflow_templates/engines/expr.py without eval: what Argo's docs (variables.md) show, checked at
load like simple tags."""
import pytest

from tests.workflows.engine.conftest import nodes_named
from workflow_templates.engines import expr
from workflow_templates.engines.expressions import ExpressionError
from workflow_templates.engines.spec import TemplateRefused, load

SCOPE = {"inputs.parameters.n": "3", "inputs.parameters.my-word": " hi ", "inputs.parameters": "[...]",
         "steps.gen.outputs.result": "[1, 2, 3]", "workflow.name": "wf-1", "item": "x"}


@pytest.mark.parametrize("source, rendered", [
    ("[1, 2]", "[1,2]"),                                        # variables.md: a plain list
    ("filter([1, 2], { # > 1})", "[2]"),                        # filter a list
    ("map([1, 2], { # * 2 })", "[2,4]"),                        # map a list
    ("asInt(inputs.parameters.n) + 1", "4"),                    # ints stay ints
    ("asFloat(inputs.parameters.n) / 2", "1.5"),
    ("asInt(inputs.parameters.n) / 3", "1"),                    # / gives a float; Go writes 1.0 as 1
    ("string(1)", "1"),
    ("toJson([1, 2])", "[1,2]"),
    ("""jsonpath('{"some": {"path": [7]}}', '$.some.path[0]')""", "7"),
    ("sprig.trim(inputs.parameters['my-word'])", "hi"),         # hyphenated names by index
    ("sprig.replace('-', '_', workflow.name)", "wf_1"),         # Sprig's order: the value last
    ("asInt(inputs.parameters.n) > 2 ? 'big' : 'small'", "big"),
    ("len(fromJSON(steps.gen.outputs.result)) == 3 && workflow.name startsWith 'wf'", "true"),
    ("'x' in ['x', 'y'] and not ('z' in ['x'])", "true"),
    ("inputs.parameters.n matches '^[0-9]+$'", "true"),
    ("1..3", "[1,2,3]"),
    ("inputs?.missing?.deeper ?? 'fallback'", "fallback"),
    ("2 ** 10", "1024"),
])
def test_expressions_evaluate_as_argo_documents(source, rendered):
    assert expr.render_value(expr.evaluate(source, SCOPE)) == rendered


@pytest.mark.parametrize("source, says", [
    ("asInt('x')", "asInt('x')"), ("1 / 0", "division by zero"), ("'a' + 1", "+ needs numbers"),
    ("nil", "evaluated to nil"), ("1 +", "expected a value"), ("inputs.parameters.n.x", "cannot read 'x'"),
])
def test_an_expression_that_fails_says_why(source, says):
    with pytest.raises(ExpressionError, match=says.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        expr.render_value(expr.evaluate(source, SCOPE))


TEMPLATE = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: expressions}
    spec:
      entrypoint: main
      arguments: {parameters: [{name: count, value: "3"}]}
      templates:
      - name: main
        steps:
        - - {name: gen, template: gen}
        - - name: double
            template: say
            arguments: {parameters: [{name: word, value: "{{=asInt(item) * 2}}"}]}
            withParam: "{{=toJson(filter(fromJSON(steps.gen.outputs.result), { # > 1 }))}}"
        - - name: shout
            template: say
            when: "{{=asInt(workflow.parameters.count) > 2}}"
            arguments: {parameters: [{name: word, value: "{{=sprig.upper(steps['gen'].outputs.result)}}"}]}
      - name: gen
        script: {image: python, command: [python], source: "print([1, 2, 3])"}
      - name: say
        inputs: {parameters: [{name: word}]}
        container: {image: alpine, command: [sh, -c, "echo {{inputs.parameters.word}}"]}
    """


def test_expression_tags_drive_arguments_loops_and_when_in_a_run(run):
    handle = run(TEMPLATE)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    assert sorted(n["outputs"]["result"] for name, n in nodes.items() if name.startswith("double(")) == ["4", "6"]
    assert nodes["shout"]["outputs"]["result"] == "[1, 2, 3]"




@pytest.mark.parametrize("old, new, problem", [
    ("asInt(workflow.parameters.count)", "asInt(workflow.parameters.nope)", "unknown variable workflow.parameters.nope"),
    ("sprig.upper(", "sprig.shout(", "function sprig.shout is not supported by the local engine"),
    ("asInt(workflow.parameters.count) > 2", "asInt(workflow.parameters.count) >", "expected a value"),
    ("steps['gen'].outputs.result", "steps['later'].outputs.result", "unknown variable steps.later.outputs.result"),
    ("{ # > 1 }", "{ # > 1 }) + len(#", "# is only defined inside a closure"),
])
def test_expressions_are_checked_at_load(old, new, problem):
    assert old in TEMPLATE
    with pytest.raises(TemplateRefused) as refused:
        load(TEMPLATE.replace(old, new))
    assert any(problem in p for p in refused.value.problems), refused.value.problems
