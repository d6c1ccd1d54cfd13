"""Responses checked against botocore's service models, so a stand-in cannot drift from its service.

botocore validates what a client *sends* (``ParamValidator``), not what a service answers. The
stand-ins build their answers by hand, so every answer goes through ``output_problems`` before it
leaves: each member must exist in the operation's output shape and have its type, each enum value
must be one of the model's, and numbers must respect the model's minimum and maximum. Written here
because botocore has no output validator and the check is a short walk over its shape objects.
"""

from __future__ import annotations

import datetime
from functools import cache
from typing import Any

import boto3

_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (str, int, float, datetime.datetime),
    "blob": (bytes, str),
}


class ShapeMismatch(AssertionError):
    """A stand-in answered something its real service never would."""


@cache
def _service(name: str) -> Any:
    return boto3.session.Session()._session.get_service_model(name)


def _structure(value: Any, shape: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {type(value).__name__}"]
    problems: list[str] = []
    for name, member in value.items():
        if name == "ResponseMetadata":
            continue
        if name not in shape.members:
            problems.append(f"{path}.{name}: not a member of {shape.name}")
        else:
            problems += shape_problems(member, shape.members[name], f"{path}.{name}")
    return problems


def _list(value: Any, shape: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{path}: expected a list, got {type(value).__name__}"]
    return [
        p
        for i, item in enumerate(value)
        for p in shape_problems(item, shape.member, f"{path}[{i}]")
    ]


def _map(value: Any, shape: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected a map, got {type(value).__name__}"]
    return [
        p for k, item in value.items() for p in shape_problems(item, shape.value, f"{path}.{k}")
    ]


def _scalar(value: Any, shape: Any, path: str) -> list[str]:
    kind = shape.type_name
    allowed = _SCALARS.get(kind, (object,))
    if not isinstance(value, allowed) or (kind != "boolean" and isinstance(value, bool)):
        return [f"{path}: expected {kind}, got {type(value).__name__} {value!r}"]
    if kind == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {shape.enum}"]
    meta = shape.metadata
    numeric = kind in ("integer", "long", "float", "double")
    if numeric and "min" in meta and value < meta["min"]:
        return [f"{path}: {value} is below the minimum {meta['min']}"]
    if numeric and "max" in meta and value > meta["max"]:
        return [f"{path}: {value} is above the maximum {meta['max']}"]
    return []


_CONTAINERS = {"structure": _structure, "list": _list, "map": _map}


def shape_problems(value: Any, shape: Any, path: str) -> list[str]:
    """Every way ``value`` differs from ``shape`` (member names, types, enums, bounds)."""
    return _CONTAINERS.get(shape.type_name, _scalar)(value, shape, path)


def check_output(service: str, operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """``response`` unchanged when it fits the operation's output shape; ShapeMismatch otherwise."""
    shape = _service(service).operation_model(operation).output_shape
    problems = shape_problems(response, shape, operation) if shape is not None else []
    if problems:
        raise ShapeMismatch(
            f"{service} {operation} answer does not fit botocore's model: {problems}"
        )
    return response
