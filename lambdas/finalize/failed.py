"""Step 3d: record a failed asset with its root cause, so the rest of the batch goes on.

The Map iteration's Catch hands over ``{"asset": ..., "error": {"Error", "Cause"}}``. ``Cause``
is whatever failed: a Lambda error (JSON with ``errorType``/``errorMessage``), a MediaConvert
``.sync`` job (JSON describing the job, with its ``errorCode``/``errorMessage``), the Rekognition
callback's plain-text cause, or nothing at all for a timeout. People read the reason on the
dashboard and in the run summary, so it is reduced to one line that names what broke.

Reading a Cause is ``lambdas.shared.causes.root_cause``, shared with the run summary.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared.catalog import Catalog, CatalogError
from lambdas.shared.causes import root_cause
from lambdas.shared.errors import bounded

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = ["handler", "mark_failed", "root_cause"]

MAX_NOT_RECORDED_LEN = 300
# Whatever stops the write: the catalog's own checks, DynamoDB refusing or throttling it, the
# network. None of them may stop the batch; the result says the failure is not in the catalog.
RECORD_ERRORS = (CatalogError, ClientError, BotoCoreError)


def mark_failed(event: object, *, catalog: Catalog) -> dict[str, Any]:
    """Record the failure; never raises, so one asset (or the catalog) cannot stop the batch.

    ``recorded`` says whether the catalog now shows the asset FAILED; when it does not,
    ``not_recorded`` says why, the run summary lists it and ``FailuresNotRecorded`` alarms.
    """
    asset = event.get("asset") if isinstance(event, Mapping) else None
    error = event.get("error") if isinstance(event, Mapping) else None
    asset_id = asset.get("asset_id") if isinstance(asset, Mapping) else None
    reason = root_cause(error)
    result: dict[str, Any] = {"asset_id": None, "status": "FAILED", "reason": reason}
    if not isinstance(asset_id, str) or not asset_id:
        logger.error(
            "failed asset has no asset_id; nothing recorded in the catalog",
            extra={"reason": reason},
        )
        return {**result, "recorded": False, "not_recorded": "the failure names no asset_id"}
    result["asset_id"] = asset_id
    try:
        catalog.mark_failed(asset_id, reason)
    except RECORD_ERRORS as err:
        why = err.args[0] if isinstance(err, CatalogError) and err.args else None
        why = str(why) if why else f"the catalog could not record it: {_describe(err)}"
        logger.exception(
            "could not record the failure in the catalog",
            extra={"asset_id": asset_id, "error": why},
        )
        return {**result, "recorded": False, "not_recorded": bounded(why, MAX_NOT_RECORDED_LEN)}
    return {**result, "recorded": True}


def _describe(err: BaseException) -> str:
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "?")
        message = err.response.get("Error", {}).get("Message", "")
        return f"DynamoDB answered {code}" + (f" ({message})" if message else "")
    return f"{type(err).__name__}: {err}"


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
    if not result["recorded"]:
        # The catalog (and the dashboard) does not show this failure: the alarm on this metric
        # tells an operator to look at the run summary, which lists it.
        metrics.add_metric(name="FailuresNotRecorded", unit=MetricUnit.Count, value=1)
    return result
