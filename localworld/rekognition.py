"""A Rekognition Video stand-in for moto: Start*/Get* for labels, moderation and segments.

moto's Rekognition has no label, moderation or segment detection. ``install()`` adds those six
operations to moto's ``RekognitionResponse`` (so handlers' own boto3 clients reach them, exactly
as they would reach AWS), backed by ``RekognitionVideoStandIn``:

* ``Start*`` checks the request against botocore's model, checks that the video exists in S3
  (``InvalidS3ObjectException`` otherwise), honours ``ClientRequestToken`` (the same token returns
  the same ``JobId``) and starts a job that runs for ``job_duration_s`` simulated seconds.
* When the job ends, Rekognition's completion message
  (``{"JobId","Status","API","JobTag","Timestamp","Video":{"S3ObjectName","S3Bucket"}}``) is
  published to the ``NotificationChannel`` topic through moto's SNS, whose Lambda subscription
  delivers it (see ``world``) to the callback function.
* ``Get*`` answers ``IN_PROGRESS`` until then, and afterwards pages (``MaxResults``/``NextToken``)
  through deterministic, real-shaped detections: labels with parents and categories, moderation
  labels, shots and technical cues, with ``VideoMetadata`` from the video's duration.
"""

# moto and CDK are imported where they are patched or used, not at import time; patches are
# installed once per process (module-level flags).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import boto3
from botocore.validate import ParamValidator

from localworld.clock import SimClock
from localworld.media import MediaLibrary

API_BY_START = {
    "StartLabelDetection": ("labels", "GetLabelDetection"),
    "StartContentModeration": ("moderation", "GetContentModeration"),
    "StartSegmentDetection": ("segments", "GetSegmentDetection"),
}
START_BY_GET = {get: start for start, (_feature, get) in API_BY_START.items()}

# (name, parents, categories): what a travel/city/nature clip shows.
LABELS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Person", (), ("Person Description",)),
    ("City", ("Urban", "Outdoors"), ("Buildings and Architecture",)),
    ("Street", ("Road", "City", "Urban"), ("Transport and Logistics",)),
    ("Tram", ("Vehicle", "Transportation"), ("Vehicles and Automotive",)),
    ("Building", ("Architecture",), ("Buildings and Architecture",)),
    ("Water", (), ("Nature and Outdoors",)),
    ("Boat", ("Vehicle", "Transportation"), ("Vehicles and Automotive",)),
    ("Sky", ("Outdoors", "Nature"), ("Nature and Outdoors",)),
    ("Tree", ("Plant",), ("Plants and Flowers",)),
    ("Mountain", ("Outdoors", "Nature"), ("Nature and Outdoors",)),
    ("Computer", ("Electronics",), ("Technology and Computing",)),
    ("Car", ("Vehicle", "Transportation"), ("Vehicles and Automotive",)),
)
FRAME_STEP_MS = 1000
SHOT_MS = 8000


class RekognitionError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class VideoJob:
    job_id: str
    api: str
    feature: str
    request: dict[str, Any]
    started_at: float
    status: str = "IN_PROGRESS"
    status_message: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: int = 0


def _digest(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12], 16)


def video_metadata(duration_ms: int) -> dict[str, Any]:
    """``VideoMetadata`` as every Get* page repeats it; the unit tests' builders use it too."""
    return {
        "Codec": "h264",
        "DurationMillis": duration_ms,
        "Format": "QuickTime / MOV",
        "FrameRate": 29.97003,
        "FrameHeight": 720,
        "FrameWidth": 1280,
        "ColorRange": "LIMITED",
    }


def _smpte(ms: int, fps: int = 30) -> str:
    seconds, rest = divmod(ms, 1000)
    frames = rest * fps // 1000
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{frames:02d}"


def label_results(key: str, duration_ms: int) -> list[dict[str, Any]]:
    """Four to six labels per clip, each seen over a stretch of frames, in time order."""
    seed = _digest(key)
    count = 4 + seed % 3
    chosen = [LABELS[(seed // (7**i) + i * 5) % len(LABELS)] for i in range(count)]
    chosen = list(dict.fromkeys(chosen))
    detections: list[dict[str, Any]] = []
    for timestamp in range(0, duration_ms, FRAME_STEP_MS):
        for rank, (name, parents, categories) in enumerate(chosen):
            if (timestamp // FRAME_STEP_MS + rank) % (rank + 1) != 0:
                continue
            confidence = round(
                99.5 - rank * 6.5 - (_digest(key, name, str(timestamp)) % 50) / 10, 3
            )
            detections.append(
                {
                    "Timestamp": timestamp,
                    "Label": {
                        "Name": name,
                        "Confidence": confidence,
                        "Instances": [],
                        "Parents": [{"Name": p} for p in parents],
                        "Aliases": [],
                        "Categories": [{"Name": c} for c in categories],
                    },
                }
            )
    return detections


def moderation_results(key: str, duration_ms: int) -> list[dict[str, Any]]:
    """Most clips are clean; one in four shows a drink somewhere (a real, mild flag)."""
    if _digest(key, "moderation") % 4:
        return []
    at = (_digest(key, "at") % max(1, duration_ms // 1000)) * 1000
    return [
        {
            "Timestamp": at,
            "ModerationLabel": {
                "Confidence": 81.25,
                "Name": "Drinking",
                "ParentName": "Alcohol",
                "TaxonomyLevel": 2,
            },
            "ContentTypes": [],
        },
        {
            "Timestamp": at,
            "ModerationLabel": {
                "Confidence": 81.25,
                "Name": "Alcohol",
                "ParentName": "",
                "TaxonomyLevel": 1,
            },
            "ContentTypes": [],
        },
    ]


def segment_results(duration_ms: int) -> list[dict[str, Any]]:
    segments: list[dict[str, Any]] = []

    def timing(start: int, end: int) -> dict[str, Any]:
        return {
            "StartTimestampMillis": start,
            "EndTimestampMillis": end,
            "DurationMillis": end - start,
            "StartTimecodeSMPTE": _smpte(start),
            "EndTimecodeSMPTE": _smpte(end),
            "DurationSMPTE": _smpte(end - start),
            "StartFrameNumber": start * 30 // 1000,
            "EndFrameNumber": end * 30 // 1000,
            "DurationFrames": (end - start) * 30 // 1000,
        }

    segments.append(
        {
            "Type": "TECHNICAL_CUE",
            **timing(0, min(1000, duration_ms)),
            "TechnicalCueSegment": {"Type": "BlackFrames", "Confidence": 97.5},
        }
    )
    for index, start in enumerate(range(0, duration_ms, SHOT_MS)):
        end = min(duration_ms, start + SHOT_MS) - 1
        segments.append(
            {
                "Type": "SHOT",
                **timing(start, end),
                "ShotSegment": {"Index": index, "Confidence": 99.1},
            }
        )
    return sorted(segments, key=lambda s: (s["StartTimestampMillis"], s["Type"]))


class Detections(NamedTuple):
    """What tells a label job from a moderation job; filtering and paging them is the same.

    Both answer detections with a ``Confidence`` that ``MinConfidence`` filters, and ``Get*``
    pages them beside ``VideoMetadata`` and ``GetRequestMetadata``; only these names differ.
    """

    results: Callable[[str, int], list[dict[str, Any]]]  # (video key, duration ms) -> detections
    item: str  # the key of each detection that holds its Confidence
    page_key: str
    model_version_key: str
    model_version: str


DETECTIONS = {
    "labels": Detections(label_results, "Label", "Labels", "LabelModelVersion", "3.0"),
    "moderation": Detections(
        moderation_results,
        "ModerationLabel",
        "ModerationLabels",
        "ModerationModelVersion",
        "7.0",
    ),
}


class RekognitionVideoStandIn:
    def __init__(
        self,
        *,
        clock: SimClock,
        media: MediaLibrary,
        object_exists: Callable[[str, str], bool],
        publish: Callable[[str, str], None],
        job_duration_s: float = 60.0,
        fail_videos: dict[str, str] | None = None,
    ) -> None:
        self.clock = clock
        self.media = media
        self.object_exists = object_exists
        self.publish = publish
        self.job_duration_s = job_duration_s
        # Video key fragment -> StatusMessage of a job that ends FAILED.
        self.fail_videos = dict(fail_videos or {})
        self.jobs: dict[str, VideoJob] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.notices: list[dict[str, Any]] = []
        self.get_calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._model = boto3.session.Session()._session.get_service_model("rekognition")

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        shape = self._model.operation_model(operation).input_shape
        if shape is None:
            raise RekognitionError("InvalidParameterException", f"{operation} takes no input")
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise RekognitionError("InvalidParameterException", report.generate_report())

    # -- Start* -----------------------------------------------------------------------------------
    def start(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self._validate(operation, params)
        feature, _get = API_BY_START[operation]
        token = params.get("ClientRequestToken")
        with self._lock:
            if token and (operation, token) in self.tokens:
                return {"JobId": self.tokens[(operation, token)]}
            video = params["Video"]["S3Object"]
            bucket, key = video["Bucket"], video["Name"]
            if not self.object_exists(bucket, key):
                raise RekognitionError(
                    "InvalidS3ObjectException",
                    "Unable to get object metadata from S3. Check object key, region and/or "
                    "access permissions.",
                )
            job_id = hashlib.sha256(
                f"{operation}\x1f{token or ''}\x1f{len(self.jobs)}\x1f{bucket}/{key}".encode()
            ).hexdigest()
            job = VideoJob(job_id, operation, feature, params, self.clock.seconds())
            self.jobs[job_id] = job
            if token:
                self.tokens[(operation, token)] = job_id
        self.clock.call_later(self.job_duration_s, lambda: self._finish(job))
        return {"JobId": job_id}

    def _finish(self, job: VideoJob) -> None:
        video = job.request["Video"]["S3Object"]
        bucket, key = video["Bucket"], video["Name"]
        duration_ms = int(self.media.duration_at(bucket, key) * 1000)
        failure = next((msg for frag, msg in self.fail_videos.items() if frag in key), None)
        with self._lock:
            job.duration_ms = duration_ms
            if failure is not None:
                job.status, job.status_message = "FAILED", failure
            else:
                job.status = "SUCCEEDED"
                detections = DETECTIONS.get(job.feature)
                if detections is not None:
                    minimum = float(job.request.get("MinConfidence", 50))
                    job.results = [
                        d
                        for d in detections.results(key, duration_ms)
                        if d[detections.item]["Confidence"] >= minimum
                    ]
                else:
                    wanted = set(job.request.get("SegmentTypes", []))
                    job.results = [s for s in segment_results(duration_ms) if s["Type"] in wanted]
        channel = job.request.get("NotificationChannel")
        if not channel:
            return
        notice: dict[str, Any] = {
            "JobId": job.job_id,
            "Status": job.status,
            "API": job.api,
            "Timestamp": self.clock.epoch_ms(),
            "Video": {"S3ObjectName": key, "S3Bucket": bucket},
        }
        if job.request.get("JobTag"):
            notice["JobTag"] = job.request["JobTag"]
        if job.status_message:
            notice["Message"] = job.status_message
        self.notices.append(notice)
        self.publish(channel["SNSTopicArn"], json.dumps(notice))

    # -- Get* -------------------------------------------------------------------------------------
    def get(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self._validate(operation, params)
        self.get_calls.append((operation, params))
        with self._lock:
            job = self.jobs.get(params["JobId"])
            if job is None or START_BY_GET[operation] != job.api:
                raise RekognitionError(
                    "ResourceNotFoundException", "The requested resource could not be found."
                )
            video = job.request["Video"]
            response: dict[str, Any] = {
                "JobStatus": job.status,
                "JobId": job.job_id,
                "Video": video,
            }
            if job.request.get("JobTag"):
                response["JobTag"] = job.request["JobTag"]
            if job.status_message:
                response["StatusMessage"] = job.status_message
            if job.status != "SUCCEEDED":
                return response
            size = int(params.get("MaxResults") or 1000)
            start = int(params["NextToken"].rsplit(":", 1)[-1]) if params.get("NextToken") else 0
            page = job.results[start : start + size]
            if start + size < len(job.results):
                response["NextToken"] = f"{job.job_id[:16]}:{start + size}"
            metadata = video_metadata(job.duration_ms)
            detections = DETECTIONS.get(job.feature)
            if detections is not None:
                response |= {
                    "VideoMetadata": metadata,
                    detections.page_key: page,
                    detections.model_version_key: detections.model_version,
                    "GetRequestMetadata": {
                        "SortBy": params.get("SortBy", "TIMESTAMP"),
                        "AggregateBy": params.get("AggregateBy", "TIMESTAMPS"),
                    },
                }
            else:
                response |= {
                    "VideoMetadata": [metadata],
                    "AudioMetadata": [
                        {
                            "Codec": "aac",
                            "DurationMillis": job.duration_ms,
                            "SampleRate": 48_000,
                            "NumberOfChannels": 2,
                        }
                    ],
                    "Segments": page,
                    "SelectedSegmentTypes": [
                        {"Type": t, "ModelVersion": "2.0" if t == "TECHNICAL_CUE" else "1.0"}
                        for t in job.request.get("SegmentTypes", [])
                    ],
                }
            return response


_STATE: dict[str, RekognitionVideoStandIn | None] = {"service": None}
_INSTALLED = False


def activate(service: RekognitionVideoStandIn | None) -> None:
    _STATE["service"] = service


def install() -> None:
    """Add the six video operations to moto's Rekognition responses (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.rekognition.responses import RekognitionResponse

    def make(operation: str) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            headers = {"Content-Type": "application/x-amz-json-1.1"}
            service = _STATE["service"]
            if service is None:
                return (
                    400,
                    headers,
                    json.dumps({"__type": "AccessDeniedException", "Message": "no local world"}),
                )
            params = json.loads(self.body or "{}")
            try:
                if operation in API_BY_START:
                    body = service.start(operation, params)
                else:
                    body = service.get(operation, params)
            except RekognitionError as err:
                return err.status, headers, json.dumps({"__type": err.code, "Message": err.message})
            return 200, headers, json.dumps(body)

        action.__name__ = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip(
            "_"
        )
        return action

    for operation in (*API_BY_START, *START_BY_GET):
        method = make(operation)
        setattr(RekognitionResponse, method.__name__, method)
    _INSTALLED = True
