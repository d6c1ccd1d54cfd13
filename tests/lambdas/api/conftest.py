"""Fixtures for the jobs API: moto (S3, DynamoDB, SSM), real-shaped API Gateway v2 events, callers.

``Api.call`` invokes the Lambda entry point (``lambdas.api.handler.handler``) with an HTTP API
payload 2.0 event exactly as API Gateway builds it for an IAM- or JWT-authorized route, and
answers the status and parsed JSON body.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from lambdas.api import handler as api_handler  # imported at collection, as Lambda imports it
from lambdas.shared.catalog import create_table
from localworld.runtime import clear_handler_caches
from tests.lambdas.conftest import SESSION, client

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "catalog-api-test"
RAW_BUCKET = "media-raw-api-test"
PROCESSED_BUCKET = "media-processed-api-test"
PROJECTS_BUCKET = "media-projects-api-test"
CONFIG_PARAMETER = "/media-pipeline/test/campaigns"
REPROCESS_STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Reprocess"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ops/MediaAdmin"
ADMIN_GROUP = "media-admins"
MIB = 1024 * 1024
PART_SIZE = 5 * MIB
THRESHOLD = 6 * MIB


@dataclass(frozen=True)
class Caller:
    """Who signs (IAM) or carries a token (JWT); ``None`` authorizer: an unsigned request."""

    authorizer: dict[str, Any] | None

    @property
    def owner(self) -> str:
        assert self.authorizer is not None
        if "iam" in self.authorizer:
            return self.authorizer["iam"]["userArn"]
        return self.authorizer["jwt"]["claims"]["sub"]


def iam_caller(arn: str, user_id: str = "AIDAEXAMPLEUSERID") -> Caller:
    return Caller(
        {
            "iam": {
                "accessKey": "ASIAEXAMPLEKEY12345",
                "accountId": ACCOUNT,
                "callerId": user_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": arn,
                "userId": user_id,
            }
        }
    )


def jwt_caller(sub: str, groups: str | None = None) -> Caller:
    claims = {
        "sub": sub,
        "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Example",
        "token_use": "access",
        "client_id": "example-client",
        "username": sub,
        "exp": "1900000000",
        "iat": "1800000000",
    }
    if groups is not None:
        claims["cognito:groups"] = groups  # API Gateway passes list claims as "[a b]"
    return Caller({"jwt": {"claims": claims, "scopes": None}})


ALICE = iam_caller(f"arn:aws:iam::{ACCOUNT}:user/alice", "AIDAALICE")
BOB = iam_caller(f"arn:aws:iam::{ACCOUNT}:user/bob", "AIDABOB")
ADMIN = iam_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/MediaAdmin/ops-session", "AROAADMIN:ops")
CAROL = jwt_caller("7f1c2d3e-0000-4000-8000-00000000c4r0", "[viewers]")
JWT_ADMIN = jwt_caller("7f1c2d3e-0000-4000-8000-0000000ad312", f"[viewers {ADMIN_GROUP}]")
UNSIGNED = Caller(None)

_JOB_ID = re.compile(r"/[0-9a-f]{32}(?=/|$)")
_ASSET_ID = re.compile(r"^/assets/[^/]+")


def api_event(
    method: str,
    path: str,
    *,
    caller: Caller,
    body: Any = None,
    raw_body: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event for one request."""
    route = _ASSET_ID.sub("/assets/{asset_id}", _JOB_ID.sub("/{job_id}", path))
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {
            "accept": "application/json",
            "content-length": str(len(text.encode()) if text else 0),
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "jobs-api-test/1.0",
            "x-amzn-trace-id": "Root=1-65a1b2c3-0123456789abcdef01234567",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **({"content-type": "application/json"} if text is not None else {}),
            **(headers or {}),
        },
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "jobs-api-test/1.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "02/Dec/2026:06:00:00 +0000",
            "timeEpoch": 1796191200000,
        },
        "isBase64Encoded": False,
    }
    if caller.authorizer is not None:
        event["requestContext"]["authorizer"] = caller.authorizer
    if query:
        event["queryStringParameters"] = dict(query)
    params = dict(zip(["job_id"], [m.group(0)[1:] for m in _JOB_ID.finditer(path)], strict=False))
    if params:
        event["pathParameters"] = params
    if text is not None:
        event["body"] = text
    return event


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return self.body["message"]


class Api:
    """Calls the Lambda entry point as API Gateway does."""

    def __init__(self, lambda_context: Any) -> None:
        self.module = api_handler
        self.context = lambda_context

    def call(self, method: str, path: str, *, caller: Caller = ALICE, **kwargs: Any) -> Answer:
        response = self.module.handler(
            api_event(method, path, caller=caller, **kwargs), self.context
        )
        assert response.get("isBase64Encoded") is False
        body = json.loads(response["body"]) if response.get("body") else None
        return Answer(response["statusCode"], body, response.get("headers") or {})

    def create(self, caller: Caller = ALICE, **fields: Any) -> Answer:
        return self.call("POST", "/jobs", caller=caller, body=job_body(**fields))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def job_body(**fields: Any) -> dict[str, Any]:
    """A valid ``POST /jobs`` body for ``CLIP``, with ``fields`` replaced (None: left out)."""
    body: dict[str, Any] = {
        "filename": "Harbour at dawn.mp4",
        "content_type": "video/mp4",
        "size_bytes": len(CLIP),
        "sha256": sha256_hex(CLIP),
        "campaign": "travel",
        "source": "drone-7",
        "captured_at": "2026-06-01T05:30:00+02:00",
        "metadata": {"crew": "north", "take": "3"},
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class FakeContext:
    function_name: str = "jobs-api-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:jobs-api-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(autouse=True)
def api_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the jobs API's construct gives its function (small multipart sizes)."""
    env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CATALOG_TABLE": TABLE,
        "RAW_BUCKET": RAW_BUCKET,
        "PROCESSED_BUCKET": PROCESSED_BUCKET,
        "PROJECTS_BUCKET": PROJECTS_BUCKET,
        "CONFIG_PARAMETER": CONFIG_PARAMETER,
        "REPROCESS_STATE_MACHINE_ARN": REPROCESS_STATE_MACHINE_ARN,
        "MULTIPART_THRESHOLD_BYTES": str(THRESHOLD),
        "PART_SIZE_BYTES": str(PART_SIZE),
        "MAX_UPLOAD_BYTES": str(64 * MIB),
        "ADMIN_PRINCIPALS": json.dumps([ADMIN_ROLE]),
        "ADMIN_GROUP": ADMIN_GROUP,
        "POWERTOOLS_SERVICE_NAME": "media-pipeline",
        "POWERTOOLS_METRICS_NAMESPACE": "MediaPipelineTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("URL_EXPIRY_S", "MAX_BODY_BYTES", "ALLOWED_CONTENT_TYPES", "DEFAULT_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    clear_handler_caches()
    yield
    clear_handler_caches()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto for S3, DynamoDB and SSM with the catalog table, both buckets and the campaigns.

    The shared warm session serves the handler's ``boto3.client`` calls too (moto drops boto3's
    default session on start; a new one would parse botocore's data again).
    """
    with mock_aws():
        boto3.DEFAULT_SESSION = SESSION
        create_table(client("dynamodb"), TABLE)
        client("s3").create_bucket(Bucket=RAW_BUCKET)
        client("s3").create_bucket(Bucket=PROCESSED_BUCKET)
        client("s3").create_bucket(Bucket=PROJECTS_BUCKET)
        client("s3").put_bucket_versioning(
            Bucket=PROJECTS_BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        client("ssm").put_parameter(
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
        yield


@pytest.fixture
def api(aws: None) -> Api:
    return Api(FakeContext())


@pytest.fixture
def s3(aws: None) -> Any:
    return client("s3")


@pytest.fixture
def table(aws: None) -> Any:
    return SESSION.resource("dynamodb").Table(TABLE)


def job_items(table: Any) -> list[dict[str, Any]]:
    return [item for item in table.scan()["Items"] if str(item["pk"]).startswith("JOB#")]


def nothing_created(table: Any, s3: Any) -> bool:
    """No job item, no object and no open multipart upload anywhere."""
    return (
        not job_items(table)
        and not s3.list_objects_v2(Bucket=RAW_BUCKET).get("Contents")
        and not s3.list_multipart_uploads(Bucket=RAW_BUCKET).get("Uploads")
    )
