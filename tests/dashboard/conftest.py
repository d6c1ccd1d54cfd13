"""Fixtures for the dashboard tests: one moto server on loopback per test process.

``AppTest`` runs the page in its own script thread, and the page's boto3 clients are cached
across runs, so the tests use a real (threaded) moto server reached over 127.0.0.1 rather than
in-process patching: the page talks to it exactly as it talks to AWS. Each test resets the server
and builds a fresh world with ``scripts/dashboard_world.py`` (the same code ``make dashboard`` uses).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from streamlit.testing.v1 import AppTest

from dashboard_app import data
from dashboard_app import world as dashboard_world

APP = Path(__file__).resolve().parents[2] / "dashboard_app" / "app.py"
RUN_TIMEOUT_S = 30
CLEARED_VARS = (
    "MEDIA_PIPELINE_WORLD",
    "MEDIA_PIPELINE_ENV",
    "MEDIA_PIPELINE_CATALOG_TABLE",
    "MEDIA_PIPELINE_CONFIG_PARAMETER",
    "MEDIA_PIPELINE_PROCESSED_BUCKET",
    "MEDIA_PIPELINE_RAW_BUCKET",
    "MEDIA_PIPELINE_STATE_MACHINE_ARN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_PROFILE",
)


@pytest.fixture(scope="session", autouse=True)
def _no_component_scan() -> Iterator[None]:
    """AppTest scans every installed distribution for v2 components (1.5 s per app); the page
    uses none, so the scan is skipped."""
    from streamlit.components.v2 import manifest_scanner

    original = manifest_scanner.scan_component_manifests
    manifest_scanner.scan_component_manifests = lambda *a, **k: []
    yield
    manifest_scanner.scan_component_manifests = original


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with dashboard_world.moto_server(0) as endpoint:
        dashboard_world.enable_execution(endpoint)
        yield endpoint


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No discovery variable leaks in from the developer's shell; every cache starts empty."""
    for name in CLEARED_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    data.clear_clients()
    yield monkeypatch
    data.clear_clients()


def write_world(world: dashboard_world.World, path: Path, **changes: Any) -> Path:
    document = {**json.loads(world.to_json()), **changes}
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="session")
def demo_world(moto_endpoint: str) -> dashboard_world.World:
    """The demo world (travel: 9 processed, 2 failed, 1 in progress), built once per session.

    Building costs ~2 s of moto requests, so tests share it and undo what they change: the
    ``world`` fixture restores the parameter; executions are only ever added.
    """
    return dashboard_world.build_world(moto_endpoint)


@pytest.fixture(scope="session")
def empty_world(moto_endpoint: str) -> dashboard_world.World:
    """A second set of resources, in the same server, without any asset."""
    return dashboard_world.build_world(
        moto_endpoint, processed=0, failed=0, in_progress=0, name="empty-demo", executions=False
    )


@pytest.fixture
def world(
    demo_world: dashboard_world.World,
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    aws: dict[str, Any],
) -> dashboard_world.World:
    """The demo world with its original configuration, read through a world file."""
    aws["ssm"].put_parameter(
        Name=demo_world.config_parameter,
        Value=json.dumps(dashboard_world.INITIAL_CONFIG),
        Type="String",
        Overwrite=True,
    )
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(write_world(demo_world, tmp_path / "w.json")))
    return demo_world


@pytest.fixture
def aws(moto_endpoint: str) -> dict[str, Any]:
    """Clients the tests use to check what the page changed."""
    return dashboard_world.clients(moto_endpoint)


@pytest.fixture
def app() -> Callable[[], AppTest]:
    def start() -> AppTest:
        return AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S).run()

    return start


def assert_label_search(at: AppTest, dynamodb: Any, table: str) -> None:
    """The last table on the page lists exactly the assets indexed under "Beach" in ``table``."""
    hits = at.dataframe[-1].value
    expected = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "LABEL#beach"}},
    )["Count"]
    assert expected > 0
    assert len(hits) == expected
    assert set(hits["label"]) == {"Beach"}


def stored_config(aws: dict[str, Any], world: dashboard_world.World) -> dict[str, Any]:
    value = aws["ssm"].get_parameter(Name=world.config_parameter)["Parameter"]["Value"]
    return dict(json.loads(value))


def deny(monkeypatch: pytest.MonkeyPatch, service: str, operation: str) -> None:
    """Make ``service:operation`` answer AccessDenied, as IAM would, for the page's clients.

    The failure is injected at botocore's ``before-call`` boundary, so the page's own error
    handling (not a mock of it) turns it into the message.
    """
    original_client, original_resource = data._make_client, data._make_resource

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return (
            AWSResponse("https://example.invalid", 400, HTTPHeaders(), None),
            {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": f"User: arn:aws:iam::123456789012:user/editor is not authorized "
                    f"to perform: {operation}",
                },
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
        )

    def make_client(name: str, region: str, endpoint_url: str | None, local: bool) -> Any:
        client = original_client(name, region, endpoint_url, local)
        if name == service:
            client.meta.events.register(f"before-call.*.{operation}", answer)
        return client

    def make_resource(name: str, region: str, endpoint_url: str | None, local: bool) -> Any:
        resource = original_resource(name, region, endpoint_url, local)
        if name == service:
            resource.meta.client.meta.events.register(f"before-call.*.{operation}", answer)
        return resource

    monkeypatch.setattr(data, "_make_client", make_client)
    monkeypatch.setattr(data, "_make_resource", make_resource)
    data.clear_clients()
