"""Fixtures for the pipeline handlers: moto for S3, DynamoDB, SSM, SNS and Step Functions.

Rekognition Video and MediaConvert, which moto lacks, are stood in for by botocore's ``Stubber``
on real clients and by the model-validated fakes in ``builders.py``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.shared.catalog import create_table
from lambdas.shared.keys import AssetKeys
from localworld.runtime import clear_handler_caches
from tests.lambdas.pipeline.builders import (
    ACCOUNT,
    CONFIG_PARAMETER,
    DEPLOYMENT,
    MEDIACONVERT_ROLE_ARN,
    PROCESSED_BUCKET,
    RAW_BUCKET,
    REGION,
    REKOGNITION_ROLE_ARN,
    REKOGNITION_TOPIC_ARN,
    SESSION,
    TABLE,
    aws_client,
    dynamodb,
    ingested_asset,
)

# Powertools reads these when a handler module is imported, which is before any fixture runs.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MediaPipelineTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "media-pipeline")


@pytest.fixture(autouse=True)
def pipeline_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the CDK construct gives every pipeline function."""
    env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CATALOG_TABLE": TABLE,
        "RAW_BUCKET": RAW_BUCKET,
        "PROCESSED_BUCKET": PROCESSED_BUCKET,
        "CONFIG_PARAMETER": CONFIG_PARAMETER,
        "DEPLOYMENT": DEPLOYMENT,
        "POWERTOOLS_SERVICE_NAME": "media-pipeline",
        "POWERTOOLS_METRICS_NAMESPACE": "MediaPipelineTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "MEDIACONVERT_ROLE_ARN": MEDIACONVERT_ROLE_ARN,
        "REKOGNITION_TOPIC_ARN": REKOGNITION_TOPIC_ARN,
        "REKOGNITION_ROLE_ARN": REKOGNITION_ROLE_ARN,
        "MIN_LABEL_CONFIDENCE": "70",
        "TOP_LABELS": "15",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Every per-container cache (clients, settings) of every imported handler module, so no
    # test sees another's clients or environment.
    clear_handler_caches()
    yield
    clear_handler_caches()


@dataclass(frozen=True)
class FakeContext:
    function_name: str = "pipeline-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pipeline-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto for everything, able to run state machines (for real task tokens).

    moto drops boto3's default session on start, and a new session parses botocore's endpoint
    data again (about 0.4 s); one warm session, created after moto is loaded (so its requests
    are intercepted), is reused by every test and by the handlers' ``boto3.client`` calls.
    """
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.DEFAULT_SESSION = SESSION
        yield


@pytest.fixture
def table(aws: None) -> Any:
    """The catalog table with the keys and indexes the stateful stack creates."""
    client = dynamodb().meta.client
    create_table(client, TABLE)
    return dynamodb().Table(TABLE)


@pytest.fixture
def catalog(table: Any) -> Any:
    from lambdas.shared.catalog import Catalog

    return Catalog(TABLE, resource=dynamodb())


@pytest.fixture
def rekognition() -> Iterator[tuple[Any, Stubber]]:
    """A real Rekognition client with a Stubber (moto has no Rekognition Video); every stubbed
    response must have been used by the end of the test."""
    client = aws_client("rekognition")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def asset() -> dict[str, Any]:
    return ingested_asset()


@pytest.fixture
def committed_asset(catalog: Any, asset: dict[str, Any]) -> dict[str, Any]:
    """The asset as ingest records it in the catalog (status INGESTED), with its credit."""
    catalog.claim("wikimedia", "File:Lisbon_tram_28.webm", "sha1-abc", asset["asset_id"])
    catalog.commit_asset(
        {
            **{k: v for k, v in asset.items() if k not in ("duration_s",)},
            "duration_s": Decimal("93.5"),
            "source_id": "File:Lisbon_tram_28.webm",
            "checksum": "sha1-abc",
            "license": "CC BY-SA 4.0",
            "license_url": "https://creativecommons.org/licenses/by-sa/4.0",
            "title": "Lisbon tram 28",
            "mime": "video/webm",
            "source_url": "https://commons.wikimedia.org/wiki/File:Lisbon_tram_28.webm",
            "author": "Jane Doe",
            "attribution_key": AssetKeys(asset["key"]).attribution,
        }
    )
    return asset


@pytest.fixture
def buckets(aws: None) -> Any:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=RAW_BUCKET)
    s3.create_bucket(Bucket=PROCESSED_BUCKET)
    return s3


@pytest.fixture
def config_parameter(aws: None) -> Any:
    ssm = aws_client("ssm")
    ssm.put_parameter(
        Name=CONFIG_PARAMETER,
        Type="String",
        Value=json.dumps(
            {
                "active_campaign": "travel",
                "campaigns": ["travel", "tech", "nature"],
                "batch_sizes": {"video": 2},
            }
        ),
    )
    return ssm


@dataclass
class WaitingTask:
    """A real Step Functions execution (in moto) paused on a waitForTaskToken task."""

    token: str
    execution_arn: str
    sfn: Any

    def outcome(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The execution once it leaves RUNNING: status, output, error."""
        deadline = time.monotonic() + timeout_s
        while True:
            described = self.sfn.describe_execution(executionArn=self.execution_arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                output = described.get("output")
                return {
                    "status": described["status"],
                    "output": json.loads(output) if output else None,
                    "error": described.get("error"),
                }
            time.sleep(0.02)


@pytest.fixture
def start_waiting_task(aws: None) -> Callable[[str], WaitingTask]:
    """Start executions that wait for a task token, the way the analysis tasks do.

    The token is handed out through SQS (``sqs:sendMessage.waitForTaskToken``) because moto
    cannot run Lambda functions without Docker; the waiting and resuming are the same.
    """
    sqs = aws_client("sqs")
    queue = sqs.create_queue(QueueName="task-tokens")["QueueUrl"]
    role = f"arn:aws:iam::{ACCOUNT}:role/pipeline-state-machine"
    sfn = aws_client("stepfunctions")
    definition = {
        "StartAt": "Analyze",
        "States": {
            "Analyze": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="analysis-wait", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]

    def start(name: str = "run-1") -> WaitingTask:
        execution = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
            if messages:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
                token = json.loads(messages[0]["Body"])["token"]
                return WaitingTask(token, execution["executionArn"], sfn)
            time.sleep(0.02)
        raise AssertionError("the execution never handed out a task token")

    return start


class Recorder:
    """Forwards calls to a real (moto) client and remembers them, for what moto drops."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return call


@pytest.fixture
def sfn_recorder(aws: None) -> Recorder:
    return Recorder(aws_client("stepfunctions"))
