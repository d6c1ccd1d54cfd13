"""Upload jobs in the catalog table: what the jobs API creates and ingest later completes.

One item per job (see ``lambdas/shared/catalog.py`` for the table's other items)::

    pk      JOB#<job_id>            sk      JOB
    gsi1pk  OWNER#<owner>           gsi1sk  <created_at>#<job_id>   (index ByCampaign:
                                                                     "my jobs, newest first")

with ``job_id``, ``owner``, ``filename``, ``content_type``, ``size_bytes``, ``sha256``,
``campaign``, ``source``, ``captured_at``, ``metadata``, ``upload_key``
(``uploads/jobs/<job_id>/<safe file name>``), ``upload_id`` and ``part_size`` (multipart only),
``status``, ``created_at``, ``expires_at`` and, once ingest has registered the file, ``asset_id``.

Stored statuses are ``WAITING_FOR_UPLOAD`` (created), ``UPLOADED`` (the object is there) and
``FAILED`` (ingest found the file is not what the job declared). What a client sees is derived
from these and from the linked asset (``RUNNING``, ``PROCESSED``, ``FAILED``) by the API.

``expires_at`` (the table's TTL) is set at creation to the URLs' expiry plus a day, so a job
nobody uploads to disappears on its own; it is removed as soon as the file arrives or an asset
is linked, so a job that was used is kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

import boto3
from botocore.exceptions import ClientError

from lambdas.shared.catalog import BY_CAMPAIGN_INDEX, MAX_REASON_LEN, asset_pk, now_iso
from lambdas.shared.keys import UPLOADS_PREFIX

WAITING_FOR_UPLOAD = "WAITING_FOR_UPLOAD"
UPLOADED = "UPLOADED"
FAILED = "FAILED"
JOB_STATUSES = (WAITING_FOR_UPLOAD, UPLOADED, FAILED)
JOBS_PREFIX = f"{UPLOADS_PREFIX}jobs/"
# A day beyond the upload URLs' expiry: an upload that started just before they expired can
# still finish (a part PUT may run long after its URL was signed).
TTL_GRACE_S = 24 * 3600
CHECKSUM_MISMATCH = "the uploaded file does not match the job's SHA-256"
_JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_BATCH_GET_MAX = 100
_BATCH_GET_ATTEMPTS = 5


class JobError(Exception):
    """A job change the table refused (an unknown job, or one in the wrong state)."""


class JobExists(JobError):
    """``create`` found an item with that job id already."""


class JobPage(NamedTuple):
    """One page of ``list_for``: the items and where the next page starts (None: the last)."""

    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


def job_pk(job_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": "JOB"}


def owner_key(owner: str) -> str:
    return f"OWNER#{owner}"


def is_job_id(value: str) -> bool:
    return isinstance(value, str) and bool(_JOB_ID_RE.match(value))


def upload_key(job_id: str, safe_name: str) -> str:
    """Where a job's file is uploaded (``safe_name`` is already a safe S3 file name)."""
    return f"{JOBS_PREFIX}{job_id}/{safe_name}"


def job_id_from_key(key: str) -> str | None:
    """The job an uploaded object belongs to (``uploads/jobs/<job_id>/<name>``), or None."""
    if not key.startswith(JOBS_PREFIX):
        return None
    job_id, _, name = key[len(JOBS_PREFIX) :].partition("/")
    return job_id if is_job_id(job_id) and name and "/" not in name else None


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the jobs' are whole numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == int(value) else float(value)
    return value


class JobStore:
    """Typed operations on the job items; callers never build their keys."""

    def __init__(self, table_name: str, *, resource: Any | None = None) -> None:
        self._resource = resource or boto3.resource("dynamodb")
        self.table = self._resource.Table(table_name)
        self.table_name = table_name

    def create(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new job (``job_id``, ``owner``, ``created_at`` required; keys are added).

        Raises ``JobExists`` when the id is taken; nothing is overwritten.
        """
        missing = [name for name in ("job_id", "owner", "created_at") if not item.get(name)]
        if missing:
            raise JobError(f"job is missing {', '.join(missing)}")
        job_id = str(item["job_id"])
        stored = {
            **item,
            **job_pk(job_id),
            "gsi1pk": owner_key(str(item["owner"])),
            "gsi1sk": f"{item['created_at']}#{job_id}",
            "status": item.get("status") or WAITING_FOR_UPLOAD,
        }
        try:
            self.table.put_item(Item=stored, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobExists(f"job {job_id} already exists") from err
            raise
        return stored

    def get(self, job_id: str) -> dict[str, Any] | None:
        if not is_job_id(job_id):
            return None
        item = self.table.get_item(Key=job_pk(job_id), ConsistentRead=True).get("Item")
        return _plain(dict(item)) if item else None

    def list_for(
        self,
        owner: str,
        *,
        campaign: str | None = None,
        status: str | None = None,
        limit: int = 25,
        start_key: Mapping[str, Any] | None = None,
    ) -> JobPage:
        """An owner's jobs, newest first; ``campaign``/``status`` filter on the stored values.

        Like any DynamoDB filter, ``limit`` bounds the items read, so a filtered page may hold
        fewer (even none) while ``last_key`` says there is more.
        """
        kwargs: dict[str, Any] = {
            "IndexName": BY_CAMPAIGN_INDEX,
            "KeyConditionExpression": "gsi1pk = :o",
            "ExpressionAttributeValues": {":o": owner_key(owner)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        filters, names = [], {}
        if campaign is not None:
            filters.append("campaign = :c")
            kwargs["ExpressionAttributeValues"][":c"] = campaign
        if status is not None:
            filters.append("#status = :s")
            names["#status"] = "status"
            kwargs["ExpressionAttributeValues"][":s"] = status
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if start_key:
            kwargs["ExclusiveStartKey"] = dict(start_key)
        resp = self.table.query(**kwargs)
        items = [_plain(dict(item)) for item in resp.get("Items", [])]
        last = resp.get("LastEvaluatedKey")
        return JobPage(items, dict(last) if last else None)

    def mark_uploaded(self, job_id: str) -> bool:
        """The file is there: status ``UPLOADED``, no more expiry. False when the job is gone
        or already past ``WAITING_FOR_UPLOAD`` (then nothing changes)."""
        try:
            self.table.update_item(
                Key=job_pk(job_id),
                UpdateExpression="SET #status = :u, uploaded_at = :at REMOVE expires_at",
                ConditionExpression="attribute_exists(pk) AND #status = :w",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":u": UPLOADED,
                    ":w": WAITING_FOR_UPLOAD,
                    ":at": now_iso(),
                },
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def link_asset(
        self, job_id: str, asset_id: str, *, checksum_ok: bool, reason: str | None = None
    ) -> None:
        """Ingest registered the job's file as ``asset_id``; the job is kept for good.

        When the file is not what the job declared (``checksum_ok`` False) the job is
        ``FAILED`` with ``reason`` (or a default one); otherwise it is ``UPLOADED``.
        """
        values: dict[str, Any] = {":a": asset_id, ":at": now_iso()}
        sets = ["asset_id = :a", "linked_at = :at", "#status = :s"]
        if checksum_ok:
            values[":s"] = UPLOADED
        else:
            text = (reason or "").strip() or CHECKSUM_MISMATCH
            values[":s"] = FAILED
            values[":r"] = text if len(text) <= MAX_REASON_LEN else text[: MAX_REASON_LEN - 1] + "…"
            sets.append("failure_reason = :r")
        try:
            self.table.update_item(
                Key=job_pk(job_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE expires_at",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobError(f"job {job_id} is not in the catalog") from err
            raise

    def linked_assets(self, jobs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """The asset items of the jobs that have one, by asset id (batched reads)."""
        ids = list(dict.fromkeys(str(job["asset_id"]) for job in jobs if job.get("asset_id")))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        asset_pk(asset_id) for asset_id in ids[start : start + _BATCH_GET_MAX]
                    ],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(_BATCH_GET_ATTEMPTS):
                if attempt:
                    time.sleep(0.05 * 2**attempt)
                resp = self._resource.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    found[str(item["asset_id"])] = _plain(dict(item))
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
            if request:
                raise JobError("the catalog kept throttling reads of the jobs' assets")
        return found
