"""The admin API's OpenAPI 3.1 document, collected from the routes themselves.

The convention every admin route module follows:

- each documented endpoint function has a docstring whose part after a ``---`` line is its
  YAML Operation object (``summary``, ``parameters``, ``requestBody``, ``responses``), read by
  Starlette's ``SchemaGenerator``; schemas are referenced as ``#/components/schemas/<Model>``
  and error answers as ``#/components/schemas/AdminError``;
- error answers may reference the shared ``#/components/responses/BadInput``, ``NotFound``
  and ``Conflict`` (each an ``AdminError``);
- each route module exports the tuple of pydantic models its docstrings reference
  (``ADMIN_SCHEMA_MODELS``, ``CATALOG_SCHEMA_MODELS``, ...); ``openapi_document`` turns them
  into ``components.schemas`` with ``model_json_schema``.

``openapi_document`` adds what every operation has, so docstrings need not repeat it: an
``operationId`` (the function's name) unless given, the path parameters a docstring does not
declare (strings), and, unless the docstring says ``security: []``, the 401 and 403 answers of
the admin token (``Authorization: Bearer <admin token>``, required when the server has one).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Mount, Route
from starlette.schemas import SchemaGenerator

from marketmeter import __version__

__all__ = ["ADMIN_TOKEN_SCHEME", "AdminError", "openapi_document"]

ADMIN_TOKEN_SCHEME = "adminToken"
_REF = "#/components/schemas/{model}"
_ERROR = {"$ref": _REF.format(model="AdminError")}


class AdminError(BaseModel):
    """An admin API error: what is wrong, and the field (or parameter) at fault."""

    error: str
    field: str | None = None


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_TOKEN_RESPONSES = {
    "401": _error_response("No admin token sent (the server requires one)"),
    "403": _error_response("The admin token sent is wrong"),
}


# Documents already made, by what they are made of: every app of a process has the same routes,
# and parsing ~60 YAML docstrings again for each (the suite builds thousands) is wasted time.
_MADE: dict[tuple[object, ...], dict[str, Any]] = {}


def openapi_document(
    routes: Sequence[BaseRoute], models: Iterable[type[BaseModel]]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (those whose endpoints have a YAML docstring),
    with ``components.schemas`` from ``models`` and ``AdminError``."""
    schema_models = tuple(models)
    key = (_shape(routes), schema_models)
    if key not in _MADE:
        _MADE[key] = _document(routes, schema_models)
    return copy.deepcopy(_MADE[key])


def _shape(routes: Sequence[BaseRoute], prefix: str = "") -> tuple[object, ...]:
    """What a document is made of: each route's path, methods, operation name and docstring."""
    found: list[object] = []
    for route in routes:
        if isinstance(route, Mount):
            found.append(_shape(route.routes, prefix + route.path))
        elif isinstance(route, Route):
            methods = tuple(sorted(route.methods or ()))
            name = getattr(route.endpoint, "__name__", "")
            found.append((prefix + route.path, methods, name, route.endpoint.__doc__))
    return tuple(found)


def _document(routes: Sequence[BaseRoute], models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    generator = SchemaGenerator(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "marketmeter admin API",
                "version": __version__,
                "description": (
                    "The operator's API of marketmeter, a self-hosted AWS Marketplace Metering "
                    "Service: the catalog (sellers, products, buyers and their access keys), "
                    "the service clock, registration tokens, RegisterUsage public keys and the "
                    'billed usage. Errors are {"error", "field"} with a 4xx status. When the '
                    "server has an admin token, every operation but health and this document "
                    "requires Authorization: Bearer <admin token>."
                ),
            },
        }
    )
    document = generator.get_schema(list(routes))
    names = {
        (endpoint.path, endpoint.http_method): endpoint.func.__name__
        for endpoint in generator.get_endpoints(list(routes))
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            _complete(operation, path, names[(path, method)])
    schemas: dict[str, Any] = {}
    every: list[type[BaseModel]] = [AdminError, *models]
    for model in every:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    document["components"] = {
        "schemas": dict(sorted(schemas.items())),
        "responses": {
            "BadInput": _error_response("Invalid input; field names what is wrong"),
            "NotFound": _error_response("No such resource; field names the parameter"),
            "Conflict": _error_response("Conflicts with the stored state (the message says how)"),
        },
        "securitySchemes": {
            ADMIN_TOKEN_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "The server's admin token "
                "(env MARKETMETER_ADMIN_TOKEN or serve --admin-token-file).",
            }
        },
    }
    # the token is required only when the server has one: either alternative satisfies it
    document["security"] = [{ADMIN_TOKEN_SCHEME: []}, {}]
    return document


def _complete(operation: dict[str, Any], path: str, function_name: str) -> None:
    operation.setdefault("operationId", function_name)
    declared = {
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "path"
    }
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}") and segment[1:-1] not in declared:
            operation.setdefault("parameters", []).append(
                {
                    "name": segment[1:-1],
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            )
    if operation.get("security") != []:
        responses = operation.setdefault("responses", {})
        for status, response in _TOKEN_RESPONSES.items():
            responses.setdefault(status, copy.deepcopy(response))
