"""Real-shaped events and responses for the pipeline handler tests, and botocore model checks.

Everything here mirrors a documented AWS shape: Rekognition Get* pages (validated against
botocore's model wherever they are used), Rekognition's SNS completion message, the SNS Lambda
event, and MediaConvert's job description.
"""

from __future__ import annotations

import functools
import json
import re
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import moto  # noqa: F401 - loaded first, so the session below is intercepted by moto
from botocore.validate import ParamValidator

from localworld.mediaconvert import job_description
from localworld.rekognition import completion_notice, succeeded_page, video_metadata

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "catalog"
RAW_BUCKET = "media-raw-test"
PROCESSED_BUCKET = "media-processed-test"
CONFIG_PARAMETER = "/media-pipeline/dev/campaigns"
REKOGNITION_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:rekognition-completions"
REKOGNITION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/rekognition-publish"
MEDIACONVERT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mediaconvert"
DEPLOYMENT = "media-pipeline-dev"
ASSET_ID = "wikimedia-3f2a9c1e8b7d6a5f4e3d"
RAW_KEY = "video/wikimedia/travel/20250101_060000/Lisbon_tram_28.webm"


def ingested_asset(**overrides: Any) -> dict[str, Any]:
    """One asset exactly as the ingest step hands it to the Map."""
    asset: dict[str, Any] = {
        "bucket": RAW_BUCKET,
        "key": RAW_KEY,
        "asset_id": ASSET_ID,
        "source": "wikimedia",
        "campaign": "travel",
        "duration_s": 93.5,
        "size_bytes": 48_213_771,
        "width": 1920,
        "height": 1080,
    }
    asset.update(overrides)
    return asset


# -- botocore model checks ----------------------------------------------------------------------


# One session for the whole run: creating sessions and clients re-reads botocore's data and
# copies its event hooks (tens of ms each). moto intercepts them whenever a mock is active.
SESSION = boto3.Session(region_name=REGION)


@functools.cache
def aws_client(service: str) -> Any:
    return SESSION.client(service)  # type: ignore[call-overload]


@functools.cache
def dynamodb() -> Any:
    return SESSION.resource("dynamodb")


def service_model(service: str) -> Any:
    return SESSION._session.get_service_model(service)


def _scalar_errors(value: Any, shape: Any, path: str) -> list[str]:
    meta, errors = shape.metadata, []
    if shape.type_name == "string":
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} not in enum {shape.enum}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: length {len(value)} > max {meta['max']}")
        if "pattern" in meta and not re.search(meta["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {meta['pattern']}")
    elif shape.type_name in ("integer", "long", "double", "float"):
        if "max" in meta and value > meta["max"]:
            errors.append(f"{path}: {value} > max {meta['max']}")
        if "min" in meta and value < meta["min"]:
            errors.append(f"{path}: {value} < min {meta['min']}")
    return errors


def model_errors(params: Any, shape: Any, path: str = "") -> list[str]:
    """What ParamValidator does not check: enums, maximums, lengths and patterns."""
    errors: list[str] = []
    if shape.type_name == "structure":
        for name, value in params.items():
            if name in shape.members:
                errors += model_errors(value, shape.members[name], f"{path}.{name}")
    elif shape.type_name == "list":
        if "max" in shape.metadata and len(params) > shape.metadata["max"]:
            errors.append(f"{path}: {len(params)} items > max {shape.metadata['max']}")
        for i, item in enumerate(params):
            errors += model_errors(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map":
        for key, value in params.items():
            errors += model_errors(value, shape.value, f"{path}[{key}]")
    else:
        errors += _scalar_errors(params, shape, path)
    return errors


def validate(params: Any, shape: Any) -> list[str]:
    """Every problem botocore's model finds in ``params``: ParamValidator plus the extra checks."""
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    return problems + model_errors(params, shape)


# -- Rekognition Video: real-shaped results ---------------------------------------------------

# The clip every builder describes unless told otherwise (1 min 33.5 s).
VIDEO_MS = 93_500


def label_detection(
    timestamp: int,
    name: str,
    confidence: float,
    parents: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    *,
    boxes: tuple[tuple[float, float, float, float, float], ...] = (),
    aliases: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``boxes``: (confidence, left, top, width, height) per instance Rekognition found."""
    return {
        "Timestamp": timestamp,
        "Label": {
            "Name": name,
            "Confidence": confidence,
            "Instances": [
                {
                    "BoundingBox": {"Width": w, "Height": h, "Left": left, "Top": top},
                    "Confidence": conf,
                }
                for conf, left, top, w, h in boxes
            ],
            "Parents": [{"Name": p} for p in parents],
            "Aliases": [{"Name": a} for a in aliases],
            "Categories": [{"Name": c} for c in categories],
        },
    }


def label_page(
    labels: list[dict[str, Any]],
    *,
    job_id: str,
    next_token: str | None = None,
    duration_ms: int = VIDEO_MS,
) -> dict[str, Any]:
    return _page("labels", labels, job_id, next_token, duration_ms)


def moderation_detection(
    timestamp: int, name: str, confidence: float, parent: str, level: int
) -> dict[str, Any]:
    return {
        "Timestamp": timestamp,
        "ModerationLabel": {
            "Confidence": confidence,
            "Name": name,
            "ParentName": parent,
            "TaxonomyLevel": level,
        },
        "ContentTypes": [],
    }


def moderation_page(
    detections: list[dict[str, Any]], *, job_id: str, next_token: str | None = None
) -> dict[str, Any]:
    return _page("moderation", detections, job_id, next_token)


def smpte(ms: int, fps: int = 30) -> str:
    seconds, rest = divmod(ms, 1000)
    return (
        f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:"
        f"{rest * fps // 1000:02d}"
    )


def _segment_timing(start_ms: int, end_ms: int) -> dict[str, Any]:
    """The timing fields every GetSegmentDetection segment carries, whatever its type."""
    return {
        "StartTimestampMillis": start_ms,
        "EndTimestampMillis": end_ms,
        "DurationMillis": end_ms - start_ms,
        "StartTimecodeSMPTE": smpte(start_ms),
        "EndTimecodeSMPTE": smpte(end_ms),
        "DurationSMPTE": smpte(end_ms - start_ms),
        "StartFrameNumber": start_ms * 30 // 1000,
        "EndFrameNumber": end_ms * 30 // 1000,
        "DurationFrames": (end_ms - start_ms) * 30 // 1000,
    }


def shot_segment(index: int, start_ms: int, end_ms: int) -> dict[str, Any]:
    return {
        "Type": "SHOT",
        **_segment_timing(start_ms, end_ms),
        "ShotSegment": {"Index": index, "Confidence": 99.1},
    }


def cue_segment(kind: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    return {
        "Type": "TECHNICAL_CUE",
        **_segment_timing(start_ms, end_ms),
        "TechnicalCueSegment": {"Type": kind, "Confidence": 95.5},
    }


def segment_page(
    segments: list[dict[str, Any]], *, job_id: str, next_token: str | None = None
) -> dict[str, Any]:
    return _page("segments", segments, job_id, next_token)


def _page(
    feature: str,
    items: list[dict[str, Any]],
    job_id: str,
    next_token: str | None,
    duration_ms: int = VIDEO_MS,
) -> dict[str, Any]:
    """A page of the proxy's results as the Rekognition stand-in answers it (one shape for both)."""
    return succeeded_page(
        feature,
        items,
        job_id=job_id,
        video={"S3Object": {"Bucket": PROCESSED_BUCKET, "Name": "proxy.mp4"}},
        metadata=video_metadata(duration_ms),
        job_tag=f"{ASSET_ID}-{feature}",
        next_token=next_token,
        audio=[
            {
                "Codec": "aac",
                "DurationMillis": duration_ms,
                "SampleRate": 48_000,
                "NumberOfChannels": 2,
            }
        ],
        segment_types=("TECHNICAL_CUE", "SHOT"),
    )


class Page(dict):  # type: ignore[type-arg]
    """A response page that can be watched with a weak reference (plain dicts cannot)."""


class PagedRekognition:
    """Get* pages made on demand, for result sets too big to write out by hand.

    ``results`` maps an operation (``get_label_detection``) to ``(page count, make_page(i))``.
    Every request is validated against the operation's input shape and the first and last page
    of each result against its output shape. ``max_alive`` counts how many earlier pages were
    still referenced when a new one was requested: 1 means the caller only ever holds the page it
    is working on, which is what "aggregate while paging" promises.
    """

    def __init__(self, results: dict[str, tuple[int, Callable[[int], dict[str, Any]]]]) -> None:
        self.results = results
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.alive: list[weakref.ref[Page]] = []
        self.max_alive = 0
        self._model = service_model("rekognition")

    def __getattr__(self, name: str) -> Any:
        if name not in self.results:
            raise AttributeError(name)
        return lambda **params: self._page(name, params)

    def _page(self, operation: str, params: dict[str, Any]) -> Page:
        model = self._model.operation_model("".join(p.title() for p in operation.split("_")))
        problems = validate(params, model.input_shape)
        assert not problems, problems
        self.calls.append((operation, params))
        total, make_page = self.results[operation]
        index = int(params["NextToken"].split("-")[-1]) if "NextToken" in params else 0
        self.max_alive = max(self.max_alive, sum(1 for ref in self.alive if ref() is not None))
        body = make_page(index)
        if index + 1 < total:
            body["NextToken"] = f"{operation}-{index + 1}"
        if index in (0, total - 1):
            problems = validate(body, model.output_shape)
            assert not problems, problems
        page = Page(body)
        self.alive.append(weakref.ref(page))
        return page


# -- SNS and MediaConvert shapes ------------------------------------------------------------------


def rekognition_notice(
    *, job_id: str, status: str, api: str, job_tag: str | None, video_key: str = "proxy.mp4"
) -> dict[str, Any]:
    """The message Rekognition publishes to SNS when a video job ends (the stand-in's shape)."""
    return completion_notice(
        job_id=job_id,
        status=status,
        api=api,
        timestamp_ms=1_735_711_200_123,
        bucket=PROCESSED_BUCKET,
        key=video_key,
        job_tag=job_tag,
    )


def sns_event(*messages: dict[str, Any] | str) -> dict[str, Any]:
    """The Lambda event SNS delivers: one record per notice."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{REKOGNITION_TOPIC_ARN}:0b0c5b4e-3f7a-4d0e-9d8a-1",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"95df01b4-ee98-5cb9-9903-4c221d41eb5{i}",
                    "TopicArn": REKOGNITION_TOPIC_ARN,
                    "Subject": None,
                    "Message": m if isinstance(m, str) else json.dumps(m),
                    "Timestamp": "2025-01-01T06:40:00.123Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
            for i, m in enumerate(messages)
        ]
    }


def mediaconvert_job(
    settings: dict[str, Any],
    user_metadata: dict[str, str],
    *,
    job_id: str = "1735711260123-ab1c2d",
    status: str = "COMPLETE",
    error_code: int | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """A GetJob response, which is what ``mediaconvert:createJob.sync`` returns when it ends:
    the stand-in's job description, moved on to ``status``."""
    request = {
        "Role": MEDIACONVERT_ROLE_ARN,
        "Settings": settings,
        "UserMetadata": user_metadata,
        "StatusUpdateInterval": "SECONDS_60",
    }
    job = job_description(
        request,
        job_id=job_id,
        region=REGION,
        account=ACCOUNT,
        submitted=datetime(2025, 1, 1, 6, 1, tzinfo=UTC),
    )
    job["Status"] = status
    job["JobPercentComplete"] = 100 if status == "COMPLETE" else 42
    if status == "COMPLETE":
        job["OutputGroupDetails"] = [
            {
                "OutputDetails": [
                    {
                        "DurationInMs": VIDEO_MS,
                        "VideoDetails": {
                            "HeightInPx": output["VideoDescription"]["Height"],
                            "WidthInPx": output["VideoDescription"]["Height"] * 16 // 9,
                        },
                    }
                    for output in group["Outputs"]
                ]
            }
            for group in settings["OutputGroups"]
        ]
    if error_code is not None:
        job["ErrorCode"] = error_code
        job["ErrorMessage"] = error_message or ""
    return {"Job": job}


@functools.cache
def ts_segment(start_s: float = 2.0) -> bytes:
    """A real MPEG-TS segment (H.264 + AAC, a fifth of a second) whose media starts at
    ``start_s``, as an HLS rung's first segment is: muxed by FFmpeg through PyAV."""
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 40, np.uint8), "rgb24")
            frame.pts = round(start_s * 25) + i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for i in range(10):
            samples = av.AudioFrame.from_ndarray(
                np.zeros((2, 1024), np.float32), format="fltp", layout="stereo"
            )
            samples.sample_rate, samples.pts = 48000, round(start_s * 48000) + i * 1024
            out.mux(audio.encode(samples))
        out.mux(audio.encode())
    return buffer.getvalue()
