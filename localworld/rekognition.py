"""A Rekognition Video stand-in for moto: Start*/Get* for labels, moderation and segments.

moto's Rekognition has no label, moderation or segment detection. ``install()`` adds those six
operations to moto's ``RekognitionResponse`` (so handlers' own boto3 clients reach them, exactly
as they would reach AWS), backed by ``RekognitionVideoStandIn``:

* ``Start*`` checks the request against botocore's model (``InvalidParameterException``), checks
  that the video exists in S3 (``InvalidS3ObjectException``), honours ``ClientRequestToken``
  (the same token returns the same ``JobId``) and starts a job that runs for the simulated time
  the model below gives it (or a fixed ``job_duration_s``, when one is set).
* When the job ends, the stand-in **looks at the video**: it reads the object from S3 and
  decodes it with PyAV (``localworld.media.analyze``). Like Rekognition Video it accepts only
  H.264 in MP4/MOV; anything else ends the job ``FAILED`` with "Unsupported codec/format.".
  ``VideoMetadata`` (codec, format, frame rate, duration, size) is read from the file; SHOT
  segments are the real hard cuts and BLACK_FRAMES cues the real black frames, with timestamps,
  frame numbers and SMPTE timecodes at the file's frame rate.
* Labels and moderation labels are **synthetic but not random**: each shot is classified by
  the scene that was drawn in it (the nearest scene colour of ``localworld.media.SCENES``), and
  that scene's labels are reported once per second across the shot, with deterministic
  confidences. No model runs here; a label is only as true as the scene table. The scene's
  first label is its drawn object, and its ``Instances`` carry the object's bounding box as
  measured in that frame (the box of its accent-coloured pixels).
* Rekognition's completion message
  (``{"JobId","Status","API","JobTag","Timestamp","Video":{"S3ObjectName","S3Bucket"}}``) is
  published to the ``NotificationChannel`` topic through moto's SNS, whose Lambda subscription
  delivers it (see ``world``) to the callback function. ``publish`` gets the channel's
  ``RoleArn``: the world publishes as that role (``localworld.iam``), as Rekognition does.
* ``Get*`` answers ``IN_PROGRESS`` until then, and afterwards pages (``MaxResults``/
  ``NextToken``) through the detections.

Simulated job time is proportional to the video's duration::

    job seconds = REK_MIN_S + REK_SECONDS_PER_VIDEO_SECOND * video duration

with ``REK_MIN_S`` = 30 s and 1 s per second of video. ``Start*`` probes the object it has just
read (``localworld.media.probe``, inside ``clock.paused()``, so it costs no simulated time). A
video it cannot read (no probe, or not H.264 in MP4/MOV: the job will end FAILED) takes
``REK_MIN_S`` (assumed: a file it cannot decode fails once opened). ``estimate_analysis_seconds``
is the function ``Start*`` uses, public so a benchmark can price a job it did not run;
``job_duration_s`` (None by default) replaces the model with a fixed time for a benchmark or test
that needs an exact wait. ``job_records()`` tells, per job, its API, video, start, end and the
time the model gave it.

These constants are this project's assumption, not a measurement: AWS publishes no processing
speed for stored-video analysis (the jobs are asynchronous and report their end on SNS), so the
model takes about real time for the video plus half a minute for queueing and opening it. Not
faithful: on AWS the time also depends on the account's queue (a job waits while the account's
concurrent-job quota is in use), on the API and on the frame size and frame rate, none of which
this model sees; jobs here never wait for each other.

Faults, as the service raises them (HTTP status and error code, which boto3 turns into a
``ClientError``): ``throttle(operation, times, code)`` makes the next calls fail with
``LimitExceededException``/``ProvisionedThroughputExceededException``/``ThrottlingException``
(400) or ``InternalServerError`` (500); ``fail_videos`` ends jobs ``FAILED`` with a status
message; ``lose_notices`` drops the SNS notice of matching jobs (the heartbeat sweep must then
recover them).
"""

# moto and CDK are imported where they are patched or used, not at import time; patches are
# installed once per process (module-level flags).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import boto3
from botocore.validate import ParamValidator

from localworld.clock import SimClock
from localworld.faults import FaultQueue
from localworld.media import (
    SCENES,
    MediaError,
    VideoAnalysis,
    VideoInfo,
    analyze,
    frame_at,
    probe,
    smpte,
)
from localworld.runtime import current_function
from localworld.shapes import check_output

API_BY_START = {
    "StartLabelDetection": ("labels", "GetLabelDetection"),
    "StartContentModeration": ("moderation", "GetContentModeration"),
    "StartSegmentDetection": ("segments", "GetSegmentDetection"),
}
START_BY_GET = {get: start for start, (_feature, get) in API_BY_START.items()}
# Rekognition samples frames for labels; one detection per label per second of a shot.
FRAME_STEP_MS = 1000
# How far (per channel, 0-255) a pixel of a lossy proxy may be from the object's accent colour.
OBJECT_TOLERANCE = 40
MIN_OBJECT_PIXELS = 16
# What Rekognition Video reads (its documented input limits): H.264 in MP4 or MOV.
READABLE_CONTAINERS = frozenset({"mp4", "mov"})
READABLE_CODECS = frozenset({"h264"})
UNSUPPORTED = "Unsupported codec/format."
# The time model (an assumption; see the module docstring): queueing and opening the video, then
# about real time for its duration.
REK_MIN_S = 30.0
REK_SECONDS_PER_VIDEO_SECOND = 1.0
# Error codes and the status each comes with (the Rekognition API reference).
FAULT_STATUS = {
    "LimitExceededException": 400,
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "InternalServerError": 500,
}
FAULT_MESSAGES = {
    "LimitExceededException": "Concurrent jobs limit exceeded.",
    "ProvisionedThroughputExceededException": "Provisioned Rate exceeded.",
    "ThrottlingException": "Rate exceeded.",
    "InternalServerError": "An internal error occurred.",
}


class RekognitionError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def readable(info: VideoInfo) -> bool:
    """Whether Rekognition Video reads this file: H.264 in MP4 or MOV."""
    return info.container in READABLE_CONTAINERS and info.video_codec in READABLE_CODECS


def estimate_analysis_seconds(video: VideoInfo | None) -> float:
    """Simulated seconds a video analysis job takes on a probed video (``None``: a file that
    cannot be probed). Unreadable videos fail right after they are opened: ``REK_MIN_S``."""
    if video is None or not readable(video):
        return REK_MIN_S
    return REK_MIN_S + REK_SECONDS_PER_VIDEO_SECOND * video.duration_s


@dataclass(frozen=True)
class AnalysisJobRecord:
    """What the time model did with one video job, for benchmarks (simulated seconds).

    ``finished_s`` is when the job ended on the clock, just before it is looked at and its
    notice published (the clock's scheduler may run it a tick after ``started_s +
    simulated_s``, never before), None while it runs.
    """

    job_id: str
    api: str  # StartLabelDetection, StartContentModeration or StartSegmentDetection
    bucket: str
    key: str
    started_s: float
    finished_s: float | None
    simulated_s: float
    status: str  # IN_PROGRESS, SUCCEEDED or FAILED


@dataclass
class VideoJob:
    job_id: str
    api: str
    feature: str
    request: dict[str, Any]
    started_at: float
    simulated_s: float = 0.0
    finished_at: float | None = None
    status: str = "IN_PROGRESS"
    status_message: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    audio: list[dict[str, Any]] = field(default_factory=list)


def _digest(*parts: str) -> int:
    return int(
        hashlib.sha256("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()[:12], 16
    )


def video_metadata(
    duration_ms: int,
    *,
    fps: float = 29.97003,
    width: int = 1280,
    height: int = 720,
    codec: str = "h264",
) -> dict[str, Any]:
    """``VideoMetadata`` as every Get* page repeats it (Format is "QuickTime / MOV" for MP4)."""
    return {
        "Codec": codec,
        "DurationMillis": duration_ms,
        "Format": "QuickTime / MOV",
        "FrameRate": round(fps, 5),
        "FrameHeight": height,
        "FrameWidth": width,
        "ColorRange": "LIMITED",
    }


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def sample_times_ms(analysis: VideoAnalysis) -> list[tuple[int, str]]:
    """(timestamp, scene) of every frame label detection samples: once a second of each shot."""
    samples: list[tuple[int, str]] = []
    for shot in analysis.shots:
        if shot.scene is None or shot.scene not in SCENES:
            continue
        start, end = _ms(shot.start_s), _ms(shot.end_s)
        samples += [(t, shot.scene) for t in range(start, end + 1, FRAME_STEP_MS)]
    return samples


def object_box(frame: Any, scene: str) -> dict[str, float] | None:
    """Where the scene's object is in a decoded frame: the box of its accent-coloured pixels.

    Each fixture scene draws one object in its accent colour in the lower half of the picture
    (the upper half holds a static accent sign), so the box is measured, not assumed.
    """
    import numpy as np

    height, width = frame.shape[:2]
    lower = frame[height * 2 // 5 :].astype(np.int16)
    accent = np.asarray(SCENES[scene].accent, dtype=np.int16)
    mask = np.all(np.abs(lower - accent) <= OBJECT_TOLERANCE, axis=2)
    rows, cols = np.nonzero(mask)
    if rows.size < MIN_OBJECT_PIXELS:
        return None
    top = (int(rows.min()) + height * 2 // 5) / height
    return {
        "Width": round((int(cols.max()) - int(cols.min()) + 1) / width, 4),
        "Height": round((int(rows.max()) - int(rows.min()) + 1) / height, 4),
        "Left": round(int(cols.min()) / width, 4),
        "Top": round(top, 4),
    }


def label_results(
    analysis: VideoAnalysis, key: str, boxes: dict[int, dict[str, float]] | None = None
) -> list[dict[str, Any]]:
    """The drawn scene's labels, once per second of each shot, in time order.

    The scene's first label is its object: it gets an instance with the measured box.
    """
    detections: list[dict[str, Any]] = []
    for timestamp, scene_name in sample_times_ms(analysis):
        scene = SCENES[scene_name]
        for rank, (name, parents, categories) in enumerate(scene.labels):
            confidence = round(
                99.2 - rank * 4.5 - (_digest(key, name, str(timestamp)) % 40) / 10, 3
            )
            box = (boxes or {}).get(timestamp) if rank == 0 else None
            instances = [{"BoundingBox": box, "Confidence": confidence}] if box else []
            detections.append(
                {
                    "Timestamp": timestamp,
                    "Label": {
                        "Name": name,
                        "Confidence": confidence,
                        "Instances": instances,
                        "Parents": [{"Name": p} for p in parents],
                        "Aliases": [],
                        "Categories": [{"Name": c} for c in categories],
                    },
                }
            )
    return sorted(detections, key=lambda d: (d["Timestamp"], -d["Label"]["Confidence"]))


def moderation_results(
    analysis: VideoAnalysis, key: str, _boxes: dict[int, dict[str, float]] | None = None
) -> list[dict[str, Any]]:
    """The moderation labels of the scenes that show something to flag, once per shot."""
    detections: list[dict[str, Any]] = []
    for shot in analysis.shots:
        scene = SCENES.get(shot.scene or "")
        if scene is None:
            continue
        at = _ms((shot.start_s + shot.end_s) / 2) // 100 * 100
        for name, parent, level in scene.moderation:
            detections.append(
                {
                    "Timestamp": at,
                    "ModerationLabel": {
                        "Confidence": round(82.0 - (_digest(key, name) % 50) / 10, 3),
                        "Name": name,
                        "ParentName": parent,
                        "TaxonomyLevel": level,
                    },
                    "ContentTypes": [],
                }
            )
    return detections


def segment_results(analysis: VideoAnalysis) -> list[dict[str, Any]]:
    """SHOT segments from the real cuts, BLACK_FRAMES cues from the real black frames.

    Frame numbers are inclusive (``DurationFrames`` = end - start + 1, as in Rekognition's
    examples) and a segment ends where its last frame ends, so the next one starts there.
    """
    fps = analysis.info.fps

    def timing(start_frame: int, end_frame: int) -> dict[str, Any]:
        start_s, end_s = start_frame / fps, (end_frame + 1) / fps
        return {
            "StartTimestampMillis": _ms(start_s),
            "EndTimestampMillis": _ms(end_s),
            "DurationMillis": _ms(end_s) - _ms(start_s),
            "StartTimecodeSMPTE": smpte(start_s, fps),
            "EndTimecodeSMPTE": smpte(end_s, fps),
            "DurationSMPTE": smpte(end_s - start_s, fps),
            "StartFrameNumber": start_frame,
            "EndFrameNumber": end_frame,
            "DurationFrames": end_frame - start_frame + 1,
        }

    segments: list[dict[str, Any]] = [
        {
            "Type": "TECHNICAL_CUE",
            **timing(span.start_frame, span.end_frame),
            "TechnicalCueSegment": {"Type": "BlackFrames", "Confidence": 97.5},
        }
        for span in analysis.black_spans
    ]
    segments += [
        {
            "Type": "SHOT",
            **timing(shot.start_frame, shot.end_frame),
            "ShotSegment": {"Index": shot.index, "Confidence": 99.1},
        }
        for shot in analysis.shots
    ]
    return sorted(segments, key=lambda s: (s["StartTimestampMillis"], s["Type"]))


class Detections(NamedTuple):
    """What tells a label job from a moderation job; filtering and paging them is the same.

    Both answer detections with a ``Confidence`` that ``MinConfidence`` filters, and ``Get*``
    pages them beside ``VideoMetadata`` and ``GetRequestMetadata``; only these names differ.
    """

    # (analysis, key, measured object boxes by timestamp) -> detections
    results: Callable[[VideoAnalysis, str, dict[int, dict[str, float]]], list[dict[str, Any]]]
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


def succeeded_page(
    feature: str,
    items: list[dict[str, Any]],
    *,
    job_id: str,
    video: dict[str, Any],
    metadata: dict[str, Any],
    job_tag: str | None = None,
    next_token: str | None = None,
    audio: list[dict[str, Any]] | None = None,
    segment_types: Sequence[str] = (),
    sort_by: str = "TIMESTAMP",
    aggregate_by: str = "TIMESTAMPS",
) -> dict[str, Any]:
    """One page of a SUCCEEDED job's ``Get*`` answer for ``feature`` (a ``Detections`` name or
    ``segments``), holding ``items``.

    The stand-in answers with it and the handler tests build their pages with it, so a page has
    one shape wherever it comes from.
    """
    page: dict[str, Any] = {"JobStatus": "SUCCEEDED", "JobId": job_id, "Video": video}
    if job_tag:
        page["JobTag"] = job_tag
    if next_token:
        page["NextToken"] = next_token
    detections = DETECTIONS.get(feature)
    if detections is not None:
        return page | {
            "VideoMetadata": metadata,
            detections.page_key: items,
            detections.model_version_key: detections.model_version,
            "GetRequestMetadata": {"SortBy": sort_by, "AggregateBy": aggregate_by},
        }
    return page | {
        "VideoMetadata": [metadata],
        "AudioMetadata": audio or [],
        "Segments": items,
        "SelectedSegmentTypes": [
            {"Type": t, "ModelVersion": "2.0" if t == "TECHNICAL_CUE" else "1.0"}
            for t in segment_types
        ],
    }


def completion_notice(
    *,
    job_id: str,
    status: str,
    api: str,
    timestamp_ms: int,
    bucket: str,
    key: str,
    job_tag: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The message Rekognition publishes to the ``NotificationChannel`` when a video job ends.

    The stand-in publishes it; the callback's handler tests send it, so both use one shape.
    """
    notice: dict[str, Any] = {
        "JobId": job_id,
        "Status": status,
        "API": api,
        "Timestamp": timestamp_ms,
        "Video": {"S3ObjectName": key, "S3Bucket": bucket},
    }
    if job_tag:
        notice["JobTag"] = job_tag
    if message:
        notice["Message"] = message
    return notice


class RekognitionVideoStandIn:
    def __init__(
        self,
        *,
        clock: SimClock,
        read_object: Callable[[str, str], bytes | None],
        # (topic ARN, message, the NotificationChannel's RoleArn)
        publish: Callable[[str, str, str | None], None],
        job_duration_s: float | None = None,
        fail_videos: dict[str, str] | None = None,
    ) -> None:
        self.clock = clock
        # (bucket, key) -> the object's bytes, or None when it does not exist.
        self.read_object = read_object
        self.publish = publish
        # None: each job takes what the time model gives it; a number: every job takes that.
        self.job_duration_s: float | None = job_duration_s
        # Video key fragment -> StatusMessage of a job that ends FAILED.
        self.fail_videos = dict(fail_videos or {})
        # When not empty, fail_videos fails only jobs of these APIs ("StartLabelDetection").
        self.fail_apis: set[str] = set()
        # Video key fragments whose completion notice is never published.
        self.lose_notices: set[str] = set()
        # Operation -> the error codes its next calls fail with, in order.
        self.faults = FaultQueue(
            operations=(*API_BY_START, *START_BY_GET),
            status=FAULT_STATUS,
            messages=FAULT_MESSAGES,
            error=RekognitionError,
            service="Rekognition Video",
        )
        self.jobs: dict[str, VideoJob] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.notices: list[dict[str, Any]] = []
        self.lost: list[dict[str, Any]] = []
        # (operation, request, the calling Lambda function's name or None)
        self.get_calls: list[tuple[str, dict[str, Any], str | None]] = []
        self._lock = threading.RLock()
        self._model = boto3.session.Session()._session.get_service_model("rekognition")

    # -- switches ---------------------------------------------------------------------------------
    def throttle(
        self, operation: str, times: int = 1, code: str = "LimitExceededException"
    ) -> None:
        """The next ``times`` calls of ``operation`` fail with ``code`` (see FAULT_STATUS)."""
        self.faults.add(operation, times, code)

    @property
    def faults_raised(self) -> list[tuple[str, str]]:
        return self.faults.raised

    def fail_job(self, video: str, message: str, api: str = "StartLabelDetection") -> None:
        """Jobs of ``api`` on a video whose key contains ``video`` end FAILED with ``message``.

        One API's jobs only: moto's interpreter can answer States.Runtime when several Parallel
        branches fail at the same moment, which Step Functions does not.
        """
        if api not in API_BY_START:
            raise ValueError(f"{api} is not a Rekognition Video Start* operation of this stand-in")
        with self._lock:
            self.fail_videos[video] = message
            self.fail_apis.add(api)

    def reset_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.fail_videos.clear()
            self.fail_apis.clear()
            self.lose_notices.clear()

    def _raise_fault(self, operation: str) -> None:
        self.faults.raise_next(operation)

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
        self._raise_fault(operation)
        feature, _get = API_BY_START[operation]
        token = params.get("ClientRequestToken")
        with self._lock:
            if token and (operation, token) in self.tokens:
                return {"JobId": self.tokens[(operation, token)]}
            video = params["Video"]["S3Object"]
            bucket, key = video["Bucket"], video["Name"]
            body = self.read_object(bucket, key)
            if body is None:
                raise RekognitionError(
                    "InvalidS3ObjectException",
                    "Unable to get object metadata from S3. Check object key, region and/or "
                    "access permissions.",
                )
            fixed = self.job_duration_s
            simulated = (
                float(fixed) if fixed is not None else estimate_analysis_seconds(self._probe(body))
            )
            job_id = hashlib.sha256(
                f"{operation}\x1f{token or ''}\x1f{len(self.jobs)}\x1f{bucket}/{key}".encode(),
                usedforsecurity=False,
            ).hexdigest()
            job = VideoJob(job_id, operation, feature, params, self.clock.seconds(), simulated)
            self.jobs[job_id] = job
            if token:
                self.tokens[(operation, token)] = job_id
        self.clock.call_later(simulated, lambda: self._finish(job))
        return check_output("rekognition", operation, {"JobId": job_id})

    def _probe(self, body: bytes) -> VideoInfo | None:
        """The video as the time model reads it (None: not media it can probe)."""
        if not body:
            return None
        with tempfile.TemporaryDirectory(prefix="rekognition-") as tmp, self.clock.paused():
            path = Path(tmp) / "video"
            path.write_bytes(body)
            try:
                return probe(path)
            except MediaError:
                return None

    def job_records(self) -> list[AnalysisJobRecord]:
        """Every job started so far, in order: its API, video, start, end and modelled time."""
        with self._lock:
            return [
                AnalysisJobRecord(
                    job_id=job.job_id,
                    api=job.api,
                    bucket=str(job.request["Video"]["S3Object"]["Bucket"]),
                    key=str(job.request["Video"]["S3Object"]["Name"]),
                    started_s=job.started_at,
                    finished_s=job.finished_at,
                    simulated_s=job.simulated_s,
                    status=job.status,
                )
                for job in self.jobs.values()
            ]

    def _look(
        self, bucket: str, key: str, feature: str
    ) -> tuple[VideoAnalysis, dict[int, dict[str, float]]] | str:
        """What the video shows (and, for labels, where its objects are), or why it can't tell.

        Reading and decoding are real work: the job's modelled time already covers them."""
        with tempfile.TemporaryDirectory(prefix="rekognition-") as tmp, self.clock.paused():
            body = self.read_object(bucket, key)
            if not body:
                return UNSUPPORTED
            path = Path(tmp) / (Path(key).name or "video")
            path.write_bytes(body)
            try:
                analysis = analyze(path)
            except MediaError:
                return UNSUPPORTED
            if not readable(analysis.info):
                return UNSUPPORTED
            boxes: dict[int, dict[str, float]] = {}
            if feature == "labels":
                for timestamp, scene in sample_times_ms(analysis):
                    box = object_box(frame_at(path, timestamp / 1000), scene)
                    if box is not None:
                        boxes[timestamp] = box
        return analysis, boxes

    def _finish(self, job: VideoJob) -> None:
        ended = self.clock.seconds()
        video = job.request["Video"]["S3Object"]
        bucket, key = video["Bucket"], video["Name"]
        failure = next((msg for frag, msg in self.fail_videos.items() if frag in key), None)
        if self.fail_apis and job.api not in self.fail_apis:
            failure = None
        seen = self._look(bucket, key, job.feature) if failure is None else failure
        with self._lock:
            job.finished_at = ended
            if isinstance(seen, str):
                job.status, job.status_message = "FAILED", seen
            else:
                analysis, boxes = seen
                info = analysis.info
                job.status = "SUCCEEDED"
                job.metadata = video_metadata(
                    _ms(info.duration_s),
                    fps=info.fps,
                    width=info.width,
                    height=info.height,
                    codec=info.video_codec,
                )
                if info.audio is not None:
                    job.audio = [
                        {
                            "Codec": info.audio.codec,
                            "DurationMillis": _ms(info.duration_s),
                            "SampleRate": info.audio.sample_rate,
                            "NumberOfChannels": info.audio.channels,
                        }
                    ]
                detections = DETECTIONS.get(job.feature)
                if detections is not None:
                    minimum = float(job.request.get("MinConfidence", 50))
                    job.results = [
                        d
                        for d in detections.results(analysis, key, boxes)
                        if d[detections.item]["Confidence"] >= minimum
                    ]
                else:
                    wanted = set(job.request.get("SegmentTypes", []))
                    job.results = [s for s in segment_results(analysis) if s["Type"] in wanted]
        channel = job.request.get("NotificationChannel")
        if not channel:
            return
        notice = completion_notice(
            job_id=job.job_id,
            status=job.status,
            api=job.api,
            timestamp_ms=self.clock.epoch_ms(),
            bucket=bucket,
            key=key,
            job_tag=job.request.get("JobTag"),
            message=job.status_message,
        )
        if any(fragment in key for fragment in self.lose_notices):
            self.lost.append(notice)
            return
        self.notices.append(notice)
        self.publish(channel["SNSTopicArn"], json.dumps(notice), channel.get("RoleArn"))

    # -- Get* -------------------------------------------------------------------------------------
    def get(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self._validate(operation, params)
        self._raise_fault(operation)
        self.get_calls.append((operation, params, current_function()))
        with self._lock:
            job = self.jobs.get(params["JobId"])
            if job is None or START_BY_GET[operation] != job.api:
                raise RekognitionError(
                    "ResourceNotFoundException", "The requested resource could not be found."
                )
            video = job.request["Video"]
            response: dict[str, Any]
            if job.status == "SUCCEEDED":
                size = int(params.get("MaxResults") or 1000)
                token = params.get("NextToken")
                start = int(token.rsplit(":", 1)[-1]) if token else 0
                more = start + size < len(job.results)
                response = succeeded_page(
                    job.feature,
                    job.results[start : start + size],
                    job_id=job.job_id,
                    video=video,
                    metadata=job.metadata,
                    job_tag=job.request.get("JobTag"),
                    next_token=f"{job.job_id[:16]}:{start + size}" if more else None,
                    audio=job.audio,
                    segment_types=job.request.get("SegmentTypes", []),
                    sort_by=params.get("SortBy", "TIMESTAMP"),
                    aggregate_by=params.get("AggregateBy", "TIMESTAMPS"),
                )
            else:
                response = {"JobStatus": job.status, "JobId": job.job_id, "Video": video}
                if job.request.get("JobTag"):
                    response["JobTag"] = job.request["JobTag"]
            if job.status_message:
                response["StatusMessage"] = job.status_message
            return check_output("rekognition", operation, response)


_STATE: dict[str, RekognitionVideoStandIn | None] = {"service": None}
_INSTALLED = False


def activate(service: RekognitionVideoStandIn | None) -> None:
    _STATE["service"] = service


def moto_actions(
    operations: Sequence[str], serve: Callable[[], Callable[[str, dict[str, Any]], Any] | None]
) -> None:
    """Put one action per operation on moto's ``RekognitionResponse``: the request's JSON goes
    to what ``serve()`` returns (None: no world is active, answered AccessDenied), a
    ``RekognitionError`` becomes the service's error answer (shared by the video and image
    stand-ins)."""
    from moto.rekognition.responses import RekognitionResponse

    def make(operation: str) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            headers = {"Content-Type": "application/x-amz-json-1.1"}
            handle = serve()
            if handle is None:
                return (
                    400,
                    {**headers, "status": "400"},
                    json.dumps({"__type": "AccessDeniedException", "Message": "no local world"}),
                )
            params = json.loads(self.body or "{}")
            try:
                body = handle(operation, params)
            except RekognitionError as err:
                # moto reads the status from the headers (a bare tuple status is answered 200).
                failed = {**headers, "status": str(err.status)}
                return err.status, failed, json.dumps({"__type": err.code, "Message": err.message})
            return 200, headers, json.dumps(body)

        action.__name__ = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip(
            "_"
        )
        return action

    for operation in operations:
        method = make(operation)
        setattr(RekognitionResponse, method.__name__, method)


def install() -> None:
    """Add the six video operations to moto's Rekognition responses (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return

    def serve() -> Callable[[str, dict[str, Any]], Any] | None:
        service = _STATE["service"]
        if service is None:
            return None
        return lambda op, params: (
            service.start(op, params) if op in API_BY_START else service.get(op, params)
        )

    moto_actions((*API_BY_START, *START_BY_GET), serve)
    _INSTALLED = True
