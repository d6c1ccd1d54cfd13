"""Generic AWS fixtures for handler tests: moto-backed bucket, catalog table, parameter, secret.

Nothing here is autouse, so units that bring their own fixtures are unaffected. Each fixture
depends on ``aws_mock`` so everything lives in one moto context per test. Fixtures that mock HTTP
with ``responses`` must start after ``aws_mock`` (moto patches the same transport).

Clients come from one ``SESSION`` shared by the whole test run: moto resets boto3's default
session on every ``mock_aws`` entry, which would reload each service model (about 0.3 s per
service per test). A session created after ``import moto`` is still intercepted by moto.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.shared.catalog import create_table

REGION = "us-east-1"
SESSION = boto3.session.Session(region_name=REGION)


@functools.cache
def client(service: str) -> Any:
    """One client per service for the whole run; moto intercepts it inside each test's mock."""
    return SESSION.client(service)  # type: ignore[call-overload]


RAW_BUCKET_NAME = "media-raw-test"
CATALOG_TABLE_NAME = "catalog-test"
CONFIG_PARAMETER_NAME = "/media-pipeline/test/campaigns"
PIXABAY_SECRET_NAME = "media-pipeline/test/pixabay-api-key"
CAMPAIGN_CONFIG = {
    "active_campaign": "travel",
    "campaigns": ["travel", "tech", "nature"],
    "batch_sizes": {"video": 2},
}


@pytest.fixture
def aws_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS service, with credentials that could never reach a real account."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def aws_session(aws_mock: None) -> boto3.session.Session:
    """The shared session, for tests that make their own clients."""
    return SESSION


@pytest.fixture
def raw_bucket(aws_mock: None) -> str:
    client("s3").create_bucket(Bucket=RAW_BUCKET_NAME)
    return RAW_BUCKET_NAME


@pytest.fixture
def catalog_table(aws_mock: None) -> str:
    """The catalog table exactly as the stateful stack defines it (keys, GSIs, TTL)."""
    create_table(client("dynamodb"), CATALOG_TABLE_NAME)
    return CATALOG_TABLE_NAME


@pytest.fixture
def campaign_parameter(aws_mock: None) -> str:
    """The campaign configuration parameter with three campaigns, ``travel`` active."""
    client("ssm").put_parameter(
        Name=CONFIG_PARAMETER_NAME, Type="String", Value=json.dumps(CAMPAIGN_CONFIG)
    )
    return CONFIG_PARAMETER_NAME


@pytest.fixture
def pixabay_secret(aws_mock: None) -> str:
    """A configured Pixabay key secret (JSON form); returns its ARN."""
    answer = client("secretsmanager").create_secret(
        Name=PIXABAY_SECRET_NAME, SecretString=json.dumps({"api_key": "test-pixabay-key-123"})
    )
    return str(answer["ARN"])
