"""The ingest logic: pick new candidates fairly across sources and land each one completely or not.

Per candidate the order is fixed, so a failure at any step leaves nothing behind:

1. policy checks on what the source declared (length, size, type, a usable file name);
2. ``catalog.seen`` (already ingested: no download) and ``catalog.claim`` (conditional write:
   a concurrent run loses and moves on);
3. stream into a multipart upload (aborted on any failure), then the attribution sidecar;
4. ``catalog.commit_asset`` only once the object is complete. If anything after the upload fails,
   the object and sidecar are deleted and the claim released.

Filling the batch: ``batch_sizes.video`` is the total of clips for the run, and
``batch_sizes.image`` (0 unless asked for) the total of images, filed under ``image/`` and filled
after the clips the same way. Sources take turns, one new asset per turn (round-robin, in the
``SOURCES`` order), so a batch of 4 from two healthy sources is 2 + 2. A source that fails, is
not configured, or runs out of hits drops out and the others keep taking turns until the batch
is full, so one bad source never shrinks the batch if another can fill it.

Reporting: every hit not ingested is counted once under a ``skipped`` reason (``non_free_license``,
``already_ingested``, ``too_large``...). Problems an operator should look at (a source down, a
checksum mismatch, a redirect to a foreign host, a failed catalog commit) are also listed in
``errors``. Only when nothing new landed and every usable source failed does the run raise
``SourceUnavailable``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import requests
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.ingest.aws_types import S3Client
from lambdas.ingest.budget import NO_DEADLINE, START_BUDGET_S, TimeBudget
from lambdas.ingest.errors import (
    DownloadFailed,
    ItemError,
    OutOfTime,
    Skip,
    SourceNotConfigured,
    SourceOutOfTime,
    TooLarge,
)
from lambdas.ingest.http import is_generic_type, is_video_type
from lambdas.ingest.models import Candidate, IngestedAsset, Rejected
from lambdas.ingest.settings import Settings
from lambdas.ingest.sources import Source
from lambdas.ingest.upload import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PART_SIZE,
    part_size_for,
    stream_to_s3,
)
from lambdas.shared.catalog import AlreadyClaimed, Catalog
from lambdas.shared.errors import InvalidInput, SourceUnavailable
from lambdas.shared.jobs import JOBS_PREFIX, JobError, JobStore
from lambdas.shared.keys import (
    UPLOADS_PREFIX,
    AssetKeys,
    UnsafeKeyError,
    asset_id,
    raw_key,
    safe_file_name,
)
from lambdas.shared.media_types import (
    IMAGE,
    IMAGE_EXTENSION_TYPES,
    MAX_IMAGE_BYTES,
    VIDEO,
    MediaType,
    image_type_of,
    is_image_type,
)

log = logging.getLogger(__name__)

UPLOAD_SOURCE = "upload"
UPLOAD_LICENSE = "unspecified (uploaded by an operator)"
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".mpg", ".mpeg", ".ts", ".mts", ".avi", ".mxf"}
)
EXTENSION_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".ts": "video/mp2t",
    ".mts": "video/mp2t",
    ".avi": "video/x-msvideo",
    ".mxf": "application/mxf",
}
MAX_ERRORS = 20
MAX_ERROR_LEN = 300
MAX_METADATA_VALUE = 512
# After this many failed downloads in a row a source is treated as down for the rest of the run.
MAX_FAILURES_PER_SOURCE = 5
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
# What one turn of a source ended with.
LANDED, SOURCE_DONE, OUT_OF_TIME = "landed", "source_done", "out_of_time"
# Errors of a whole source (while creating it or paging its search), recorded, not raised.
SOURCE_ERRORS: tuple[type[BaseException], ...] = (
    SourceUnavailable,
    ItemError,
    ClientError,
    BotoCoreError,
    requests.RequestException,
)


@dataclass(frozen=True)
class SkipNote:
    source: str
    source_id: str
    reason: str
    detail: str


@dataclass
class RunReport:
    """What one invocation did; ``to_output`` is the small document the state machine receives."""

    campaign: str
    assets: list[IngestedAsset] = field(default_factory=list)
    skips: list[SkipNote] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    failed_sources: dict[str, str] = field(default_factory=dict)

    def skip(self, source: str, source_id: str, reason: str, detail: str) -> None:
        self.skips.append(SkipNote(source, source_id, reason, detail))
        log.info("skipped %s item %s: %s", source, source_id, detail, extra={"reason": reason})

    def error(self, source: str, message: str) -> None:
        self.errors.append({"source": source, "error": message})
        log.warning("%s: %s", source, message)

    def source_failed(self, source: str, err: BaseException | str) -> None:
        message = str(err)
        self.failed_sources[source] = message
        self.error(source, message)

    def skipped_counts(self) -> Counter[str]:
        return Counter(note.reason for note in self.skips)

    def skipped_by_source(self) -> Counter[tuple[str, str]]:
        return Counter((note.source, note.reason) for note in self.skips)

    def bytes_by_source(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for asset in self.assets:
            totals[asset.source] += asset.size_bytes
        return totals

    def to_output(self) -> dict[str, Any]:
        """Small by construction: only new assets, counts, and at most ``MAX_ERRORS`` errors."""
        errors = [
            {"source": e["source"], "error": _shorten(e["error"], MAX_ERROR_LEN)}
            for e in self.errors[:MAX_ERRORS]
        ]
        if len(self.errors) > MAX_ERRORS:
            errors.append(
                {"source": "ingest", "error": f"{len(self.errors) - MAX_ERRORS} more in the logs"}
            )
        return {
            "campaign": self.campaign,
            "assets": [asset.to_output() for asset in self.assets],
            "skipped": dict(sorted(self.skipped_counts().items())),
            "errors": errors,
        }


@dataclass
class _Turns:
    name: str
    source: Source
    hits: Iterator[Candidate | Rejected]
    media_type: MediaType = VIDEO
    failures: int = 0


class Ingestor:
    """Lands candidates in the raw zone and the catalog; all AWS access is injected."""

    def __init__(
        self,
        *,
        settings: Settings,
        s3: S3Client,
        catalog: Catalog,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        budget: TimeBudget = NO_DEADLINE,
        part_size: int = DEFAULT_PART_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.settings = settings
        self.s3 = s3
        self.catalog = catalog
        self.jobs = JobStore(settings.catalog_table, resource=catalog.resource)
        self._now = now
        self.budget = budget
        self.part_size = part_size_for(settings.max_file_bytes, part_size)
        self.max_in_flight = max_in_flight

    # -- campaign searches ---------------------------------------------------------------------
    def run_campaign(
        self,
        campaign: str,
        target: int,
        sources: Sequence[tuple[str, Callable[[], Source]]],
        *,
        image_target: int = 0,
    ) -> RunReport:
        """Ingest up to ``target`` new clips (and ``image_target`` new images) for ``campaign``,
        taking turns across ``sources``; videos first, then images, each batch filled alone.

        Raises ``SourceUnavailable`` only when nothing new landed and every source that could be
        used failed; otherwise failures are in the report's ``errors``.
        """
        report = RunReport(campaign)
        at = self._now()
        used_keys: set[str] = set()
        built: list[tuple[str, Source]] = []
        for name, factory in sources:
            try:
                built.append((name, factory()))
            except SourceNotConfigured as err:
                report.skip(name, "-", "source_not_configured", str(err))
            except SOURCE_ERRORS as err:
                report.source_failed(name, err)
        usable = {name for name, _source in built}
        for media_type, wanted in ((VIDEO, target), (IMAGE, image_target)):
            if wanted > 0 and not self._fill(
                report, built, media_type=media_type, wanted=wanted, at=at, used_keys=used_keys
            ):
                break
        tried = usable | set(report.failed_sources)
        if not report.assets and report.failed_sources and set(report.failed_sources) >= tried:
            raise SourceUnavailable(
                "every source failed: "
                + "; ".join(
                    _shorten(named(name, msg), MAX_ERROR_LEN)
                    for name, msg in report.failed_sources.items()
                )
            )
        return report

    def _fill(
        self,
        report: RunReport,
        sources: Sequence[tuple[str, Source]],
        *,
        media_type: MediaType,
        wanted: int,
        at: datetime,
        used_keys: set[str],
    ) -> bool:
        """Take turns until ``wanted`` new assets of ``media_type`` landed or no source has
        more; False when the Lambda's time ran out (nothing more should be started)."""
        campaign = report.campaign
        turns: list[_Turns] = []
        for name, source in sources:
            if name in report.failed_sources:
                continue
            if media_type not in getattr(source, "media_types", (VIDEO,)):
                continue
            try:
                hits = iter(source.search(campaign, wanted, media_type))
            except SOURCE_ERRORS as err:
                report.source_failed(name, err)
                continue
            turns.append(_Turns(name, source, hits, media_type))

        def landed() -> int:
            return sum(1 for asset in report.assets if asset.media_type == media_type)

        active = list(turns)
        try:
            while active and landed() < wanted:
                for turn in list(active):
                    if landed() >= wanted:
                        break
                    outcome = self._take_turn(turn, campaign, at, used_keys, report)
                    if outcome == OUT_OF_TIME:
                        return False
                    if outcome == SOURCE_DONE:
                        active.remove(turn)
        except Exception as err:
            # Assets already committed must reach the state machine, or they would never be
            # processed (a retry would see them as already ingested). So with assets in hand the
            # run stops and reports; with none, the error propagates.
            if not report.assets:
                raise
            report.error("ingest", f"run stopped early: {type(err).__name__}: {err}")
            return False
        return True

    def _take_turn(  # noqa: PLR0911 - one return per way a turn can end
        self,
        turn: _Turns,
        campaign: str,
        at: datetime,
        used_keys: set[str],
        report: RunReport,
    ) -> str:
        """Pull hits until one new asset lands (``LANDED``), the source has nothing more for this
        run (``SOURCE_DONE``) or the Lambda's time is nearly up (``OUT_OF_TIME``, checked before
        every hit: pulling one may fetch a page, taking one starts a download)."""
        while True:
            if not self._has_time(START_BUDGET_S):
                report.skip(
                    turn.name,
                    "-",
                    "out_of_time",
                    f"run stopped with {self.budget.left():.0f} s of Lambda time left, less "
                    f"than the {START_BUDGET_S:.0f} s a new clip needs",
                )
                return OUT_OF_TIME
            try:
                item = next(turn.hits)
            except StopIteration:
                return SOURCE_DONE
            except SourceOutOfTime as err:
                report.skip(turn.name, "-", "out_of_time", str(err))
                report.error(turn.name, str(err))
                return OUT_OF_TIME
            except SOURCE_ERRORS as err:
                report.source_failed(turn.name, err)
                return SOURCE_DONE
            except Exception as err:
                log.exception("%s: search failed unexpectedly", turn.name)
                report.source_failed(turn.name, unexpected(turn.name, "search", err))
                return SOURCE_DONE
            if isinstance(item, Rejected):
                report.skip(item.source, item.source_id, item.reason, item.detail)
                continue
            try:
                asset = self._ingest_alone(
                    turn.source, item, campaign, at, used_keys, media_type=turn.media_type
                )
            except ItemError as err:
                report.skip(item.source, item.source_id, err.reason, str(err))
                if not err.noteworthy:
                    continue
                report.error(item.source, str(err))
                if isinstance(err, OutOfTime):  # skipped above with the clip's id
                    return OUT_OF_TIME
                turn.failures += 1
                if turn.failures >= MAX_FAILURES_PER_SOURCE:
                    report.source_failed(
                        turn.name, f"{turn.name}: {turn.failures} downloads failed; giving up"
                    )
                    return SOURCE_DONE
                continue
            turn.failures = 0
            report.assets.append(asset)
            return LANDED

    def _ingest_alone(
        self,
        source: Source,
        candidate: Candidate,
        campaign: str,
        at: datetime,
        used_keys: set[str],
        *,
        media_type: MediaType = VIDEO,
    ) -> IngestedAsset:
        """``ingest_candidate``, with any failure of that one candidate turned into an
        ``ItemError``: ``ingest_candidate`` has already undone its writes, and the batch goes on.
        """
        try:
            return self.ingest_candidate(
                source, candidate, campaign, at, used_keys, media_type=media_type
            )
        except ItemError:
            raise
        except Exception as err:
            log.exception(
                "%s %s: ingest failed unexpectedly", candidate.source, candidate.source_id
            )
            raise ItemError(
                unexpected(f"{candidate.source} {_shorten(candidate.title, 100)}", "ingest", err),
                reason="unexpected_error",
            ) from err

    def ingest_candidate(
        self,
        source: Source,
        candidate: Candidate,
        campaign: str,
        at: datetime,
        used_keys: set[str] | None = None,
        *,
        media_type: MediaType = VIDEO,
    ) -> IngestedAsset:
        """Land one candidate completely, or raise an ``ItemError`` and leave nothing behind."""
        used_keys = set() if used_keys is None else used_keys
        c, limits = candidate, self.settings
        label = f"{c.source} {c.title}"
        if media_type == IMAGE:
            if not is_image_type(c.mime):
                raise Skip(f"{label}: {c.mime} is not an image type", reason="not_image")
        elif not c.mime.lower().startswith("video/"):
            raise Skip(f"{label}: {c.mime} is not a video type", reason="not_video")
        max_bytes = (
            limits.max_file_bytes
            if media_type == VIDEO
            else min(limits.max_file_bytes, MAX_IMAGE_BYTES)
        )
        if c.duration_s is not None and c.duration_s > limits.max_duration_s:
            raise Skip(
                f"{label}: {c.duration_s:.0f} s long, over the {limits.max_duration_s} s "
                "limit (Rekognition Video reads at most 6 hours)",
                reason="too_long",
            )
        if c.size_bytes is not None and c.size_bytes > max_bytes:
            raise TooLarge(f"{label}: {c.size_bytes} bytes, over the {max_bytes}-byte limit")
        name = file_name_for(c)
        new_id = asset_id(c.source, c.source_id, c.checksum)
        if self.catalog.seen(c.source, c.source_id, c.checksum):
            raise Skip(f"{label}: already in the catalog as {new_id}", reason="already_ingested")
        key = self._free_key(
            source=c.source,
            campaign=campaign,
            at=at,
            name=name,
            new_id=new_id,
            used=used_keys,
            media_type=media_type,
        )
        try:
            self.catalog.claim(c.source, c.source_id, c.checksum, new_id)
        except AlreadyClaimed as err:
            raise Skip(f"{label}: {err}", reason="already_claimed") from err

        stored: list[tuple[str, str | None]] = []
        try:
            with source.open(c) as download:
                download.check(max_bytes=max_bytes, media_type=media_type)
                result = stream_to_s3(
                    download.chunks(),
                    client=self.s3,
                    bucket=limits.raw_bucket,
                    key=key,
                    content_type=c.mime,
                    metadata=object_metadata(
                        source=c.source,
                        source_id=c.source_id,
                        source_url=c.source_page_url or c.download_url,
                        license=c.license,
                        checksum=c.checksum,
                        asset=new_id,
                    ),
                    max_bytes=max_bytes,
                    expected_size=c.size_bytes,
                    size_tolerance=c.size_tolerance_bytes,
                    expected_sha1=c.expected_sha1,
                    part_size=self.part_size,
                    max_in_flight=self.max_in_flight,
                    budget=self.budget,
                    label=label,
                )
            stored.append((key, result.version_id))
            sidecar = AssetKeys(key).attribution
            sidecar_version = self._put_sidecar(
                sidecar,
                {
                    "asset_id": new_id,
                    "source": c.source,
                    "source_id": c.source_id,
                    "campaign": campaign,
                    "title": c.title,
                    "license": c.license,
                    "license_url": c.license_url,
                    "source_page_url": c.source_page_url,
                    "download_url": c.download_url,
                    "checksum": c.checksum,
                    "sha1": result.sha1,
                    "size_bytes": result.size_bytes,
                    "retrieved_at": self._now().isoformat(),
                    **c.attribution,
                },
            )
            stored.append((sidecar, sidecar_version))
            asset = IngestedAsset(
                bucket=limits.raw_bucket,
                key=key,
                asset_id=new_id,
                source=c.source,
                campaign=campaign,
                duration_s=c.duration_s,
                size_bytes=result.size_bytes,
                width=c.width,
                height=c.height,
                media_type=media_type,
            )
            self._commit(
                asset,
                checksum=c.checksum,
                source_id=c.source_id,
                extra={
                    "title": _shorten(c.title, 300),
                    "mime": c.mime,
                    "sha1": result.sha1,
                    "license": c.license,
                    "license_url": c.license_url,
                    "source_url": c.source_page_url,
                    "author": _shorten(str(c.attribution.get("author") or ""), 300) or None,
                    "attribution_key": sidecar,
                },
            )
        except BaseException as err:
            self._undo(stored, c.source, c.source_id, new_id)
            if isinstance(err, requests.RequestException):
                raise DownloadFailed(f"{label}: {type(err).__name__}") from err
            raise
        used_keys.add(key)
        return asset

    # -- uploads -------------------------------------------------------------------------------
    def ingest_upload(
        self,
        bucket: str,
        key: str,
        campaign: str,
        *,
        version_id: str | None = None,
        etag: str | None = None,
    ) -> RunReport:
        """Register a file a person dropped under ``uploads/`` (copied, the original stays).

        ``key`` is the object's real key (the trigger decoded the event's URL-encoded one);
        ``version_id``/``etag`` name the exact object the event was about, so an overwrite
        before this run starts is never ingested in its place: each version is its own asset.
        """
        report = RunReport(campaign)
        if not key.startswith(UPLOADS_PREFIX) or key.endswith("/"):
            raise InvalidInput(f"upload key {key!r} must name a file under {UPLOADS_PREFIX}")
        head = self._head_upload(bucket, key, version_id=version_id, etag=etag)
        limits = self.settings
        where = f"upload s3://{bucket}/{key}"
        name = PurePosixPath(key).name
        content_type = str(head.get("ContentType") or "")
        size = int(head.get("ContentLength", 0))
        media_type: MediaType = IMAGE if image_type_of(name) else VIDEO
        safe = self._check_upload(where, name, content_type, size, media_type=media_type)
        etag = str(head["ETag"]).strip('"')
        version = head.get("VersionId") if version_id else None
        # Identity: the object version (its key and version id, as an S3 URI would name it) and
        # its ETag; each version is its own source item, even when two carry the same bytes.
        source_id = f"{key}?versionId={version}" if version else key
        checksum = etag
        new_id = asset_id(UPLOAD_SOURCE, source_id, checksum)
        if self.catalog.seen(UPLOAD_SOURCE, source_id, checksum):
            report.skip(UPLOAD_SOURCE, source_id, "already_ingested", f"{where}: already {new_id}")
            return report
        user_meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        job = self._job_of(key, user_meta)
        if job is not None and job.get("campaign"):
            campaign = str(job["campaign"])  # the job's, checked by the API when it was made
        at = self._now()
        dest = self._free_key(
            source=UPLOAD_SOURCE,
            campaign=campaign,
            at=at,
            name=safe,
            new_id=new_id,
            used=set(),
            media_type=media_type,
        )
        try:
            self.catalog.claim(UPLOAD_SOURCE, source_id, checksum, new_id)
        except AlreadyClaimed as err:
            report.skip(UPLOAD_SOURCE, source_id, "already_claimed", f"{where}: {err}")
            return report
        license_name = user_meta.get("license") or UPLOAD_LICENSE
        mime = stored_type(name, content_type)
        stored: list[tuple[str, str | None]] = []
        try:
            self.s3.copy(
                {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})},
                limits.raw_bucket,
                dest,
                ExtraArgs={
                    "ContentType": mime,
                    "MetadataDirective": "REPLACE",
                    "CopySourceIfMatch": head["ETag"],
                    "Metadata": object_metadata(
                        source=UPLOAD_SOURCE,
                        source_id=source_id,
                        source_url=f"s3://{bucket}/{key}",
                        license=license_name,
                        checksum=checksum,
                        asset=new_id,
                    ),
                },
            )
            stored.append((dest, self._version_of(dest)))
            sidecar = AssetKeys(dest).attribution
            sidecar_version = self._put_sidecar(
                sidecar,
                {
                    "asset_id": new_id,
                    "source": UPLOAD_SOURCE,
                    "source_id": source_id,
                    "campaign": campaign,
                    "title": name,
                    "license": license_name,
                    "license_url": None,
                    "author": user_meta.get("author"),
                    "uploaded_object": f"s3://{bucket}/{key}"
                    + (f"?versionId={version}" if version else ""),
                    "checksum": checksum,
                    "size_bytes": size,
                    "retrieved_at": self._now().isoformat(),
                    "attribution_required": None,
                },
            )
            stored.append((sidecar, sidecar_version))
            asset = IngestedAsset(
                bucket=limits.raw_bucket,
                key=dest,
                asset_id=new_id,
                source=UPLOAD_SOURCE,
                campaign=campaign,
                size_bytes=size,
                media_type=media_type,
            )
            self._commit(
                asset,
                checksum=checksum,
                source_id=source_id,
                extra={
                    "title": _shorten(name, 300),
                    "mime": mime,
                    "license": license_name,
                    "source_url": f"s3://{bucket}/{key}",
                    "attribution_key": sidecar,
                    # Whose asset it is (the jobs API lets a job's owner reprocess it).
                    **({"job_id": str(job["job_id"])} if job is not None else {}),
                },
            )
        except BaseException:
            self._undo(stored, UPLOAD_SOURCE, source_id, new_id)
            raise
        if job is not None:
            self._link_job(job, new_id)
        report.assets.append(asset)
        return report

    def _job_of(self, key: str, user_meta: dict[str, str]) -> dict[str, Any] | None:
        """The jobs API's job this upload answers, when it came through a presigned URL: its
        key is the job's upload key and its metadata names the job (both must agree)."""
        job_id = user_meta.get("job-id")
        if not job_id or not key.startswith(JOBS_PREFIX):
            return None
        job = self.jobs.get(job_id)
        if job is None or job.get("upload_key") != key:
            log.warning("upload names a job it does not belong to", extra={"key": key})
            return None
        return job

    def _link_job(self, job: dict[str, Any], asset: str) -> None:
        """The job now follows the asset (status, result). S3 checked the bytes against the
        job's SHA-256 and length when they were uploaded (signed headers), so they are its."""
        try:
            self.jobs.link_asset(str(job["job_id"]), asset, checksum_ok=True)
        except (ClientError, JobError) as err:
            # The asset is registered and runs; only the job's status view lags. Not worth
            # failing an asset whose bytes are safely stored.
            log.warning(
                "could not link the job to its asset",
                extra={"job_id": job["job_id"], "asset_id": asset, "error": str(err)},
            )

    def _check_upload(
        self,
        where: str,
        name: str,
        content_type: str,
        size: int,
        *,
        media_type: MediaType,
    ) -> str:
        """Refuse what is not a video or image file within the limits; the safe file name
        otherwise. The extension decides which it claims to be; the content type must agree
        (or be a generic one an uploader sends)."""
        suffix = PurePosixPath(name).suffix.lower()
        limit = self.settings.max_file_bytes
        if media_type == IMAGE:
            limit = min(limit, MAX_IMAGE_BYTES)
            if not (is_image_type(content_type) or is_generic_type(content_type)):
                raise InvalidInput(
                    f"{where}: content type {content_type!r} is not an image type, and the "
                    f"name says {suffix}"
                )
        elif suffix not in VIDEO_EXTENSIONS:
            accepted = sorted(VIDEO_EXTENSIONS | set(IMAGE_EXTENSION_TYPES))
            raise InvalidInput(
                f"{where}: {suffix or 'no extension'} is not a video or image file; expected "
                f"one of {', '.join(accepted)}"
            )
        elif not is_video_type(content_type):
            raise InvalidInput(f"{where}: content type {content_type!r} is not a video type")
        if size <= 0:
            raise InvalidInput(f"{where}: the file is empty")
        if size > limit:
            raise InvalidInput(f"{where}: {size} bytes, over the {limit}-byte limit")
        try:
            return safe_file_name(name)
        except UnsafeKeyError as err:
            raise InvalidInput(f"{where}: {err}") from err

    def _head_upload(
        self, bucket: str, key: str, *, version_id: str | None, etag: str | None
    ) -> dict[str, Any]:
        """HEAD exactly the object the event named (that version; that ETag, if given)."""
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        if etag:
            args["IfMatch"] = f'"{etag.strip(chr(34))}"'
        where = f"upload s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
        try:
            head: dict[str, Any] = self.s3.head_object(**args)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code"))
            if code in _NOT_FOUND:
                raise InvalidInput(
                    f"{where} does not exist (deleted, or not yet written)"
                ) from None
            if code in ("PreconditionFailed", "412"):
                raise InvalidInput(
                    f"{where} was overwritten after its event (ETag is no longer {etag}); "
                    "the newer object has its own event and run"
                ) from None
            raise
        return head

    # -- helpers -------------------------------------------------------------------------------
    def _commit(
        self, asset: IngestedAsset, *, checksum: str, source_id: str, extra: dict[str, Any]
    ) -> None:
        item = {
            "asset_id": asset.asset_id,
            "source": asset.source,
            "source_id": source_id,
            "campaign": asset.campaign,
            "checksum": checksum,
            "bucket": asset.bucket,
            "key": asset.key,
            "size_bytes": asset.size_bytes,
            "duration_s": Decimal(str(asset.duration_s)) if asset.duration_s is not None else None,
            "width": asset.width,
            "height": asset.height,
            # What the dashboard and the jobs API filter on, and the workflow routes on.
            "type": asset.media_type,
            **extra,
        }
        try:
            self.catalog.commit_asset({k: v for k, v in item.items() if v not in (None, "")})
        except (ClientError, BotoCoreError, TypeError, ValueError, ArithmeticError) as err:
            # ClientError: the transaction was refused; the others: the item itself could not
            # be serialized (DynamoDB takes no NaN and at most 38 digits).
            raise ItemError(
                f"{asset.source} {_shorten(source_id, 100)}: catalog commit failed: "
                f"{type(err).__name__}: {_shorten(str(err), 200)}",
                reason="catalog_commit_failed",
            ) from err

    def _undo(
        self, written: list[tuple[str, str | None]], source: str, source_id: str, new_id: str
    ) -> None:
        """Remove what this attempt wrote; each step is best effort so the others still run.

        The raw bucket is versioned: a delete without a version id would only hide the object
        behind a delete marker and keep its bytes until the noncurrent-version rule, so each
        object is deleted by the version this attempt created.
        """
        for key, version_id in written:
            extra = {"VersionId": version_id} if version_id else {}
            try:
                self.s3.delete_object(Bucket=self.settings.raw_bucket, Key=key, **extra)
            except (ClientError, BotoCoreError):
                log.exception("could not delete s3://%s/%s", self.settings.raw_bucket, key)
        try:
            self.catalog.release(source, source_id, new_id)
        except (ClientError, BotoCoreError):
            log.exception("could not release the claim on %s %s", source, source_id)

    def _put_sidecar(self, key: str, document: dict[str, Any]) -> str | None:
        """Write the attribution sidecar; returns its version id (None when unversioned)."""
        answer = self.s3.put_object(
            Bucket=self.settings.raw_bucket,
            Key=key,
            Body=json.dumps(document, ensure_ascii=False, indent=2, default=str).encode(),
            ContentType="application/json",
        )
        return _version(answer)

    def _version_of(self, key: str) -> str | None:
        """The version a copy just created at a fresh key (the managed copy does not say)."""
        return _version(self.s3.head_object(Bucket=self.settings.raw_bucket, Key=key))

    def _free_key(
        self,
        *,
        source: str,
        campaign: str,
        at: datetime,
        name: str,
        new_id: str,
        used: set[str],
        media_type: MediaType = VIDEO,
    ) -> str:
        """The layout key, made unique when two titles fold to the same safe name.

        Unique by *stem*, not only by key: an asset's renditions folder, labels.json and
        attribution sidecar are named by the stem, so ``x.webm`` and ``x.mp4`` in one batch
        folder would overwrite each other's outputs. Every committed asset has a sidecar, so an
        existing sidecar (or a stem this run already used) means the stem is taken.
        """
        key = raw_key(source, campaign, at, name, media_type)
        stems = {AssetKeys(k).attribution for k in used}
        sidecar = AssetKeys(key).attribution
        if key not in used and sidecar not in stems and not self._exists(sidecar):
            return key
        path = PurePosixPath(name)
        return raw_key(source, campaign, at, f"{path.stem}_{new_id[-8:]}{path.suffix}", media_type)

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.settings.raw_bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return False
            raise
        return True

    def _has_time(self, needed_s: float) -> bool:
        return self.budget.left() >= needed_s


def stored_type(name: str, content_type: str) -> str:
    """The content type an upload is stored with: the uploader's when it names the kind of
    file the extension says it is, else the extension's."""
    declared = content_type.split(";", maxsplit=1)[0].strip().lower()
    image = image_type_of(name)
    if image is not None:
        return declared if is_image_type(declared) else image
    if declared.startswith("video/"):
        return declared
    return EXTENSION_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


def object_metadata(
    *, source: str, source_id: str, source_url: str, license: str, checksum: str, asset: str
) -> dict[str, str]:
    """S3 user metadata must be ASCII: non-ASCII is percent-encoded, long values shortened."""

    def ascii_value(value: str) -> str:
        return quote(value, safe=" !#$&'()*+,/:;=?@[]~-._%")[:MAX_METADATA_VALUE]

    return {
        "source": ascii_value(source),
        "source-id": ascii_value(source_id),
        "source-url": ascii_value(source_url),
        "license": ascii_value(license),
        "checksum": ascii_value(checksum),
        "asset-id": ascii_value(asset),
    }


def file_name_for(candidate: Candidate) -> str:
    """A readable, safe file name; titles with nothing usable fall back to the source id.

    ``safe_file_name`` folds accents and replaces separators, control characters and ``..``; a
    title written only in a non-Latin script folds to nothing but its extension, which would make
    an unreadable (or extension-less) key, so it becomes ``<source>_<id><ext>`` instead.
    """
    suffix = PurePosixPath(candidate.file_name).suffix.lower()
    suffix = suffix if suffix and len(suffix) <= 6 and suffix[1:].isalnum() else ""
    try:
        name = safe_file_name(candidate.file_name)
    except UnsafeKeyError:
        name = ""
    kept_suffix = not suffix or name.lower().endswith(suffix)
    stem = name[: len(name) - len(suffix)] if kept_suffix else ""
    if not any(ch.isalnum() for ch in stem):
        try:
            return safe_file_name(f"{candidate.source}_{candidate.source_id}{suffix}")
        except UnsafeKeyError as err:
            raise Skip(
                f"{candidate.source} {candidate.title!r}: no safe file name ({err})",
                reason="unsafe_title",
            ) from err
    return name


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def named(source: str, message: str) -> str:
    """``source: message``, without repeating the name when the message already leads with it."""
    return message if message.startswith(f"{source}:") else f"{source}: {message}"


def _version(answer: dict[str, Any]) -> str | None:
    version = answer.get("VersionId")
    return str(version) if version and version != "null" else None


def unexpected(what: str, step: str, err: BaseException) -> str:
    """A readable line for an error nobody anticipated: what, where, and the error class."""
    return f"{what}: {step} failed unexpectedly ({type(err).__name__}: {_shorten(str(err), 200)})"
