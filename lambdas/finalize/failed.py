"""Step 3d: record a failed asset with its root cause, so the rest of the batch goes on.

The Map iteration's Catch hands over ``{"asset": ..., "error": {"Error", "Cause"}}``. ``Cause``
is whatever failed: a Lambda error (JSON with ``errorType``/``errorMessage``), a MediaConvert
``.sync`` job (JSON describing the job, with its ``errorCode``/``errorMessage``), the Rekognition
callback's plain-text cause, or nothing at all for a timeout. People read the reason on the
dashboard and in the run summary, so it is reduced to one line that names what broke.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.catalog import MAX_REASON_LEN, Catalog, CatalogError

logger = Logger()
tracer = Tracer()
metrics = Metrics()

NO_CAUSE = {
    "States.Timeout": "the step did not finish within its timeout",
    "States.HeartbeatTimeout": "the step stopped sending heartbeats",
    "States.TaskFailed": "the task failed without a cause",
}
_SPACE = re.compile(r"\s+")


def _first(mapping: Mapping[str, Any], *names: str) -> object:
    return next((mapping[n] for n in names if mapping.get(n) not in (None, "")), None)


def _job_reason(job: Mapping[str, Any]) -> str | None:
    """MediaConvert's job description, in either the API's or the event's casing."""
    message = _first(job, "ErrorMessage", "errorMessage")
    if message is None:
        return None
    job_id = _first(job, "Id", "id", "jobId", "JobId")
    code = _first(job, "ErrorCode", "errorCode")
    where = f"MediaConvert job {job_id}" if job_id else "MediaConvert job"
    return f"{where} failed" + (f" (error {code})" if code is not None else "") + f": {message}"


def root_cause(error: object) -> str:
    """One readable line saying what failed, from a Step Functions ``{Error, Cause}``."""
    if not isinstance(error, Mapping):
        return "unknown error (no error details were passed on)"
    name = str(error.get("Error") or "UnknownError")
    cause = error.get("Cause")
    text = cause.strip() if isinstance(cause, str) else ""
    reason: str | None = None
    parsed: Any = None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if isinstance(parsed, Mapping):
        nested = _first(parsed, "Job", "job", "detail")
        job = nested if isinstance(nested, Mapping) else parsed
        if "ErrorCode" in job or "errorCode" in job:
            # A MediaConvert job description (its camelCase wire form also has errorMessage).
            reason = _job_reason(job)
        if reason is None and ("errorMessage" in parsed or "errorType" in parsed):
            # A Lambda function error; errorType is the exception class the handler raised.
            error_type = parsed.get("errorType") or name
            message = parsed.get("errorMessage") or "no message"
            reason = f"{error_type}: {message}"
        if reason is None:
            message = _first(parsed, "message", "Message", "cause", "Cause")
            reason = f"{name}: {message if message is not None else json.dumps(parsed)}"
    elif text:
        reason = f"{name}: {text}"
    else:
        reason = f"{name}: {NO_CAUSE.get(name, 'no cause was given')}"
    reason = _SPACE.sub(" ", reason).strip()
    if len(reason) > MAX_REASON_LEN:
        reason = reason[: MAX_REASON_LEN - 1] + "…"
    return reason


def mark_failed(event: object, *, catalog: Catalog) -> dict[str, Any]:
    """Record the failure; never raises for bad input, so one asset cannot stop the batch."""
    asset = event.get("asset") if isinstance(event, Mapping) else None
    error = event.get("error") if isinstance(event, Mapping) else None
    asset_id = asset.get("asset_id") if isinstance(asset, Mapping) else None
    reason = root_cause(error)
    if isinstance(asset_id, str) and asset_id:
        try:
            catalog.mark_failed(asset_id, reason)
        except CatalogError as err:
            # The asset never reached the catalog; the run summary still reports the failure.
            logger.error(
                "could not record the failure in the catalog",
                extra={"asset_id": asset_id, "error": str(err)},
            )
    else:
        logger.error(
            "failed asset has no asset_id; nothing recorded in the catalog",
            extra={"reason": reason},
        )
        asset_id = None
    return {"asset_id": asset_id, "status": "FAILED", "reason": reason}


@functools.cache
def _catalog() -> Catalog:
    return Catalog(os.environ["CATALOG_TABLE"])


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = mark_failed(event, catalog=_catalog())
    logger.warning("asset failed", extra=result)
    if result["asset_id"]:
        metrics.add_metadata(key="asset_id", value=result["asset_id"])
    metrics.add_metric(name="AssetsFailed", unit=MetricUnit.Count, value=1)
    return result
