"""A MediaConvert stand-in: ``CreateJob``/``GetJob`` with the real shapes, outputs written to S3.

``create_job`` checks the request against botocore's MediaConvert model (required members, types,
enums, minimums and maximums) and answers ``{"Job": {...}}`` with ``Status: SUBMITTED``. The job
runs on the simulated clock (``PROGRESSING``, then ``COMPLETE`` or ``ERROR``); when it completes it
writes small objects where the settings say: the MP4 proxy (``<Destination><NameModifier>.mp4``),
the HLS multivariant playlist, one variant playlist and segment per rung, and frame captures
(``<Destination><NameModifier>.0000000.jpg``). ``fail_inputs`` makes jobs whose input URI contains
a given text end in ``ERROR`` with MediaConvert's error code and message.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from localworld.clock import SimClock
from localworld.media import MediaLibrary, jpeg_bytes, mp4_bytes

# Simulated transcode time per second of video (MediaConvert's on-demand queue is ~real time).
TRANSCODE_SPEED = 0.5
MIN_JOB_S = 20.0


@dataclass(frozen=True)
class JobFailure:
    """Make jobs whose input contains ``match`` fail like MediaConvert does."""

    match: str
    error_code: int = 1010
    error_message: str = (
        "Unable to open input file [{input}]: [Failed probe/open: [Can't find a video stream]]"
    )


@dataclass
class _Job:
    body: dict[str, Any]
    submitted_at: float
    duration_s: float
    source_duration_s: float
    failure: JobFailure | None
    finished: bool = False


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def model_problems(params: Any, shape: Any, path: str = "") -> list[str]:
    """What ParamValidator leaves out: enums, minimums and maximums."""
    problems: list[str] = []
    if shape.type_name == "structure" and isinstance(params, dict):
        for name, value in params.items():
            if name in shape.members:
                problems += model_problems(value, shape.members[name], f"{path}.{name}")
    elif shape.type_name == "list" and isinstance(params, list):
        for i, item in enumerate(params):
            problems += model_problems(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map" and isinstance(params, dict):
        for key, value in params.items():
            problems += model_problems(value, shape.value, f"{path}.{key}")
    elif shape.type_name == "string" and isinstance(params, str):
        if shape.enum and params not in shape.enum:
            problems.append(f"{path}: {params!r} is not one of {shape.enum}")
    elif shape.type_name in ("integer", "long", "double") and isinstance(params, int | float):
        meta = shape.metadata
        if "min" in meta and params < meta["min"]:
            problems.append(f"{path}: {params} is below the minimum {meta['min']}")
        if "max" in meta and params > meta["max"]:
            problems.append(f"{path}: {params} is above the maximum {meta['max']}")
    return problems


def _bad_request(message: str) -> ClientError:
    return ClientError(
        cast(
            Any,
            {
                "Error": {"Code": "BadRequestException", "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
        ),
        "CreateJob",
    )


class MediaConvertStandIn:
    def __init__(
        self,
        *,
        clock: SimClock,
        media: MediaLibrary,
        region: str,
        account: str,
        fail_inputs: list[JobFailure] | None = None,
    ) -> None:
        self.clock = clock
        self.media = media
        self.region = region
        self.account = account
        self.fail_inputs = list(fail_inputs or [])
        self.jobs: dict[str, _Job] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._s3: Any = boto3.client("s3", region_name=region)
        self._model = boto3.session.Session()._session.get_service_model("mediaconvert")

    # -- API --------------------------------------------------------------------------------------
    def create_job(self, params: dict[str, Any]) -> dict[str, Any]:
        shape = self._model.operation_model("CreateJob").input_shape
        if shape is None:
            raise _bad_request("CreateJob has no input shape in botocore's model")
        report = ParamValidator().validate(params, shape)
        problems = ([report.generate_report()] if report.has_errors() else []) + model_problems(
            params, shape
        )
        if problems:
            raise _bad_request("; ".join(problems))
        self.requests.append(copy.deepcopy(params))
        file_input = params["Settings"]["Inputs"][0].get("FileInput", "")
        source_duration = self._source_duration(file_input)
        now = self.clock.now()
        job_id = (
            f"{int(now.timestamp() * 1000)}-{hashlib.sha256(repr(params).encode()).hexdigest()[:6]}"
        )
        job = {
            "AccelerationSettings": {"Mode": "DISABLED"},
            "AccelerationStatus": "NOT_APPLICABLE",
            "Arn": f"arn:aws:mediaconvert:{self.region}:{self.account}:jobs/{job_id}",
            "BillingTagsSource": params.get("BillingTagsSource", "JOB"),
            "CreatedAt": _iso(now),
            "Id": job_id,
            "Messages": {"Info": [], "Warning": []},
            "Priority": params.get("Priority", 0),
            "Queue": params.get("Queue")
            or f"arn:aws:mediaconvert:{self.region}:{self.account}:queues/Default",
            "Role": params["Role"],
            "Settings": copy.deepcopy(params["Settings"]),
            "Status": "SUBMITTED",
            "StatusUpdateInterval": params.get("StatusUpdateInterval", "SECONDS_60"),
            "Timing": {"SubmitTime": _iso(now)},
            "UserMetadata": dict(params.get("UserMetadata") or {}),
        }
        failure = next((f for f in self.fail_inputs if f.match in file_input), None)
        with self._lock:
            self.jobs[job_id] = _Job(
                body=job,
                submitted_at=self.clock.seconds(),
                duration_s=max(MIN_JOB_S, source_duration * TRANSCODE_SPEED),
                source_duration_s=source_duration,
                failure=failure,
            )
        return {"Job": copy.deepcopy(job)}

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ClientError(
                    cast(
                        Any,
                        {
                            "Error": {
                                "Code": "NotFoundException",
                                "Message": f"Job {job_id} not found",
                            },
                            "ResponseMetadata": {"HTTPStatusCode": 404},
                        },
                    ),
                    "GetJob",
                )
            self._advance(job)
            return {"Job": copy.deepcopy(job.body)}

    # -- the job's life ---------------------------------------------------------------------------
    def _source_duration(self, uri: str) -> float:
        parts = urlsplit(uri)
        try:
            body = self._s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))[
                "Body"
            ].read()
        except ClientError:
            return 0.0
        return self.media.duration_of_content(body)

    def _advance(self, job: _Job) -> None:
        if job.finished:
            return
        elapsed = self.clock.seconds() - job.submitted_at
        body = job.body
        now = _iso(self.clock.now())
        if elapsed < job.duration_s:
            if body["Status"] == "SUBMITTED":
                body["Status"] = "PROGRESSING"
                body["Timing"]["StartTime"] = now
            body["JobPercentComplete"] = min(99, int(100 * elapsed / job.duration_s))
            return
        body["Timing"].setdefault("StartTime", now)
        body["Timing"]["FinishTime"] = now
        job.finished = True
        file_input = body["Settings"]["Inputs"][0].get("FileInput", "")
        if job.failure is not None or job.source_duration_s <= 0:
            failure = job.failure or JobFailure(match="")
            body["Status"] = "ERROR"
            body["ErrorCode"] = failure.error_code
            body["ErrorMessage"] = failure.error_message.format(input=file_input)
            body.pop("JobPercentComplete", None)
            return
        body["OutputGroupDetails"] = self._write_outputs(body["Settings"], job.source_duration_s)
        body["Status"] = "COMPLETE"
        body["JobPercentComplete"] = 100

    def _put(self, uri_prefix: str, suffix: str, data: bytes, content_type: str) -> None:
        parts = urlsplit(uri_prefix + suffix)
        self._s3.put_object(
            Bucket=parts.netloc, Key=parts.path.lstrip("/"), Body=data, ContentType=content_type
        )

    def _write_outputs(self, settings: dict[str, Any], duration_s: float) -> list[dict[str, Any]]:
        details: list[dict[str, Any]] = []
        for group in settings.get("OutputGroups", []):
            group_settings = group["OutputGroupSettings"]
            kind = group_settings["Type"]
            outputs = group.get("Outputs", [])
            if kind == "HLS_GROUP_SETTINGS":
                destination = group_settings["HlsGroupSettings"]["Destination"]
                segment_s = float(group_settings["HlsGroupSettings"].get("SegmentLength", 10))
                self._write_hls(destination, outputs, duration_s, segment_s)
            elif kind == "FILE_GROUP_SETTINGS":
                destination = group_settings["FileGroupSettings"]["Destination"]
                for output in outputs:
                    self._write_file_output(destination, output, duration_s)
            details.append(
                {
                    "OutputDetails": [
                        {
                            "DurationInMs": int(duration_s * 1000),
                            "VideoDetails": {
                                "HeightInPx": output["VideoDescription"]["Height"],
                                "WidthInPx": output["VideoDescription"]["Height"] * 16 // 9,
                            },
                        }
                        for output in outputs
                        if "VideoDescription" in output
                    ]
                }
            )
        return details

    def _write_file_output(
        self, destination: str, output: dict[str, Any], duration_s: float
    ) -> None:
        modifier = output.get("NameModifier", "")
        codec = output["VideoDescription"]["CodecSettings"]
        if codec["Codec"] == "FRAME_CAPTURE":
            capture = codec["FrameCaptureSettings"]
            rate = capture.get("FramerateNumerator", 1) / capture.get("FramerateDenominator", 1)
            count = int(duration_s * rate) + 1
            count = min(count, int(capture.get("MaxCaptures", count)))
            extension = output.get("Extension", "jpg")
            for index in range(count):
                self._put(
                    destination, f"{modifier}.{index:07d}.{extension}", jpeg_bytes(), "image/jpeg"
                )
            return
        extension = output.get("Extension", "mp4")
        self._put(
            destination,
            f"{modifier}.{extension}",
            mp4_bytes(destination + modifier),
            "video/mp4",
        )
        parts = urlsplit(f"{destination}{modifier}.{extension}")
        self.media.register_location(parts.netloc, parts.path.lstrip("/"), duration_s)

    def _write_hls(
        self, destination: str, outputs: list[dict[str, Any]], duration_s: float, segment_s: float
    ) -> None:
        segments = max(1, math.ceil(duration_s / segment_s))
        base = destination.rsplit("/", 1)[-1]
        variants: list[str] = []
        for output in outputs:
            modifier = output.get("NameModifier", "")
            height = output["VideoDescription"]["Height"]
            bitrate = output["VideoDescription"]["CodecSettings"]["H264Settings"].get(
                "MaxBitrate", 1_000_000
            )
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(segment_s)}"]
            for index in range(segments):
                length = min(segment_s, duration_s - index * segment_s)
                lines += [f"#EXTINF:{length:.3f},", f"{base}{modifier}_{index + 1:05d}.ts"]
                self._put(
                    destination, f"{modifier}_{index + 1:05d}.ts", b"G@\x11\x10", "video/MP2T"
                )
            lines.append("#EXT-X-ENDLIST")
            self._put(
                destination,
                f"{modifier}.m3u8",
                "\n".join(lines).encode(),
                "application/vnd.apple.mpegurl",
            )
            variants += [
                f"#EXT-X-STREAM-INF:BANDWIDTH={bitrate},RESOLUTION={height * 16 // 9}x{height},"
                'CODECS="avc1.4d401f,mp4a.40.2"',
                f"{base}{modifier}.m3u8",
            ]
        master = "\n".join(["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS", *variants]) + "\n"
        self._put(destination, ".m3u8", master.encode(), "application/vnd.apple.mpegurl")
