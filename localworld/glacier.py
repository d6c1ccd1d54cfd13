"""S3 archive tiers for the local world: lifecycle transitions, restores that take hours, and the
"Object Restore Completed" event that ends them.

moto keeps an object's storage class and refuses ``GetObject`` of an archived object
(``InvalidObjectState``), but its ``RestoreObject`` completes at once, answers 202 or 200 only,
ignores ``VersionId`` and the retrieval tier, and sends no EventBridge event the world can
route. A reprocess of an archived clip rests on exactly those parts, so ``install()`` replaces
moto's handling of ``POST ?restore`` with the service's behaviour, backed by
``GlacierStandIn``:

* an object not in GLACIER or DEEP_ARCHIVE: 403 ``ObjectAlreadyInActiveTierError`` (the error
  botocore's model lists for the operation); a missing key or version: 404 ``NoSuchKey`` /
  ``NoSuchVersion``; Expedited from DEEP_ARCHIVE: 400 ``InvalidArgument``;
* a restore already running: 409 ``RestoreAlreadyInProgress``; an object already restored:
  200, and the expiry is extended (no new event, as on S3);
* otherwise 202: the restore runs for the simulated time S3 promises for the class and tier (the
  upper bound: GLACIER Expedited 5 min, Standard 5 h, Bulk 12 h; DEEP_ARCHIVE Standard 12 h,
  Bulk 48 h), or ``duration_s`` when a test sets one. While it runs, ``HeadObject`` says
  ``ongoing-request="true"`` and ``GetObject`` is refused; at its end the temporary copy is
  readable for ``Days`` and "Object Restore Completed" is delivered through the world's
  EventBridge rules, shaped as S3 sends it ("Object Restore Initiated" at the start), when the
  bucket has EventBridge notifications on, asynchronously (``World.drain_events`` waits).

``transition(s3_backend, bucket, key, storage_class)`` moves an object's current version to an
archive class in place (same version id), as a lifecycle rule does; the world exposes it as
``World.archive``.

Not faithful: the restore of a noncurrent version is modelled but moto's ``HeadObject`` of a
version reports it as any other; S3 charges and retrieval quotas are not modelled; times are
the tier's promised upper bound, not a distribution.
"""

# moto is imported where it is patched or used; the patch is installed once per process.
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus

from localworld.clock import SimClock

ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
HOUR = 3600.0
# What S3 promises per class and tier ("within"), used as the simulated restore time.
RESTORE_SECONDS: dict[tuple[str, str], float] = {
    ("GLACIER", "Expedited"): 5 * 60.0,
    ("GLACIER", "Standard"): 5 * HOUR,
    ("GLACIER", "Bulk"): 12 * HOUR,
    ("DEEP_ARCHIVE", "Standard"): 12 * HOUR,
    ("DEEP_ARCHIVE", "Bulk"): 48 * HOUR,
}
MANAGED_STATE = "s3::keyrestore"
# moto's restore state never advances by itself while the stand-in is active: the clock does it.
NEVER = 10**12
Emit = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class RestoreRecord:
    bucket: str
    key: str
    version_id: str | None
    storage_class: str
    tier: str
    days: int
    started_s: float
    duration_s: float


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return status, {"Content-Type": "application/xml"}, body


class GlacierStandIn:
    """Restores of archived objects on the world's simulated clock."""

    def __init__(self, *, clock: SimClock, emit: Emit, duration_s: float | None = None) -> None:
        self.clock = clock
        self.emit = emit
        self.duration_s = duration_s
        self.restores: list[RestoreRecord] = []
        self._lock = threading.Lock()

    def restore(
        self, key: Any, *, bucket: str, days: int, tier: str
    ) -> tuple[int, dict[str, str], str]:
        storage = key.storage_class or "STANDARD"
        if storage not in ARCHIVE_CLASSES:
            return _error(
                403,
                "ObjectAlreadyInActiveTierError",
                "This operation is not allowed against this storage tier.",
            )
        if (storage, tier) not in RESTORE_SECONDS:
            return _error(
                400, "InvalidArgument", f"The {tier} tier is not available for {storage} objects"
            )
        with self._lock:
            if key.status == "IN_PROGRESS":
                return _error(
                    409, "RestoreAlreadyInProgress", "Object restore is already in progress"
                )
            if key.status == "RESTORED":
                key.set_expiry(self.clock.now() + timedelta(days=days))
                return 200, {}, ""
            duration = (
                self.duration_s if self.duration_s is not None else RESTORE_SECONDS[(storage, tier)]
            )
            key.status = "IN_PROGRESS"
            key.set_expiry(self.clock.now() + timedelta(seconds=duration, days=days))
            record = RestoreRecord(
                bucket,
                key.name,
                key.version_id,
                storage,
                tier,
                days,
                self.clock.seconds(),
                duration,
            )
            self.restores.append(record)
        self.emit("Object Restore Initiated", bucket, self._detail(key, bucket, storage))

        def finish() -> None:
            with self._lock:
                key.status = "RESTORED"
                key.set_expiry(self.clock.now() + timedelta(days=days))
            detail = {
                **self._detail(key, bucket, storage),
                "restore-expiry-time": (self.clock.now() + timedelta(days=days)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
            }
            self.emit("Object Restore Completed", bucket, detail)

        self.clock.call_later(duration, finish)
        return 202, {}, ""

    @staticmethod
    def _detail(key: Any, bucket: str, storage: str) -> dict[str, Any]:
        return {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": quote_plus(key.name, safe="/"),
                "size": key.size,
                "etag": key.etag.strip('"'),
                **({"version-id": str(key.version_id)} if key.version_id else {}),
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": "s3.amazonaws.com",
            "source-storage-class": storage,
        }


def transition(s3_backend: Any, bucket: str, key: str, storage_class: str) -> None:
    """A lifecycle transition of the current version to ``storage_class`` (same version)."""
    if storage_class not in ARCHIVE_CLASSES:
        raise ValueError(f"{storage_class!r} is not an archive class {ARCHIVE_CLASSES}")
    found = s3_backend.get_object(bucket, key)
    if found is None:
        raise KeyError(f"s3://{bucket}/{key} does not exist")
    found.set_storage_class(storage_class)
    found.set_expiry(None)


_STATE: dict[str, GlacierStandIn | None] = {"service": None}
_INSTALLED = False


def activate(service: GlacierStandIn | None) -> None:
    """Route ``RestoreObject`` to ``service`` (None: moto's own behaviour)."""
    from moto.moto_api import state_manager

    _STATE["service"] = service
    if service is None:
        state_manager.unset_transition(MANAGED_STATE)
    else:
        state_manager.set_transition(MANAGED_STATE, {"progression": "manual", "times": NEVER})


def install() -> None:
    """Patch moto's S3 ``POST ?restore`` once per process (a no-op while no stand-in is active)."""
    global _INSTALLED
    if _INSTALLED:
        return
    import xmltodict
    from moto.s3.exceptions import MissingKey, MissingVersion
    from moto.s3.responses import S3Response

    original = S3Response._key_response_post

    def _key_response_post(  # noqa: PLR0917 - moto's signature
        self: Any, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str
    ) -> Any:
        service = _STATE["service"]
        if service is None or "restore" not in query:
            return original(self, request, body, bucket_name, query, key_name)
        self._set_action("KEY", "POST", query)
        self._authenticate_and_authorize_s3_action(bucket_name=bucket_name, key_name=key_name)
        version_id = (query.get("versionId") or [None])[0]
        key = self.backend.get_object(bucket_name, key_name, version_id=version_id)
        if key is None:
            raise MissingVersion() if version_id else MissingKey(key=key_name)
        params = (xmltodict.parse(body) or {}).get("RestoreRequest") or {}
        tier = ((params.get("GlacierJobParameters") or {}).get("Tier")) or params.get("Tier")
        days = int(params.get("Days") or 1)
        return service.restore(key, bucket=bucket_name, days=days, tier=str(tier or "Standard"))

    S3Response._key_response_post = _key_response_post  # type: ignore[method-assign]
    _INSTALLED = True
