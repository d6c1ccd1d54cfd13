"""Starts one execution per uploaded object, however often EventBridge delivers the event.

The execution name is derived from the object (bucket, key, version or sequencer), and Step
Functions refuses a second execution with the same name, so a repeated event starts nothing new.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput, shown
from lambdas.shared.executions import start_once
from lambdas.shared.keys import UPLOADS_PREFIX
from lambdas.trigger.settings import TriggerSettings

tools = Powertools()
logger = tools.logger


def execution_name(bucket: str, key: str, version: str) -> str:
    """Deterministic, valid (<= 80 chars of [A-Za-z0-9-_]) and readable enough to find."""
    digest = hashlib.sha256(
        f"{bucket}\x1f{key}\x1f{version}".encode(), usedforsecurity=False
    ).hexdigest()[:40]
    return f"upload-{digest}"


def parse_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Read the S3 "Object Created" EventBridge event; anything else is a clear error."""
    detail = event.get("detail")
    if event.get("source") != "aws.s3" or not isinstance(detail, Mapping):
        raise InvalidInput("expected an S3 'Object Created' event from EventBridge")
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    encoded = obj.get("key")
    if not isinstance(bucket, str) or not isinstance(encoded, str):
        raise InvalidInput("event detail is missing bucket.name or object.key")
    # S3 event keys are URL-encoded ("a b.mp4" arrives as "a+b.mp4"): decode once, here, so
    # everything after names the object exactly (a literal "a+b.mp4" arrives as "a%2Bb.mp4").
    key = unquote_plus(encoded)
    if not key.startswith(UPLOADS_PREFIX):
        raise InvalidInput(f"object {shown(key)} is not under {shown(UPLOADS_PREFIX)}")
    version_id = obj.get("version-id")
    version = str(version_id or obj.get("sequencer") or obj.get("etag") or "")
    upload: dict[str, Any] = {"bucket": bucket, "key": key}
    if isinstance(obj.get("size"), int):
        upload["size"] = obj["size"]
    if obj.get("etag"):
        upload["etag"] = str(obj["etag"])
    if isinstance(version_id, str) and version_id:
        # The run reads exactly this version: a later overwrite is another event, another run.
        upload["version_id"] = version_id
    return {"name": execution_name(bucket, key, version), "input": {"upload": upload}}


@functools.cache
def _sfn() -> Any:
    return boto3.client("stepfunctions")


# One execution per object: the name is derived from it (see execution_name).
start = start_once


@functools.cache
def _settings() -> TriggerSettings:
    return TriggerSettings.from_env()


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(event)
    return start(request, state_machine_arn=_settings().state_machine_arn, client=_sfn())
