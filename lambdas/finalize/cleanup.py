"""Step 3d, continued: remove what a failed asset left in the processed zone.

A failed asset can leave its MP4 proxy, its HLS ladder and its thumbnails (the transcode
succeeded, then an analysis or finalize failed), and even its ``<stem>_labels.json`` (finalize
wrote it, then failed). Nothing points at them any more: the catalog shows the asset FAILED, no
published labels document links them, and the rendition tiers only move them to Glacier Instant
Retrieval, never away. Mark-failed therefore deletes them, right after recording the failure.

Why delete here rather than tag them and let a lifecycle rule expire them:

* It is exact and immediate: the keys are the asset's own, derived from its raw key by
  ``AssetKeys`` exactly as the transcode plan derived them, and one ``DeleteObjects`` removes up
  to 1000 of them. Tagging is one ``PutObjectTagging`` request per object, and tagged objects
  keep costing storage, keep showing in listings and in the bucket-size widget, until lifecycle
  (which runs about once a day) gets to them.
* It is recoverable: the bucket is versioned, so a delete only adds a delete marker; the
  ``Housekeeping`` rule expires the noncurrent bytes after ``noncurrent_version_expiry_days`` and
  then the lone markers. An operator can undo a wrong cleanup within that window, and mark-failed
  needs ``s3:DeleteObject`` only, never ``s3:DeleteObjectVersion`` (permanent deletion).
* It is idempotent and bounded: it lists what is there and deletes it, so a retried step is a
  no-op; it stops at ``MAX_KEYS`` objects or when the invocation's time runs low.

What the delete cannot remove, lifecycle does: keys ``DeleteObjects`` refuses are tagged
``orphaned=true`` and the processed bucket's ``ExpireOrphanedRenditions`` rule expires them (see
``constructs_lib/data_lake.py``). What can be neither deleted nor tagged (S3 unreachable, the
budget spent) is recorded: the step's result and the asset's catalog record name the prefixes
left (``renditions_left``) with the reason, and the ``RenditionsLeft`` metric goes out for the
alarm. None of this ever raises: housekeeping must not cost the asset its failure record or the
batch its other assets.

Never deleted, on purpose:

* Anything outside the asset's own ``video/<source>/<campaign>/<batch>/`` folder (an image's:
  ``image/...``): a key that does not have that shape (or names ``..``) deletes nothing.
* A renditions folder another clip may share: renditions are named by the raw file's stem, so
  ``a.webm`` and ``a.mp4`` of one batch folder would share ``a/``; when the raw bucket holds such
  a twin, nothing is deleted and the result says so.
* The raw clip and its attribution sidecar. They are still referenced (the catalog record names
  both), the raw object is the source of truth from which the asset can be reprocessed once the
  cause is fixed (the source item is claimed, so ingest will not fetch it again), and it tiers to
  Glacier and Deep Archive like every raw clip. The original of an upload, under ``uploads/``,
  expires on its own (``ExpireUploadedOriginals``).

Not covered here: an asset whose failure never reaches mark-failed (the execution timed out or
was stopped, or the step itself failed: "Failure not recorded"), and objects a MediaConvert job
still writes after its timed-out Transcode step was given up (Step Functions cancels the job,
but a last segment can land after the cleanup).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from lambdas.shared.errors import bounded, shown
from lambdas.shared.keys import IMAGE_PREFIX, VIDEO_PREFIX, AssetKeys, UnsafeKeyError, check_slug

logger = Logger()

# The tag the processed bucket's lifecycle rule expires (constructs_lib/data_lake.py).
ORPHAN_TAG_KEY = "orphaned"
ORPHAN_TAG_VALUE = "true"
# One asset's renditions are a few hundred objects (an HLS ladder of a 10-minute clip); the
# bound only stops a runaway listing from eating the invocation.
MAX_KEYS = 10_000
DELETE_BATCH = 1000  # DeleteObjects' own maximum
MAX_TAGGED = 100  # PutObjectTagging is one request per key
# Seconds kept back for recording what was left when the invocation's time runs low.
TIME_MARGIN_S = 8.0
MAX_NOTE_LEN = 300
# Short timeouts: a hung S3 connection must not use up the step's 60 s.
CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=15, retries={"mode": "standard", "max_attempts": 3}
)
# video/<source>/<campaign>/<batch>/<file>, as lambdas/shared/keys.raw_key builds it.
KEY_SEGMENTS = 5


class NotOwned(ValueError):
    """The asset's keys do not name a folder this step may clean up."""


@dataclass
class Cleanup:
    """What happened to a failed asset's objects in the processed zone."""

    removed: int = 0
    tagged_for_expiry: int = 0
    # Prefixes (or keys) that may still hold objects nobody will expire: they need a person.
    left: list[str] = field(default_factory=list)
    # Why something was not removed: set whenever ``left`` is, or when nothing was attempted.
    not_removed: str | None = None

    def leave(self, place: str, why: str) -> None:
        if place not in self.left:
            self.left.append(place)
        self.not_removed = self.not_removed or bounded(why, MAX_NOTE_LEN)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"removed": self.removed, "tagged_for_expiry": self.tagged_for_expiry}
        if self.left:
            out["left"] = list(self.left)
        if self.not_removed:
            out["not_removed"] = self.not_removed
        return out


class RenditionStore:
    """The few S3 calls the cleanup makes: list, delete in batches, tag, and the twin check."""

    def __init__(self, client: Any | None = None) -> None:
        self._s3: Any = client or boto3.client("s3", config=CLIENT_CONFIG)

    def pages(self, bucket: str, prefix: str) -> Iterator[list[str]]:
        """Current object keys under ``prefix``, one listing page (up to 1000) at a time."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            yield [item["Key"] for item in page.get("Contents", [])]

    def delete(self, bucket: str, keys: list[str]) -> dict[str, str]:
        """Delete up to 1000 keys; returns the keys S3 refused, with its error code."""
        answer = self._s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
        return {e["Key"]: str(e.get("Code", "?")) for e in answer.get("Errors", []) if "Key" in e}

    def tag_orphaned(self, bucket: str, key: str) -> None:
        self._s3.put_object_tagging(
            Bucket=bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": ORPHAN_TAG_KEY, "Value": ORPHAN_TAG_VALUE}]},
        )

    def twins(self, bucket: str, keys: AssetKeys) -> list[str]:
        """Other raw clips of the asset's folder with the same stem (they share its renditions)."""
        found: list[str] = []
        for page in self.pages(bucket, f"{keys.folder}/{keys.stem}."):
            found += [k for k in page if k != keys.raw and AssetKeys(k).stem == keys.stem]
        return found


def owned_keys(asset: Mapping[str, Any], *, raw_bucket: str) -> AssetKeys:
    """The asset's keys, when they name its own ``video/<source>/<campaign>/<batch>/`` folder
    (or ``image/...``, an image's)."""
    key, source, campaign = asset.get("key"), asset.get("source"), asset.get("campaign")
    if asset.get("bucket") != raw_bucket:
        raise NotOwned(f"the asset is not in this deployment's raw bucket ({raw_bucket})")
    if not all(isinstance(v, str) and v for v in (key, source, campaign)):
        raise NotOwned("the asset names no key, source and campaign")
    try:
        check_slug("source", str(source))
        check_slug("campaign", str(campaign))
    except UnsafeKeyError as err:
        raise NotOwned(str(err)) from err
    parts = str(key).split("/")
    prefix = IMAGE_PREFIX if str(key).startswith(IMAGE_PREFIX) else VIDEO_PREFIX
    folder = f"{prefix}{source}/{campaign}/"
    if (
        len(parts) != KEY_SEGMENTS
        or not str(key).startswith(folder)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise NotOwned(f"its key {shown(key)} is not under {folder}<batch>/")
    return AssetKeys(str(key))


def describe(err: BaseException) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"S3 answered {error.get('Code', '?')}" + (
            f" ({error['Message']})" if error.get("Message") else ""
        )
    if isinstance(err, EndpointConnectionError):
        return f"S3 could not be reached ({err})"
    return f"{type(err).__name__}: {err}"


def remove_renditions(
    asset: Mapping[str, Any],
    *,
    store: RenditionStore,
    raw_bucket: str,
    processed_bucket: str,
    time_left_s: Callable[[], float] | None = None,
) -> Cleanup:
    """Delete the asset's labels document and renditions folder; never raises."""
    cleanup = Cleanup()
    try:
        keys = owned_keys(asset, raw_bucket=raw_bucket)
    except NotOwned as err:
        cleanup.not_removed = bounded(f"nothing removed: {err}", MAX_NOTE_LEN)
        return cleanup
    # The labels document first: once it is gone, nothing advertises the renditions.
    targets = [keys.labels, keys.renditions_prefix]
    current = targets[0]
    try:
        twins = store.twins(raw_bucket, keys)
        if twins:
            cleanup.not_removed = bounded(
                f"nothing removed: {keys.renditions_prefix} may hold the renditions of "
                f"{', '.join(twins[:3])}, which has the same stem",
                MAX_NOTE_LEN,
            )
            return cleanup
        sweep = _Sweep(cleanup, store, processed_bucket, time_left_s)
        for current in targets:
            stopped = sweep.clear(current)
            if stopped:
                for place in targets[targets.index(current) + 1 :]:
                    cleanup.leave(place, stopped)
                break
    except (ClientError, BotoCoreError) as err:
        for place in targets[targets.index(current) :]:
            cleanup.leave(place, describe(err))
    except Exception as err:  # housekeeping must never cost the asset its failure record
        logger.exception("rendition cleanup failed unexpectedly", extra={"prefix": current})
        for place in targets[targets.index(current) :]:
            cleanup.leave(place, f"{type(err).__name__}: {err}")
    return cleanup


@dataclass
class _Sweep:
    """One cleanup's deletes, within its budget of keys and time."""

    cleanup: Cleanup
    store: RenditionStore
    bucket: str
    time_left_s: Callable[[], float] | None
    started: float = field(default_factory=time.monotonic)

    def clear(self, target: str) -> str | None:
        """Delete every current object under ``target`` (a prefix ending in ``/``, or a key).

        Returns why it stopped early (the budget is spent), or None when ``target`` is done.
        """
        exact = not target.endswith("/")
        for page in self.store.pages(self.bucket, target):
            keys = [k for k in page if k == target] if exact else page
            if not keys:
                continue
            stopped = self._over_budget(len(keys))
            if stopped:
                self.cleanup.leave(target, stopped)
                return stopped
            for start in range(0, len(keys), DELETE_BATCH):
                batch = keys[start : start + DELETE_BATCH]
                refused = self.store.delete(self.bucket, batch)
                self.cleanup.removed += len(batch) - len(refused)
                for key, code in sorted(refused.items()):
                    self._tag_or_leave(key, code, target)
        return None

    def _over_budget(self, more: int) -> str | None:
        if self.cleanup.removed + self.cleanup.tagged_for_expiry + more > MAX_KEYS:
            return f"stopped at the bound of {MAX_KEYS} objects per asset"
        if self.time_left_s is not None and self.time_left_s() < TIME_MARGIN_S:
            waited = round(time.monotonic() - self.started, 1)
            return f"stopped after {waited} s: the invocation's time ran low"
        return None

    def _tag_or_leave(self, key: str, code: str, target: str) -> None:
        """A key S3 would not delete is tagged for the lifecycle rule; if that fails too, left."""
        if self.cleanup.tagged_for_expiry >= MAX_TAGGED:
            self.cleanup.leave(target, f"S3 refused to delete {key} ({code}); too many to tag")
            return
        try:
            self.store.tag_orphaned(self.bucket, key)
        except (ClientError, BotoCoreError) as err:
            self.cleanup.leave(
                target, f"S3 refused to delete {key} ({code}) and to tag it: {describe(err)}"
            )
            return
        self.cleanup.tagged_for_expiry += 1
        logger.warning(
            "S3 refused to delete a rendition; tagged it for lifecycle expiry",
            extra={"key": key, "code": code},
        )
