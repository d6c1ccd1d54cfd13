"""Step 3c: turn one asset's transcode and analysis results into ``<stem>_labels.json``.

Pages through every Get* result (aggregating as it goes, see ``results.py``), adds the license
and attribution recorded at ingest, the rendition and thumbnail keys, and writes the document to
the processed zone next to the renditions. Then the catalog moves the asset to PROCESSED and
indexes its top labels. Only a small summary goes back to the state machine (payloads are capped
at 256 KB; the document lives in S3).

An asset whose license cannot be found is not published: ``AttributionMissing`` fails it, because
openly licensed media without its attribution is not openly licensed for us.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from lambdas.finalize.captions import (
    FIRST_SEGMENT_BYTES,
    CaptionError,
    captions_vtt_key,
    check_vtt,
    first_pts,
    media_playlist,
    relative,
    resolve,
    subtitles_key,
    uris,
    with_subtitles,
    with_timestamp_map,
    without_subtitles,
)
from lambdas.finalize.cost import UnitPrices, estimate_usd
from lambdas.finalize.results import LabelSummary, ModerationSummary, SegmentSummary, consume
from lambdas.finalize.settings import FinalizeSettings
from lambdas.finalize.speech import indexed_words
from lambdas.finalize.speech import section as speech_section
from lambdas.shared.catalog import Catalog
from lambdas.shared.documents import read_json_version
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput, require_strings, shown
from lambdas.shared.keys import AssetKeys
from lambdas.shared.metrics import add_metric_with_dimensions
from lambdas.shared.rekognition import FEATURES, RekognitionVideo
from lambdas.shared.slo import publish_outcome, publish_time_to_labels, time_to_labels_s
from lambdas.shared.transcribe import SPEECH

SPEECH_STATUSES = ("COMPLETED", "FAILED", "SKIPPED")

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

# 2.0: label instances (counted, clearest boxes kept), aliases and segment end times; the
# attribution holds only credit fields (license, ids and checksums live in one place each).
# 2.1: ``technical``, what the probe read from the file itself (containers and streams as the
# source has them; ``video`` stays what Rekognition saw of the file it analysed).
# The document's JSON Schema is published beside this module (labels.schema.json); every
# document the tests and the local world write is validated against it.
# 2.2: ``processing.analysed`` (what Rekognition read: the source itself or the proxy, and why)
# and ``processing.transcode_job_ids`` (every MediaConvert job of the asset, in order).
# 2.3: ``processing.run`` (the pipeline's first pass or a reprocess; the catalog keeps every
# run's version of the document).
# 2.4: ``processing.analysis.<feature>.kept_from`` (a reprocess of some analyses keeps the
# others' sections from the run that produced them).
# 2.5: ``speech`` (Amazon Transcribe: language and its score, a bounded transcript, timed
# segments, the VTT/SRT keys; or why there is none) and ``delivery`` (CloudFront URLs of the
# renditions, when the deployment serves them).
# 2.6: ``speech.captions`` (whether the HLS playlist references the VTT as a SUBTITLES group).
SCHEMA_VERSION = "2.6"
HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
RUN_KINDS = ("pipeline", "reprocess")
# The probe report's fields that belong in the document (its key and refusal do not).
TECHNICAL_FIELDS = (
    "container", "format_name", "duration_s", "bit_rate", "size_bytes", "video", "audio",
    "subtitles", "mediaconvert", "rekognition",
)  # fmt: skip
RETURNED_TOP_LABELS = 5
# The summary's fields that come from label detection (kept as they are when labels are not
# run again).
LABEL_SUMMARY_FIELDS = ("label_count", "label_detections", "min_label_confidence", "top_labels")
# Where ingest records the item's public page: sidecar, catalog record, uploaded object.
SOURCE_URL_FIELDS = ("source_page_url", "source_url", "uploaded_object")
# What a credit needs (TASL: title, author, source, license) as the document's attribution;
# the license itself, ids and checksums each have one place elsewhere in the document.
CREDIT_FIELDS = (
    "title", "author", "credit", "credit_line", "attribution_required", "usage_terms",
    "description", "file_page", "source_page_url",
)  # fmt: skip
# The source's own attribution text (Commons' ``Attribution`` field), when it gives one.
SOURCE_ATTRIBUTION_FIELD = "attribution"
# Where the file came from and what it was, from the sidecar, for the asset section.
PROVENANCE_FIELDS = ("download_url", "checksum", "sha1", "size_bytes", "retrieved_at")


class AttributionMissing(RuntimeError):
    """Neither the attribution sidecar nor the asset record names the license."""


class PreviousResultsMissing(RuntimeError):
    """A reprocess keeps some analyses' results from a labels.json version that is gone."""


def _text(mapping: Mapping[str, Any], name: str, where: str) -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}{name}: must be a non-empty string, got {value!r}")
    return value


def _transcode_job_ids(transcode: Mapping[str, Any]) -> tuple[str, ...]:
    """``job_ids`` (the workflow's, in order: the proxy job first when there is one), or a
    single ``job_id`` (a direct invocation); none is allowed for a direct invocation too."""
    ids = transcode.get("job_ids")
    if ids is None:
        single = transcode.get("job_id")
        return (str(single),) if single else ()
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise InvalidInput(
            f"transcode.job_ids: must be a list of MediaConvert job ids, got {shown(ids)}"
        )
    return tuple(ids)


def _analysed(analysed: object) -> dict[str, Any]:
    if not isinstance(analysed, Mapping) or analysed.get("input") not in ("source", "proxy"):
        raise InvalidInput('analysed.input: must be "source" or "proxy"')
    video = analysed.get("video")
    if not isinstance(video, Mapping):
        raise InvalidInput("analysed.video: must be the analysed object's bucket and key")
    require_strings(video, ("bucket", "key"), "analysed.video.")
    reason = analysed.get("reason")
    return {
        "input": analysed["input"],
        "bucket": video["bucket"],
        "key": video["key"],
        "reason": reason if isinstance(reason, str) else "",
    }


def _run(run: object) -> dict[str, str] | None:
    if run is None:
        return None
    if not isinstance(run, Mapping) or run.get("kind") not in RUN_KINDS:
        raise InvalidInput(f"run.kind: must be one of {list(RUN_KINDS)}, got {shown(run)}")
    return {"name": _text(run, "name", "run."), "kind": str(run["kind"])}


def _analysis_results(
    analysis: object,
) -> tuple[dict[str, str], list[str], dict[str, Any] | None]:
    """Each analysis' job id, the analyses a reprocess kept (a ``kept`` branch result), and the
    speech branch's result (None when the run had no speech branch)."""
    if not isinstance(analysis, list):
        raise InvalidInput("analysis: must be the list of the analysis results")
    job_ids: dict[str, str] = {}
    kept: list[str] = []
    speech: dict[str, Any] | None = None
    for i, result in enumerate(analysis):
        if isinstance(result, Mapping) and result.get("feature") == SPEECH:
            if result.get("status") not in SPEECH_STATUSES:
                raise InvalidInput(
                    f"analysis[{i}].status: must be one of {list(SPEECH_STATUSES)}, "
                    f"got {shown(result.get('status'))}"
                )
            speech = dict(result)
            continue
        if not isinstance(result, Mapping) or result.get("feature") not in FEATURES:
            raise InvalidInput(
                f"analysis[{i}].feature: must be one of {list(FEATURES)}, "
                f"got {result.get('feature') if isinstance(result, Mapping) else result!r}"
            )
        if result.get("kept") is True:
            kept.append(result["feature"])
        else:
            job_ids[result["feature"]] = _text(result, "job_id", f"analysis[{i}].")
    missing = [feature for feature in FEATURES if feature not in job_ids and feature not in kept]
    if missing:
        raise InvalidInput(f"analysis: no result for {', '.join(missing)}")
    return job_ids, kept, speech


def _previous(
    previous: object, kept: list[str], run: dict[str, str] | None
) -> dict[str, Any] | None:
    """Where a reprocess keeps the analyses it did not run (and its speech) from."""
    reprocess = run is not None and run["kind"] == "reprocess"
    if kept and not reprocess:
        raise InvalidInput(
            f"analysis: {', '.join(kept)} kept, but only a reprocess keeps results (run: {run})"
        )
    if not reprocess or (previous is None and not kept):
        return None
    if not isinstance(previous, Mapping):
        raise InvalidInput("previous: must name the labels.json version kept results come from")
    require_strings(previous, ("labels_key",), "previous.")
    if "segments" not in kept and "labels" in kept:
        raise InvalidInput(
            "analysis: segments ran again but labels were kept; each shot lists the labels "
            "seen in it, so segments are rerun with labels"
        )
    version = previous.get("version_id")
    return {
        "labels_key": str(previous["labels_key"]),
        "version_id": str(version) if version else None,
        "kept_from": {
            "run": previous.get("run") if isinstance(previous.get("run"), str) else None,
            "generated_at": str(previous.get("generated_at") or ""),
        },
    }


@dataclass(frozen=True)
class FinalizeRequest:
    asset: dict[str, Any]
    mp4_key: str
    hls_manifest_key: str
    thumbnails_prefix: str
    transcode_job_id: str | None
    job_ids: dict[str, str]
    # What the analyses read (``$.plan.analysis``); None for a direct invocation without one.
    analysed: dict[str, Any] | None = None
    transcode_job_ids: tuple[str, ...] = ()
    # The probe's report (``$.probe.technical``); None for a direct invocation without one.
    technical: dict[str, Any] | None = None
    # ``{"name": <execution name>, "kind": "pipeline" | "reprocess"}``; None outside a workflow.
    run: dict[str, str] | None = None
    # The analyses a reprocess did not run again, and the document version they are kept from.
    kept: tuple[str, ...] = ()
    previous: dict[str, Any] | None = None
    # The speech branch's result; None when the run had none (a reprocess keeps the last one).
    speech: dict[str, Any] | None = None

    @property
    def features_run(self) -> tuple[str, ...]:
        return tuple(feature for feature in FEATURES if feature in self.job_ids)

    @property
    def asset_id(self) -> str:
        return str(self.asset["asset_id"])

    @classmethod
    def parse(cls, event: object) -> FinalizeRequest:
        if not isinstance(event, Mapping):
            raise InvalidInput("finalize input must be an object")
        asset = event.get("asset")
        if not isinstance(asset, Mapping):
            raise InvalidInput("asset: must be the ingested asset object")
        for name in ("asset_id", "campaign", "bucket", "key", "source"):
            _text(asset, name, "asset.")
        transcode = event.get("transcode")
        if not isinstance(transcode, Mapping) or not isinstance(transcode.get("outputs"), Mapping):
            raise InvalidInput("transcode.outputs: must be the transcode plan's outputs object")
        outputs = transcode["outputs"]
        for name in ("mp4_key", "hls_manifest_key", "thumbnails_prefix"):
            _text(outputs, name, "transcode.outputs.")
        job_ids, kept, speech = _analysis_results(event.get("analysis"))
        run = _run(event.get("run"))
        previous = _previous(event.get("previous"), kept, run)
        transcode_jobs = _transcode_job_ids(transcode)
        probe = event.get("probe")
        if probe is not None and not isinstance(probe, Mapping):
            raise InvalidInput("probe: must be the probe's report object")
        analysed = event.get("analysed")
        if analysed is not None:
            analysed = _analysed(analysed)
        return cls(
            asset=dict(asset),
            mp4_key=outputs["mp4_key"],
            hls_manifest_key=outputs["hls_manifest_key"],
            thumbnails_prefix=outputs["thumbnails_prefix"],
            # The job that made the renditions people play (the last one).
            transcode_job_id=transcode_jobs[-1] if transcode_jobs else None,
            job_ids=job_ids,
            analysed=analysed,
            transcode_job_ids=transcode_jobs,
            technical=None
            if probe is None
            else {name: probe.get(name) for name in TECHNICAL_FIELDS if name in probe},
            run=run,
            kept=tuple(feature for feature in FEATURES if feature in kept),
            previous=previous,
            speech=speech,
        )


def source_attributes(technical: Mapping[str, Any] | None) -> dict[str, Any]:
    """What people filter the catalog on, from the probe's report of the source file: its video
    codec and height, whether it is HDR (PQ/HLG) and whether it has sound."""
    if not technical or not technical.get("video"):
        return {}
    video = technical["video"][0]
    attributes: dict[str, Any] = {
        "source_codec": str(video.get("codec")),
        "height": int(video.get("height") or 0),
        "has_audio": bool(technical.get("audio")),
    }
    if video.get("hdr"):
        attributes["hdr"] = str(video["hdr"])
    return attributes


def _plain(value: object) -> int | float:
    """DynamoDB hands numbers back as Decimal; JSON wants int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Storage:
    """The few S3 calls finalize makes."""

    def __init__(self, client: BaseClient | None = None) -> None:
        self._s3: Any = client or boto3.client("s3")

    def read_json(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> dict[str, Any] | None:
        return read_json_version(self._s3, bucket, key, version_id)[0]

    def write_json(self, bucket: str, key: str, document: Mapping[str, Any]) -> str | None:
        """Write ``document``; the new object version's id (the processed bucket is versioned,
        so every run's document stays readable by it)."""
        answer = self._s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(document, ensure_ascii=False, indent=1, default=_plain).encode("utf-8"),
            ContentType="application/json; charset=utf-8",
        )
        version = answer.get("VersionId")
        return str(version) if version and version != "null" else None

    def read_bytes(self, bucket: str, key: str, first: int | None = None) -> bytes | None:
        """The object's bytes (its ``first`` bytes only, when given); None when it does not
        exist."""
        ranged = {"Range": f"bytes=0-{first - 1}"} if first else {}
        try:
            return bytes(self._s3.get_object(Bucket=bucket, Key=key, **ranged)["Body"].read())
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def write_text(self, bucket: str, key: str, text: str, content_type: str) -> None:
        self._s3.put_object(
            Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type
        )

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)


def rights(
    asset_id: str,
    sidecar: Mapping[str, Any] | None,
    record: Mapping[str, Any] | None,
    where: str,
) -> dict[str, Any]:
    """License and attribution: the sidecar written at ingest, else the catalog's asset record."""
    source: Mapping[str, Any] | None = sidecar if sidecar and sidecar.get("license") else record
    if not source or not source.get("license"):
        raise AttributionMissing(
            f"asset {asset_id} has no license: the attribution sidecar {where} is missing or "
            "names none, and the catalog record has none either"
        )
    source_url = next((source[f] for f in SOURCE_URL_FIELDS if source.get(f)), None)
    attribution = {
        name: source[name] for name in CREDIT_FIELDS if source.get(name) not in (None, "")
    }
    if source.get(SOURCE_ATTRIBUTION_FIELD):
        attribution["source_attribution"] = source[SOURCE_ATTRIBUTION_FIELD]
    if source_url and "source_page_url" not in attribution:
        attribution["source_url"] = source_url
    provenance = {
        name: source[name] for name in PROVENANCE_FIELDS if source.get(name) not in (None, "")
    }
    if provenance.get("sha1") is not None and provenance.get("sha1") == provenance.get("checksum"):
        del provenance["sha1"]  # the checksum is the SHA-1 the source published
    return {
        "license": {"name": source.get("license"), "url": source.get("license_url")},
        "attribution": attribution,
        "provenance": provenance,
        "source_url": source_url,
        "title": source.get("title"),
        "source_id": source.get("source_id"),
        "from_sidecar": source is sidecar,
    }


def asset_section(
    asset_id: str, asset: Mapping[str, Any], credit: Mapping[str, Any]
) -> dict[str, Any]:
    """The document's ``asset``: which asset, where it came from and what identifies it."""
    return {
        "asset_id": asset_id,
        "source": asset["source"],
        "source_id": asset.get("source_id") or credit["source_id"],
        "campaign": asset["campaign"],
        "title": credit["title"],
        "raw_bucket": asset["bucket"],
        "raw_key": asset["key"],
        "source_url": credit["source_url"],
        **credit["provenance"],
    }


@dataclass(frozen=True)
class Analyses:
    """What the three analyses contribute to the document: each section either aggregated from
    this run's Rekognition results or, for an analysis a reprocess did not run again, taken as
    it was from the document version it keeps (``processing.analysis.<feature>.kept_from``)."""

    segments: SegmentSummary
    labels: dict[str, Any]  # the summary's label fields
    moderation: dict[str, Any]  # the summary's moderation section
    jobs: dict[str, Any]  # processing.analysis
    labels_video: dict[str, Any] | None
    moderation_video: dict[str, Any] | None


def _kept_document(request: FinalizeRequest, storage: Storage, bucket: str) -> dict[str, Any]:
    previous = request.previous or {}
    document = storage.read_json(bucket, previous["labels_key"], previous.get("version_id"))
    if document is None and not request.kept:
        # Only the speech section would have been kept: the run's own results stand without it.
        logger.warning(
            "the previous labels.json version is gone; no speech section is kept",
            extra={"asset_id": request.asset_id, "labels_key": previous["labels_key"]},
        )
        return {}
    if document is None:
        raise PreviousResultsMissing(
            f"asset {request.asset_id}: {', '.join(request.kept)} were to be kept from "
            f"s3://{bucket}/{previous['labels_key']} (version {previous.get('version_id')}), "
            "which is gone; reprocess every feature instead"
        )
    return document


def _analyses(
    request: FinalizeRequest,
    *,
    settings: FinalizeSettings,
    rekognition: RekognitionVideo,
    kept_document: Mapping[str, Any],
) -> Analyses:
    kept_summary = kept_document.get("summary") or {}
    kept_jobs = (kept_document.get("processing") or {}).get("analysis") or {}
    kept_from = (request.previous or {}).get("kept_from")
    jobs: dict[str, Any] = {}

    def keep(feature: str) -> None:
        # Kept twice, a section still names the run that produced it.
        jobs[feature] = {"kept_from": kept_from} | dict(kept_jobs.get(feature) or {})

    if "segments" in request.job_ids:
        segments = SegmentSummary()
        consume(rekognition.pages("segments", request.job_ids["segments"]), segments)
        jobs["segments"] = {
            "job_id": request.job_ids["segments"],
            "model_versions": segments.model_versions,
        }
    else:
        segments = SegmentSummary.from_document(
            kept_document, with_labels="labels" not in request.job_ids
        )
        keep("segments")
    segments.finish()

    labels_video = moderation_video = None
    if "labels" in request.job_ids:
        found = LabelSummary(min_confidence=settings.min_label_confidence, shots=segments)
        consume(rekognition.pages("labels", request.job_ids["labels"]), found)
        labels = {
            "label_count": len(found.labels),
            "label_detections": found.detections,
            "min_label_confidence": settings.min_label_confidence,
            "top_labels": found.top(settings.top_labels),
        }
        jobs["labels"] = {"job_id": request.job_ids["labels"], "model_version": found.model_version}
        labels_video = found.video
    else:
        labels = {name: kept_summary[name] for name in LABEL_SUMMARY_FIELDS}
        keep("labels")

    if "moderation" in request.job_ids:
        flags = ModerationSummary()
        consume(rekognition.pages("moderation", request.job_ids["moderation"]), flags)
        moderation = flags.to_dict()
        jobs["moderation"] = {
            "job_id": request.job_ids["moderation"],
            "model_version": flags.model_version,
        }
        moderation_video = flags.video
    else:
        moderation = dict(kept_summary["moderation"])
        keep("moderation")
    return Analyses(
        segments=segments,
        labels=labels,
        moderation=moderation,
        jobs={feature: jobs[feature] for feature in FEATURES},
        labels_video=labels_video,
        moderation_video=moderation_video,
    )


def _speech(
    request: FinalizeRequest, storage: Storage, kept_document: Mapping[str, Any]
) -> dict[str, Any] | None:
    """This run's speech section, or (a reprocess, which does not transcribe) the last one."""
    result = request.speech
    if result is None:
        kept = kept_document.get("speech")
        if not isinstance(kept, Mapping):
            return None
        kept_from = (request.previous or {}).get("kept_from")
        return {"kept_from": kept_from} | dict(kept)
    transcript = None
    location = result.get("transcript")
    if result.get("status") == "COMPLETED" and isinstance(location, Mapping):
        transcript = storage.read_json(str(location["bucket"]), str(location["key"]))
        if transcript is None:
            return {
                "status": "FAILED",
                "reason": f"the transcript s3://{location['bucket']}/{location['key']} that "
                "Transcribe reported is missing",
                "job_name": result.get("job_name"),
            }
    return speech_section(result, transcript)


def _delivery(
    base_url: str,
    request: FinalizeRequest,
    thumbnails: list[str],
    speech: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """Where players load the renditions from when CloudFront serves them (keys as paths)."""
    if not base_url:
        return None

    def url(key: object) -> str | None:
        return f"{base_url}/{quote(str(key))}" if key else None

    return {
        "base_url": base_url,
        "mp4_url": url(request.mp4_key),
        "hls_url": url(request.hls_manifest_key),
        "poster_url": url(_poster(thumbnails)),
        "vtt_url": url((speech or {}).get("vtt_key")),
    }


@dataclass(frozen=True)
class FinalizeResult:
    output: dict[str, Any]
    document: dict[str, Any]
    duration_s: float | None
    labels_found: int
    label_detections: int
    moderation_flags: int
    # When the catalog first recorded the asset (the time-to-labels objective's start).
    created_at: str | None = None


def _poster(thumbnails: list[str]) -> str | None:
    """A frame from the middle of the clip: the first one is often black or a title card."""
    return thumbnails[len(thumbnails) // 2] if thumbnails else None


def _unindex_stale(
    catalog: Catalog,
    asset_id: str,
    previous: Mapping[str, Any],
    labels: list[str],
    words: list[str],
) -> None:
    """Take out of the label and word indexes what the asset's last run put there and this one
    does not (the record lists both; on a first run it has neither)."""
    indexed, said = previous.get("top_labels"), previous.get("speech_words")
    if isinstance(indexed, list | tuple):
        stale = {str(label) for label in indexed} - set(labels)
        if stale:
            catalog.unindex_labels(asset_id, sorted(stale))
    if isinstance(said, list | tuple):
        gone = {str(word) for word in said} - set(words)
        if gone:
            catalog.unindex_words(asset_id, sorted(gone))


def finalize(
    request: FinalizeRequest,
    *,
    settings: FinalizeSettings,
    storage: Storage,
    rekognition: RekognitionVideo,
    catalog: Catalog,
    now: datetime | None = None,
) -> FinalizeResult:
    asset = request.asset
    keys = AssetKeys(asset["key"])

    # Rights first: an asset that cannot be credited is not worth paging through results for.
    sidecar_uri = f"s3://{asset['bucket']}/{keys.attribution}"
    sidecar = storage.read_json(asset["bucket"], keys.attribution)
    record = None if sidecar and sidecar.get("license") else catalog.get_asset(request.asset_id)
    credit = rights(request.asset_id, sidecar, record, sidecar_uri)
    if not credit["from_sidecar"]:
        logger.warning(
            "attribution sidecar missing or without license; using the catalog record",
            extra={"asset_id": request.asset_id, "sidecar": sidecar_uri},
        )

    # What a reprocess keeps (analyses not run again, and its speech) comes from the document
    # version Prepare read.
    kept_document = (
        _kept_document(request, storage, settings.processed_bucket)
        if request.kept or (request.speech is None and request.previous)
        else {}
    )
    found = _analyses(
        request, settings=settings, rekognition=rekognition, kept_document=kept_document
    )
    speech = _speech(request, storage, kept_document)
    segments, labels, moderation = found.segments, found.labels, found.moderation
    thumbnails = storage.list_keys(settings.processed_bucket, request.thumbnails_prefix)
    video = found.labels_video or found.moderation_video or segments.video
    if video is not None and segments.audio:
        video = {**video, "audio": segments.audio}
    duration_s = (video or {}).get("duration_s") or asset.get("duration_s")
    top = labels["top_labels"]
    generated_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if speech is not None:
        speech = {
            **speech,
            "captions": _captions(
                storage, settings.processed_bucket, request.hls_manifest_key, speech, duration_s
            ),
        }

    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": generated_at,
        "asset": asset_section(request.asset_id, asset, credit),
        "license": credit["license"],
        "attribution": credit["attribution"],
        "video": video,
        "technical": request.technical,
        "speech": speech,
        "summary": {
            **labels,
            "shots": [shot.to_dict() for shot in segments.shots],
            "technical_cues": segments.technical_cues,
            "moderation": moderation,
        },
        "delivery": _delivery(settings.delivery_base_url, request, thumbnails, speech),
        "renditions": {
            "bucket": settings.processed_bucket,
            "mp4_key": request.mp4_key,
            "hls_manifest_key": request.hls_manifest_key,
        },
        "thumbnails": {
            "bucket": settings.processed_bucket,
            "prefix": request.thumbnails_prefix,
            "poster_key": _poster(thumbnails),
            "keys": thumbnails,
        },
        "processing": {
            "transcode_job_id": request.transcode_job_id,
            "transcode_job_ids": list(request.transcode_job_ids),
            "analysed": request.analysed,
            "run": request.run,
            "analysis": found.jobs,
        },
    }
    version_id = storage.write_json(settings.processed_bucket, keys.labels, document)

    names = [label["name"] for label in top]
    # A reprocess replaces the asset's labels: what the last run indexed and this one does not
    # find any more leaves the index (on the first run the record has no labels yet).
    previous = record if record is not None else catalog.get_asset(request.asset_id)
    # The same for the spoken words (a reprocess keeps the speech, so usually the same words).
    words = (
        indexed_words(speech.get("segments") or [])
        if speech and speech.get("status") == "COMPLETED"
        else {}
    )
    _unindex_stale(catalog, request.asset_id, previous or {}, names, list(words))
    attributes: dict[str, Any] = {
        "labels_key": keys.labels,
        "top_labels": names,
        "mp4_key": request.mp4_key,
        "hls_key": request.hls_manifest_key,
        "moderation_flagged": moderation["flagged"],
    }
    if duration_s is not None:
        attributes["duration_s"] = Decimal(str(round(float(duration_s), 3)))
    attributes |= source_attributes(request.technical)
    if speech and speech.get("status") == "COMPLETED" and speech.get("language_code"):
        attributes["speech_language"] = str(speech["language_code"])
        if speech.get("vtt_key"):
            # The dashboard's player shows these captions.
            attributes["speech_vtt_key"] = str(speech["vtt_key"])
    if words:
        attributes["speech_words"] = sorted(words)
    if document["thumbnails"]["poster_key"]:
        attributes["thumbnail_key"] = document["thumbnails"]["poster_key"]
    catalog.set_status(
        request.asset_id,
        "PROCESSED",
        attributes=attributes,
        remove=() if words else ("speech_words",),
    )
    catalog.index_labels(asset, {label["name"]: label["max_confidence"] for label in top})
    catalog.index_words(asset, words)
    if request.run:
        catalog.add_result_version(
            request.asset_id,
            {
                "generated_at": generated_at,
                "run": request.run["name"],
                "kind": request.run["kind"],
                "labels_key": keys.labels,
                "labels_version_id": version_id,
                "top_labels": names[:RETURNED_TOP_LABELS],
                "analysed_input": (request.analysed or {}).get("input"),
                "label_count": labels["label_count"],
                "moderation_flagged": moderation["flagged"],
                "features": list(request.features_run),
            },
        )
        if request.run["kind"] == "reprocess":
            catalog.end_reprocess(request.asset_id, request.run["name"])

    return FinalizeResult(
        output={
            "asset_id": request.asset_id,
            "status": "PROCESSED",
            "labels_key": keys.labels,
            "top_labels": names[:RETURNED_TOP_LABELS],
        },
        document=document,
        duration_s=float(duration_s) if duration_s is not None else None,
        labels_found=labels["label_count"],
        label_detections=labels["label_detections"],
        moderation_flags=len(moderation["flags"]),
        created_at=(previous or {}).get("created_at"),
    )


def _captions(
    storage: Storage,
    bucket: str,
    playlist_key: str,
    speech: Mapping[str, Any],
    duration_s: float | None,
) -> dict[str, Any]:
    """Reference the speech's VTT from the HLS playlist, or say why not (never fails the asset).

    The VTT copy and the subtitle playlist are written before the multivariant playlist names
    them; when there are no captions to reference, a group an earlier run added is removed.
    """
    body = storage.read_bytes(bucket, playlist_key)
    if body is None:
        return {"status": "NOT_REFERENCED", "reason": f"the HLS playlist {playlist_key} is gone"}
    playlist = body.decode("utf-8", errors="replace")
    vtt_key = speech.get("vtt_key") if speech.get("status") == "COMPLETED" else None
    language = str(speech.get("language_code") or "")
    try:
        if not vtt_key or not language:
            raise CaptionError(
                "the transcript has no words, so no captions"
                if speech.get("status") == "COMPLETED"
                else f"speech {str(speech.get('status') or 'SKIPPED').lower()}: no captions"
            )
        vtt = storage.read_bytes(bucket, str(vtt_key))
        if vtt is None:
            raise CaptionError(f"the VTT {vtt_key} does not exist")
        cues = check_vtt(vtt)
        pts = _first_pts(storage, bucket, playlist_key, playlist)
        media_key = subtitles_key(playlist_key, language)
        copy_key = captions_vtt_key(media_key)
        updated = with_subtitles(
            playlist, uri=relative(playlist_key, media_key), language=language, name=language
        )
    except CaptionError as err:
        stripped = without_subtitles(playlist)
        if stripped != playlist:
            storage.write_text(bucket, playlist_key, stripped, HLS_CONTENT_TYPE)
        return {"status": "NOT_REFERENCED", "reason": str(err)}
    length = float(duration_s) if duration_s else cues.end_s
    storage.write_text(bucket, copy_key, with_timestamp_map(vtt, pts), VTT_CONTENT_TYPE)
    storage.write_text(
        bucket, media_key, media_playlist(media_key, copy_key, length), HLS_CONTENT_TYPE
    )
    storage.write_text(bucket, playlist_key, updated, HLS_CONTENT_TYPE)
    return {"status": "REFERENCED", "playlist_key": media_key, "cues": cues.count}


def _first_pts(storage: Storage, bucket: str, playlist_key: str, playlist: str) -> int:
    """The first presentation timestamp of the first rung's first segment (the captions' zero)."""
    variants = uris(playlist)
    if not variants:
        raise CaptionError("the HLS playlist lists no variant streams")
    variant_key = resolve(playlist_key, variants[0])
    variant = storage.read_bytes(bucket, variant_key)
    segments = uris(variant.decode("utf-8", errors="replace")) if variant else []
    if not segments:
        raise CaptionError(f"the variant playlist {variant_key} has no segments")
    segment_key = resolve(variant_key, segments[0])
    start = storage.read_bytes(bucket, segment_key, first=FIRST_SEGMENT_BYTES)
    pts = first_pts(start) if start else None
    if pts is None:
        raise CaptionError(f"the segment {segment_key} has no MPEG-TS timestamp to align cues to")
    return pts


@functools.cache
def _dependencies() -> tuple[FinalizeSettings, Storage, RekognitionVideo, Catalog]:
    settings = FinalizeSettings.from_env()
    return settings, Storage(), RekognitionVideo(), Catalog(settings.catalog_table)


def publish_cost(
    duration_s: float | None,
    *,
    campaign: str,
    prices: UnitPrices | None,
    features: int = len(FEATURES),
    transcoded: bool = True,
    transcribed_s: float = 0.0,
) -> float | None:
    """Estimated USD for this asset (or this reprocess of it), overall and per campaign (its own
    dimension set)."""
    if prices is None or duration_s is None:
        return None
    usd = estimate_usd(
        duration_s, prices, features=features, transcoded=transcoded, transcribed_s=transcribed_s
    )
    metrics.add_metric(name="EstimatedCostUSD", unit=MetricUnit.Count, value=usd)
    add_metric_with_dimensions(
        metrics, name="EstimatedCostUSD", unit=MetricUnit.Count, value=usd, campaign=campaign
    )
    return usd


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = FinalizeRequest.parse(event)
    settings, storage, rekognition, catalog = _dependencies()
    result = finalize(
        request, settings=settings, storage=storage, rekognition=rekognition, catalog=catalog
    )
    metrics.add_metadata(key="asset_id", value=request.asset_id)
    # A reprocess is no new asset, and it transcodes nothing.
    reprocess = request.run is not None and request.run["kind"] == "reprocess"
    if reprocess:
        metrics.add_metric(name="AssetsReprocessed", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="AssetsProcessed", unit=MetricUnit.Count, value=1)
        publish_outcome("processed")
        elapsed = time_to_labels_s(result.created_at)
        if elapsed is not None:
            in_objective = result.duration_s is None or result.duration_s <= settings.slo_clip_max_s
            publish_time_to_labels(elapsed, in_objective=in_objective)
    features = len(request.features_run)
    # A transcription this run completed is billed for the clip's audio (even when its
    # transcript could not be read afterwards); a kept one is not.
    transcribed_s = (
        float(result.duration_s or 0)
        if (request.speech or {}).get("status") == "COMPLETED"
        else 0.0
    )
    if result.duration_s is not None:
        minutes = result.duration_s / 60
        if not reprocess:
            metrics.add_metric(name="VideoMinutesTranscoded", unit=MetricUnit.Count, value=minutes)
        # Rekognition bills each feature per video minute: every analysis run, once each.
        metrics.add_metric(
            name="VideoMinutesAnalyzed", unit=MetricUnit.Count, value=minutes * features
        )
        if transcribed_s:
            metrics.add_metric(
                name="TranscribeMinutes", unit=MetricUnit.Count, value=transcribed_s / 60
            )
    metrics.add_metric(name="LabelsFound", unit=MetricUnit.Count, value=result.labels_found)
    metrics.add_metric(name="LabelDetections", unit=MetricUnit.Count, value=result.label_detections)
    metrics.add_metric(name="ModerationFlags", unit=MetricUnit.Count, value=result.moderation_flags)
    publish_cost(
        result.duration_s,
        campaign=str(request.asset.get("campaign", "unknown")),
        prices=UnitPrices.parse(settings.unit_prices),
        features=features,
        transcoded=not reprocess,
        transcribed_s=transcribed_s,
    )
    logger.info(
        "asset finalized",
        extra={
            **result.output,
            "labels_found": result.labels_found,
            "moderation_flags": result.moderation_flags,
        },
    )
    return result.output
