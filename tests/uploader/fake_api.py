"""A loopback stand-in for the jobs API, with moto's S3 behind it, for the uploader's tests and
its benchmark.

Why here, and imported by ``benchmarks/uploader.py`` too: it is test infrastructure (fault
switches, counters, a contract checker), so it lives beside the tests that pin that contract,
and the benchmark must measure the uploader against exactly what the tests verify, not a copy
that drifts. Importing ``tests.uploader.fake_api`` loads this module, the empty package files
above it (never a conftest) and ``localworld.s3_guard``; it needs the standard library, boto3
and moto, which the benchmark has anyway.

Three pieces, all on 127.0.0.1:

* ``GuardedMotoServer`` (``localworld.s3_guard``, shared with the local world): moto's
  ``ThreadedMotoServer`` with ``S3Guard`` in front. moto accepts any presigned URL and ignores
  ``x-amz-checksum-sha256``; real S3 does neither, and the uploader's guarantees rest on both.
  The guard checks a presigned URL's SigV4 signature (method, path, query and the signed
  headers, so a client that drops or alters a signed header is refused as S3 would refuse it),
  its expiry, and on a PUT the body's SHA-256 against the header (400 ``BadDigest``). It also
  counts the body bytes each PUT delivered (which is how "bytes re-sent after a crash" is
  measured) and can cut a connection mid-body.
* ``FakeJobsApi``: the contract in docs/uploader.md on ``http.server``. Every request must carry
  a well-formed SigV4 ``Authorization`` for ``execute-api``, and the signature is recomputed
  with the known test secret. Jobs live in memory; presigned URLs come from boto3 against the
  moto server. Faults (a status N times) can be switched on per route. What it answers has the
  real handler's JSON shape route by route (``tests/uploader/test_local_api.py`` compares them),
  so the faults it injects are the only thing the real world cannot give.
* ``fake_world()``: both, started and stopped together.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from moto.s3 import models as moto_s3_models

from localworld.s3_guard import (
    GuardedMotoServer,
    Reception,
    RunningChecksumBuilder,
    S3Guard,
)

MIB = 1024 * 1024
S3_KEY_ID = "fake-s3-key"
S3_SECRET = "fake-s3-secret"
DONE = ("UPLOADED", "RUNNING", "PROCESSED")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# Re-exported: the uploader's tests and benchmark import the S3 pieces from here.
__all__ = ["MIB", "FakeJobsApi", "FakeWorld", "GuardedMotoServer", "Reception", "S3Guard"]


# -- the jobs API ---------------------------------------------------------------------------------
class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    message: str
    retry_after: float | None = None


@dataclass
class Job:
    job_id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    campaign: str | None
    source: str | None
    captured_at: str | None
    metadata: dict[str, str]
    key: str
    method: str
    created_at: str
    expires_at: str
    status: str = "WAITING_FOR_UPLOAD"
    upload_id: str | None = None
    reason: str | None = None
    asset_id: str | None = None

    def public(self) -> dict[str, Any]:
        """The handler's ``JobView``: every field, ``null`` when it has no value."""
        return {
            "job_id": self.job_id,
            "status": self.status,
            "reason": self.reason,
            "filename": self.filename,
            "campaign": self.campaign,
            "source": self.source,
            "captured_at": self.captured_at,
            "created_at": self.created_at,
            "size_bytes": self.size_bytes,
            "asset_id": self.asset_id,
        }


_CAMPAIGN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_META_KEY = re.compile(r"^[a-z0-9-]{1,64}$")
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_FIELDS = {
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "campaign",
    "source",
    "captured_at",
    "metadata",
}


class FakeJobsApi:
    """The jobs API contract, in memory; ``url`` once started."""

    def __init__(
        self,
        *,
        s3_endpoint: str,
        bucket: str,
        region: str = "us-east-1",
        credentials: dict[str, str] | None = None,
        part_size: int = 5 * MIB,
        multipart_threshold: int = 8 * MIB,
        max_size_bytes: int = 50 * 1024 * MIB,
        url_expiry_s: int = 3600,
        verify_sha256_on_complete: bool = True,
        max_page: int = 100,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.credentials = credentials if credentials is not None else {"testing": "testing"}
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self.max_size_bytes = max_size_bytes
        self.url_expiry_s = url_expiry_s
        self.verify_sha256_on_complete = verify_sha256_on_complete
        self.max_page = max_page
        self.s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name=region,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        self.jobs: dict[str, Job] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.bodies: list[tuple[str, str, Any]] = []  # (method, path, JSON body)
        self.issued_signatures: list[str] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle and switches ----------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeJobsApi:
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int,
        times: int = 1,
        message: str = "injected fault",
        retry_after: float | None = None,
    ) -> None:
        """Answer ``status`` to the next ``times`` requests matching method and path regex."""
        with self._lock:
            self._faults.append(
                Fault(method, re.compile(path_pattern), status, times, message, retry_after)
            )

    def reset(self) -> None:
        with self._lock:
            self.jobs.clear()
            self.requests.clear()
            self.bodies.clear()
            self.issued_signatures.clear()
            self._faults.clear()

    def set_status(
        self, job_id: str, status: str, *, reason: str | None = None, asset_id: str | None = None
    ) -> None:
        job = self.jobs[job_id]
        job.status, job.reason, job.asset_id = status, reason, asset_id

    def calls(self, method: str, pattern: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(pattern, p))

    # -- request handling ----------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        split = urlsplit(target)
        try:
            self._check_signature(method, target, headers, body)
            self._maybe_fault(method, split.path)
            document = json.loads(body) if body else None
            with self._lock:
                self.bodies.append((method, split.path, document))
            status, answer = self._route(method, split.path, dict(parse_qsl(split.query)), document)
            return status, answer, {}
        except HttpError as exc:
            return exc.status, {"message": exc.message}, exc.headers
        except ValueError:
            return 400, {"message": "request body must be JSON"}, {}

    def _maybe_fault(self, method: str, path: str) -> None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.path.fullmatch(path) and fault.times > 0:
                    fault.times -= 1
                    extra = (
                        {"Retry-After": str(fault.retry_after)}
                        if fault.retry_after is not None
                        else {}
                    )
                    raise HttpError(fault.status, fault.message, extra)

    def _check_signature(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        """What API Gateway's IAM authorizer checks, with the known test secret."""
        lowered = {k.lower(): v for k, v in headers.items()}
        authorization = lowered.get("authorization")
        if not authorization:
            raise HttpError(403, "Forbidden")  # an HTTP API's answer (REST APIs say otherwise)
        match = _AUTH.match(authorization)
        if match is None:
            raise HttpError(
                403, f"Authorization header is not a SigV4 header: {authorization[:60]}"
            )
        if match["service"] != "execute-api" or match["region"] != self.region:
            raise HttpError(403, f"Credential should be scoped to {self.region}/execute-api")
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            raise HttpError(403, "SignedHeaders must include host and x-amz-date")
        amz_date = lowered.get("x-amz-date", "")
        try:
            moment = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError as exc:
            raise HttpError(403, "X-Amz-Date is missing or malformed") from exc
        if not amz_date.startswith(match["date"]):
            raise HttpError(403, "Credential date does not match X-Amz-Date")
        if abs(datetime.now(UTC) - moment) > timedelta(minutes=15):
            raise HttpError(403, "Signature expired")
        secret = self.credentials.get(match["key"])
        if secret is None:
            raise HttpError(403, "The security token included in the request is invalid.")
        missing = [name for name in signed if name not in lowered]
        if missing:
            raise HttpError(403, f"signed headers missing from the request: {missing}")
        request = AWSRequest(
            method=method,
            url=f"http://{lowered['host']}{target}",
            data=body,
            headers={name: lowered[name] for name in signed if name != "host"},
        )
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(
            Credentials(match["key"], secret, lowered.get("x-amz-security-token")),
            "execute-api",
            self.region,
        )
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, match["signature"]):
            raise HttpError(
                403,
                "The request signature we calculated does not match the signature you provided.",
            )

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "POST" and parts == ["jobs"]:
            return 201, self._create(body)
        if method == "GET" and parts == ["jobs"]:
            return 200, self._list(query)
        if len(parts) >= 2 and parts[0] == "jobs":
            job = self.jobs.get(parts[1])
            if job is None:
                raise HttpError(404, f"no job {parts[1]}")
            if method == "GET" and len(parts) == 2:
                self._notice_upload(job)
                return 200, job.public()
            if method == "POST" and parts[2:] == ["parts"]:
                return 200, self._parts(job, body)
            if method == "POST" and parts[2:] == ["complete"]:
                return 200, self._complete(job, body)
        raise HttpError(404, "Not Found")

    # -- the contract --------------------------------------------------------------------------
    def _presign(self, operation: str, params: dict[str, Any]) -> str:
        # Each URL gets a lifetime one second shorter than the one before (wrapping after an
        # hour): two URLs for the same part signed within the same second would otherwise be
        # identical, and a test could not expire the old one while the new one stays valid.
        with self._lock:
            lifetime = self.url_expiry_s - len(self.issued_signatures) % min(
                3600, self.url_expiry_s // 2
            )
        url = self.s3.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=lifetime
        )
        self.issued_signatures.append(dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"])
        return str(url)

    def _part_count(self, job: Job) -> int:
        return -(-job.size_bytes // self.part_size)

    def _part_urls(self, job: Job, numbers: Iterable[int]) -> list[dict[str, Any]]:
        return [
            {
                "part_number": n,
                "url": self._presign(
                    "upload_part", {"Key": job.key, "UploadId": job.upload_id, "PartNumber": n}
                ),
            }
            for n in numbers
        ]

    def _create(self, body: Any) -> dict[str, Any]:  # noqa: PLR0912 - a branch per contract field
        if not isinstance(body, dict):
            raise HttpError(400, "request body must be a JSON object")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise HttpError(400, f"unknown fields: {', '.join(unknown)}")
        filename = body.get("filename")
        if (
            not isinstance(filename, str)
            or not filename
            or "/" in filename
            or "\\" in filename
            or len(filename) > 255
        ):
            raise HttpError(400, "filename must be a file name without folders")
        content_type = body.get("content_type")
        if not isinstance(content_type, str) or "/" not in content_type:
            raise HttpError(400, "content_type must be a MIME type")
        size = body.get("size_bytes")
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or not 0 < size <= self.max_size_bytes
        ):
            raise HttpError(400, f"size_bytes must be between 1 and {self.max_size_bytes}")
        sha256 = body.get("sha256")
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise HttpError(400, "sha256 must be 64 lowercase hex characters")
        campaign = body.get("campaign")
        if campaign is not None and (
            not isinstance(campaign, str) or not _CAMPAIGN.match(campaign)
        ):
            raise HttpError(
                400, "campaign must be lowercase letters, digits and hyphens (at most 63)"
            )
        source = body.get("source")
        if source is not None and (not isinstance(source, str) or len(source) > 128):
            raise HttpError(400, "source must be a string of at most 128 characters")
        captured_at = body.get("captured_at")
        if captured_at is not None:
            try:
                moment = datetime.fromisoformat(str(captured_at))
            except ValueError as exc:
                raise HttpError(400, "captured_at must be an ISO-8601 UTC time") from exc
            if moment.utcoffset() != timedelta(0):
                raise HttpError(400, "captured_at must be an ISO-8601 UTC time")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and _META_KEY.match(k) and isinstance(v, str)
            for k, v in metadata.items()
        ):
            raise HttpError(400, "metadata must map keys of [a-z0-9-] to strings")

        now = datetime.now(UTC)
        job_id = uuid.uuid4().hex[:16]
        job = Job(
            job_id=job_id,
            filename=filename,
            content_type=content_type,
            size_bytes=size,
            sha256=sha256,
            campaign=campaign,
            source=source,
            captured_at=captured_at,
            metadata=dict(metadata),
            key=f"uploads/{campaign or 'none'}/{job_id}/{filename}",
            method="MULTIPART" if size > self.multipart_threshold else "PUT",
            created_at=now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            expires_at=(now + timedelta(seconds=self.url_expiry_s))
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        )
        if job.method == "PUT":
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
            upload: dict[str, Any] = {
                "method": "PUT",
                "url": self._presign(
                    "put_object",
                    {
                        "Key": job.key,
                        "ContentType": content_type,
                        "ContentLength": size,
                        "ChecksumSHA256": checksum,
                    },
                ),
                "headers": {
                    "Content-Type": content_type,
                    "Content-Length": str(size),
                    "x-amz-checksum-sha256": checksum,
                },
            }
        else:
            created = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=job.key, ContentType=content_type
            )
            job.upload_id = created["UploadId"]
            upload = {
                "method": "MULTIPART",
                "upload_id": job.upload_id,
                "part_size": self.part_size,
                "parts": self._part_urls(job, range(1, self._part_count(job) + 1)),
            }
        with self._lock:
            self.jobs[job_id] = job
        return {
            "job_id": job_id,
            "status": job.status,
            "key": job.key,
            "expires_at": job.expires_at,
            "upload": upload,
        }

    def _held_parts(self, job: Job) -> list[dict[str, Any]]:
        held: list[dict[str, Any]] = []
        marker = 0
        while True:
            page = self.s3.list_parts(
                Bucket=self.bucket, Key=job.key, UploadId=job.upload_id, PartNumberMarker=marker
            )
            held += [
                {"part_number": p["PartNumber"], "etag": p["ETag"], "size": p["Size"]}
                for p in page.get("Parts", [])
            ]
            if not page.get("IsTruncated"):
                return held
            marker = int(page["NextPartNumberMarker"])

    def _parts(self, job: Job, body: Any) -> dict[str, Any]:
        if job.method != "MULTIPART" or job.status != "WAITING_FOR_UPLOAD":
            raise HttpError(409, f"job {job.job_id} is not waiting for a multipart upload")
        numbers = body.get("part_numbers") if isinstance(body, dict) else None
        count = self._part_count(job)
        if (
            not isinstance(numbers, list)
            or not 1 <= len(numbers) <= 1000
            or not all(isinstance(n, int) and 1 <= n <= count for n in numbers)
        ):
            raise HttpError(
                400, f"part_numbers must list 1 to 1000 part numbers between 1 and {count}"
            )
        return {"parts": self._part_urls(job, numbers), "uploaded": self._held_parts(job)}

    def _notice_upload(self, job: Job) -> None:
        """As the jobs API does on GET: a waiting single-PUT job whose object is in S3 (at its
        declared size) is UPLOADED."""
        if job.method != "PUT" or job.status != "WAITING_FOR_UPLOAD":
            return
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=job.key)
        except ClientError:
            return
        if head["ContentLength"] == job.size_bytes:
            job.status = "UPLOADED"

    def _complete(self, job: Job, body: Any) -> dict[str, Any]:
        if job.status in DONE:
            return {"job_id": job.job_id, "status": job.status}
        if job.status != "WAITING_FOR_UPLOAD":
            raise HttpError(409, f"job {job.job_id} is {job.status}")
        parts = body.get("parts") if isinstance(body, dict) else None
        if not isinstance(parts, list):
            raise HttpError(400, "parts must be a list")
        if job.method == "MULTIPART":
            try:
                self.s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=job.key,
                    UploadId=job.upload_id,
                    MultipartUpload={
                        "Parts": [
                            {"PartNumber": int(p["part_number"]), "ETag": str(p["etag"])}
                            for p in parts
                        ]
                    },
                )
            except (ClientError, KeyError, TypeError, ValueError) as exc:
                raise HttpError(400, f"the parts do not complete the upload: {exc}") from exc
        else:
            # As the jobs API answers (lambdas/api/handler.py): a single PUT has no completion.
            raise HttpError(409, f"job {job.job_id} is a single-PUT upload: nothing to complete")
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=job.key)
        except ClientError as exc:
            raise HttpError(400, "the object is not in S3") from exc
        if head["ContentLength"] != job.size_bytes:
            raise HttpError(
                400, f"S3 holds {head['ContentLength']} bytes, the job declared {job.size_bytes}"
            )
        if self.verify_sha256_on_complete:
            digest = hashlib.sha256(usedforsecurity=False)
            for chunk in self.s3.get_object(Bucket=self.bucket, Key=job.key)["Body"].iter_chunks(
                MIB
            ):
                digest.update(chunk)
            if digest.hexdigest() != job.sha256:
                job.status, job.reason = "FAILED", "checksum mismatch"
                raise HttpError(400, "the uploaded bytes do not match sha256")
        job.status = "UPLOADED"
        return {"job_id": job.job_id, "status": job.status}

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", "50"))
            offset = (
                int(base64.urlsafe_b64decode(query["next"]).decode()) if query.get("next") else 0
            )
        except ValueError as exc:
            raise HttpError(400, "limit and next must come from this API") from exc
        if not 1 <= limit <= 100:
            raise HttpError(400, "limit must be between 1 and 100")
        jobs = [
            job
            for job in sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)
            if query.get("campaign") in (None, job.campaign)
            and query.get("status") in (None, job.status)
        ]
        limit = min(limit, self.max_page)
        page = jobs[offset : offset + limit]
        more = offset + limit < len(jobs)
        token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
        return {"jobs": [job.public() for job in page], "next": token}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeJobsApi

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, answer, extra = self.fake.handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        with self.fake._lock:
            self.fake.requests.append((self.command, urlsplit(self.path).path, status))
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


# -- both together --------------------------------------------------------------------------------
@dataclass
class FakeWorld:
    api: FakeJobsApi
    s3_server: GuardedMotoServer
    s3_endpoint: str
    bucket: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def guard(self) -> S3Guard:
        return self.s3_server.guard

    @property
    def api_url(self) -> str:
        return self.api.url

    def object_bytes(self, key: str) -> bytes:
        return bytes(self.api.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def reset(self) -> None:
        """Forget jobs, faults and counters; empty the bucket (moto keeps objects in memory)."""
        self.api.reset()
        self.guard.clear()
        s3 = self.api.s3
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=self.bucket, Key=item["Key"])
        for upload in s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            s3.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )


@contextlib.contextmanager
def fake_world(
    *,
    bucket: str = "edge-uploads",
    region: str = "us-east-1",
    credentials: dict[str, str] | None = None,
    quiet: bool = True,
    **api_options: Any,
) -> Iterator[FakeWorld]:
    """moto S3 (guarded) and the fake jobs API on two loopback ports, for as long as the block."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    original_builder = moto_s3_models.MultipartChecksumBuilder
    moto_s3_models.MultipartChecksumBuilder = RunningChecksumBuilder  # type: ignore[misc]
    server = GuardedMotoServer(secrets={S3_KEY_ID: S3_SECRET})
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    api = FakeJobsApi(
        s3_endpoint=endpoint, bucket=bucket, region=region, credentials=credentials, **api_options
    )
    api.s3.create_bucket(Bucket=bucket)
    api.start()
    try:
        yield FakeWorld(api=api, s3_server=server, s3_endpoint=endpoint, bucket=bucket)
    finally:
        api.stop()
        server.stop()
        moto_s3_models.MultipartChecksumBuilder = original_builder  # type: ignore[misc]
