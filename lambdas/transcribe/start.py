"""Speech: start one Amazon Transcribe job on the clip's MP4 proxy and leave its task waiting.

Invoked by a Lambda task with ``waitForTaskToken``. As for Rekognition, the token is stored in
the catalog *before* the job starts (keyed by the job's name), so the completion event can never
arrive before its token. The name is derived from the deployment, the asset and the run, so a
retried start finds Transcribe's ``ConflictException`` and re-attaches to the job it started
rather than paying for a second one; a job that has already ended (a re-driven execution) is
resumed here, since Transcribe sends its event once.

What is transcribed is what Rekognition reads (``$.plan.analysis.video``): the source itself
when it is H.264 in MP4/MOV (so speech starts with the other analyses, before the transcode
ends), else the MP4 proxy with AAC audio. No MediaFormat is sent: Transcribe detects it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput, optional_run, require_location, require_strings
from lambdas.shared.keys import AssetKeys
from lambdas.shared.transcribe import (
    SPEECH,
    Transcribe,
    TranscribeLimitExceeded,
    complete_speech,
    job_name,
)
from lambdas.transcribe.settings import StartSettings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


@dataclass(frozen=True)
class StartRequest:
    task_token: str
    asset_id: str
    raw_key: str
    bucket: str
    key: str
    run: str = ""

    @classmethod
    def parse(cls, event: object) -> StartRequest:
        if not isinstance(event, Mapping):
            raise InvalidInput("transcribe start payload must be an object")
        require_strings(event, ("task_token", "asset_id", "raw_key"))
        bucket, key = require_location(event, "media")
        return cls(
            event["task_token"],
            event["asset_id"],
            event["raw_key"],
            bucket,
            key,
            optional_run(event),
        )


def start_transcription(
    request: StartRequest,
    *,
    settings: StartSettings,
    catalog: Catalog,
    transcribe: Transcribe,
    sfn: Any,
) -> dict[str, Any]:
    """Store the token, start (or re-attach to) the job; returns what it did."""
    name = job_name(settings.deployment, request.asset_id, request.run)
    catalog.put_token(name, request.task_token, asset_id=request.asset_id, feature=SPEECH)
    try:
        job = transcribe.start(
            name,
            media_uri=f"s3://{request.bucket}/{request.key}",
            output_bucket=settings.processed_bucket,
            output_prefix=AssetKeys(request.raw_key).speech_prefix,
            languages=settings.languages,
            tags={"asset_id": request.asset_id[:256], "deployment": settings.deployment},
        )
    except Exception:
        # A retry stores its own token; a final failure must not leave a dangling one behind.
        catalog.delete_token(name)
        raise
    catalog.set_token_job(name, name)
    state = "waiting"
    if job.finished:
        state = "resumed_" + complete_speech(catalog, sfn, name, job)
    return {"job_name": name, "status": job.status, "state": state}


@functools.cache
def _dependencies() -> tuple[StartSettings, Catalog, Transcribe, Any]:
    settings = StartSettings.from_env()
    return settings, Catalog(settings.catalog_table), Transcribe(), boto3.client("stepfunctions")


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StartRequest.parse(event)
    settings, catalog, transcribe, sfn = _dependencies()
    try:
        result = start_transcription(
            request, settings=settings, catalog=catalog, transcribe=transcribe, sfn=sfn
        )
    except TranscribeLimitExceeded as err:
        logger.warning(
            "Transcribe quota reached; the state machine retries",
            extra={"asset_id": request.asset_id, "error": str(err)},
        )
        metrics.add_metric(name="TranscriptionStartsThrottled", unit=MetricUnit.Count, value=1)
        raise
    logger.info("transcription started", extra={"asset_id": request.asset_id, **result})
    metrics.add_metadata(key="asset_id", value=request.asset_id)
    metrics.add_metric(name="TranscriptionJobsStarted", unit=MetricUnit.Count, value=1)
    return result
