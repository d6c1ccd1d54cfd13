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

Simulated job time: ``MIN_JOB_S`` plus ``TRANSCODE_SPEED`` simulated seconds per second of
source (the on-demand queue runs at about real time for a ladder like ours).

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
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from localworld.clock import SimClock
from localworld.iam import Identity, PermissionDenied
from localworld.media import MediaError, probe
from localworld.shapes import check_output
from localworld.transcoder import TranscodeError, transcode

# Simulated transcode time per second of video (MediaConvert's on-demand queue is ~real time).
TRANSCODE_SPEED = 0.5
MIN_JOB_S = 20.0
# botocore's model: "If you reuse a client request token within one minute of a successful
# request, the API returns the job details of the original request instead."
TOKEN_WINDOW_S = 60.0


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
    failure: JobFailure | None
    s3: Any = None  # the client the job reads and writes with (its role's)
    finished: bool = False


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
        source_duration = self._source_duration(file_input, s3)
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
                submitted_at=self.clock.seconds(),
                duration_s=MIN_JOB_S + source_duration * TRANSCODE_SPEED,
                failure=failure,
                s3=s3,
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
            return check_output("mediaconvert", "GetJob", {"Job": copy.deepcopy(job.body)})

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

    def _source_duration(self, uri: str, s3: Any) -> float:
        """How long the source plays (0 when it cannot be read: the job then fails early)."""
        body = self._read(uri, s3)
        if not body:
            return 0.0
        with tempfile.TemporaryDirectory(prefix="mediaconvert-") as tmp, self.clock.paused():
            path = Path(tmp) / "input"
            path.write_bytes(body)
            try:
                return probe(path).duration_s
            except MediaError:
                return 0.0

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
        source = self._read(file_input, s3)
        if source is None:
            raise TranscodeError(
                1030,
                f"Failed to open input file [{file_input}]: the object does not exist or the "
                "job role cannot read it",
            )
        with tempfile.TemporaryDirectory(prefix="mediaconvert-") as tmp, self.clock.paused():
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
