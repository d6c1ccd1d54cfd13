"""Speech: resume the waiting task when Transcribe reports that its job ended.

Triggered by the EventBridge rule on "Transcribe Job State Change" (COMPLETED or FAILED) for
this deployment's jobs. The event names the job only, so the job is read once
(GetTranscriptionJob: the language, its score and the files' locations), then the task waiting
on it is resumed. Transcribe delivers these events best effort; one that never comes is
recovered by the analysis unit's heartbeat sweep, which reads the same job the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput
from lambdas.shared.settings import CatalogSettings
from lambdas.shared.transcribe import Transcribe, complete_speech

tools = Powertools()
logger, metrics = tools.logger, tools.metrics
DETAIL_TYPE = "Transcribe Job State Change"


def job_of(event: object) -> str:
    """The job an EventBridge event is about; ``InvalidInput`` for anything else."""
    if not isinstance(event, Mapping) or event.get("detail-type") != DETAIL_TYPE:
        raise InvalidInput(f"not a {DETAIL_TYPE!r} event")
    detail = event.get("detail")
    name = detail.get("TranscriptionJobName") if isinstance(detail, Mapping) else None
    if not isinstance(name, str) or not name:
        raise InvalidInput("detail.TranscriptionJobName: missing")
    return name


def on_event(event: object, *, catalog: Catalog, transcribe: Transcribe, sfn: Any, s3: Any) -> str:
    name = job_of(event)
    if catalog.get_token(name) is None:
        # Already resumed (a duplicate event, or the sweep got there first): nothing to read.
        return "unknown_job"
    job = transcribe.job(name)
    if not job.finished:
        logger.warning("event for a job still running; the sweep keeps it", extra={"job": name})
        return "still_running"
    return complete_speech(catalog, sfn, name, job, s3)


@functools.cache
def _dependencies() -> tuple[Catalog, Transcribe, Any, Any]:
    settings = CatalogSettings.from_env()
    return (
        Catalog(settings.catalog_table),
        Transcribe(),
        boto3.client("stepfunctions"),
        boto3.client("s3"),
    )


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    catalog, transcribe, sfn, s3 = _dependencies()
    state = on_event(event, catalog=catalog, transcribe=transcribe, sfn=sfn, s3=s3)
    logger.info("transcription event handled", extra={"job": job_of(event), "state": state})
    if state == "completed":
        metrics.add_metric(name="TranscriptionJobsSucceeded", unit=MetricUnit.Count, value=1)
    elif state == "failed":
        metrics.add_metric(name="TranscriptionJobsFailed", unit=MetricUnit.Count, value=1)
    return {"state": state}
