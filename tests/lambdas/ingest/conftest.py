"""Fixtures for the ingest tests: the function's environment, moto, and HTTP at the transport."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import boto3
import pytest
import responses

from lambdas.ingest.adapters import clear_secret_cache
from lambdas.ingest.settings import Settings
from tests.lambdas.ingest.support import CONTACT, Lake


@pytest.fixture
def ingest_env(
    monkeypatch: pytest.MonkeyPatch,
    raw_bucket: str,
    catalog_table: str,
    campaign_parameter: str,
    pixabay_secret: str,
) -> Iterator[Settings]:
    """The environment the CDK construct gives the ingest function."""
    env = {
        "RAW_BUCKET": raw_bucket,
        "CATALOG_TABLE": catalog_table,
        "CONFIG_PARAMETER": campaign_parameter,
        "PIXABAY_SECRET_ARN": pixabay_secret,
        "CONTACT_EMAIL": CONTACT,
        "SOURCES": "commons,pixabay",
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "MediaPipelineTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("MAX_FILE_BYTES", "MAX_DURATION_S"):
        monkeypatch.delenv(name, raising=False)
    clear_secret_cache()
    # Import the entry point now, with this environment and before any ``capsys`` swaps stdout:
    # Powertools reads the service/namespace and binds its log stream at import, as on Lambda.
    importlib.import_module("lambdas.ingest.handler")
    yield Settings.from_env()
    clear_secret_cache()


@pytest.fixture
def http(aws_mock: None) -> Iterator[responses.RequestsMock]:
    """HTTP mocked at the transport; any unregistered URL fails (no internet in tests)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """HTTP mocked at the transport, without AWS: for the sources and the HTTP client alone."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def lake(aws_session: boto3.session.Session, raw_bucket: str, catalog_table: str) -> Lake:
    return Lake(aws_session, raw_bucket, catalog_table)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every back-off wait, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("lambdas.ingest.http.default_sleep", waits.append)
    return waits
