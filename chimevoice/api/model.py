"""The ``chime-sdk-voice`` service model, from botocore: routes, input parsing and validation,
output serialization.

Nothing here is re-typed from the AWS documentation: paths, methods, status codes, member
names, locations (uri / querystring / body), and constraints (required, min/max, pattern,
enum) are read from botocore's model. Patterns are matched as Smithy does (a search, not an
implicit full match).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from .errors import BadRequestException

__all__ = ["SERVICE", "LEGACY_SERVICE", "Route", "load_model", "parse_input", "serialize_output", "route_of"]

SERVICE = "chime-sdk-voice"
LEGACY_SERVICE = "chime"


@lru_cache(maxsize=4)
def load_model(name: str = SERVICE) -> ServiceModel:
    """botocore's service model (cached: it is immutable)."""
    return botocore.session.get_session().get_service_model(name)


@dataclass(frozen=True, slots=True)
class Route:
    """Where an operation lives: ``method``, aiohttp ``path`` (``{label}`` / ``{label:.+}``),
    ``query``: literal query parameters of the requestUri (``?operation=x``), ``status``:
    the success status code."""

    operation: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int


_GREEDY = re.compile(r"\{([A-Za-z0-9_]+)\+\}")


def route_of(operation: OperationModel) -> Route:
    """The aiohttp route of one operation, from its ``http`` trait."""
    uri = operation.http["requestUri"]
    path, _, query = uri.partition("?")
    literal = tuple((key, value) for key, _, value in (part.partition("=") for part in query.split("&") if part))
    return Route(operation.name, operation.http["method"], _GREEDY.sub(r"{\1:.+}", path), literal,
                 int(operation.http.get("responseCode", 200)))


# --------------------------------------------------------------------------- input


class _Errors:
    """Collects validation errors in the service's wording."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, value: Any, where: str, constraint: str) -> None:
        shown = "null" if value is None else (repr(value) if not isinstance(value, str) else f"'{value}'")
        self.messages.append(f"Value {shown} at '{where}' failed to satisfy constraint: {constraint}")

    def raise_if_any(self) -> None:
        if self.messages:
            count = len(self.messages)
            raise BadRequestException(f"{count} validation error{'s' if count > 1 else ''} detected: "
                                      + "; ".join(self.messages))


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def parse_input(operation: OperationModel, path_params: Mapping[str, str],
                query: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The operation's input as a dict of member names -> Python values, validated.

    Raises BadRequestException for bad JSON, a wrong type, a missing required member or a
    broken constraint. Members bound to the URI are not checked against their patterns
    (configured ids need not look like AWS ids): an unknown one is a NotFoundException later.
    """
    shape = operation.input_shape
    result: dict[str, Any] = {}
    if shape is None:
        return result
    errors = _Errors()
    document: Any = {}
    if any(member.serialization.get("location") is None for member in shape.members.values()):
        if body.strip():
            try:
                document = json.loads(body)
            except (UnicodeDecodeError, ValueError) as exc:
                raise BadRequestException(f"Could not parse the request body as JSON: {exc}") from None
            if not isinstance(document, dict):
                raise BadRequestException("The request body must be a JSON object.")
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        where = _camel(name)
        if location == "uri":
            raw = path_params.get(wire)
            value: Any = raw if raw else None
            if value is not None:
                _check_length(member, value, where, errors)
        elif location == "querystring":
            raw = query.get(wire)
            value = None if raw is None else _from_text(member, raw, where, errors)
            if value is not None:
                _validate(member, value, where, errors)
        elif location in ("header", "headers"):
            continue  # no implemented operation has header members
        else:
            value = document.get(name)
            if value is not None:
                _validate(member, value, where, errors)
        if value is None:
            if name in shape.required_members:
                errors.add(None, where, "Member must not be null")
            continue
        result[name] = value
    errors.raise_if_any()
    return result


def _from_text(shape: Shape, raw: str, where: str, errors: _Errors) -> Any:
    if shape.type_name in ("integer", "long"):
        if re.fullmatch(r"[+-]?\d+", raw.strip()):
            return int(raw)
        errors.add(raw, where, "Member must be an integer")
        return None
    if shape.type_name == "boolean":
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        errors.add(raw, where, "Member must be a boolean")
        return None
    return raw


def _check_length(shape: Shape, value: Any, where: str, errors: _Errors) -> None:
    meta = shape.metadata
    size = len(value)
    if "min" in meta and size < meta["min"]:
        errors.add(value, where, f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and size > meta["max"]:
        errors.add(value, where, f"Member must have length less than or equal to {meta['max']}")


def _validate(shape: Shape, value: Any, where: str, errors: _Errors) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string":
        if not isinstance(value, str):
            errors.add(value, where, "Member must be a string")
            return
        _check_length(shape, value, where, errors)
        if "pattern" in meta and re.search(meta["pattern"], value) is None:
            shown = "***" if meta.get("sensitive") else value
            errors.add(shown, where, f"Member must satisfy regular expression pattern: {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            errors.add(value, where, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.add(value, where, "Member must be an integer")
            return
        if "min" in meta and value < meta["min"]:
            errors.add(value, where, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            errors.add(value, where, f"Member must have value less than or equal to {meta['max']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.add(value, where, "Member must be a boolean")
    elif kind == "map":
        if not isinstance(value, dict):
            errors.add(value, where, "Member must be a map")
            return
        _check_length(shape, value, where, errors)
        for key, item in value.items():
            _validate(shape.key, key, f"{where}.key", errors)
            if item is None:
                errors.add(None, f"{where}.{key}", "Member must not be null")
            else:
                _validate(shape.value, item, f"{where}.{key}", errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.add(value, where, "Member must be a list")
            return
        _check_length(shape, value, where, errors)
        for index, item in enumerate(value):
            _validate(shape.member, item, f"{where}.{index + 1}", errors)
    elif kind == "structure":
        if not isinstance(value, dict):
            errors.add(value, where, "Member must be a structure")
            return
        assert isinstance(shape, StructureShape)
        for name, member in shape.members.items():
            if value.get(name) is None:
                if name in shape.required_members:
                    errors.add(None, f"{where}.{_camel(name)}", "Member must not be null")
            else:
                _validate(member, value[name], f"{where}.{_camel(name)}", errors)


# --------------------------------------------------------------------------- output


def serialize_output(operation: OperationModel, value: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of an operation's output; ``value`` uses the output shape's member
    names (any other name is a programming error: ValueError)."""
    shape = operation.output_shape
    if shape is None:
        if value:
            raise ValueError(f"{operation.name} has no output")
        return {}
    return _serialize(shape, value, operation.name)


def _serialize(shape: Shape, value: Any, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        unknown = set(value) - set(shape.members)
        if unknown:
            raise ValueError(f"{where}: {shape.name} has no member(s) {sorted(unknown)}")
        return {name: _serialize(shape.members[name], item, f"{where}.{name}")
                for name, item in value.items() if item is not None}
    if kind == "list":
        return [_serialize(shape.member, item, f"{where}[]") for item in value]
    if kind == "map":
        return {str(key): _serialize(shape.value, item, f"{where}.{key}")
                for key, item in value.items()}
    if kind == "timestamp":
        return _timestamp(shape, value)
    if kind == "boolean":
        return bool(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "string":
        return str(value)
    raise ValueError(f"{where}: cannot serialize a {kind}")


def _timestamp(shape: Shape, value: datetime | float) -> Any:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, timezone.utc)
    moment = moment.astimezone(timezone.utc)
    fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
    if fmt == "iso8601":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if fmt == "rfc822":
        return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
    epoch = moment.timestamp()
    return int(epoch) if math.isclose(epoch, round(epoch)) else round(epoch, 3)
