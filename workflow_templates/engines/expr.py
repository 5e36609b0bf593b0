"""Argo's expression tags, `{{=...}}`: the expr language (expr-lang.org) with the functions Argo
documents for templates (asInt, asFloat, string, toJson, jsonpath, sprig.*), parsed by a small
Pratt parser and evaluated over plain Python values. Nothing here calls eval.

What is read: literals (numbers, strings, true/false/nil, [lists], {maps}), variables as nested maps
(`inputs.parameters.x`, `inputs.parameters['my-x']`, `steps['a-b'].outputs.result`), member and
index access (`?.` is nil-safe), slices, calls, the operators
`?: ?? || or && and ! not == != < > <= >= in not-in matches contains startsWith endsWith .. + - * / % ** ^`,
and closures `{ # > 1 }` as the predicate of filter/map/all/any/none/one/count. A function or
operator outside this set is refused by name when the template is loaded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from workflow_templates.engines import expr_functions
from workflow_templates.engines.expressions import ExpressionError

_TOKEN = re.compile(r"""\s*(?:
    (?P<num>0[xX][0-9a-fA-F_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<name>[A-Za-z_$][\w$]*)
  | (?P<op>\?\.|\?\?|\.\.|\*\*|==|!=|<=|>=|&&|\|\||[-+*/%^!<>?:()\[\]{},.#|])
)""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}
# expr-lang's parser/operator table: precedence and right-associativity of binary operators
_BINARY = {"??": (500, False), "||": (10, False), "&&": (15, False),
           "==": (20, False), "!=": (20, False), "<": (20, False), ">": (20, False), "<=": (20, False),
           ">=": (20, False), "in": (20, False), "not in": (20, False), "matches": (20, False),
           "contains": (20, False), "startsWith": (20, False), "endsWith": (20, False),
           "..": (25, False), "+": (30, False), "-": (30, False), "*": (60, False), "/": (60, False),
           "%": (60, False), "**": (100, True), "^": (100, True)}
_UNARY = {"!": 50, "-": 90, "+": 90}
_CONSTANTS = {"true": True, "false": False, "nil": None}


@dataclass(frozen=True)
class Node:
    """One node of the syntax tree: kind, a value (a literal, name or operator) and children."""

    kind: str
    value: object = None
    children: tuple = ()


def parse(source: str) -> Node:
    """The syntax tree of an expression; ExpressionError says where it stops making sense."""
    parser = _Parser(_tokens(source), source)
    tree = parser.expression(0)
    if parser.peek() is not None:
        raise ExpressionError(f"expression {source!r}: unexpected {parser.peek()[1]!r}")
    return tree


def check(source: str) -> tuple[list[str], list[str]]:
    """(the variable paths an expression reads, as dotted names; the problems with it)."""
    try:
        tree = parse(source)
    except ExpressionError as error:
        return [], [str(error)]
    paths, problems = [], []
    _walk(tree, paths, problems, closure=False)
    return paths, problems


def evaluate(source: str, scope: dict[str, str]):
    """The value of an expression over the flat scope of simple tags (`a.b.c` -> nested maps)."""
    return _Evaluator(nested(scope)).eval(parse(source))


def render_value(value) -> str:
    """What a tag becomes: a string as it is, anything else as Go's json.Marshal writes it."""
    if value is None:
        raise ExpressionError("expression evaluated to nil")
    return value if isinstance(value, str) else expr_functions.go_json(value)


def nested(scope: dict[str, str]) -> dict:
    """`{"a.b": "1", "a": "{...}"}` -> `{"a": {"b": "1"}}`: a dotted name's map wins over a string."""
    root: dict = {}
    for key in sorted(scope, key=lambda k: k.count(".")):
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if not isinstance(node.get(leaf), dict):
            node[leaf] = scope[key]
    return root


# --- tokens and parser ----------------------------------------------------------------------

def _tokens(source: str) -> list[tuple[str, object]]:
    tokens, pos = [], 0
    while pos < len(source) and source[pos:].strip():
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"expression {source!r}: cannot read {source[pos:].strip()[:20]!r}")
        pos = match.end()
        kind = match.lastgroup
        tokens.append(_token(kind, match.group(kind)))
    return _join_not_in(tokens)


def _token(kind: str, text: str) -> tuple[str, object]:
    if kind == "num":
        clean = text.replace("_", "")
        if clean[:2].lower() == "0x":
            return "lit", int(clean, 16)
        return "lit", float(clean) if any(c in clean for c in ".eE") else int(clean)
    if kind == "str":
        return "lit", _unquote(text)
    if kind == "name" and text in _CONSTANTS:
        return "lit", _CONSTANTS[text]
    if kind == "name" and text in _WORD_OPS:
        return "op", _WORD_OPS[text]
    if kind == "name" and text in ("in", "matches", "contains", "startsWith", "endsWith"):
        return "op", text
    return kind, text


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "u" and len(m[1]) == 5
                  else _ESCAPES.get(m[1], m[1]), text[1:-1])


def _join_not_in(tokens: list) -> list:
    out = []
    for token in tokens:
        if token == ("op", "in") and out and out[-1] == ("op", "!"):
            out[-1] = ("op", "not in")
        else:
            out.append(token)
    return out


class _Parser:
    def __init__(self, tokens: list, source: str):
        self.tokens, self.pos, self.source = tokens, 0, source

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, op: str | None = None):
        token = self.peek()
        if token is None or (op is not None and token != ("op", op)):
            found = "the end" if token is None else repr(token[1])
            raise ExpressionError(f"expression {self.source!r}: expected {op or 'a value'}, found {found}")
        self.pos += 1
        return token

    def expression(self, least: int):
        left = self.unary()
        while (token := self.peek()) and token[0] == "op":
            op = token[1]
            if op == "?" and least == 0:
                left = self.ternary(left)
                continue
            if op not in _BINARY or _BINARY[op][0] < least or (_BINARY[op][0] == least and not _BINARY[op][1]):
                break
            self.take()
            precedence, right = _BINARY[op]
            left = Node("binary", op, (left, self.expression(precedence if right else precedence + 1)))
        return left

    def ternary(self, condition: Node) -> Node:
        self.take("?")
        yes = self.expression(0)
        self.take(":")
        return Node("ternary", None, (condition, yes, self.expression(0)))

    def unary(self) -> Node:
        token = self.peek()
        if token and token[0] == "op" and token[1] in _UNARY:
            self.take()
            return Node("unary", token[1], (self.expression(_UNARY[token[1]]),))
        return self.postfix(self.primary())

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "lit":
            return Node("literal", value)
        if kind == "name":
            return Node("name", value)
        if value == "#":
            return Node("pointer")
        if value == "(":
            inner = self.expression(0)
            self.take(")")
            return inner
        if value == "[":
            return Node("list", None, tuple(self.items("]")))
        if value == "{":
            return self.mapping()
        raise ExpressionError(f"expression {self.source!r}: unexpected {value!r}")

    def items(self, close: str) -> list[Node]:
        items = []
        while self.peek() != ("op", close):
            items.append(self.expression(0))
            if self.peek() != ("op", close):
                self.take(",")
        self.take(close)
        return items

    def mapping(self) -> Node:
        pairs = []
        while self.peek() != ("op", "}"):
            kind, key = self.take()
            if kind not in ("name", "lit"):
                raise ExpressionError(f"expression {self.source!r}: a map key must be a name or a literal")
            self.take(":")
            pairs.append(Node("pair", key, (self.expression(0),)))
            if self.peek() != ("op", "}"):
                self.take(",")
        self.take("}")
        return Node("map", None, tuple(pairs))

    def postfix(self, node: Node) -> Node:
        while (token := self.peek()) and token[0] == "op" and token[1] in (".", "?.", "[", "("):
            self.take()
            if token[1] in (".", "?."):
                node = Node("member", token[1] == "?.", (node, Node("literal", self.take()[1])))
            elif token[1] == "(":
                node = self.call(node)
            else:
                node = self.index(node)
        return node

    def call(self, callee: Node) -> Node:
        arguments = []
        while self.peek() != ("op", ")"):
            arguments.append(self.closure() if self.peek() == ("op", "{") and _takes_closure(callee)
                             else self.expression(0))
            if self.peek() != ("op", ")"):
                self.take(",")
        self.take(")")
        return Node("call", None, (callee, *arguments))

    def closure(self) -> Node:
        self.take("{")
        body = self.expression(0)
        self.take("}")
        return Node("closure", None, (body,))

    def index(self, node: Node) -> Node:
        start = None if self.peek() == ("op", ":") else self.expression(0)
        if self.peek() == ("op", ":"):
            self.take(":")
            end = None if self.peek() == ("op", "]") else self.expression(0)
            self.take("]")
            return Node("slice", None, (node, start, end))
        self.take("]")
        return Node("index", False, (node, start))


def _takes_closure(callee: Node) -> bool:
    return callee.kind == "name" and callee.value in expr_functions.PREDICATES


# --- checking -------------------------------------------------------------------------------

def _walk(node: Node | None, paths: list, problems: list, closure: bool) -> None:
    if node is None:
        return
    if node.kind == "call":
        _check_call(node, paths, problems, closure)
        return
    path = _path(node)
    if path is not None:
        if path.split(".")[0] not in expr_functions.NAMES:
            paths.append(path)
        elif "." not in path or path.split(".")[0] != "sprig":
            problems.append(f"{path} is a function; call it")
        return
    if node.kind == "pointer" and not closure:
        problems.append("# is only defined inside a closure such as filter(list, {# > 1})")
    for child in node.children:
        _walk(child, paths, problems, closure or node.kind == "closure")


def _check_call(node: Node, paths: list, problems: list, closure: bool) -> None:
    callee, *arguments = node.children
    name = _path(callee)
    if name is None or not expr_functions.known(name):
        problems.append(f"function {name or 'of an expression'} is not supported by the local engine "
                        f"(docs/workflows-local-engine.md lists the functions it has)")
    elif name in expr_functions.PREDICATES and (len(arguments) != 2 or arguments[1].kind != "closure"):
        problems.append(f"{name} takes a list and a closure, e.g. {name}(list, {{# > 1}})")
    for argument in arguments:
        _walk(argument, paths, problems, closure)


def _path(node: Node) -> str | None:
    """`a.b['c']` as "a.b.c" when the node is a plain variable path, else None."""
    if node.kind == "name":
        return node.value
    if node.kind in ("member", "index") and isinstance(node.children[1], Node) \
            and node.children[1].kind == "literal" and isinstance(node.children[1].value, str):
        base = _path(node.children[0])
        return None if base is None else f"{base}.{node.children[1].value}"
    return None


# --- evaluation -----------------------------------------------------------------------------

class _Evaluator:
    def __init__(self, env: dict, pointer=None):
        self.env, self.pointer = env, pointer

    def eval(self, node: Node):
        return getattr(self, f"_{node.kind}")(node)

    def _literal(self, node):
        return node.value

    def _name(self, node):
        if node.value in self.env:
            return self.env[node.value]
        if node.value in expr_functions.NAMES:
            return expr_functions.Function(node.value)
        raise ExpressionError(f"unknown name {node.value!r}")

    def _pointer(self, node):
        return self.pointer

    def _list(self, node):
        return [self.eval(item) for item in node.children]

    def _map(self, node):
        return {pair.value: self.eval(pair.children[0]) for pair in node.children}

    def _member(self, node):
        base = self.eval(node.children[0])
        if base is None and node.value:
            return None
        return expr_functions.member(base, node.children[1].value)

    def _index(self, node):
        return expr_functions.member(self.eval(node.children[0]), self.eval(node.children[1]))

    def _slice(self, node):
        base, start, end = node.children
        return expr_functions.slice_of(self.eval(base), start and self.eval(start), end and self.eval(end))

    def _unary(self, node):
        return expr_functions.unary(node.value, self.eval(node.children[0]))

    def _ternary(self, node):
        condition, yes, no = node.children
        return self.eval(yes) if expr_functions.truth(self.eval(condition), "?:") else self.eval(no)

    def _binary(self, node):
        op, (left, right) = node.value, node.children
        value = self.eval(left)
        if op == "&&":
            return expr_functions.truth(value, op) and expr_functions.truth(self.eval(right), op)
        if op == "||":
            return expr_functions.truth(value, op) or expr_functions.truth(self.eval(right), op)
        if op == "??":
            return value if value is not None else self.eval(right)
        return expr_functions.binary(op, value, self.eval(right))

    def _call(self, node):
        callee, *arguments = node.children
        function = self.eval(callee)
        if not isinstance(function, expr_functions.Function):
            raise ExpressionError(f"{_path(callee) or 'value'} is not a function")
        if function.name in expr_functions.PREDICATES:
            items = self.eval(arguments[0])
            body = arguments[1].children[0]
            return expr_functions.predicate(function.name, items,
                                            lambda item: _Evaluator(self.env, item).eval(body))
        return function(*[self.eval(argument) for argument in arguments])
