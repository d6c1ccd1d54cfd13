"""What the analysis handlers share: job names, reading a job's end, resuming a waiting task.

A Rekognition job is named twice, both derived from the asset id and the feature (and, for a
reprocess, its run: a new analysis of the same asset is a new job) so that a retry names the
same job:

* ``JobTag`` comes back in the SNS completion message and keys the stored task token
  (a task token is up to 1024 characters, far too long to be a tag itself);
* ``ClientRequestToken`` makes Rekognition return the existing JobId when a start is retried.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from lambdas.shared.catalog import Catalog
from lambdas.shared.rekognition import feature_api
from lambdas.shared.tasks import CLOSED_TASK_CODES
from lambdas.shared.tokens import fit

logger = Logger(child=True)

JOB_TAG_MAX = 256
CLIENT_TOKEN_MAX = 64
_JOB_TAG_UNSAFE = re.compile(r"[^a-zA-Z0-9_.\-:]")
_CLIENT_TOKEN_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
FAILED_ERROR = "RekognitionJobFailed"
FINISHED_STATUSES = frozenset({"SUCCEEDED", "FAILED"})


def _job_name(asset_id: str, feature: str, run: str) -> str:
    return f"{asset_id}-{feature}" + (f"-{run}" if run else "")


def job_tag(asset_id: str, feature: str, run: str = "") -> str:
    """Rekognition JobTag: ``[a-zA-Z0-9_.\\-:]``, at most 256 characters."""
    return fit(_job_name(asset_id, feature, run), _JOB_TAG_UNSAFE, JOB_TAG_MAX)


def client_request_token(asset_id: str, feature: str, run: str = "") -> str:
    """Rekognition ClientRequestToken: ``[a-zA-Z0-9-_]``, at most 64 characters."""
    return fit(_job_name(asset_id, feature, run), _CLIENT_TOKEN_UNSAFE, CLIENT_TOKEN_MAX)


@dataclass(frozen=True)
class JobOutcome:
    """How a Rekognition job ended, from its SNS notice or from a Get* call."""

    job_id: str
    status: str
    api: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def outcome_if_finished(feature: str, job_id: str, status: str, message: str) -> JobOutcome | None:
    """The outcome of a job read with Get*, or None while it still runs.

    The start handler and the heartbeat sweep both resume a task whose notice will never come;
    they must agree on which statuses are final.
    """
    if status not in FINISHED_STATUSES:
        return None
    return JobOutcome(job_id, status, feature_api(feature).api_name, message)


class TaskCallbacks:
    """Step Functions' callback API; a closed task is logged, never raised."""

    def __init__(self, client: BaseClient | None = None) -> None:
        self._client: Any = client or boto3.client("stepfunctions")

    @property
    def client(self) -> Any:
        return self._client

    def resume(self, token: str, feature: str, asset_id: str, outcome: JobOutcome) -> bool:
        """Send the outcome to the waiting task; False when the task was already closed."""
        try:
            if outcome.succeeded:
                self._client.send_task_success(
                    taskToken=token,
                    output=json.dumps(
                        {"feature": feature, "job_id": outcome.job_id, "status": outcome.status}
                    ),
                )
            else:
                cause = (
                    f"{outcome.api} job {outcome.job_id} for asset {asset_id} ({feature}) "
                    f"ended with status {outcome.status}"
                )
                if outcome.message:
                    cause += f": {outcome.message}"
                self._client.send_task_failure(
                    taskToken=token, error=FAILED_ERROR, cause=cause[:32768]
                )
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code not in CLOSED_TASK_CODES:
                raise
            logger.warning(
                "waiting task is already closed; outcome dropped",
                extra={
                    "asset_id": asset_id,
                    "feature": feature,
                    "job_id": outcome.job_id,
                    "code": code,
                },
            )
            return False
        return True


def send_heartbeat(callbacks: TaskCallbacks, token: str) -> bool:
    """Tell Step Functions a task is still waiting; False when the task is already closed."""
    try:
        callbacks.client.send_task_heartbeat(taskToken=token)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code", "") in CLOSED_TASK_CODES:
            return False
        raise
    return True


def complete(
    catalog: Catalog,
    callbacks: TaskCallbacks,
    tag: str,
    outcome: JobOutcome,
) -> str:
    """Resume the task waiting on job ``tag`` and forget its token; returns what happened.

    Idempotent: an unknown tag (never stored, or already used and deleted) and a notice for a job
    other than the one recorded on the token are ignored, so duplicate SNS deliveries are harmless.
    """
    item = catalog.get_token(tag)
    if item is None:
        logger.info(
            "no waiting task for job tag; ignored", extra={"job_tag": tag, "job_id": outcome.job_id}
        )
        return "unknown_tag"
    recorded = item.get("job_id")
    if recorded and recorded != outcome.job_id:
        logger.warning(
            "notice for a job other than the one the task waits on; ignored",
            extra={"job_tag": tag, "job_id": outcome.job_id, "waiting_on": recorded},
        )
        return "stale_job"
    resumed = callbacks.resume(
        str(item["task_token"]),
        str(item.get("feature", "")),
        str(item.get("asset_id", "")),
        outcome,
    )
    catalog.delete_token(tag)
    if not resumed:
        return "task_closed"
    return "succeeded" if outcome.succeeded else "failed"
