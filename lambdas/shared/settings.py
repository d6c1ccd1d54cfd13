"""One typed definition of what a handler reads from its environment, shared with its construct.

A handler's settings class is the contract between the two folders of a unit: the handler parses
it (``from_env``, every missing or malformed variable named in one error), and the unit's
construct fills it (``to_env``) to set the function's environment, so a variable can be neither
set and never read nor read and never set (``tests/infra/test_units.py`` checks both against the
synthesized templates and the handlers' code). The variable of a field is its name upper-cased.

Why hand-written rather than pydantic-settings: the fields are a handful of strings and numbers,
the CDK app imports these classes to fill them with CloudFormation tokens (which validators of
ARNs or names would reject), and pydantic would add its import time to every cold start for what
a dataclass and forty lines do. (pydantic is in the shared layer for the jobs API's request
models, which Powertools' event handler validates with it; only that handler imports it.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

# A check gets the parsed value and answers what is wrong with it, or None.
Check = Callable[[Any], str | None]


class SettingsError(ValueError):
    """A setting is missing or wrong: in a function's environment (a deployment problem, not bad
    input), or in the configuration that fills it (synthesis then stops with this message)."""


def setting(*, default: Any = dataclasses.MISSING, check: Check | None = None) -> Any:
    """A field with an optional check (run on values that are set, defaults are trusted)."""
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={"check": check})
    return dataclasses.field(default=default, metadata={"check": check})


def between(low: float, high: float) -> Check:
    return lambda value: None if low <= value <= high else f"must be {low:g} to {high:g}"


def at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be at least {low:g}"


def _parse(raw: str, kind: Any) -> Any:
    """The value of one variable as its field's type; ValueError says what was expected."""
    if kind is str:
        return raw
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
    origin = typing.get_origin(kind)
    if origin is tuple:
        return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if origin is dict:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        return value
    raise TypeError(f"settings field type {kind!r} is not supported")


def _unwrap_optional(kind: Any) -> tuple[Any, bool]:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        members = [member for member in typing.get_args(kind) if member is not type(None)]
        if len(members) == 1:
            return members[0], True
    return kind, False


def _render(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every handler's settings; subclasses are frozen dataclasses of their own."""

    # Names the function in the error ("<label> configuration: ..."): its unit, unless the
    # class says otherwise.
    label: ClassVar[str] = "function"
    error: ClassVar[type[Exception]] = SettingsError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "label" not in vars(cls):
            cls.label = (
                cls.__module__.split(".")[1]
                if cls.__module__.startswith("lambdas.")
                else cls.__name__
            )

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        return tuple(field.name.upper() for field in dataclasses.fields(cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Read every field; one error lists every variable that is missing or malformed."""
        env = os.environ if env is None else env
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in dataclasses.fields(cls):
            name = field.name.upper()
            kind, optional = _unwrap_optional(hints[field.name])
            raw = env.get(name, "").strip()
            if not raw:
                if optional:
                    values[field.name] = None
                elif (
                    field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING
                ):
                    problems.append(f"{name} is not set")
                continue
            try:
                value = _parse(raw, kind)
            except ValueError as err:
                problems.append(f"{name} {err}, got {raw!r}")
                continue
            check: Check | None = field.metadata.get("check")
            problem = check(value) if check is not None else None
            if problem:
                problems.append(f"{name} {problem}, got {raw!r}")
                continue
            values[field.name] = value
        if problems:
            raise cls.error(f"{cls.label} configuration: " + "; ".join(problems))
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The function's environment, as its construct sets it (values may be CFN tokens)."""
        return {
            field.name.upper(): _render(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }


@dataclasses.dataclass(frozen=True)
class CatalogSettings(Settings):
    """Settings of a handler that reads or writes the asset catalog (most of them)."""

    catalog_table: str
