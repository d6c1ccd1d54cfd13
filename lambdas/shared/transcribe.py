"""Amazon Transcribe behind one small adapter: the batch transcription of a clip's proxy.

The transcribe unit (which starts jobs and is resumed by their EventBridge event) and the
analysis unit's heartbeat sweep (which recovers an event that never came: Transcribe delivers
them best effort) read jobs the same way, and units are bundled with ``lambdas/shared`` only, so
this lives here.

Error classes are part of the state machine contract, as Rekognition's are:
``TranscribeLimitExceeded`` (quota or rate) and ``TranscribeUnavailable`` (a service fault) are
retried with backoff; ``TranscribeRequestRejected`` is permanent for the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared.tasks import resume_task
from lambdas.shared.tokens import fit

SPEECH = "speech"
JOB_NAME_MAX = 200
_JOB_NAME_UNSAFE = re.compile(r"[^0-9a-zA-Z._-]")
FINISHED_STATUSES = frozenset({"COMPLETED", "FAILED"})
SUBTITLE_FORMATS = ("vtt", "srt")
LIMIT_CODES = frozenset({"LimitExceededException", "ThrottlingException"})
UNAVAILABLE_CODES = frozenset({"InternalFailureException", "ServiceUnavailableException"})
GONE_CODES = frozenset({"NotFoundException"})


class TranscribeError(RuntimeError):
    """Any failure of a Transcribe call; the subclass says whether retrying can help."""


class TranscribeLimitExceeded(TranscribeError):
    """Transcribe refused the call for a quota or rate (concurrent jobs, TPS); retry later."""


class TranscribeUnavailable(TranscribeError):
    """Transcribe had an internal fault; the same call may succeed when retried."""


class TranscribeRequestRejected(TranscribeError):
    """Transcribe rejected the request itself (bad media, parameters, access); do not retry."""


def job_name(deployment: str, asset_id: str, run: str = "") -> str:
    """``[0-9a-zA-Z._-]``, at most 200: the deployment first (the EventBridge rule matches only
    its own jobs by this prefix), then the asset and, for a reprocess, its run. A retried start
    names the same job, which Transcribe refuses as a conflict instead of paying twice."""
    return fit(
        f"{deployment}-{asset_id}" + (f"-{run}" if run else ""), _JOB_NAME_UNSAFE, JOB_NAME_MAX
    )


def s3_location(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of the https URI Transcribe gives for a file it wrote (path style
    ``https://s3.<region>.amazonaws.com/<bucket>/<key>``, or virtual-hosted) or of ``s3://``."""
    parts = urlsplit(uri)
    path = unquote(parts.path).lstrip("/")
    if parts.scheme == "s3":
        return parts.netloc, path
    host = parts.netloc.split(":")[0]
    if host.startswith("s3.") or host.startswith("s3-") or host in ("localhost", "127.0.0.1"):
        bucket, _, key = path.partition("/")
        return bucket, key
    return host.split(".s3", 1)[0], path


def _located(uri: str) -> dict[str, str]:
    bucket, key = s3_location(uri)
    return {"bucket": bucket, "key": key}


@dataclass(frozen=True)
class TranscriptionJob:
    """What GetTranscriptionJob says of a job, in the shape the pipeline keeps."""

    name: str
    status: str
    failure_reason: str = ""
    language_code: str | None = None
    language_score: float | None = None
    transcript_uri: str | None = None
    subtitle_uris: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def to_result(self) -> dict[str, Any]:
        """The task's output: what finalize needs to write the speech section."""
        result: dict[str, Any] = {"feature": SPEECH, "job_name": self.name, "status": self.status}
        if self.status == "FAILED":
            result["reason"] = self.failure_reason or "Transcribe gave no reason"
            return result
        result["language_code"] = self.language_code
        result["language_score"] = self.language_score
        if self.transcript_uri:
            result["transcript"] = _located(self.transcript_uri)
        result["subtitles"] = {
            uri.rsplit(".", 1)[-1].lower(): _located(uri) for uri in self.subtitle_uris
        }
        return result

    @classmethod
    def from_answer(cls, job: dict[str, Any]) -> TranscriptionJob:
        score = job.get("IdentifiedLanguageScore")
        return cls(
            name=str(job["TranscriptionJobName"]),
            status=str(job.get("TranscriptionJobStatus", "")),
            failure_reason=str(job.get("FailureReason") or ""),
            language_code=job.get("LanguageCode"),
            language_score=float(score) if score is not None else None,
            transcript_uri=(job.get("Transcript") or {}).get("TranscriptFileUri"),
            subtitle_uris=tuple((job.get("Subtitles") or {}).get("SubtitleFileUris") or ()),
        )


def _translate(err: ClientError | BotoCoreError, what: str) -> TranscribeError:
    if isinstance(err, BotoCoreError):
        return TranscribeUnavailable(f"{what}: {err}")
    error = err.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in LIMIT_CODES:
        return TranscribeLimitExceeded(f"{what}: {code}: {message}")
    if (
        code in UNAVAILABLE_CODES
        or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    ):
        return TranscribeUnavailable(f"{what}: {code}: {message}")
    return TranscribeRequestRejected(f"{what}: {code}: {message}")


class Transcribe:
    """StartTranscriptionJob / GetTranscriptionJob, with the pipeline's retry semantics."""

    def __init__(self, client: BaseClient | None = None) -> None:
        # Retries are the state machine's (with backoff and a bounded count), not botocore's:
        # one attempt per call (``max_attempts`` would count retries after the first).
        self._client: Any = client or boto3.client(
            "transcribe", config=Config(retries={"total_max_attempts": 1, "mode": "standard"})
        )

    def start(
        self,
        name: str,
        *,
        media_uri: str,
        output_bucket: str,
        output_prefix: str,
        languages: Sequence[str],
        tags: dict[str, str],
    ) -> TranscriptionJob:
        """Start the job, or return the one this name already started (a retried start)."""
        params: dict[str, Any] = {
            "TranscriptionJobName": name,
            # No MediaFormat: Transcribe reads it from the file (MP4 proxy, or an MP4/MOV source).
            "Media": {"MediaFileUri": media_uri},
            "OutputBucketName": output_bucket,
            # A prefix: Transcribe names the files after the job (<name>.json, .vtt, .srt).
            "OutputKey": output_prefix,
            "Subtitles": {"Formats": list(SUBTITLE_FORMATS), "OutputStartIndex": 1},
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if len(languages) == 1:
            params["LanguageCode"] = languages[0]
        else:
            # Identification among the configured languages only: a clip in another language
            # gets the closest of them, with a low score (the section records it).
            params["IdentifyLanguage"] = True
            params["LanguageOptions"] = list(languages)
        try:
            answer = self._client.start_transcription_job(**params)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConflictException":
                return self.job(name)
            raise _translate(err, f"StartTranscriptionJob {name}") from err
        except BotoCoreError as err:
            raise _translate(err, f"StartTranscriptionJob {name}") from err
        return TranscriptionJob.from_answer(answer["TranscriptionJob"])

    def job(self, name: str) -> TranscriptionJob:
        try:
            answer = self._client.get_transcription_job(TranscriptionJobName=name)
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"GetTranscriptionJob {name}") from err
        return TranscriptionJob.from_answer(answer["TranscriptionJob"])


def complete_speech(
    catalog: Any, sfn: Any, name: str, job: TranscriptionJob, s3: Any = None
) -> str:
    """Resume the task waiting on job ``name`` and forget its token; returns what happened.

    A failed transcription resumes the task with success: the asset's pictures were analysed
    and its other results still land; the speech section records why there is no transcript.
    A task that is already closed (the asset failed and its cleanup ran, or the task timed out)
    will never reference what the job wrote, so those files are removed (with ``s3``), not left
    behind half a result. The token is taken atomically, so of a duplicate event, or the sweep
    racing the event, only one answers (and only that one may remove files); the others find no
    token and do nothing.
    """
    item = catalog.take_token(name)
    if item is None:
        return "unknown_job"
    try:
        resumed = resume_task(sfn, str(item["task_token"]), job.to_result())
    except Exception:
        catalog.restore_token(item)  # a fault: the retry (or the sweep) answers the task
        raise
    if not resumed and s3 is not None:
        for uri in (job.transcript_uri, *job.subtitle_uris):
            if uri:
                bucket, key = s3_location(uri)
                s3.delete_object(Bucket=bucket, Key=key)
    if not resumed:
        return "task_closed"
    return "completed" if job.status == "COMPLETED" else "failed"
