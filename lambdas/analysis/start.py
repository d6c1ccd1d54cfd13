"""Step 3b: start one Rekognition Video analysis and leave its task waiting for the callback.

Invoked by a Lambda task with ``waitForTaskToken``. The token is stored in the catalog *before*
the job starts, so a completion notice can never arrive before its token. The job is named from
the asset id and feature (``JobTag`` and ``ClientRequestToken``), so a retried start resumes the
same job instead of starting (and paying for) a second one.

A start can also return a job that finished long ago (an execution re-driven after the asset's
analysis already ran): Rekognition does not notify twice, so the handler checks the job once and
resumes the task itself when the job is already over.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.analysis.jobs import (
    JobOutcome,
    TaskCallbacks,
    client_request_token,
    complete,
    job_tag,
    outcome_if_finished,
)
from lambdas.analysis.settings import StartSettings
from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import (
    InvalidInput,
    optional_run,
    require_location,
    require_strings,
    shown,
)
from lambdas.shared.rekognition import (
    FEATURES,
    RekognitionError,
    RekognitionLimitExceeded,
    RekognitionVideo,
)

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


@dataclass(frozen=True)
class StartRequest:
    task_token: str
    feature: str
    asset_id: str
    bucket: str
    key: str
    # A reprocess names its run, so its jobs are new ones (not the first analysis re-attached).
    run: str = ""

    @classmethod
    def parse(cls, event: object) -> StartRequest:
        if not isinstance(event, Mapping):
            raise InvalidInput("analysis start payload must be an object")
        require_strings(event, ("task_token", "feature", "asset_id"))
        if event["feature"] not in FEATURES:
            raise InvalidInput(f"feature: {shown(event['feature'])} is not one of {list(FEATURES)}")
        bucket, key = require_location(event, "video")
        return cls(
            event["task_token"],
            event["feature"],
            event["asset_id"],
            bucket,
            key,
            optional_run(event),
        )


def _finished_outcome(
    rekognition: RekognitionVideo, feature: str, job_id: str
) -> JobOutcome | None:
    """The outcome of a job that is already over, or None while it runs (or cannot be read)."""
    try:
        status, message = rekognition.job_status(feature, job_id)
    except RekognitionError as err:
        # Best effort: the SNS notice still resumes the task for a job that is running; only a
        # job that finished before this start (a re-driven execution) needs this check.
        logger.warning(
            "could not check whether the job already finished; a job that ended before this "
            "start will not notify again (the function needs rekognition:Get* for this check)",
            extra={"job_id": job_id, "feature": feature, "error": str(err)},
        )
        return None
    return outcome_if_finished(feature, job_id, status, message)


def start_analysis(
    request: StartRequest,
    *,
    settings: StartSettings,
    catalog: Catalog,
    rekognition: RekognitionVideo,
    callbacks: TaskCallbacks,
) -> dict[str, Any]:
    """Store the token, start (or re-attach to) the job, record its id; returns what it did."""
    tag = job_tag(request.asset_id, request.feature, request.run)
    catalog.put_token(tag, request.task_token, asset_id=request.asset_id, feature=request.feature)
    try:
        job_id = rekognition.start(
            request.feature,
            bucket=request.bucket,
            key=request.key,
            client_request_token=client_request_token(
                request.asset_id, request.feature, request.run
            ),
            job_tag=tag,
            topic_arn=settings.rekognition_topic_arn,
            role_arn=settings.rekognition_role_arn,
            min_confidence=settings.min_confidence(request.feature),
        )
    except Exception:
        # A retry stores its own token; a final failure must not leave a dangling one behind.
        catalog.delete_token(tag)
        raise
    catalog.set_token_job(tag, job_id)
    state = "waiting"
    outcome = _finished_outcome(rekognition, request.feature, job_id)
    if outcome is not None:
        state = "resumed_" + complete(catalog, callbacks, tag, outcome)
    return {"job_tag": tag, "job_id": job_id, "state": state}


@functools.cache
def _dependencies() -> tuple[StartSettings, Catalog, RekognitionVideo, TaskCallbacks]:
    settings = StartSettings.from_env()
    return settings, Catalog(settings.catalog_table), RekognitionVideo(), TaskCallbacks()


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StartRequest.parse(event)
    settings, catalog, rekognition, callbacks = _dependencies()
    try:
        result = start_analysis(
            request,
            settings=settings,
            catalog=catalog,
            rekognition=rekognition,
            callbacks=callbacks,
        )
    except RekognitionLimitExceeded as err:
        logger.warning(
            "Rekognition quota reached; the state machine retries",
            extra={"asset_id": request.asset_id, "feature": request.feature, "error": str(err)},
        )
        metrics.add_metric(name="AnalysisStartsThrottled", unit=MetricUnit.Count, value=1)
        raise
    logger.info(
        "analysis started",
        extra={"asset_id": request.asset_id, "feature": request.feature, **result},
    )
    metrics.add_metadata(key="asset_id", value=request.asset_id)
    metrics.add_metric(name="AnalysisJobsStarted", unit=MetricUnit.Count, value=1)
    return result
