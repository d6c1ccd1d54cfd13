"""The settings base every handler's configuration is built on (``lambdas/shared/settings.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.shared.settings import Settings, SettingsError, at_least, between, setting


@dataclass(frozen=True)
class Example(Settings):
    label = "example"

    table_name: str
    secret_arn: str | None = None
    retries: int = setting(default=3, check=at_least(1))
    confidence: float = setting(default=70.0, check=between(0, 100))
    sources: tuple[str, ...] = ("a", "b")
    prices: dict[str, Any] = field(default_factory=dict)


def test_every_field_is_read_from_its_upper_case_variable_with_its_type():
    settings = Example.from_env(
        {
            "TABLE_NAME": " catalog ",
            "SECRET_ARN": "arn:secret",
            "RETRIES": "5",
            "CONFIDENCE": "55.5",
            "SOURCES": "commons, pixabay,commons,",
            "PRICES": '{"per_minute": 0.1}',
        }
    )
    assert settings == Example(
        table_name="catalog",
        secret_arn="arn:secret",
        retries=5,
        confidence=55.5,
        sources=("commons", "pixabay"),
        prices={"per_minute": 0.1},
    )


def test_unset_variables_take_the_defaults_and_optional_ones_are_none():
    assert Example.from_env({"TABLE_NAME": "t"}) == Example(table_name="t")
    assert Example.from_env({"TABLE_NAME": "t", "SECRET_ARN": "  "}).secret_arn is None


def test_one_error_names_every_missing_or_malformed_variable():
    with pytest.raises(SettingsError) as caught:
        Example.from_env({"RETRIES": "many", "CONFIDENCE": "120", "PRICES": "[1]", "SOURCES": "x"})
    assert str(caught.value) == (
        "example configuration: TABLE_NAME is not set; RETRIES must be a whole number, got "
        "'many'; CONFIDENCE must be 0 to 100, got '120'; PRICES must be a JSON object, got '[1]'"
    )


def test_a_check_bounds_a_value_that_is_set():
    with pytest.raises(SettingsError, match="RETRIES must be at least 1, got '0'"):
        Example.from_env({"TABLE_NAME": "t", "RETRIES": "0"})


def test_the_environment_a_construct_sets_reads_back_as_the_same_settings():
    settings = Example(
        table_name="catalog", retries=2, sources=("commons",), prices={"b": 2, "a": 1}
    )
    env = settings.to_env()
    assert env == {
        "TABLE_NAME": "catalog",
        "SECRET_ARN": "",
        "RETRIES": "2",
        "CONFIDENCE": "70.0",
        "SOURCES": "commons",
        "PRICES": '{"a": 1, "b": 2}',
    }
    assert set(env) == set(Example.variables())
    assert Example.from_env(env) == settings
