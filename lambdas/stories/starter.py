"""Starts one story render per manifest version, however often EventBridge delivers the event.

The manifest is the last file of a project to be uploaded (``projects/<id>/manifest.json``);
its "Object Created" event names the bucket, key and version, from which the execution name is
derived (as the upload trigger does), so Step Functions refuses a second run of the same
version and a repeated event starts nothing. A new manifest version is a new render.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput
from lambdas.shared.executions import start_once
from lambdas.shared.story_manifest import ManifestError, project_of_manifest_key
from lambdas.stories.settings import StarterSettings

tools = Powertools()
logger = tools.logger


def execution_name(project_id: str, bucket: str, key: str, version: str) -> str:
    """Deterministic and valid (<= 80 of [A-Za-z0-9-_]); starts with the project to be found."""
    digest = hashlib.sha256(
        f"{bucket}\x1f{key}\x1f{version}".encode(), usedforsecurity=False
    ).hexdigest()[:24]
    return f"story-{project_id[:40]}-{digest}"


def parse_event(event: Mapping[str, Any], projects_bucket: str) -> dict[str, Any]:
    detail = event.get("detail")
    if event.get("source") != "aws.s3" or not isinstance(detail, Mapping):
        raise InvalidInput("expected an S3 'Object Created' event from EventBridge")
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    if bucket != projects_bucket or not isinstance(obj.get("key"), str):
        raise InvalidInput(f"expected an object of the projects bucket {projects_bucket}")
    key = unquote_plus(obj["key"])
    project_id = project_of_manifest_key(key)
    version_id = obj.get("version-id")
    version = str(version_id or obj.get("sequencer") or obj.get("etag") or "")
    manifest: dict[str, Any] = {"bucket": bucket, "key": key}
    if isinstance(version_id, str) and version_id:
        manifest["version_id"] = version_id
    return {
        "name": execution_name(project_id, bucket, key, version),
        "input": {"project_id": project_id, "manifest": manifest},
    }


@functools.cache
def _sfn() -> Any:
    return boto3.client("stepfunctions")


_dependencies = Dependencies(StarterSettings, lambda _settings: _sfn())


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, client = _dependencies()
    try:
        request = parse_event(event, settings.projects_bucket)
    except ManifestError as err:
        # A file named manifest.json elsewhere in the bucket (the rule's wildcard matches
        # nested folders too): not a project's manifest, nothing to retry or alarm on.
        logger.warning("not a project manifest", extra={"reason": str(err)})
        return {"started": False, "refused": str(err)}
    return start_once(request, state_machine_arn=settings.state_machine_arn, client=client)
