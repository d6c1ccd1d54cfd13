"""Fixtures for the dashboard tests: one world the pipeline built, served on loopback.

The world is ``localworld``'s: the synthesized Dev stacks deployed into moto and the state machine
run with the real handlers, through the demo's scenarios (``scripts/demo.py``'s ``populate``: a
travel run, a nature run whose Pixabay transcode fails, an upload delivered twice, bad input). So
the page is tested against what the pipeline really writes: the catalog items ingest and finalize
leave, the ``labels.json`` documents, the renditions and thumbnails at MediaConvert's keys.

It is served by a moto server on a free loopback port, and the page (``AppTest`` in this process,
``streamlit run`` in the browser test) talks to it over HTTP exactly as it talks to AWS. It is
built once for the package (the runs take seconds) and never reset: tests that change it undo
what they change (the ``world_file`` fixture restores the campaign parameter) or add only what no
other test reads (executions, another campaign's assets), and expected values are read from the
world when a test asserts, not remembered from the build.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from streamlit.testing.v1 import AppTest

from dashboard_app import data
from localworld import World, WorldOptions
from scripts.demo import DemoRuns, populate
from tests.conftest import SynthesizedApp

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
    "MEDIA_PIPELINE_REFRESH_S",
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


@dataclass
class Pipeline:
    """The served world, what the demo's scenarios ran in it, and its starting configuration."""

    world: World
    runs: DemoRuns
    initial_config: str
    log: str

    @property
    def endpoint_url(self) -> str:
        assert self.world.endpoint_url
        return self.world.endpoint_url

    def assets(self, campaign: str | None = None, status: str | None = None) -> list[dict]:
        """Asset items as the catalog holds them now, in the page's order: newest first (by
        creation, or with a status by last change, as the two indexes sort)."""
        found = [
            a
            for a in self.world.assets()
            if (campaign is None or a["campaign"] == campaign)
            and (status is None or a["status"] == status)
        ]
        field = "created_at" if status is None else "updated_at"
        return sorted(found, key=lambda a: (str(a[field]), str(a["asset_id"])), reverse=True)

    def labels(self, asset: dict) -> dict:
        """The asset's ``labels.json``, as finalize wrote it."""
        return dict(self.world.read_json(self.world.processed_bucket, asset["labels_key"]))

    def stored_config(self) -> dict[str, Any]:
        ssm = self.world.client("ssm")
        value = ssm.get_parameter(Name=self.world.config_parameter)["Parameter"]["Value"]
        return dict(json.loads(value))

    def set_config(self, value: str) -> None:
        self.world.client("ssm").put_parameter(
            Name=self.world.config_parameter, Value=value, Type="String", Overwrite=True
        )


@pytest.fixture(scope="package")
def pipeline(synthesized: SynthesizedApp) -> Iterator[Pipeline]:
    """The demo's world, built once for the dashboard tests and served on a free port."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # the bad-input run fails on purpose
    handler_logs = io.StringIO()
    world = World(synthesized.templates, WorldOptions(env="Dev", server_port=0, monitoring=True))
    with contextlib.redirect_stdout(handler_logs):
        world.__enter__()
    # The dead-letter analyzer runs when a test fires it, not on its schedule meanwhile.
    (rule,) = [name for name in world.deployer.rules if "DeadLetterAnalysis" in name]
    world.client("events").disable_rule(Name=rule)
    try:
        with contextlib.redirect_stdout(handler_logs):
            runs = populate(world)
        ssm = world.client("ssm")
        config = ssm.get_parameter(Name=world.config_parameter)["Parameter"]["Value"]
        yield Pipeline(world, runs, config, handler_logs.getvalue())
    finally:
        with contextlib.redirect_stdout(handler_logs):
            world.__exit__(None, None, None)


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


def write_world(pipeline: Pipeline, path: Path, **changes: Any) -> Path:
    """The world file ``localworld`` describes the world with, optionally changed."""
    path.write_text(json.dumps({**pipeline.world.world_file(), **changes}))
    return path


@pytest.fixture
def world_file(pipeline: Pipeline, tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[Path]:
    """The page reads the pipeline world through its world file, with the configuration it
    started with (and gets it back afterwards, whatever the test saved)."""
    pipeline.set_config(pipeline.initial_config)
    path = write_world(pipeline, tmp_path / "world.json")
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(path))
    yield path
    pipeline.set_config(pipeline.initial_config)


@pytest.fixture
def app() -> Callable[[], AppTest]:
    def start() -> AppTest:
        return AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S).run()

    return start


def label_hits(dynamodb: Any, table: str, label: str) -> set[str]:
    """Asset ids the catalog's label index holds under ``label`` (the page's search answer)."""
    answer = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"LABEL#{label.lower()}"}},
    )
    return {item["asset_id"]["S"] for item in answer["Items"]}


def assert_label_search(at: AppTest, dynamodb: Any, table: str, label: str) -> None:
    """The last table on the page lists exactly the assets indexed under ``label``."""
    hits = at.dataframe[-1].value
    expected = label_hits(dynamodb, table, label)
    assert expected
    assert set(hits["asset"]) == expected
    assert {name.lower() for name in hits["label"]} == {label.lower()}


def _hook_page_calls(
    monkeypatch: pytest.MonkeyPatch, service: str, operation: str, hook: Callable[..., Any]
) -> None:
    """Register ``hook`` at botocore's ``before-call`` boundary of ``service:operation``, on the
    page's clients only (not the test's own), and start the page with fresh clients."""
    original_client, original_resource = data._make_client, data._make_resource

    def make_client(name: str, region: str, endpoint_url: str | None, local: bool) -> Any:
        client = original_client(name, region, endpoint_url, local)
        if name == service:
            client.meta.events.register(f"before-call.*.{operation}", hook)
        return client

    def make_resource(name: str, region: str, endpoint_url: str | None, local: bool) -> Any:
        resource = original_resource(name, region, endpoint_url, local)
        if name == service:
            resource.meta.client.meta.events.register(f"before-call.*.{operation}", hook)
        return resource

    monkeypatch.setattr(data, "_make_client", make_client)
    monkeypatch.setattr(data, "_make_resource", make_resource)
    data.clear_clients()


def deny(monkeypatch: pytest.MonkeyPatch, service: str, operation: str) -> None:
    """Make ``service:operation`` answer AccessDenied, as IAM would, for the page's clients.

    The failure is injected at botocore's ``before-call`` boundary, so the page's own error
    handling (not a mock of it) turns it into the message.
    """

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

    _hook_page_calls(monkeypatch, service, operation, answer)


def record_calls(monkeypatch: pytest.MonkeyPatch, service: str, operation: str) -> list[dict]:
    """The parameters of every ``service:operation`` call the page makes from now on (the
    calls still go through), so a test can hold the page to its read budget."""
    calls: list[dict] = []

    def note(params: dict, **_: Any) -> None:
        calls.append(params)

    _hook_page_calls(monkeypatch, service, operation, note)
    return calls
