"""The Argo Server's published REST contract (argo-server-swagger.json), as a request checker.

The fake server asks `Contract.operation` which operation a method and path name, then checks
the query and JSON body of the request, and its own answer, against that operation.
Swagger 2.0 definitions are JSON Schema draft 4 with `$ref`s into `#/definitions`; they are
checked with jsonschema, closed (an object with `properties` and no `additionalProperties`
takes no other keys, so a misspelled field is refused, not ignored).
"""
from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match

SWAGGER = Path(__file__).with_name("argo-server-swagger.json")

# Two Kubernetes types the published schema calls strings, which the server's decoder (and every
# manifest in the wild) also accepts as numbers: `retryStrategy.limit: 2`, `cpu: 1`.
NUMBER_OR_STRING = ("io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                    "io.k8s.apimachinery.pkg.api.resource.Quantity")


class ContractError(Exception):
    """A request (or answer) the contract does not allow; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Operation:
    method: str
    template: str
    spec: dict
    path_params: dict[str, str] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        return self.spec["operationId"]

    def parameters(self, where: str) -> dict[str, dict]:
        return {p["name"]: p for p in self.spec.get("parameters", []) if p["in"] == where}


class Contract:
    """Routes, parameters and schemas of the swagger, loaded once."""

    def __init__(self, path: Path = SWAGGER):
        self.swagger = json.loads(path.read_text())
        self.definitions = close_definitions(self.swagger["definitions"])
        self.routes = [(compile_template(template), template, operations)
                       for template, operations in self.swagger["paths"].items()]

    def operation(self, method: str, path: str) -> Operation:
        """The operation for a request; 404 for an unknown path, 405 for a known path's
        unknown method. Literal segments win over parameters (`submit` over `{name}`)."""
        matches = []
        for regex, template, operations in self.routes:
            found = regex.match(path)
            if found:
                matches.append((template.count("{"), template, operations, found.groupdict()))
        if not matches:
            raise ContractError(404, f"no operation at path {path}")
        for _, template, operations, params in sorted(matches, key=lambda m: m[0]):
            if method.lower() in operations:
                return Operation(method, template, operations[method.lower()], params)
        raise ContractError(405, f"{method} is not an operation of {matches[0][1]}")

    def check_query(self, operation: Operation, query: dict[str, list[str]]) -> None:
        declared = operation.parameters("query")
        for name, values in query.items():
            if name not in declared:
                raise ContractError(400, f"{operation.operation_id}: unknown query parameter {name}")
            spec = declared[name]
            if len(values) > 1 and spec.get("type") != "array":
                raise ContractError(400, f"{operation.operation_id}: {name} given {len(values)} times")
            for value in values:
                check_scalar(operation.operation_id, name, spec, value)
        for name, spec in declared.items():
            if spec.get("required") and name not in query:
                raise ContractError(400, f"{operation.operation_id}: query parameter {name} is required")

    def check_body(self, operation: Operation, raw: bytes) -> dict | None:
        """The parsed JSON body, checked against the operation's body schema."""
        body_params = list(operation.parameters("body").values())
        if not body_params:
            if raw.strip():
                raise ContractError(400, f"{operation.operation_id} takes no body")
            return None
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise ContractError(400, f"{operation.operation_id}: body is not JSON: {error}") from None
        self.check(body_params[0]["schema"], body, f"{operation.operation_id} request body")
        return body

    def check_response(self, operation: Operation, status: int, payload) -> None:
        responses = operation.spec["responses"]
        spec = responses.get(str(status)) or responses["default"]
        self.check(spec["schema"], payload, f"{operation.operation_id} response {status}")

    def check(self, schema: dict, instance, what: str) -> None:
        error = best_match(self._validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(top)"
            raise ContractError(400, f"{what} breaks the contract at {where}: {error.message}")

    @functools.lru_cache(maxsize=64)
    def _validator(self, schema_json: str) -> Draft4Validator:
        return Draft4Validator({"definitions": self.definitions,
                                "allOf": [json.loads(schema_json)]})


def compile_template(template: str) -> re.Pattern:
    """/api/v1/workflows/{namespace}/{name} -> a regex with one group per path parameter."""
    pattern = re.sub(r"\\\{([A-Za-z0-9_.]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


def check_scalar(operation_id: str, name: str, spec: dict, value: str) -> None:
    """Query values are strings on the wire; check they parse as the declared type."""
    kind = spec.get("type")
    if kind == "boolean" and value not in ("true", "false"):
        raise ContractError(400, f"{operation_id}: {name}={value!r} is not a boolean")
    if kind == "integer" or spec.get("format") in ("int64", "int32"):
        if not re.fullmatch(r"-?\d+", value):
            raise ContractError(400, f"{operation_id}: {name}={value!r} is not an integer")
    if "enum" in spec and value not in spec["enum"]:
        raise ContractError(400, f"{operation_id}: {name}={value!r} is not one of {spec['enum']}")


def close_definitions(definitions: dict) -> dict:
    """The definitions with every object that lists its properties closed to other keys."""
    closed = {name: close_schema(schema) for name, schema in copy.deepcopy(definitions).items()}
    for name in NUMBER_OR_STRING:
        closed[name] = {**closed[name], "type": ["string", "integer", "number"]}
    return closed


def close_schema(schema):
    if not isinstance(schema, dict):
        return schema
    if "properties" in schema:
        for key, value in schema["properties"].items():
            schema["properties"][key] = close_schema(value)
        schema.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = close_schema(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            schema[key] = [close_schema(s) for s in schema[key]]
    return schema
