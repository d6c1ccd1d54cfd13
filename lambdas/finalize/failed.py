"""Step 3d: record a failed asset with its root cause, so the rest of the batch goes on.

The Map iteration's Catch hands over ``{"asset": ..., "error": {"Error", "Cause"}}``. ``Cause``
is whatever failed: a Lambda error (JSON with ``errorType``/``errorMessage``), a MediaConvert
``.sync`` job (JSON describing the job, with its ``errorCode``/``errorMessage``), the Rekognition
callback's plain-text cause, or nothing at all for a timeout. People read the reason on the
dashboard and in the run summary, so it is reduced to one line that names what broke.

Reading a Cause is ``lambdas.shared.causes.root_cause``, shared with the run summary.

Then it removes what the asset left in the processed zone (its renditions folder and any
labels.json; ``cleanup.py`` says why it deletes and what it keeps). Both halves are best effort
and independent: an S3 outage does not stop the failure being recorded, nor the other way round.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.finalize.cleanup import CLIENT_CONFIG, Cleanup, RenditionStore, remove_renditions
from lambdas.finalize.settings import MarkFailedSettings
from lambdas.shared.catalog import Catalog, CatalogError
from lambdas.shared.causes import root_cause
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import bounded
from lambdas.shared.slo import outcome_of_failure, publish_outcome

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

__all__ = ["handler", "mark_failed", "root_cause"]

MAX_NOT_RECORDED_LEN = 300
# Whatever stops the write: the catalog's own checks, DynamoDB refusing or throttling it, the
# network. None of them may stop the batch; the result says the failure is not in the catalog.
RECORD_ERRORS = (CatalogError, ClientError, BotoCoreError)


def mark_failed(
    event: object,
    *,
    catalog: Catalog,
    settings: MarkFailedSettings,
    store: RenditionStore,
    time_left_s: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Record the failure and clean up; never raises, so one asset (or the catalog, or S3)
    cannot stop the batch.

    ``recorded`` says whether the catalog now shows the asset FAILED; when it does not,
    ``not_recorded`` says why, the run summary lists it and ``FailuresNotRecorded`` alarms.
    ``renditions`` says how many of its objects were removed or tagged for expiry, and, when
    some could be neither, where they are (``left``) and why (``not_removed``).
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
    recorded = _record(catalog, asset_id, reason)
    result.update(recorded)
    cleanup = remove_renditions(
        asset if isinstance(asset, Mapping) else {},
        store=store,
        raw_bucket=settings.raw_bucket,
        processed_bucket=settings.processed_bucket,
        time_left_s=time_left_s,
    )
    result["renditions"] = cleanup.to_dict()
    if cleanup.left:
        logger.error(
            "renditions of a failed asset are left in the processed zone",
            extra={"asset_id": asset_id, **result["renditions"]},
        )
        if recorded["recorded"]:
            _record_left(catalog, asset_id, cleanup)
    return result


def _record(catalog: Catalog, asset_id: str, reason: str) -> dict[str, Any]:
    try:
        catalog.mark_failed(asset_id, reason)
    except RECORD_ERRORS as err:
        why = err.args[0] if isinstance(err, CatalogError) and err.args else None
        why = str(why) if why else f"the catalog could not record it: {_describe(err)}"
        logger.exception(
            "could not record the failure in the catalog",
            extra={"asset_id": asset_id, "error": why},
        )
        return {"recorded": False, "not_recorded": bounded(why, MAX_NOT_RECORDED_LEN)}
    return {"recorded": True}


def _record_left(catalog: Catalog, asset_id: str, cleanup: Cleanup) -> None:
    """Name the leftovers on the asset's record, where an operator looks for the failure."""
    try:
        catalog.set_status(
            asset_id,
            "FAILED",
            attributes={
                "renditions_left": list(cleanup.left),
                "renditions_not_removed": cleanup.not_removed or "unknown",
            },
        )
    except RECORD_ERRORS:
        # The step's result, the log line above and the metric still say it.
        logger.exception("could not record the leftovers in the catalog", extra={"id": asset_id})


def _describe(err: BaseException) -> str:
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "?")
        message = err.response.get("Error", {}).get("Message", "")
        return f"DynamoDB answered {code}" + (f" ({message})" if message else "")
    return f"{type(err).__name__}: {err}"


@functools.cache
def _settings() -> MarkFailedSettings:
    return MarkFailedSettings.from_env()


@functools.cache
def _catalog() -> Catalog:
    return Catalog(_settings().catalog_table)


@functools.cache
def _s3() -> Any:
    return boto3.client("s3", config=CLIENT_CONFIG)


def _time_left(context: object) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return (lambda: remaining() / 1000.0) if callable(remaining) else None


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = mark_failed(
        event,
        catalog=_catalog(),
        settings=_settings(),
        store=RenditionStore(_s3()),
        time_left_s=_time_left(context),
    )
    logger.warning("asset failed", extra=result)
    if result["asset_id"]:
        metrics.add_metadata(key="asset_id", value=result["asset_id"])
    metrics.add_metric(name="AssetsFailed", unit=MetricUnit.Count, value=1)
    error = event.get("error") if isinstance(event, dict) else None
    publish_outcome(outcome_of_failure(error))
    if not result["recorded"]:
        # The catalog (and the dashboard) does not show this failure: the alarm on this metric
        # tells an operator to look at the run summary, which lists it.
        metrics.add_metric(name="FailuresNotRecorded", unit=MetricUnit.Count, value=1)
    if result.get("renditions", {}).get("left"):
        # Objects of a failed asset that nothing will expire: the alarm on this metric tells an
        # operator to remove the prefixes the asset's catalog record names (renditions_left).
        metrics.add_metric(name="RenditionsLeft", unit=MetricUnit.Count, value=1)
    return result
