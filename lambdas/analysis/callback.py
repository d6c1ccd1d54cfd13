"""Rekognition's SNS completion notice resumes the task waiting on that job.

Subscribed to the topic named in every Start* call's ``NotificationChannel``. The notice
(``{"JobId", "Status", "API", "JobTag", "Timestamp", "Video": {...}}``) carries the ``JobTag``
that keys the stored task token. ``SUCCEEDED`` resumes the task with
``{"feature", "job_id", "status"}``; ``FAILED``/``ERROR`` fails it with ``RekognitionJobFailed``.

SNS delivers at least once, and notices for other jobs on the same topic are possible, so
anything this handler cannot use (unknown tag, a token already used, a closed task, a malformed
message) is logged and ignored; only a failure to reach DynamoDB or Step Functions raises, so that
Lambda's asynchronous retry tries the notice again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.analysis.jobs import JobOutcome, TaskCallbacks, complete
from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Powertools
from lambdas.shared.settings import CatalogSettings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


def parse_notice(message: str) -> tuple[str, JobOutcome] | None:
    """``(job_tag, outcome)`` from one notice, or None when it is not a usable completion."""
    try:
        body = json.loads(message)
    except (TypeError, ValueError):
        return None
    if not isinstance(body, Mapping):
        return None
    tag, job_id, status = body.get("JobTag"), body.get("JobId"), body.get("Status")
    if not (
        isinstance(tag, str)
        and tag
        and isinstance(job_id, str)
        and job_id
        and isinstance(status, str)
        and status
    ):
        return None
    detail = body.get("Message") or body.get("StatusMessage") or ""
    return tag, JobOutcome(job_id, status, str(body.get("API") or "Rekognition"), str(detail))


def handle_records(
    records: list[Mapping[str, Any]], *, catalog: Catalog, callbacks: TaskCallbacks
) -> dict[str, int]:
    """Resume one waiting task per usable notice; counts what happened to each record."""
    counts: dict[str, int] = {}
    for record in records:
        message = (record.get("Sns") or {}).get("Message", "")
        parsed = parse_notice(message)
        if parsed is None:
            logger.warning(
                "not a Rekognition completion notice; ignored",
                extra={"notice": str(message)[:500]},
            )
            result = "malformed"
        else:
            tag, outcome = parsed
            result = complete(catalog, callbacks, tag, outcome)
            logger.info(
                "completion notice handled",
                extra={
                    "job_tag": tag,
                    "job_id": outcome.job_id,
                    "status": outcome.status,
                    "api": outcome.api,
                    "result": result,
                },
            )
            if result == "failed":
                metrics.add_metric(name="AnalysisJobsFailed", unit=MetricUnit.Count, value=1)
            elif result == "succeeded":
                metrics.add_metric(name="AnalysisJobsSucceeded", unit=MetricUnit.Count, value=1)
        counts[result] = counts.get(result, 0) + 1
    return counts


@functools.cache
def _dependencies() -> tuple[Catalog, TaskCallbacks]:
    return Catalog(CatalogSettings.from_env().catalog_table), TaskCallbacks()


@tools.entry
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, int]:
    catalog, callbacks = _dependencies()
    return handle_records(list(event.get("Records") or []), catalog=catalog, callbacks=callbacks)
