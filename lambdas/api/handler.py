"""The jobs API: people and systems upload video to the raw bucket without AWS credentials for it.

An HTTP API (API Gateway v2, payload format 2.0) calls this function for every route. The caller
is authenticated by API Gateway, by IAM (SigV4; the owner is ``authorizer.iam.userArn``) or by a
Cognito JWT authorizer (the owner is the ``sub`` claim); a request with neither is refused (403).
A caller sees only the jobs it created, except admins (``ADMIN_PRINCIPALS``, ``ADMIN_GROUP``),
who may read any; someone else's job is answered exactly like a job that does not exist (404),
so ids cannot be probed.

Flow: ``POST /jobs`` declares the file (name, type, size, SHA-256) and answers where to put it:

* up to ``MULTIPART_THRESHOLD_BYTES``, one presigned ``PutObject`` URL signed with the content
  type, length, SHA-256 checksum and metadata, so S3 itself refuses any other bytes;
* above, a multipart upload (created here, with the content type and metadata) and one
  presigned ``UploadPart`` URL per part; ``POST /jobs/{id}/parts`` re-signs parts for a client
  that resumes, and ``POST /jobs/{id}/complete`` checks the parts against S3's list before
  completing (S3 verifies no whole-file SHA-256 for multipart uploads; ingest does).

The object lands under ``uploads/jobs/<job_id>/``, where the upload trigger starts the pipeline
as for any upload. ``GET /jobs/{id}`` follows the job: ``WAITING_FOR_UPLOAD``, ``UPLOADED``, then
the asset's ``RUNNING``, ``PROCESSED`` or ``FAILED``; ``GET /jobs/{id}/result`` links the
results once processed; ``GET /jobs`` lists the caller's jobs, newest first.

Every error is ``{"message": "..."}`` naming the field or value at fault.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from http import HTTPStatus
from pathlib import PurePosixPath
from typing import Annotated, Any, cast

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdas.api.models import (
    AssetResults,
    CompleteRequest,
    CompleteResponse,
    CreateJobRequest,
    CreateJobResponse,
    CreateProjectRequest,
    CreateProjectResponse,
    ErrorMessage,
    Feature,
    JobList,
    JobResult,
    JobStatus,
    JobView,
    MultipartUpload,
    PartsRequest,
    PartsResponse,
    PartUrl,
    ProjectUpload,
    ProjectView,
    PutUpload,
    ReprocessRequest,
    ReprocessResponse,
    ResultVersion,
    UploadedPart,
)
from lambdas.api.settings import ApiSettings
from lambdas.shared.campaign_config import UPLOADS_CAMPAIGN, CampaignConfigStore
from lambdas.shared.catalog import Catalog, ReprocessRunning
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import bounded, shown
from lambdas.shared.jobs import (
    FAILED,
    TTL_GRACE_S,
    UPLOADED,
    WAITING_FOR_UPLOAD,
    JobStore,
    is_job_id,
    owner_key,
    upload_key,
)
from lambdas.shared.keys import UnsafeKeyError, safe_file_name
from lambdas.shared.media_types import image_type_of
from lambdas.shared.projects import head, read_status, write_status
from lambdas.shared.rekognition import FEATURES
from lambdas.shared.story_manifest import (
    AUDIO_TYPES,
    MANIFEST_NAME,
    final_video_key,
    project_key,
    status_key,
)

tools = Powertools()
logger = tools.logger

API_TITLE = "Media pipeline jobs API"
API_VERSION = "1.0.0"
DEFAULT_PAGE = 25
MAX_PAGE = 100
MAX_TOKEN_LEN = 2048
# SigV4 everywhere (the only scheme that signs the checksum and length headers), and regional
# virtual-host URLs, which need no redirect from the global endpoint for a new bucket.
S3_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_ASSUMED_ROLE_RE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$")
_ROLE_RE = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")
# What a client sees while the pipeline works on the asset, by the asset's catalog status.
_ASSET_STATUS: dict[str, JobStatus] = {
    "INGESTED": "RUNNING",
    "PROCESSING": "RUNNING",
    "PROCESSED": "PROCESSED",
    "FAILED": "FAILED",
}
# ``GET /jobs?status=`` narrows the query by the stored status when that is exact, then filters
# on the derived one (the RUNNING/PROCESSED/FAILED of a linked asset are not on the job item).
_STORED_FILTER: dict[str, str] = {
    "WAITING_FOR_UPLOAD": WAITING_FOR_UPLOAD,
    "UPLOADED": UPLOADED,
    "RUNNING": UPLOADED,
    "PROCESSED": UPLOADED,
}


# -- wiring ------------------------------------------------------------------------------------
class Services:
    """The function's clients, each made on first use (a ``GET`` never builds the SSM client)."""

    def __init__(self, settings: ApiSettings) -> None:
        self._settings = settings

    @cached_property
    def _dynamodb(self) -> Any:
        return boto3.resource("dynamodb")

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self._settings.catalog_table, resource=self._dynamodb)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self._settings.catalog_table, resource=self._dynamodb)

    @cached_property
    def s3(self) -> Any:
        return boto3.client("s3", config=S3_CONFIG)

    @cached_property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions")

    @cached_property
    def campaigns(self) -> CampaignConfigStore:
        return CampaignConfigStore(self._settings.config_parameter)


_dependencies = Dependencies(ApiSettings, Services)
app = APIGatewayHttpResolver(enable_validation=True)


def _error(status: int, message: str) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"message": bounded(message)},
    )


class ApiError(ServiceError):
    """An answer other than success; the message is what the client reads."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(int(status), bounded(message))


def _bad(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, message)


def _conflict(message: str) -> ApiError:
    return ApiError(HTTPStatus.CONFLICT, message)


def _no_job(job_id: str) -> ApiError:
    named = job_id if is_job_id(job_id) else shown(job_id)
    return ApiError(HTTPStatus.NOT_FOUND, f"no job {named}")


@app.exception_handler(ServiceError)
def _service_error(err: ServiceError) -> Response:
    return _error(err.status_code, str(err.msg))


@app.not_found
def _unknown_route(_: NotFoundError) -> Response:
    event = app.current_event
    return _error(HTTPStatus.NOT_FOUND, f"no route {event.http_method} {shown(event.path, 120)}")


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_body(_: RequestUnsupportedContentType) -> Response:
    return _error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the request body must be JSON")


@app.exception_handler(RequestValidationError)
def _invalid_request(err: RequestValidationError) -> Response:
    errors = list(err.errors())
    if any(tuple(error.get("loc") or ())[:1] == ("response",) for error in errors):
        # Our answer broke its own schema: a bug here, not the caller's mistake.
        logger.error("response failed validation", extra={"errors": errors[:5]})
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
    return _error(HTTPStatus.BAD_REQUEST, validation_message(errors))


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One sentence per problem, each naming its field: ``size_bytes: must be ...``."""
    problems: list[str] = []
    for error in errors:
        kind, loc = error.get("type"), tuple(error.get("loc") or ())
        if kind == "json_invalid":
            detail = (error.get("ctx") or {}).get("error") or "malformed"
            problems.append(f"the request body is not valid JSON ({detail})")
            continue
        where = _where(loc)
        if not where:
            problems.append(
                "a JSON object body is required"
                if kind == "missing"
                else "the request body must be a JSON object"
            )
            continue
        if kind == "missing":
            problems.append(f"{where}: is required")
        elif kind == "extra_forbidden":
            problems.append(f"{where}: is not a field of this request")
        else:
            message = str(error.get("msg") or kind).removeprefix("Value error, ")
            problems.append(f"{where}: {message[:1].lower()}{message[1:]}")
    return "; ".join(dict.fromkeys(problems)) or "the request is not valid"


# -- who is calling ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    owner: str
    admin: bool = False

    def may_read(self, job: Mapping[str, Any]) -> bool:
        return self.admin or job.get("owner") == self.owner

    def owns(self, job: Mapping[str, Any]) -> bool:
        return job.get("owner") == self.owner


def _is_admin_arn(arn: str, admins: frozenset[str]) -> bool:
    """An admin ARN, or a session of an admin role (sessions are ``sts::...:assumed-role/``)."""
    if arn in admins:
        return True
    session = _ASSUMED_ROLE_RE.match(arn)
    if session is None:
        return False
    for admin in admins:
        role = _ROLE_RE.match(admin)
        if role is not None and role.groups() == session.groups():
            return True
    return False


def _groups(value: object) -> set[str]:
    """``cognito:groups`` as API Gateway passes it: a list, ``"[a b]"``, or ``"a,b"``."""
    if isinstance(value, list):
        return {str(item) for item in value}
    if not isinstance(value, str):
        return set()
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            text = text[1:-1]
        else:
            return {str(item) for item in parsed} if isinstance(parsed, list) else set()
    return {part for part in re.split(r"[\s,]+", text) if part}


def caller_of(event: Mapping[str, Any], settings: ApiSettings) -> Caller | None:
    """The authenticated caller from the authorizer context API Gateway added, or None."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    if not isinstance(authorizer, Mapping):
        return None
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping):
        arn = iam.get("userArn")
        if isinstance(arn, str) and arn:
            return Caller(arn, _is_admin_arn(arn, settings.admins))
    jwt = authorizer.get("jwt")
    claims = jwt.get("claims") if isinstance(jwt, Mapping) else None
    if isinstance(claims, Mapping):
        sub = claims.get("sub")
        if isinstance(sub, str) and sub:
            group = settings.admin_group
            return Caller(sub, group is not None and group in _groups(claims.get("cognito:groups")))
    return None


def _caller() -> Caller:
    caller = app.context.get("caller")
    if not isinstance(caller, Caller):  # the handler always sets it; a direct resolve may not
        raise ApiError(HTTPStatus.FORBIDDEN, "the request is not signed (IAM) or authorized (JWT)")
    return caller


def _body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body")
    if not isinstance(body, str):
        return 0
    if event.get("isBase64Encoded"):
        try:
            return len(base64.b64decode(body))
        except (binascii.Error, ValueError):
            return len(body)
    return len(body.encode())


# -- jobs --------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def storage_name(filename: str) -> str:
    """The object's file name: ``safe_file_name`` (ASCII, no separators, no ``..``), keeping the
    extension; a name with nothing usable in Latin letters becomes ``upload<ext>``."""
    suffix = PurePosixPath(filename).suffix.lower()
    ext = suffix[1:]
    suffix = suffix if 1 <= len(ext) <= 5 and ext.isascii() and ext.isalnum() else ""
    try:
        name = safe_file_name(filename)
    except UnsafeKeyError:
        name = ""
    if suffix and not name.lower().endswith(suffix):
        name = ""
    stem = name[: len(name) - len(suffix)]
    return name if any(ch.isalnum() for ch in stem) else f"upload{suffix}"


def _object_metadata(
    job_id: str, campaign: str, source: str | None, captured_at: str | None
) -> dict[str, str]:
    """S3 user metadata (ASCII by construction: an id, slugs and a normalized timestamp)."""
    metadata = {"job-id": job_id, "campaign": campaign}
    if source:
        metadata["source"] = source
    if captured_at:
        metadata["captured-at"] = captured_at
    return metadata


def _check_campaign(campaign: str, services: Services) -> None:
    if campaign == UPLOADS_CAMPAIGN:
        return
    known = services.campaigns.load().campaigns
    if campaign not in known:
        raise _bad(
            f"campaign: {shown(campaign)} is not a configured campaign; expected one of "
            f"{', '.join([*known, UPLOADS_CAMPAIGN])}"
        )


def _parts_count(job: Mapping[str, Any]) -> int:
    return max(1, math.ceil(int(job["size_bytes"]) / int(job["part_size"])))


def _part_url(services: Services, settings: ApiSettings, job: Mapping[str, Any], n: int) -> str:
    return str(
        services.s3.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": settings.raw_bucket,
                "Key": job["upload_key"],
                "UploadId": job["upload_id"],
                "PartNumber": n,
            },
            ExpiresIn=settings.url_expiry_s,
        )
    )


def _owned_job(job_id: str) -> dict[str, Any]:
    """The caller's own job (to upload to); anyone else's is "no job", admins included."""
    _, services = _dependencies()
    job = services.jobs.get(job_id)
    if job is None or not _caller().owns(job):
        raise _no_job(job_id)
    return job


def _readable_job(job_id: str) -> dict[str, Any]:
    _, services = _dependencies()
    job = services.jobs.get(job_id)
    if job is None or not _caller().may_read(job):
        raise _no_job(job_id)
    return job


def _open_multipart(job: Mapping[str, Any]) -> None:
    job_id = job["job_id"]
    if not job.get("upload_id"):
        raise _conflict(
            f"job {job_id} is a single PUT upload: PUT the file to its URL, it has no parts"
        )
    if job.get("status") != WAITING_FOR_UPLOAD:
        raise _conflict(f"job {job_id} is already {job.get('status')}")


def _uploaded_parts(job: Mapping[str, Any]) -> dict[int, UploadedPart]:
    """What S3 holds of the job's multipart upload (every page of ListParts)."""
    settings, services = _dependencies()
    parts: dict[int, UploadedPart] = {}
    kwargs: dict[str, Any] = {
        "Bucket": settings.raw_bucket,
        "Key": job["upload_key"],
        "UploadId": job["upload_id"],
    }
    while True:
        try:
            page = services.s3.list_parts(**kwargs)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchUpload":
                raise _conflict(
                    f"job {job['job_id']}: its multipart upload is no longer open (aborted or "
                    "expired); create a new job"
                ) from None
            raise
        for part in page.get("Parts", []):
            number = int(part["PartNumber"])
            parts[number] = UploadedPart(
                part_number=number, etag=str(part["ETag"]), size=int(part["Size"])
            )
        if not page.get("IsTruncated"):
            return parts
        kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]


def _numbers(numbers: list[int], count: int, field: str) -> None:
    twice = sorted(n for n, times in Counter(numbers).items() if times > 1)
    if twice:
        raise _bad(f"{field}: {_list('part', twice)} listed more than once")
    outside = sorted(n for n in numbers if n > count)
    if outside:
        raise _bad(
            f"{field}: {_list('part', outside)} out of range; this upload has parts 1-{count}"
        )


def _list(noun: str, numbers: list[int]) -> str:
    shown_numbers = ", ".join(str(n) for n in numbers[:20]) + (" …" if len(numbers) > 20 else "")
    return f"{noun} {shown_numbers} is" if len(numbers) == 1 else f"{noun}s {shown_numbers} are"


def _expected_size(job: Mapping[str, Any], number: int, count: int) -> int:
    part_size = int(job["part_size"])
    return part_size if number < count else int(job["size_bytes"]) - part_size * (count - 1)


def _head(settings: ApiSettings, services: Services, key: str) -> bool:
    try:
        services.s3.head_object(Bucket=settings.raw_bucket, Key=key)
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code")) in _NOT_FOUND_CODES:
            return False
        raise
    return True


def _view(
    job: Mapping[str, Any], asset: Mapping[str, Any] | None, *, status: JobStatus | None = None
) -> JobView:
    """What a client sees of a job: its derived status, from the job and its asset."""
    reason: str | None = None
    if job.get("status") == FAILED:
        status, reason = "FAILED", str(job.get("failure_reason") or "the upload was refused")
    elif job.get("asset_id"):
        # A job is linked as ingest commits its asset: no asset item yet means it is on its way.
        status = _ASSET_STATUS.get(str((asset or {}).get("status")), "RUNNING")
        if status == "FAILED":
            reason = str((asset or {}).get("failure_reason") or "processing failed")
    elif status is None:
        status = "UPLOADED" if job.get("status") == UPLOADED else "WAITING_FOR_UPLOAD"
    return JobView(
        job_id=job["job_id"],
        status=status,
        reason=reason,
        filename=job["filename"],
        campaign=job["campaign"],
        source=job.get("source"),
        captured_at=job.get("captured_at"),
        created_at=job["created_at"],
        size_bytes=int(job["size_bytes"]),
        asset_id=job.get("asset_id"),
    )


def _describe(job: dict[str, Any]) -> tuple[JobView, dict[str, Any] | None]:
    """The job's view, looking at S3 when the item cannot say whether the file arrived."""
    settings, services = _dependencies()
    asset = services.catalog.get_asset(job["asset_id"]) if job.get("asset_id") else None
    status: JobStatus | None = None
    if job.get("status") == WAITING_FOR_UPLOAD and not job.get("asset_id"):
        if _head(settings, services, job["upload_key"]):
            # A single PUT completes without telling anyone: record it, and keep the job.
            services.jobs.mark_uploaded(job["job_id"])
            status = "UPLOADED"
        else:
            status = "WAITING_FOR_UPLOAD"
    return _view(job, asset, status=status), asset


# -- tokens of GET /jobs -----------------------------------------------------------------------
_TOKEN_KEYS = frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})


def encode_token(last_key: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(last_key), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, owner: str) -> dict[str, str]:
    """The start key a token stands for; only the caller's own listing's tokens are accepted."""
    malformed = _bad("next: is not a page token of this API (pass the 'next' of the last answer)")
    if len(token) > MAX_TOKEN_LEN or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise malformed
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise malformed from None
    if (
        not isinstance(key, dict)
        or set(key) != _TOKEN_KEYS
        or not all(isinstance(value, str) for value in key.values())
        or key["sk"] != "JOB"
        or not key["pk"].startswith("JOB#")
        or not key["gsi1sk"].endswith("#" + key["pk"].removeprefix("JOB#"))
    ):
        raise malformed
    if key["gsi1pk"] != owner_key(owner):
        raise _bad("next: the token belongs to another caller's listing")
    return key


# -- OpenAPI ---------------------------------------------------------------------------------
_ERRORS = {
    400: "The request is not valid; the message names the field.",
    403: "The request carries no IAM or JWT caller.",
    404: "No such job or asset (or not the caller's).",
    409: "The job or asset is not in a state that allows this.",
    413: "The file (or the request body) is over the limit.",
}


def _responses(ok: int, model: type, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    answers: dict[int, OpenAPIResponse] = {
        ok: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for code in sorted({400, 403, *errors}):
        answers[code] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"model": ErrorMessage}},
        }
    return answers


# -- routes ------------------------------------------------------------------------------------
@app.post(
    "/jobs",
    status_code=201,
    summary="Create an upload job",
    description="Declare a file; the answer says where and how to upload it.",
    responses=_responses(201, CreateJobResponse, "The job, with its upload URL(s).", 413),
    tags=["jobs"],
    operation_id="createJob",
)
def create_job(request: Annotated[CreateJobRequest, Body()]) -> CreateJobResponse:
    settings, services = _dependencies()
    caller = _caller()
    if request.content_type not in settings.allowed_content_types:
        raise _bad(
            f"content_type: {shown(request.content_type)} is not accepted; expected one of "
            f"{', '.join(settings.allowed_content_types)}"
        )
    if request.size_bytes > settings.max_upload_bytes:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"size_bytes: {request.size_bytes} is over the limit of "
            f"{settings.max_upload_bytes} bytes",
        )
    campaign = request.campaign if request.campaign is not None else settings.default_campaign
    _check_campaign(campaign, services)

    job_id = uuid.uuid4().hex
    key = upload_key(job_id, storage_name(request.filename))
    now = _now()
    expires = now + timedelta(seconds=settings.url_expiry_s)
    metadata = _object_metadata(job_id, campaign, request.source, request.captured_at)
    item: dict[str, Any] = {
        "job_id": job_id,
        "owner": caller.owner,
        "filename": request.filename,
        "content_type": request.content_type,
        "size_bytes": request.size_bytes,
        "sha256": request.sha256,
        "campaign": campaign,
        "metadata": request.metadata,
        "upload_key": key,
        "status": WAITING_FOR_UPLOAD,
        "created_at": _iso(now),
        "expires_at": int(now.timestamp()) + settings.url_expiry_s + TTL_GRACE_S,
    }
    item |= {
        name: value
        for name, value in (("source", request.source), ("captured_at", request.captured_at))
        if value is not None
    }
    upload: PutUpload | MultipartUpload
    upload_id: str | None = None
    if request.size_bytes > settings.multipart_threshold_bytes:
        created = services.s3.create_multipart_upload(
            Bucket=settings.raw_bucket,
            Key=key,
            ContentType=request.content_type,
            Metadata=metadata,
        )
        upload_id = str(created["UploadId"])
        item |= {"upload_id": upload_id, "part_size": settings.part_size_bytes}
        upload = MultipartUpload(
            method="MULTIPART",
            upload_id=upload_id,
            part_size=settings.part_size_bytes,
            parts=[
                PartUrl(part_number=n, url=_part_url(services, settings, item, n))
                for n in range(1, _parts_count(item) + 1)
            ],
        )
    else:
        checksum = base64.b64encode(bytes.fromhex(request.sha256)).decode()
        url = services.s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": settings.raw_bucket,
                "Key": key,
                "ContentType": request.content_type,
                "ContentLength": request.size_bytes,
                "ChecksumSHA256": checksum,
                "Metadata": metadata,
            },
            ExpiresIn=settings.url_expiry_s,
        )
        upload = PutUpload(
            method="PUT",
            url=str(url),
            headers={
                "Content-Type": request.content_type,
                "Content-Length": str(request.size_bytes),
                "x-amz-checksum-sha256": checksum,
                **{f"x-amz-meta-{name}": value for name, value in metadata.items()},
            },
        )
    try:
        services.jobs.create(item)
    except BaseException:
        if upload_id is not None:  # no job, so no upload either (the lifecycle rule is a backstop)
            try:
                services.s3.abort_multipart_upload(
                    Bucket=settings.raw_bucket, Key=key, UploadId=upload_id
                )
            except ClientError:
                logger.exception("could not abort the multipart upload of a job never stored")
        raise
    logger.info(
        "job created",
        extra={
            "job_id": job_id,
            "campaign": campaign,
            "size_bytes": request.size_bytes,
            "multipart": upload_id is not None,
        },
    )
    return CreateJobResponse(
        job_id=job_id,
        status="WAITING_FOR_UPLOAD",
        key=key,
        expires_at=_iso(expires),
        upload=upload,
    )


@app.post(
    "/jobs/<job_id>/parts",
    summary="Fresh part URLs for a multipart upload",
    description="New presigned URLs for the parts asked for, and the parts S3 already has.",
    responses=_responses(200, PartsResponse, "URLs and uploaded parts.", 404, 409, 413),
    tags=["jobs"],
    operation_id="signParts",
)
def sign_parts(job_id: str, request: Annotated[PartsRequest, Body()]) -> PartsResponse:
    settings, services = _dependencies()
    job = _owned_job(job_id)
    _open_multipart(job)
    _numbers(request.part_numbers, _parts_count(job), "part_numbers")
    uploaded = _uploaded_parts(job)
    return PartsResponse(
        parts=[
            PartUrl(part_number=n, url=_part_url(services, settings, job, n))
            for n in request.part_numbers
        ],
        uploaded=[uploaded[n] for n in sorted(uploaded)],
    )


@app.post(
    "/jobs/<job_id>/complete",
    summary="Complete a multipart upload",
    description="Checks every part against what S3 holds, then completes the upload.",
    responses=_responses(200, CompleteResponse, "The file is uploaded.", 404, 409, 413),
    tags=["jobs"],
    operation_id="completeUpload",
)
def complete_upload(job_id: str, request: Annotated[CompleteRequest, Body()]) -> CompleteResponse:
    settings, services = _dependencies()
    job = _owned_job(job_id)
    if job.get("upload_id") and job.get("status") == UPLOADED:
        return CompleteResponse(job_id=job_id, status="UPLOADED")  # a retried complete
    _open_multipart(job)
    count = _parts_count(job)
    numbers = [part.part_number for part in request.parts]
    _numbers(numbers, count, "parts")
    later = next((b for a, b in itertools.pairwise(numbers) if b < a), None)
    if later is not None:
        before = numbers[numbers.index(later) - 1]
        raise _bad(
            f"parts: must be in ascending part_number order; part {later} comes after part {before}"
        )
    missing = sorted(set(range(1, count + 1)) - set(numbers))
    if missing:
        raise _bad(f"parts: {_list('part', missing)} missing; this upload has parts 1-{count}")
    uploaded = _uploaded_parts(job)
    absent = [n for n in numbers if n not in uploaded]
    if absent:
        raise _bad(f"parts: {_list('part', absent)} not uploaded yet")
    for part in request.parts:
        held = uploaded[part.part_number]
        if part.etag.strip('"') != held.etag.strip('"'):
            raise _bad(
                f"parts: the etag of part {part.part_number} is not the one S3 holds for it "
                f"({shown(part.etag)})"
            )
        expected = _expected_size(job, part.part_number, count)
        if held.size != expected:
            raise _bad(
                f"parts: part {part.part_number} is {held.size} bytes, expected {expected} "
                f"(parts of {job['part_size']} bytes, the last one the rest of "
                f"{job['size_bytes']})"
            )
    try:
        services.s3.complete_multipart_upload(
            Bucket=settings.raw_bucket,
            Key=job["upload_key"],
            UploadId=job["upload_id"],
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": uploaded[n].etag} for n in range(1, count + 1)]
            },
            IfNoneMatch="*",
        )
    except ClientError as err:
        error = err.response.get("Error", {})
        code = str(error.get("Code"))
        if code in ("NoSuchUpload", "PreconditionFailed") and _head(
            settings, services, job["upload_key"]
        ):
            pass  # completed by an earlier call whose answer was lost
        elif code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
            raise _bad(f"parts: S3 refused them ({code}: {error.get('Message', '')})") from None
        elif code == "NoSuchUpload":
            raise _conflict(
                f"job {job_id}: its multipart upload is no longer open (aborted or expired); "
                "create a new job"
            ) from None
        else:
            raise
    services.jobs.mark_uploaded(job_id)
    logger.info("multipart upload completed", extra={"job_id": job_id, "parts": count})
    return CompleteResponse(job_id=job_id, status="UPLOADED")


@app.get(
    "/jobs/<job_id>",
    summary="A job and its status",
    responses=_responses(200, JobView, "The job.", 404),
    tags=["jobs"],
    operation_id="getJob",
)
def get_job(job_id: str) -> JobView:
    view, _ = _describe(_readable_job(job_id))
    return view


@app.get(
    "/jobs/<job_id>/result",
    summary="Links to a processed job's results",
    responses=_responses(200, JobResult, "Presigned links to the results.", 404, 409),
    tags=["jobs"],
    operation_id="getJobResult",
)
def get_result(job_id: str) -> JobResult:
    settings, services = _dependencies()
    view, asset = _describe(_readable_job(job_id))
    if view.status == "FAILED":
        raise _conflict(f"job {job_id} is FAILED, there is no result: {view.reason}")
    if view.status != "PROCESSED" or asset is None or not asset.get("labels_key"):
        raise _conflict(f"job {job_id} is {view.status}, no result yet")

    def link(key: object) -> str | None:
        if not isinstance(key, str) or not key:
            return None
        return str(
            services.s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": settings.processed_bucket, "Key": key},
                ExpiresIn=settings.url_expiry_s,
            )
        )

    return JobResult(
        job_id=job_id,
        asset_id=str(asset["asset_id"]),
        top_labels=[str(label) for label in asset.get("top_labels") or []],
        media_type="image" if asset.get("type") == "image" else "video",
        labels_json=link(asset["labels_key"]) or "",
        proxy=link(asset.get("mp4_key")) or "",
        image=link(asset.get("image_key")),
        thumbnail=link(asset.get("thumbnail_key")),
    )


@app.get(
    "/jobs",
    summary="The caller's jobs, newest first",
    responses=_responses(200, JobList, "One page of jobs."),
    tags=["jobs"],
    operation_id="listJobs",
)
def list_jobs(
    campaign: Annotated[str | None, Query(max_length=40, description="Only this campaign.")] = None,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description="Jobs read for this page (1-100).")
    ] = DEFAULT_PAGE,
    next_token: Annotated[
        str | None, Query(alias="next", description="The 'next' of the previous page.")
    ] = None,
) -> JobList:
    _, services = _dependencies()
    caller = _caller()
    start = decode_token(next_token, caller.owner) if next_token is not None else None
    page = services.jobs.list_for(
        caller.owner,
        campaign=campaign,
        status=_STORED_FILTER.get(status) if status else None,
        limit=limit,
        start_key=start,
    )
    assets = services.jobs.linked_assets(page.items)
    views = [_view(job, assets.get(str(job.get("asset_id")))) for job in page.items]
    return JobList(
        jobs=[view for view in views if status is None or view.status == status],
        next=encode_token(page.last_key) if page.last_key else None,
    )


# -- assets: reprocess and result history ------------------------------------------------------
MAX_EXECUTION_NAME = 80
# Asset ids are ``<source>-<hex digest>``; anything else is no asset (and is not looked up).
_ASSET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _no_asset(asset_id: str) -> ApiError:
    named = asset_id if _ASSET_ID_RE.match(asset_id) else shown(asset_id)
    return ApiError(HTTPStatus.NOT_FOUND, f"no asset {named}")


def _readable_asset(asset_id: str) -> dict[str, Any]:
    """An asset the caller may see: one uploaded through its own job, or any for an admin.
    Anyone else's (and campaign assets, for a non-admin) is answered as missing."""
    _, services = _dependencies()
    caller = _caller()
    asset = services.catalog.get_asset(asset_id) if _ASSET_ID_RE.match(asset_id) else None
    if asset is None:
        raise _no_asset(asset_id)
    if caller.admin:
        return asset
    job = services.jobs.get(str(asset["job_id"])) if asset.get("job_id") else None
    if job is None or not caller.owns(job):
        raise _no_asset(asset_id)
    return asset


def run_name(asset_id: str, now: datetime) -> str:
    """An execution name (``[A-Za-z0-9_-]``, at most 80): readable, unique, sortable by time.
    ``asset_id`` has passed ``_ASSET_ID_RE``, so it needs no escaping."""
    head = f"reprocess-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}-"
    return head + asset_id[: MAX_EXECUTION_NAME - len(head)]


def _execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def _claim(asset_id: str, run: str) -> None:
    """Hold the asset for ``run``; a claim left by a run that is over is taken over."""
    settings, services = _dependencies()
    try:
        services.catalog.begin_reprocess(asset_id, run)
        return
    except ReprocessRunning as running:
        holder = running.run
    try:
        described = services.sfn.describe_execution(
            executionArn=_execution_arn(settings.reprocess_state_machine_arn, holder)
        )
        state = str(described.get("status"))
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
            raise
        state = "GONE"
    if state == "RUNNING":
        raise _conflict(f"asset {asset_id} is already being reprocessed by run {holder}")
    try:
        services.catalog.begin_reprocess(asset_id, run, replacing=holder)
    except ReprocessRunning as other:
        raise _conflict(
            f"asset {asset_id} is already being reprocessed by run {other.run}"
        ) from None


@app.post(
    "/assets/<asset_id>/reprocess",
    status_code=202,
    summary="Analyse a processed asset again",
    description=(
        "Runs Rekognition and finalize again on the stored asset (no upload, no transcode): "
        "every analysis, or those named in features (the others keep their last results). "
        "When its raw object has tiered to Glacier Flexible Retrieval or Deep Archive the run "
        "restores it first and waits for S3 (hours). Every run's result is kept: "
        "GET /assets/{asset_id}/results."
    ),
    responses=_responses(202, ReprocessResponse, "The reprocess run started.", 404, 409, 413),
    tags=["assets"],
    operation_id="reprocessAsset",
)
def reprocess_asset(
    asset_id: str, request: Annotated[ReprocessRequest | None, Body()] = None
) -> ReprocessResponse:
    settings, services = _dependencies()
    asset = _readable_asset(asset_id)
    status = str(asset.get("status"))
    if status == "FAILED":
        raise _conflict(
            f"asset {asset_id} is FAILED ({asset.get('failure_reason') or 'no reason recorded'}): "
            "it has no renditions to analyse again; upload the file again instead"
        )
    if status != "PROCESSED" or not asset.get("labels_key"):
        raise _conflict(f"asset {asset_id} is {status}: wait until the pipeline has processed it")
    if asset.get("type") == "image":
        raise _conflict(
            f"asset {asset_id} is an image: reprocessing re-runs a clip's video analyses, which "
            "an image has none of; upload the image again to analyse it anew"
        )
    run = run_name(asset_id, _now())
    _claim(asset_id, run)
    execution_input: dict[str, Any] = {"asset_id": asset_id, "requested_by": _caller().owner}
    if request is not None and request.note:
        execution_input["note"] = request.note
    if request is not None and request.features:
        execution_input["features"] = request.features
    try:
        started = services.sfn.start_execution(
            stateMachineArn=settings.reprocess_state_machine_arn,
            name=run,
            input=json.dumps(execution_input),
        )
    except Exception:
        services.catalog.end_reprocess(asset_id, run)
        raise
    logger.info("reprocess started", extra={"asset_id": asset_id, "run": run})
    return ReprocessResponse(
        asset_id=asset_id, run=run, status="RUNNING", execution_arn=started["executionArn"]
    )


@app.get(
    "/assets/<asset_id>/results",
    summary="Every run's result of an asset, newest first",
    responses=_responses(200, AssetResults, "The asset's result versions.", 404),
    tags=["assets"],
    operation_id="getAssetResults",
)
def asset_results(asset_id: str) -> AssetResults:
    settings, services = _dependencies()
    asset = _readable_asset(asset_id)
    versions = []
    for item in services.catalog.result_versions(asset_id):
        params = {"Bucket": settings.processed_bucket, "Key": item["labels_key"]}
        if item.get("labels_version_id"):
            params["VersionId"] = item["labels_version_id"]
        versions.append(
            ResultVersion(
                run=str(item["run"]),
                kind=item["kind"],
                generated_at=str(item["generated_at"]),
                labels_json=str(
                    services.s3.generate_presigned_url(
                        "get_object", Params=params, ExpiresIn=settings.url_expiry_s
                    )
                ),
                top_labels=[str(label) for label in item.get("top_labels") or []],
                analysed_input=item.get("analysed_input"),
                label_count=int(item.get("label_count") or 0),
                moderation_flagged=bool(item.get("moderation_flagged")),
                # A result recorded before features could be chosen ran all three.
                features=cast(list[Feature], list(item.get("features") or FEATURES)),
            )
        )
    return AssetResults(
        asset_id=asset_id,
        status=str(asset.get("status")),
        reprocess_run=asset.get("reprocess_run"),
        last_reprocess_error=asset.get("last_reprocess_error"),
        versions=versions,
    )


# -- story projects ----------------------------------------------------------------------------
def _project_upload(
    services: Services, settings: ApiSettings, project_id: str, name: str, content_type: str
) -> ProjectUpload:
    key = project_key(project_id, name)
    url = services.s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": settings.projects_bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=settings.url_expiry_s,
    )
    return ProjectUpload(
        name=name, key=key, method="PUT", url=str(url), headers={"Content-Type": content_type}
    )


@app.post(
    "/projects",
    status_code=201,
    summary="Create a story project",
    description="Check a story manifest; the answer holds a PUT URL for each image, the "
    "narration and, to upload last, the manifest, whose arrival starts the render.",
    responses=_responses(201, CreateProjectResponse, "The project's upload URLs.", 409),
    tags=["projects"],
    operation_id="createProject",
)
def create_project(request: Annotated[CreateProjectRequest, Body()]) -> CreateProjectResponse:
    settings, services = _dependencies()
    caller = _caller()
    project_id = request.project_id or f"p-{uuid.uuid4().hex[:20]}"
    bucket = settings.projects_bucket
    if head(services.s3, bucket, status_key(project_id)) is not None:
        raise _conflict(f"project {project_id} exists already; choose another project_id")
    manifest = request.manifest
    names = dict.fromkeys(segment.image for segment in manifest.segments)
    uploads = [
        _project_upload(services, settings, project_id, name, str(image_type_of(name)))
        for name in names
    ]
    extension = manifest.audio[manifest.audio.index(".") :].lower()
    uploads.append(
        _project_upload(services, settings, project_id, manifest.audio, AUDIO_TYPES[extension])
    )
    now = _now()
    write_status(
        services.s3,
        bucket,
        project_id,
        {"status": "WAITING_FOR_UPLOADS", "owner": caller.owner, "created_at": _iso(now)},
    )
    logger.info("project created", extra={"project_id": project_id, "files": len(uploads)})
    return CreateProjectResponse(
        project_id=project_id,
        status="WAITING_FOR_UPLOADS",
        expires_at=_iso(now + timedelta(seconds=settings.url_expiry_s)),
        uploads=uploads,
        manifest_upload=_project_upload(
            services, settings, project_id, MANIFEST_NAME, "application/json"
        ),
    )


@app.get(
    "/projects/<project_id>",
    summary="A story project and its render",
    responses=_responses(200, ProjectView, "The project.", 404),
    tags=["projects"],
    operation_id="getProject",
)
def get_project(project_id: str) -> ProjectView:
    settings, services = _dependencies()
    caller = _caller()
    missing = ApiError(HTTPStatus.NOT_FOUND, f"no project {shown(project_id)}")
    status = read_status(services.s3, settings.projects_bucket, project_id)
    if status is None or not caller.may_read(status):
        raise missing
    video_url = None
    if status.get("status") == "SUCCEEDED":
        video = status.get("video") or {}
        params = {"Bucket": settings.projects_bucket, "Key": final_video_key(project_id)}
        if video.get("version_id"):
            params["VersionId"] = str(video["version_id"])
        video_url = str(
            services.s3.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=settings.url_expiry_s
            )
        )
    upload = (status.get("pipeline") or {}).get("upload") or {}
    return ProjectView(
        project_id=project_id,
        status=status.get("status", "WAITING_FOR_UPLOADS"),
        reason=status.get("reason"),
        created_at=status.get("created_at"),
        updated_at=status.get("updated_at"),
        duration_s=status.get("duration_s"),
        video_url=video_url,
        pipeline_upload=upload.get("key"),
    )


# -- entry -------------------------------------------------------------------------------------
def _refusal(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, _ = _dependencies()
    caller = caller_of(event, settings)
    if caller is None:
        return _refusal(HTTPStatus.FORBIDDEN, "the request is not signed (IAM) or authorized (JWT)")
    size = _body_size(event)
    if size > settings.max_body_bytes:
        return _refusal(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the request body is {size} bytes, over the limit of {settings.max_body_bytes}",
        )
    app.append_context(caller=caller)
    return app.resolve(event, context)
