"""Reprocess, step 2 (archived objects only): restore, and wait for S3 to say it is done.

``start`` runs as a ``waitForTaskToken`` task. It stores the task token under the object (so the
completion can never arrive before its waiter) and asks S3 for a temporary copy with
``RestoreObject``. S3 publishes "Object Restore Completed" to EventBridge hours later; ``completed``
(the rule's target) resumes every run waiting for that object. Nothing polls: a run waiting 12
hours for Deep Archive costs no state transitions.

The answers of ``RestoreObject`` decide what happens at once:

* 202 Accepted: a new restore; the run waits for the event.
* 409 ``RestoreAlreadyInProgress``: another run (or a person) asked first; this run waits for the
  same event (every waiter of the object is resumed by it).
* 200 OK: a restored copy already exists (S3 only extends its expiry, and sends no new
  completion event), so the run resumes now.
* 403 ``ObjectAlreadyInActiveTierError``: the object is not in an archive class (it was copied
  back since prepare looked), so it is readable and the run resumes now.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lambdas.reprocess.settings import RestoreSettings
from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput, require_strings
from lambdas.shared.settings import CatalogSettings
from lambdas.shared.tasks import resume_task

tools = Powertools()
logger = tools.logger

COMPLETED = "Object Restore Completed"


def start_restore(
    event: Mapping[str, Any],
    *,
    settings: RestoreSettings,
    catalog: Catalog,
    s3: Any,
    sfn: Any,
) -> dict[str, Any]:
    require_strings(event, ("task_token", "bucket", "key", "asset_id", "run"))
    bucket, key, run = str(event["bucket"]), str(event["key"]), str(event["run"])
    catalog.put_restore_waiter(
        bucket, key, run, str(event["task_token"]), asset_id=event["asset_id"]
    )
    request = {
        "Days": settings.restore_days,
        "GlacierJobParameters": {"Tier": settings.restore_tier},
    }
    try:
        answer = s3.restore_object(Bucket=bucket, Key=key, RestoreRequest=request)
        code = int(answer["ResponseMetadata"]["HTTPStatusCode"])
        state = "requested" if code == 202 else "already_restored"
    except ClientError as err:
        error = err.response.get("Error", {}).get("Code", "")
        if error == "RestoreAlreadyInProgress":
            state = "in_progress"
        elif error in ("ObjectAlreadyInActiveTierError", "InvalidObjectState"):
            state = "not_archived"
        else:
            catalog.delete_restore_waiter(bucket, key, run)
            raise
    if state in ("already_restored", "not_archived"):
        resume_task(
            sfn, str(event["task_token"]), {"restored": state, "bucket": bucket, "key": key}
        )
        catalog.delete_restore_waiter(bucket, key, run)
    logger.info(
        "restore",
        extra={"bucket": bucket, "key": key, "run": run, "state": state, **request},
    )
    return {"state": state, "tier": settings.restore_tier, "days": settings.restore_days}


def restore_completed(event: Mapping[str, Any], *, catalog: Catalog, sfn: Any) -> dict[str, int]:
    """Resume every run waiting for the object the event names; anything else is ignored."""
    detail = event.get("detail") if isinstance(event, Mapping) else None
    if not isinstance(detail, Mapping) or event.get("detail-type") != COMPLETED:
        logger.warning("not an S3 restore completion; ignored", extra={"event": str(event)[:500]})
        return {"resumed": 0, "closed": 0}
    bucket = (detail.get("bucket") or {}).get("name")
    encoded = (detail.get("object") or {}).get("key")
    if not isinstance(bucket, str) or not isinstance(encoded, str):
        logger.warning("restore completion without bucket or key; ignored")
        return {"resumed": 0, "closed": 0}
    key = unquote_plus(encoded)
    counts = {"resumed": 0, "closed": 0}
    for waiter in catalog.restore_waiters(bucket, key):
        output = {
            "restored": "completed",
            "bucket": bucket,
            "key": key,
            "expiry": detail.get("restore-expiry-time"),
        }
        counts["resumed" if resume_task(sfn, str(waiter["task_token"]), output) else "closed"] += 1
        catalog.delete_restore_waiter(bucket, key, str(waiter["run"]))
    logger.info("restore completed", extra={"bucket": bucket, "key": key, **counts})
    return counts


@functools.cache
def _start_dependencies() -> tuple[RestoreSettings, Catalog, Any, Any]:
    settings = RestoreSettings.from_env()
    return (
        settings,
        Catalog(settings.catalog_table),
        boto3.client("s3"),
        boto3.client("stepfunctions"),
    )


@functools.cache
def _completed_dependencies() -> tuple[Catalog, Any]:
    settings = CatalogSettings.from_env()
    return Catalog(settings.catalog_table), boto3.client("stepfunctions")


@tools.entry
def start(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise InvalidInput("restore input must be an object")
    settings, catalog, s3, sfn = _start_dependencies()
    return start_restore(event, settings=settings, catalog=catalog, s3=s3, sfn=sfn)


@tools.entry
def completed(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    catalog, sfn = _completed_dependencies()
    return restore_completed(event, catalog=catalog, sfn=sfn)
