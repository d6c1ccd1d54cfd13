"""The summarize handler against moto's S3 and the Bedrock Runtime stand-in (``localworld``).

The stand-in is moto's ``bedrock-runtime`` with ``Converse`` added, so the handler's own
``boto3.client("bedrock-runtime")`` reaches it as it would reach Bedrock. Tests that call the
step's logic directly share one client from the run's session (a new client per test would load
the service model each time); the handler test goes through the handler's own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config

from lambdas.summarize.handler import LabelsStore, Model, Summarized, SummarizeRequest, summarize
from lambdas.summarize.settings import SummarizeSettings
from localworld import bedrock
from localworld.runtime import clear_handler_caches
from localworld.world import labels_schema
from tests.lambdas.conftest import SESSION, client
from tests.lambdas.summarize.documents import PROCESSED

MODEL_ID = "amazon.nova-micro-v1:0"
SETTINGS = SummarizeSettings(
    processed_bucket=PROCESSED,
    model_id=MODEL_ID,
    token_budget=3000,
    max_answer_tokens=400,
    input_usd_per_1k_tokens=0.000035,
    output_usd_per_1k_tokens=0.00014,
)


@functools.cache
def bedrock_client() -> Any:
    return SESSION.client("bedrock-runtime", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def stand_in(aws_mock: None) -> Iterator[bedrock.BedrockRuntimeStandIn]:
    bedrock.install()
    service = bedrock.BedrockRuntimeStandIn()
    bedrock.activate(service)
    yield service
    bedrock.activate(None)


@pytest.fixture
def s3(aws_mock: None) -> Any:
    """The processed bucket, versioned as the stateful stack makes it."""
    s3 = client("s3")
    s3.create_bucket(Bucket=PROCESSED)
    s3.put_bucket_versioning(Bucket=PROCESSED, VersioningConfiguration={"Status": "Enabled"})
    return s3


@dataclass
class Lake:
    s3: Any

    def put(self, key: str, document: dict[str, Any]) -> str:
        """Write ``document`` as finalize does; its version id."""
        body = json.dumps(document, ensure_ascii=False, indent=1).encode()
        return str(self.s3.put_object(Bucket=PROCESSED, Key=key, Body=body)["VersionId"])

    def get(self, key: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self.s3.get_object(Bucket=PROCESSED, Key=key)["Body"].read()
        )
        return document

    def versions(self, key: str) -> int:
        listing = self.s3.list_object_versions(Bucket=PROCESSED, Prefix=key)
        return len(listing.get("Versions", []))


@pytest.fixture
def lake(s3: Any) -> Lake:
    return Lake(s3)


Run = Callable[..., Summarized]


@pytest.fixture
def run(lake: Lake, stand_in: bedrock.BedrockRuntimeStandIn) -> Run:
    """The step's logic for one labels key, with these settings (the handler minus its entry)."""

    def call(asset_id: str, key: str, settings: SummarizeSettings = SETTINGS) -> Summarized:
        return summarize(
            SummarizeRequest.parse({"asset_id": asset_id, "labels_key": key}),
            settings=settings,
            store=LabelsStore(PROCESSED, lake.s3),
            model=Model(settings.model_id, bedrock_client()),
        )

    return call


def schema_errors(document: dict[str, Any]) -> list[str]:
    media_type = "image" if document.get("media_type") == "image" else "video"
    return [f"{list(e.path)}: {e.message}" for e in labels_schema(media_type).iter_errors(document)]


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the construct gives the function."""
    for name, value in {**SETTINGS.to_env(), "POWERTOOLS_TRACE_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    clear_handler_caches()
    yield
    clear_handler_caches()
