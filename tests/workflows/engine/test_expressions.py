"""Tags, `when` (Argo's govaluate subset) and `depends`, as pure functions."""
import pytest

from workflow_templates.engines.expressions import (
    ExpressionError, depends_tasks, evaluate_depends, evaluate_when, render)


def test_render_substitutes_and_refuses_unknown_names_by_name():
    assert render("a {{ x }} b {{y.z}}", {"x": "1", "y.z": "2"}) == "a 1 b 2"
    with pytest.raises(ExpressionError, match=r"\{\{nope\}\}"):
        render("{{nope}}", {})


@pytest.mark.parametrize("expression, expected", [
    ("heads == heads", True),
    ("heads == 'tails'", False),
    ("5 > 3 && 2 <= 2", True),
    ("!(1 == 1) || \"a\" != \"b\"", True),
    ("(1 < 2) && (tails == heads || 3 >= 4)", False),
    ("true", True),
    ("1.5 < 2", True),
    ("-1 < 0 && 3 == 3.0", True),
    ("v1.2 == 'v1.2'", True),
    # govaluate's regex operators: the right side is searched for in the left
    ("tails =~ tai", True),
    ("heads =~ '^tai'", False),
    ("heads !~ tai", True),
])
def test_when_evaluates_the_govaluate_subset(expression, expected):
    assert evaluate_when(expression) is expected


@pytest.mark.parametrize("expression", ["1 +", "a < 'b' <", "__import__('os')", "'a' < 1", "5",
                                        "a =~ '('", "1 =~ 1"])
def test_when_refuses_what_it_cannot_evaluate(expression):
    with pytest.raises(ExpressionError):
        evaluate_when(expression)


def test_depends_bare_name_means_succeeded_or_skipped():
    phases = {"A": "Skipped", "B": "Failed"}
    outcome = lambda name, result: phases[name] == result  # noqa: E731
    assert evaluate_depends("A", outcome)
    assert evaluate_depends("A && B.Failed", outcome)
    assert not evaluate_depends("A && !B.Failed", outcome)
    assert depends_tasks("(A.Succeeded || B) && !C.Failed") == ["A", "B", "C"]
    with pytest.raises(ExpressionError):
        depends_tasks("A.Finished")
