"""A MediaConvert stand-in: ``CreateJob``/``GetJob`` with the real shapes; it really transcodes.

``create_job`` checks the request against botocore's MediaConvert model (required members, types,
enums, minimums and maximums) and answers ``{"Job": {...}}`` with ``Status: SUBMITTED``. The job
runs on the simulated clock (``PROGRESSING``, then ``COMPLETE`` or ``ERROR``). When it completes,
``localworld.transcoder`` decodes the input with PyAV and encodes every output the settings
define (the MP4 proxy, each HLS rung as real segments and playlists, frame captures as JPEGs)
at the names MediaConvert uses; ``OutputGroupDetails`` carry the real durations and sizes. Input
it cannot decode ends the job in ``ERROR`` with MediaConvert's code (1010) and message, and
nothing is written.

``ClientRequestToken``: the same token within ``TOKEN_WINDOW_S`` answers the job it created.

Faults: ``throttle(times, code)`` makes the next ``CreateJob`` calls fail with
``TooManyRequestsException`` (429) or ``InternalServerErrorException`` (500), as boto3 would
raise them; ``fail_inputs`` makes jobs whose input URI contains a given text end in ``ERROR``
with a given code and message.

Simulated job time is proportional to the pixels the job encodes, so a proxy-only job is shorter
than the full ladder and a longer or larger source takes longer::

    job seconds = MIN_JOB_S + SECONDS_PER_MEGAPIXEL * megapixels encoded

``encoded_pixels(settings, source)`` counts them from the job settings and the probed input:

* every output with a ``VideoDescription`` (MP4, each HLS rung): width x height x frames. The
  size is the transcoder's (``Width`` if given, else from the upright source's display aspect
  ratio, even; ``VideoSelector.Rotate`` decides what "upright" is); frames are the source's
  duration x the output frame rate (the source's with ``FramerateControl:
  INITIALIZE_FROM_SOURCE``, else the settings' ``FramerateNumerator / FramerateDenominator``);
* frame captures: ``floor(duration x capture rate) + 1`` captures (the transcoder's count, the
  first at t=0), at most ``MaxCaptures``, x the capture's width x height;
* audio-only outputs cost nothing (audio is cheap next to video, and this project has none).

``MIN_JOB_S`` (20 s) is queueing and the input probe, which every job pays whatever it encodes.
``SECONDS_PER_MEGAPIXEL`` is calibrated on this repository's own full job (``plan.build_plan``
for a 1920x1080, 30 fps source: the 720p MP4 proxy, the 360p/480p/720p/1080p HLS ladder and a
360p thumbnail every 10 s, 136.73664 megapixels per second of source) taking 0.5 simulated
seconds per second of source, the speed the previous per-second model assumed for MediaConvert's
on-demand queue; see the constants below. ``estimate_job_seconds(settings, source)`` is the
function the stand-in uses, public so a benchmark can price a job it did not run, and
``MediaConvertStandIn.job_records()`` tells, per job, when it was submitted and finished, what
the model gave it and why (megapixels, output groups).

Not faithful: MediaConvert's real speed depends on the codec and profile, QVBR and
``QualityTuningLevel`` (a ``MULTI_PASS_HQ`` rung makes more passes than a single-pass one),
accelerated transcoding, the queue's load and how many jobs run at once, and AWS publishes no
speed figure to take. Here every pixel costs the same whatever its settings, jobs never wait for
one another, and decoding the input is part of ``MIN_JOB_S`` only. A job ends at
its modelled instant (``Timing.FinishTime``): a timer on the simulated clock then really encodes
and writes its outputs, whether or not anyone polls, and the state machine sees the job COMPLETE
at its next ``GetJob`` poll (``localworld.interpreter.SYNC_POLL_S``). Reading the input,
encoding, writing and answering ``GetJob`` run inside ``clock.paused()``: only the model's
duration is simulated time, not this machine's speed.

The job's ``Role``: with ``assume_role`` (the world's permissions), the job reads its input and
writes its outputs with that role's credentials, as MediaConvert does, so the S3 calls are
evaluated against the role's policies. A role MediaConvert may not assume fails ``CreateJob``
with ``ForbiddenException``; an input the role may not read ends the job in ``ERROR`` (1030), an
output it may not write too (1401, "Access Denied"), and both are recorded as denials.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from localworld.clock import SimClock
from localworld.iam import Identity, PermissionDenied
from localworld.media import MediaError, VideoInfo, probe
from localworld.shapes import check_output
from localworld.transcoder import (
    CLOCKWISE_ROTATIONS,
    DEFAULT_FRAME_RATE,
    TranscodeError,
    VideoSpec,
    transcode,
)

# Every job, whatever it encodes: MediaConvert's queueing and its probe of the input.
MIN_JOB_S = 20.0
# Calibration of the per-pixel cost: the repository's full job (``plan.build_plan``) for a
# 1920x1080, 30 fps source encodes, per second of source (tests/localworld/test_time_model.py
# checks these figures against build_plan and this module's own count):
CALIBRATION_FPS = 30
CALIBRATION_MEGAPIXELS_PER_SOURCE_S = (
    (
        1280 * 720  # MP4 proxy, 720p
        + 640 * 360  # HLS 360p
        + 854 * 480  # HLS 480p (853.3 from 16:9, even)
        + 1280 * 720  # HLS 720p
        + 1920 * 1080  # HLS 1080p
    )
    * CALIBRATION_FPS
    + 640 * 360 / 10  # one 360p thumbnail every 10 s
) / 1e6  # = 136.73664 megapixels
# ...and takes this many simulated seconds per second of source (beyond MIN_JOB_S): the speed the
# previous model gave MediaConvert's on-demand queue for this ladder (twice real time).
CALIBRATION_SECONDS_PER_SOURCE_S = 0.5
# = 0.5 / 136.73664 = 0.0036567 simulated seconds per megapixel encoded.
SECONDS_PER_MEGAPIXEL = CALIBRATION_SECONDS_PER_SOURCE_S / CALIBRATION_MEGAPIXELS_PER_SOURCE_S
# botocore's model: "If you reuse a client request token within one minute of a successful
# request, the API returns the job details of the original request instead."
TOKEN_WINDOW_S = 60.0


def _upright_size(settings: Mapping[str, Any], source: VideoInfo) -> tuple[int, int]:
    """The source's frame size once ``VideoSelector.Rotate`` is applied, as the transcoder turns
    it (``AUTO``: the display matrix; ``DEGREES_*``: that turn; otherwise as coded)."""
    inputs = settings.get("Inputs") or [{}]
    rotate = str(inputs[0].get("VideoSelector", {}).get("Rotate", "DEGREE_0"))
    if rotate == "AUTO":
        return source.display_width, source.display_height
    if CLOCKWISE_ROTATIONS.get(rotate, 0) in (90, 270):
        return source.height, source.width
    return source.width, source.height


def _output_frame_rate(video: Mapping[str, Any], source_rate: Fraction) -> Fraction:
    """The output's frames per second: the source's unless the codec settings specify one."""
    for name, codec in video.get("CodecSettings", {}).items():
        if name == "Codec" or not isinstance(codec, Mapping):
            continue
        if codec.get("FramerateControl", "INITIALIZE_FROM_SOURCE") == "SPECIFIED":
            return Fraction(
                int(codec.get("FramerateNumerator", 1)), int(codec.get("FramerateDenominator", 1))
            )
    return source_rate


def _capture_count(capture: Mapping[str, Any], duration: Fraction) -> int:
    """Frame captures of a clip: one at t=0 and one each 1/rate after, at most MaxCaptures."""
    rate = Fraction(
        int(capture.get("FramerateNumerator", 1)), int(capture.get("FramerateDenominator", 1))
    )
    count = math.floor(duration * rate) + 1 if duration > 0 else 0
    limit = capture.get("MaxCaptures")
    return min(count, int(limit)) if limit else count


def _output_pixels(settings: Mapping[str, Any], source: VideoInfo) -> Iterator[int]:
    """Pixels each video output of ``settings`` encodes from ``source`` (audio-only: none)."""
    width, height = _upright_size(settings, source)
    aspect = Fraction(width, height) if width and height else Fraction(16, 9)
    source_rate = Fraction(source.fps).limit_denominator(100000) if source.fps else None
    duration = Fraction(source.duration_s).limit_denominator(1000000)
    for group in settings.get("OutputGroups", []):
        for output in group.get("Outputs", []):
            video = output.get("VideoDescription")
            if not isinstance(video, Mapping):
                continue
            spec = VideoSpec(width=video.get("Width"), height=video.get("Height"), h264=None)
            out_width, out_height = spec.size_for(width, height, aspect)
            codec = video.get("CodecSettings", {})
            if codec.get("Codec") == "FRAME_CAPTURE":
                frames = _capture_count(codec.get("FrameCaptureSettings", {}), duration)
            else:
                rate = _output_frame_rate(video, source_rate or DEFAULT_FRAME_RATE)
                frames = round(duration * rate)
            yield out_width * out_height * frames


def encoded_pixels(settings: Mapping[str, Any], source: VideoInfo) -> int:
    """Every pixel a job's ``Settings`` encode from a probed ``source``: the measure of the work
    the time model charges for (see the module docstring)."""
    return sum(_output_pixels(settings, source))


def estimate_job_seconds(settings: Mapping[str, Any], source: VideoInfo | None) -> float:
    """Simulated seconds a job with these ``Settings`` takes on ``source`` (``None``: an input
    that cannot be read, which fails after the probe, ``MIN_JOB_S``).

    The stand-in times its jobs with it; a benchmark uses it to price a job it did not run.
    """
    if source is None:
        return MIN_JOB_S
    return MIN_JOB_S + SECONDS_PER_MEGAPIXEL * encoded_pixels(settings, source) / 1e6


def output_group_names(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """Each output group's ``CustomName``, else its type (what a record says the job made)."""
    return tuple(
        str(group.get("CustomName") or group.get("OutputGroupSettings", {}).get("Type", ""))
        for group in settings.get("OutputGroups", [])
    )


@dataclass(frozen=True)
class JobRecord:
    """What the time model did with one job, for benchmarks (simulated seconds on the clock).

    ``finished_s`` is the job's modelled end (``submitted_s + simulated_s``), set once the
    job has ended (its timer at that instant, or a ``GetJob`` that came first); None before.
    """

    job_id: str
    input: str  # the FileInput URI
    submitted_s: float
    finished_s: float | None
    simulated_s: float
    megapixels: float
    output_groups: tuple[str, ...]
    status: str  # SUBMITTED, PROGRESSING, COMPLETE or ERROR, as GetJob last answered


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
    submitted: datetime  # the job's CreatedAt, as the clock read it
    submitted_at: float
    duration_s: float
    megapixels: float
    failure: JobFailure | None
    s3: Any = None  # the client the job reads and writes with (its role's)
    finished: bool = False
    # What ending the job raised that is not a job error (settings the stand-in does not
    # implement): the next GetJob raises it, as it did when polls ran the job.
    crash: BaseException | None = None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def job_description(
    params: dict[str, Any], *, job_id: str, region: str, account: str, submitted: datetime
) -> dict[str, Any]:
    """The ``Job`` MediaConvert describes for a ``CreateJob`` request, as just submitted.

    The stand-in keeps it (and moves it on to PROGRESSING, COMPLETE or ERROR); the handler tests
    build the job they hand to finalize and mark-failed from it, so both use one shape.
    """
    return {
        "AccelerationSettings": {"Mode": "DISABLED"},
        "AccelerationStatus": "NOT_APPLICABLE",
        "Arn": f"arn:aws:mediaconvert:{region}:{account}:jobs/{job_id}",
        "BillingTagsSource": params.get("BillingTagsSource", "JOB"),
        "CreatedAt": _iso(submitted),
        "Id": job_id,
        "Messages": {"Info": [], "Warning": []},
        "Priority": params.get("Priority", 0),
        "Queue": params.get("Queue") or f"arn:aws:mediaconvert:{region}:{account}:queues/Default",
        "Role": params["Role"],
        "Settings": copy.deepcopy(params["Settings"]),
        "Status": "SUBMITTED",
        "StatusUpdateInterval": params.get("StatusUpdateInterval", "SECONDS_60"),
        "Timing": {"SubmitTime": _iso(submitted)},
        "UserMetadata": dict(params.get("UserMetadata") or {}),
    }


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


def service_error(code: str, message: str, status: int, operation: str) -> ClientError:
    """An error as boto3 raises it for MediaConvert's REST-JSON answers."""
    return ClientError(
        cast(
            Any,
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
        ),
        operation,
    )


def _bad_request(message: str) -> ClientError:
    return service_error("BadRequestException", message, 400, "CreateJob")


# MediaConvert's throttling and internal faults (its API reference), by error code.
FAULTS = {
    "TooManyRequestsException": (429, "Too many requests"),
    "InternalServerErrorException": (500, "Internal server error"),
}


class MediaConvertStandIn:
    def __init__(
        self,
        *,
        clock: SimClock,
        region: str,
        account: str,
        fail_inputs: list[JobFailure] | None = None,
        assume_role: Callable[[str], Identity] | None = None,
    ) -> None:
        self.clock = clock
        # Role ARN -> its session, as MediaConvert assumes it (raises when it can't be assumed).
        self.assume_role = assume_role
        self._role_clients: dict[str, Any] = {}
        self.region = region
        self.account = account
        self.fail_inputs = list(fail_inputs or [])
        self.faults: list[str] = []
        self.faults_raised: list[str] = []
        self.answers_to_lose = 0
        self.jobs: dict[str, _Job] = {}
        self.requests: list[dict[str, Any]] = []
        # ClientRequestToken -> (job id, simulated time created); tokens answered again.
        self.tokens: dict[str, tuple[str, float]] = {}
        self.repeated_tokens: list[str] = []
        self.canceled: list[str] = []
        # A number fixes every new job's simulated time (a test that needs a job still running
        # when something else happens); None is the pixel model.
        self.job_duration_s: float | None = None
        self._lock = threading.RLock()
        self._s3: Any = boto3.client("s3", region_name=region)
        self._model = boto3.session.Session()._session.get_service_model("mediaconvert")

    # -- switches ---------------------------------------------------------------------------------
    def throttle(self, times: int = 1, code: str = "TooManyRequestsException") -> None:
        """The next ``times`` ``CreateJob`` calls fail with ``code`` (see ``FAULTS``)."""
        if code not in FAULTS:
            raise ValueError(f"{code} is not one of {sorted(FAULTS)}")
        with self._lock:
            self.faults.extend([code] * times)

    def lose_answers(self, times: int = 1) -> None:
        """The next ``times`` jobs are created, but their answer never reaches the caller (it
        sees a 500, as after a dropped connection) and it will ask again."""
        with self._lock:
            self.answers_to_lose += times

    def reset_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.fail_inputs.clear()
            self.answers_to_lose = 0

    # -- API --------------------------------------------------------------------------------------
    def create_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            code = self.faults.pop(0) if self.faults else None
        if code is not None:
            self.faults_raised.append(code)
            status, message = FAULTS[code]
            raise service_error(code, message, status, "CreateJob")
        shape = self._model.operation_model("CreateJob").input_shape
        if shape is None:
            raise _bad_request("CreateJob has no input shape in botocore's model")
        report = ParamValidator().validate(params, shape)
        problems = ([report.generate_report()] if report.has_errors() else []) + model_problems(
            params, shape
        )
        if problems:
            raise _bad_request("; ".join(problems))
        token = params.get("ClientRequestToken")
        with self._lock:
            earlier = self.tokens.get(token) if token else None
            if earlier is not None and self.clock.seconds() - earlier[1] <= TOKEN_WINDOW_S:
                # The same request again (a lost answer retried): the job it already created.
                self.repeated_tokens.append(str(token))
                return check_output(
                    "mediaconvert", "CreateJob", {"Job": copy.deepcopy(self.jobs[earlier[0]].body)}
                )
        s3 = self._s3_for(str(params["Role"]))
        self.requests.append(copy.deepcopy(params))
        file_input = params["Settings"]["Inputs"][0].get("FileInput", "")
        source = self._source_info(file_input, s3)
        megapixels = encoded_pixels(params["Settings"], source) / 1e6 if source else 0.0
        now = self.clock.now()
        digest = hashlib.sha256(repr(params).encode(), usedforsecurity=False).hexdigest()
        job_id = f"{int(now.timestamp() * 1000)}-{digest[:6]}"
        job = job_description(
            params, job_id=job_id, region=self.region, account=self.account, submitted=now
        )
        failure = next((f for f in self.fail_inputs if f.match in file_input), None)
        with self._lock:
            if token:
                self.tokens[str(token)] = (job_id, self.clock.seconds())
            self.jobs[job_id] = _Job(
                body=job,
                submitted=now,
                submitted_at=self.clock.seconds(),
                duration_s=estimate_job_seconds(params["Settings"], source)
                if self.job_duration_s is None
                else self.job_duration_s,
                megapixels=megapixels,
                failure=failure,
                s3=s3,
            )
            # The job ends at its modelled instant and writes its outputs then, whether or not
            # anyone polls (a run that stops watching it still finds them, as on AWS).
            self.clock.call_later(
                self.jobs[job_id].duration_s, functools.partial(self._end, job_id)
            )
        with self._lock:
            lose = self.answers_to_lose > 0
            self.answers_to_lose -= int(lose)
        if lose:
            self.faults_raised.append("lost answer")
            status, message = FAULTS["InternalServerErrorException"]
            raise service_error("InternalServerErrorException", message, status, "CreateJob")
        return check_output("mediaconvert", "CreateJob", {"Job": copy.deepcopy(job)})

    def get_job(self, job_id: str) -> dict[str, Any]:
        # Answering GetJob is the service's work, not the job's: it takes no simulated time
        # (polls are free on AWS, and a poll would otherwise advance the clock by this machine's
        # speed).
        with self.clock.paused(), self._lock:
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
            if job.crash is not None:
                raise job.crash
            return check_output("mediaconvert", "GetJob", {"Job": copy.deepcopy(job.body)})

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """``CancelJob``: a job that has not ended stops where it is, writes nothing (this
        stand-in writes a job's outputs at its end only) and is ``CANCELED``; its record then
        ends at the cancel. Step Functions calls it when a ``.sync`` task is stopped (its
        Parallel branch was aborted, its run stopped). An ended job answers ``ConflictException``
        (409), the model's error for a request that conflicts with the job's state."""
        with self.clock.paused(), self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise service_error(
                    "NotFoundException", f"Job {job_id} not found", 404, "CancelJob"
                )
            self._advance(job)
            if job.finished:
                raise service_error(
                    "ConflictException",
                    f"Job {job_id} is {job.body['Status']} and can no longer be canceled",
                    409,
                    "CancelJob",
                )
            job.duration_s = max(0.0, self.clock.seconds() - job.submitted_at)
            job.finished = True
            body = job.body
            body["Status"] = "CANCELED"
            body.pop("JobPercentComplete", None)
            body["Timing"]["FinishTime"] = _iso(self.clock.now())
            self.canceled.append(job_id)
            return check_output("mediaconvert", "CancelJob", {})

    def job_records(self) -> list[JobRecord]:
        """Every job created so far, in order: when, for how long the model ran it, and why."""
        with self._lock:
            return [
                JobRecord(
                    job_id=job_id,
                    input=str(job.body["Settings"]["Inputs"][0].get("FileInput", "")),
                    submitted_s=job.submitted_at,
                    finished_s=job.submitted_at + job.duration_s if job.finished else None,
                    simulated_s=job.duration_s,
                    megapixels=job.megapixels,
                    output_groups=output_group_names(job.body["Settings"]),
                    status=str(job.body["Status"]),
                )
                for job_id, job in self.jobs.items()
            ]

    # -- the job's life ---------------------------------------------------------------------------
    def _s3_for(self, role_arn: str) -> Any:
        """The S3 client of a job running as ``role_arn`` (the stand-in's own without roles)."""
        if self.assume_role is None:
            return self._s3
        with self._lock:
            if role_arn not in self._role_clients:
                try:
                    identity = self.assume_role(role_arn)
                except PermissionDenied as err:
                    raise service_error(
                        "ForbiddenException",
                        f"MediaConvert cannot assume the role {role_arn}: {err.denials[0].reason}",
                        403,
                        "CreateJob",
                    ) from None
                self._role_clients[role_arn] = identity.client("s3", self.region)
            return self._role_clients[role_arn]

    def _read(self, uri: str, s3: Any) -> bytes | None:
        parts = urlsplit(uri)
        try:
            body: bytes = s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))[
                "Body"
            ].read()
        except ClientError:
            return None
        return body

    def _source_info(self, uri: str, s3: Any) -> VideoInfo | None:
        """The probed source the time model reads (None when it cannot be read: the job then
        fails early, after ``MIN_JOB_S``)."""
        with tempfile.TemporaryDirectory(prefix="mediaconvert-") as tmp, self.clock.paused():
            body = self._read(uri, s3)
            if not body:
                return None
            path = Path(tmp) / "input"
            path.write_bytes(body)
            try:
                return probe(path)
            except MediaError:
                return None

    def _end(self, job_id: str) -> None:
        """The job's modelled end (on the clock's timer thread): encode and write its outputs."""
        with self._lock:
            job = self.jobs[job_id]
            try:
                self._advance(job)
            except Exception as err:  # not a job error: the next GetJob raises it
                job.crash = err

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
        # The job ends at its modelled instant (its timer, or a poll that comes first).
        finish = _iso(job.submitted + timedelta(seconds=job.duration_s))
        body["Timing"].setdefault("StartTime", finish)
        body["Timing"]["FinishTime"] = finish
        job.finished = True
        file_input = body["Settings"]["Inputs"][0].get("FileInput", "")
        try:
            if job.failure is not None:
                raise TranscodeError(
                    job.failure.error_code, job.failure.error_message.format(input=file_input)
                )
            body["OutputGroupDetails"] = self._run(body["Settings"], file_input, job.s3 or self._s3)
        except TranscodeError as err:
            body["Status"] = "ERROR"
            body["ErrorCode"] = err.error_code
            body["ErrorMessage"] = err.message
            body.pop("JobPercentComplete", None)
            return
        body["Status"] = "COMPLETE"
        body["JobPercentComplete"] = 100

    def _run(self, settings: dict[str, Any], file_input: str, s3: Any) -> list[dict[str, Any]]:
        # Reading, encoding and writing are real work: the model's duration already covers them.
        with tempfile.TemporaryDirectory(prefix="mediaconvert-") as tmp, self.clock.paused():
            source = self._read(file_input, s3)
            if source is None:
                raise TranscodeError(
                    1030,
                    f"Failed to open input file [{file_input}]: the object does not exist or the "
                    "job role cannot read it",
                )
            path = Path(tmp) / (PurePosixPath(urlsplit(file_input).path).name or "input")
            path.write_bytes(source)
            write = functools.partial(self._put, s3)
            return transcode(settings, path, input_uri=file_input, write=write)

    @staticmethod
    def _put(s3: Any, uri: str, local: Path, content_type: str) -> None:
        parts = urlsplit(uri)
        try:
            s3.put_object(
                Bucket=parts.netloc,
                Key=parts.path.lstrip("/"),
                Body=local.read_bytes(),
                ContentType=content_type,
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "AccessDenied":
                raise
            message = (
                f"Unable to write to output file [{uri}]: [Failed to write data: Access Denied]"
            )
            raise TranscodeError(1401, message) from None
