"""Keeps waiting analysis tasks alive, and recovers a completion notice that never arrived.

Runs on a schedule (every few minutes). For each stored task token it reads the Rekognition (or,
for speech, the Transcribe) job once: still running -> ``SendTaskHeartbeat``; already finished ->
resume the task exactly as the SNS notice or the EventBridge event would (a lost or undeliverable
one would otherwise leave the task waiting until its timeout). A task whose heartbeats stop (the
sweep itself broken, or the job gone) fails with ``States.HeartbeatTimeout`` long before the
overall analysis timeout. This costs Lambda time, not state transitions: the workflow still waits
without polling.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.analysis.jobs import TaskCallbacks, complete, outcome_if_finished, send_heartbeat
from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Powertools
from lambdas.shared.rekognition import (
    RekognitionError,
    RekognitionRequestRejected,
    RekognitionVideo,
)
from lambdas.shared.settings import CatalogSettings
from lambdas.shared.transcribe import (
    SPEECH,
    Transcribe,
    TranscribeError,
    TranscribeRequestRejected,
    TranscriptionJob,
    complete_speech,
)

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


def _speech(
    catalog: Catalog,
    transcribe: Transcribe,
    callbacks: TaskCallbacks,
    item: dict[str, Any],
    s3: Any,
) -> str:
    """A task waiting on a Transcribe job: its event is delivered best effort."""
    name = str(item["job_id"])
    try:
        job = transcribe.job(name)
    except TranscribeRequestRejected as err:
        # The job is gone (deleted, or never started): the task would otherwise wait until its
        # heartbeat timeout; it resumes with the reason and the asset still lands.
        logger.warning("job unknown to Transcribe", extra={"job": name, "error": str(err)})
        gone = TranscriptionJob(name, "FAILED", f"Transcribe has no job {name}: {err}")
        return "recovered_speech_" + complete_speech(catalog, callbacks.client, name, gone, s3)
    except TranscribeError as err:
        logger.warning("job status unavailable", extra={"job": name, "error": str(err)})
        job = None
    if job is not None and job.finished:
        # Also the ordinary case of a job that ended moments ago, its event not yet delivered.
        return "recovered_speech_" + complete_speech(catalog, callbacks.client, name, job, s3)
    if send_heartbeat(callbacks, str(item["task_token"])):
        return "alive"
    # The asset's run is over but the job still runs (Transcribe has no cancel): the token stays
    # (its TTL bounds it) so whoever sees the job end removes what it wrote.
    return "task_closed_job_running"


def sweep(
    catalog: Catalog,
    rekognition: RekognitionVideo,
    callbacks: TaskCallbacks,
    transcribe: Transcribe | None = None,
    s3: Any = None,
) -> dict[str, int]:
    """One pass over every waiting task; returns how many were kept alive, resumed, dropped.

    Resumed Rekognition tasks count as ``recovered_<outcome>``, Transcribe ones as
    ``recovered_speech_<outcome>``.
    """
    counts: Counter[str] = Counter()
    for item in catalog.pending_tokens():
        tag = str(item["pk"]).removeprefix("TOKEN#")
        job_id, feature = item.get("job_id"), str(item.get("feature", ""))
        if not job_id:
            # The start handler stores the token before it starts the job: still starting.
            counts["starting"] += 1
            continue
        if feature == SPEECH:
            counts[_speech(catalog, transcribe or Transcribe(), callbacks, item, s3)] += 1
            continue
        try:
            status, message = rekognition.job_status(feature, str(job_id))
        except RekognitionRequestRejected as err:
            logger.warning("job unknown to Rekognition", extra={"job_tag": tag, "error": str(err)})
            counts["unknown_job"] += 1
            continue
        except RekognitionError as err:
            # Throttled or Rekognition down: keep the task alive and look again next time.
            logger.warning("job status unavailable", extra={"job_tag": tag, "error": str(err)})
            status, message = "IN_PROGRESS", ""
        outcome = outcome_if_finished(feature, str(job_id), status, message)
        if outcome is not None:
            counts["recovered_" + complete(catalog, callbacks, tag, outcome)] += 1
        elif send_heartbeat(callbacks, str(item["task_token"])):
            counts["alive"] += 1
        else:
            catalog.delete_token(tag)
            counts["task_closed"] += 1
    return dict(counts)


@functools.cache
def _dependencies() -> tuple[Catalog, RekognitionVideo, TaskCallbacks, Transcribe, Any]:
    catalog = Catalog(CatalogSettings.from_env().catalog_table)
    return catalog, RekognitionVideo(), TaskCallbacks(), Transcribe(), boto3.client("s3")


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    counts = sweep(*_dependencies())
    for name, value in counts.items():
        if name.startswith("recovered_"):
            metrics.add_metric(name="AnalysisNoticesRecovered", unit=MetricUnit.Count, value=value)
    metrics.add_metric(
        name="AnalysisTasksAlive", unit=MetricUnit.Count, value=counts.get("alive", 0)
    )
    logger.info("heartbeat sweep", extra=counts)
    return counts
