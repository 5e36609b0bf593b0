"""Argo's `{{...}}` tags (simple ones here, `{{=...}}` expressions in expr.py), the govaluate
subset of `when`, and DAG `depends` expressions.

Nothing here calls eval: `when` and `depends` are tokenized and parsed by a small
recursive-descent parser over a fixed grammar.
"""
from __future__ import annotations

import re

# fasttemplate's reading: from `{{` to the next `}}`; `{{=` starts an expression tag
TAG = re.compile(r"\{\{(?:=(?P<expression>.*?)|\s*(?P<name>[^{}]*?)\s*)\}\}", re.S)


class ExpressionError(ValueError):
    """A tag, `when` or `depends` expression that cannot be resolved or parsed."""


def tags(text: str) -> list[str]:
    """The tags in `text`: a simple tag's variable name, an expression tag as "=expression"."""
    if not isinstance(text, str):
        return []
    return [m["name"] if m["expression"] is None else "=" + m["expression"] for m in TAG.finditer(text)]


def render(text: str, scope: dict[str, str]) -> str:
    """Substitute every tag in `text` from `scope` in one pass (a result is not read again); an
    unknown name is refused by name."""
    def value(match: re.Match) -> str:
        if match["expression"] is not None:
            from workflow_templates.engines import expr  # expr.py builds on this module's errors
            return expr.render_value(expr.evaluate(match["expression"], scope))
        name = match["name"]
        if name not in scope:
            raise ExpressionError(f"unresolved variable {{{{{name}}}}}")
        return scope[name]
    return TAG.sub(value, text)


# --- when: the govaluate subset Argo documents ------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
    | (?P<str>'[^']*'|"[^"]*")
    | (?P<op>==|!=|=~|!~|<=|>=|&&|\|\||<|>|!|\(|\))
    | (?P<word>[A-Za-z0-9_][\w.\-]*)
    )""", re.VERBOSE)


def _tokenize(expression: str) -> list[tuple[str, object]]:
    tokens, pos = [], 0
    expression = expression.strip()
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot parse {expression!r} at {expression[pos:]!r}")
        pos = match.end()
        kind = match.lastgroup
        text = match.group(kind)
        if kind == "num":
            tokens.append(("lit", float(text)))
        elif kind == "str":
            tokens.append(("lit", text[1:-1]))
        elif kind == "word" and text in ("true", "false"):
            tokens.append(("lit", text == "true"))
        elif kind == "word":
            # Argo turns govaluate variables into strings, so `a == heads` needs no quotes.
            tokens.append(("lit", text))
        else:
            tokens.append(("op", text))
    return tokens


class _Parser:
    """Precedence: || < && < comparison < unary ! < primary."""

    def __init__(self, tokens, atom):
        self.tokens, self.pos, self.atom = tokens, 0, atom

    def parse(self):
        value = self.or_()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.pos][1]!r}")
        return value

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None)

    def take(self, op=None):
        kind, value = self.peek()
        if kind is None or (op is not None and (kind, value) != ("op", op)):
            raise ExpressionError(f"expected {op or 'a value'}, got {value!r}")
        self.pos += 1
        return kind, value

    def or_(self):
        left = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            left = _truth(left) or _truth(right)
        return left

    def and_(self):
        left = self.compare()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.compare()
            left = _truth(left) and _truth(right)
        return left

    def compare(self):
        left = self.unary()
        kind, op = self.peek()
        if kind == "op" and op in _COMPARE:
            self.take()
            return _COMPARE[op](left, self.unary())
        return left

    def unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return not _truth(self.unary())
        if self.peek() == ("op", "("):
            self.take()
            value = self.or_()
            self.take(")")
            return value
        return self.atom(self.take()[1])


def _truth(value) -> bool:
    if not isinstance(value, bool):
        raise ExpressionError(f"expected a boolean, got {value!r}")
    return value


def _ordered(op):
    def compare(a, b):
        if isinstance(a, bool) or isinstance(b, bool) or type(a) is not type(b):
            raise ExpressionError(f"cannot compare {a!r} and {b!r} with {op}")
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    return compare


def _matches(a, b) -> bool:
    """govaluate's `=~`: the right side is a regular expression searched for in the left."""
    if not isinstance(a, str) or not isinstance(b, str):
        raise ExpressionError(f"cannot match {a!r} against {b!r}: =~ and !~ take strings")
    try:
        return re.search(b, a) is not None
    except re.error as error:
        raise ExpressionError(f"=~ {b!r} is not a regular expression: {error}") from None


_COMPARE = {
    "==": lambda a, b: a == b and type(a) is type(b),
    "!=": lambda a, b: not (a == b and type(a) is type(b)),
    "=~": _matches, "!~": lambda a, b: not _matches(a, b),
    "<": _ordered("<"), ">": _ordered(">"), "<=": _ordered("<="), ">=": _ordered(">="),
}


def evaluate_when(expression: str) -> bool:
    """Evaluate an already-rendered `when` expression as Argo does (govaluate, words as strings)."""
    result = _Parser(_tokenize(expression), lambda value: value).parse()
    if not isinstance(result, bool):
        raise ExpressionError(f"`when` {expression!r} is not a boolean expression")
    return result


# --- depends: task names with .Succeeded/.Failed/... -------------------------------------------

_DEPENDS_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9_][\w\-]*(?:\.[A-Za-z]+)?)")
_RESULTS = {"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned",
            "AnySucceeded", "AllFailed"}


def depends_tokens(expression: str) -> list[str]:
    """Split a `depends` expression into operators and `task[.Result]` operands."""
    tokens, pos, text = [], 0, expression.strip()
    while pos < len(text):
        match = _DEPENDS_TOKEN.match(text, pos)
        if not match:
            raise ExpressionError(f"cannot parse depends {expression!r} at {text[pos:]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def depends_operands(expression: str) -> list[tuple[str, str]]:
    """The (task, result) operands of a `depends` expression ("" for a bare name), checking
    each result name."""
    operands = []
    for token in depends_tokens(expression):
        if token in ("&&", "||", "!", "(", ")"):
            continue
        name, _, result = token.partition(".")
        if result and result not in _RESULTS:
            raise ExpressionError(f"unknown task result {token!r} in depends {expression!r}")
        operands.append((name, result))
    return operands


def depends_tasks(expression: str) -> list[str]:
    """The task names a `depends` expression refers to, checking each result name."""
    return [name for name, _ in depends_operands(expression)]


def evaluate_depends(expression: str, outcome) -> bool:
    """Evaluate `depends`; outcome(task, result) says whether task's result holds.

    A bare task name means `(task.Succeeded || task.Skipped || task.Daemoned)`, as Argo documents.
    """
    def atom(token):
        name, _, result = token.partition(".")
        if not result:
            return any(outcome(name, r) for r in ("Succeeded", "Skipped", "Daemoned"))
        return outcome(name, result)
    tokens = [("op", t) if t in ("&&", "||", "!", "(", ")") else ("lit", t)
              for t in depends_tokens(expression)]
    return _truth(_Parser(tokens, atom).parse())
