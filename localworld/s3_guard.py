"""S3's request checks in front of a moto server: presigned URLs, checksums, what arrived.

moto accepts any presigned URL and ignores ``x-amz-checksum-sha256``; real S3 does neither, and
both the jobs API's uploads and the edge uploader's guarantees rest on them. ``S3Guard`` is WSGI
middleware around moto's application that checks, as S3 does:

* a presigned URL's SigV4 signature (method, path, query and the signed headers, so a client
  that drops or alters a signed header, or sends another ``Content-Length`` than the one signed,
  is refused with S3's ``SignatureDoesNotMatch``/``AccessDenied``), the access key
  (``InvalidAccessKeyId``), a session's token (``InvalidToken``) and the URL's expiry
  (``AccessDenied``, "Request has expired");
* on a PUT, the body's SHA-256 against ``x-amz-checksum-sha256`` (400 ``BadDigest``) and its
  length against ``Content-Length`` (400 ``IncompleteBody``).

It also counts the body bytes each PUT delivered (how "bytes re-sent after a crash" is
measured), can cut a connection mid-body, and reports each object that really arrived
(``on_arrival``: a ``PutObject``, ``CopyObject`` or ``CompleteMultipartUpload`` that S3
answered 200) once its response is done, which is how the local world emits S3's "Object
Created" events for uploads that come over HTTP.

With ``secure_transport`` (the local world's server) the guard also plays S3's TLS endpoint: it
hands moto every request as ``https`` (a TLS-terminating proxy in front of it), so the world's
IAM evaluates ``aws:SecureTransport`` as true for them, as it is for every client of S3's HTTPS
endpoints; the templates' ``enforceSSL`` bucket policies refuse anything else, and the loopback
listener is plain HTTP only because nothing outside this machine reaches it.

Not checked: requests signed in the ``Authorization`` header (moto, and the world's IAM hook,
see ``localworld.iam``, decide those), POST policy uploads, and virtual-hosted-style requests
(the guard reads the bucket from the path; every client here is path-style, as botocore is for
an IP endpoint).

``GuardedMotoServer`` is moto's ``ThreadedMotoServer`` with the guard as its application. The
uploader's tests and benchmark (``tests/uploader/fake_api.py``) and the local world
(``localworld.world``) both run it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3 import models as moto_s3_models
from moto.s3 import utils as moto_s3_utils
from werkzeug.serving import make_server

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# (secret, session token or None) of an access key; None: S3 does not know the key.
SigningKey = tuple[str, str | None]
SecretLookup = Callable[[str], SigningKey | None]


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data, usedforsecurity=False).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def secrets_of(known: Mapping[str, str] | SecretLookup) -> SecretLookup:
    """A lookup from a fixed ``{access key: secret}`` map (keys without a session token), or
    the lookup itself."""
    if callable(known):
        return known
    table = dict(known)

    def lookup(access_key: str) -> SigningKey | None:
        secret = table.get(access_key)
        return None if secret is None else (secret, None)

    return lookup


@dataclass
class Reception:
    """One PUT the guard saw: which object and part, how many body bytes arrived."""

    key: str
    part_number: int | None
    expected: int
    received: int = 0
    status: int | None = None


@dataclass(frozen=True)
class ObjectArrival:
    """An object S3 stored in answer to one HTTP request (what S3's event notifications name)."""

    bucket: str
    key: str
    # PutObject, CopyObject or CompleteMultipartUpload: the ``reason`` of S3's EventBridge event.
    reason: str
    version_id: str | None
    source_ip: str
    request_id: str


class _CountingInput:
    """``wsgi.input`` that counts what the application reads from it."""

    def __init__(self, stream: Any, reception: Reception) -> None:
        self._stream = stream
        self._reception = reception

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._reception.received += len(data)
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        count = self._stream.readinto(buffer)
        self._reception.received += count or 0
        return int(count or 0)

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self._reception.received += len(data)
        return bytes(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _AfterResponse:
    """The application's response body, with ``done`` called once the server has sent it.

    A WSGI server calls ``close()`` after the last byte went out, so whatever ``done`` triggers
    (an event delivery) happens after the client has its answer, as S3's notifications do.
    """

    def __init__(self, body: Iterable[bytes], done: Callable[[bytes], None]) -> None:
        self._body = body
        self._done = done
        self._seen: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            if sum(len(c) for c in self._seen) < 4096:  # enough to tell an <Error> answer
                self._seen.append(bytes(chunk))
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if callable(close):
                close()
        finally:
            self._done(b"".join(self._seen))


def _s3_error(
    start_response: Callable[..., Any], status: str, code: str, message: str
) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(
        status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _arrival_reason(method: str, key: str, params: Mapping[str, str], copy: bool) -> str | None:
    """Which S3 call stores an object, from the request line (None: this one stores none)."""
    if not key:
        return None
    if method == "PUT" and "partNumber" not in params and "uploadId" not in params:
        if any(sub in params for sub in ("tagging", "acl", "retention", "legal-hold")):
            return None
        return "CopyObject" if copy else "PutObject"
    if method == "POST" and "uploadId" in params:
        return "CompleteMultipartUpload"
    return None


class S3Guard:
    """WSGI middleware: what real S3 checks and moto does not, plus counters and faults."""

    def __init__(
        self,
        app: Any,
        *,
        secrets: Mapping[str, str] | SecretLookup,
        clock: Callable[[], float] = time.time,
        on_arrival: Callable[[ObjectArrival], None] | None = None,
        secure_transport: bool = False,
    ) -> None:
        self.app = app
        self.secrets = secrets_of(secrets)
        self.secure_transport = secure_transport
        self.clock = clock
        self.on_arrival = on_arrival
        self.receptions: list[Reception] = []
        self.revoked: set[str] = set()  # signatures treated as expired
        self._resets: list[tuple[int, int]] = []  # (part number, after bytes)
        self._lock = threading.Lock()
        # Object-storing requests whose arrival is not reported yet (their answer may already
        # have reached the client: the report comes after the last byte is sent).
        self._pending = 0
        self._settled = threading.Condition()

    def settle(self, timeout_s: float) -> bool:
        """Wait until every object-storing request seen so far has been reported (or refused);
        False when ``timeout_s`` ran out."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def _pending_done(self) -> None:
        with self._settled:
            self._pending -= 1
            self._settled.notify_all()

    # switches and counters
    def reset_connection(self, *, part_number: int, after_bytes: int) -> None:
        """Cut the connection of the next PUT of that part once it sent ``after_bytes``."""
        with self._lock:
            self._resets.append((part_number, after_bytes))

    def expire(self, signatures: Iterable[str]) -> None:
        self.revoked.update(signatures)

    def bytes_received(self, key: str | None = None) -> int:
        return sum(r.received for r in self.receptions if key is None or r.key == key)

    def puts(self, key: str | None = None) -> list[Reception]:
        return [r for r in self.receptions if key is None or r.key == key]

    def clear(self) -> None:
        with self._lock:
            self.receptions.clear()
            self.revoked.clear()
            self._resets.clear()

    # the middleware
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.secure_transport:
            environ["wsgi.url_scheme"] = "https"
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        split = urlsplit(raw)
        query = parse_qsl(split.query, keep_blank_values=True)
        params = dict(query)
        if "X-Amz-Signature" in params:
            refusal = self._check_presigned(environ, split.path, query, params)
            if refusal is not None:
                status, code, message = refusal
                return _s3_error(start_response, status, code, message)
        bucket, _, key = unquote(split.path).lstrip("/").partition("/")
        method = str(environ.get("REQUEST_METHOD"))
        reason = _arrival_reason(method, key, params, bool(environ.get("HTTP_X_AMZ_COPY_SOURCE")))
        answered: dict[str, Any] = {}

        def recording_start(status: str, headers: Any, *rest: Any) -> Any:
            answered["status"] = int(status.split(maxsplit=1)[0])
            answered["headers"] = {str(k).lower(): str(v) for k, v in headers}
            return start_response(status, headers, *rest)

        if method != "PUT" or not key:
            return self._answer(environ, recording_start, answered, (bucket, key, reason))

        expected = int(environ.get("CONTENT_LENGTH") or 0)
        part = int(params["partNumber"]) if "partNumber" in params else None
        reception = Reception(key, part, expected)
        with self._lock:
            self.receptions.append(reception)
            reset = next((r for r in self._resets if r[0] == part), None)
            if reset is not None:
                self._resets.remove(reset)
        stream = _CountingInput(environ["wsgi.input"], reception)

        if reset is not None:
            stream.read(min(reset[1], expected))
            with contextlib.suppress(OSError):
                environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            reception.status = 0
            return _s3_error(start_response, "500 Internal Server Error", "InternalError", "cut")

        claimed = environ.get("HTTP_X_AMZ_CHECKSUM_SHA256")
        if claimed is not None:
            body = stream.read(expected)
            actual = base64.b64encode(hashlib.sha256(body, usedforsecurity=False).digest()).decode()
            if len(body) != expected:
                reception.status = 400
                return _s3_error(start_response, "400 Bad Request", "IncompleteBody", "short body")
            if actual != claimed:
                reception.status = 400
                return _s3_error(
                    start_response,
                    "400 Bad Request",
                    "BadDigest",
                    "The SHA256 you specified did not match the calculated checksum.",
                )
            environ["wsgi.input"] = io.BytesIO(body)
        else:
            environ["wsgi.input"] = stream

        def put_start(status: str, headers: Any, *rest: Any) -> Any:
            reception.status = int(status.split(maxsplit=1)[0])
            return recording_start(status, headers, *rest)

        return self._answer(environ, put_start, answered, (bucket, key, reason))

    def _answer(
        self,
        environ: dict[str, Any],
        start: Callable[..., Any],
        answered: dict[str, Any],
        target: tuple[str, str, str | None],
    ) -> Any:
        """moto's answer; for a request that stores an object (``target``: bucket, key and the
        S3 call), ``on_arrival`` once the answer is sent."""
        bucket, key, reason = target
        if reason is None or self.on_arrival is None:
            return self.app(environ, start)
        hook = self.on_arrival
        with self._settled:
            self._pending += 1
        try:
            body = self.app(environ, start)
        except BaseException:
            self._pending_done()
            raise

        def done(head: bytes) -> None:
            try:
                report(head)
            finally:
                self._pending_done()

        def report(head: bytes) -> None:
            # CompleteMultipartUpload may answer 200 with an <Error> body, as S3 documents.
            if answered.get("status") != 200 or b"<Error>" in head:
                return
            headers: dict[str, str] = answered.get("headers", {})
            hook(
                ObjectArrival(
                    bucket=bucket,
                    key=key,
                    reason=str(reason),
                    version_id=headers.get("x-amz-version-id"),
                    source_ip=str(environ.get("REMOTE_ADDR") or "127.0.0.1"),
                    request_id=headers.get("x-amz-request-id") or "",
                )
            )

        return _AfterResponse(body, done)

    def _check_presigned(  # noqa: PLR0911 - one answer per refusal S3 makes
        self,
        environ: dict[str, Any],
        path: str,
        query: list[tuple[str, str]],
        params: dict[str, str],
    ) -> tuple[str, str, str] | None:
        """(HTTP status, code, message) when S3 would refuse this presigned request, else None."""
        credential = params.get("X-Amz-Credential", "").split("/")
        found = self.secrets(credential[0]) if len(credential) == 5 else None
        if found is None:
            return (
                "403 Forbidden",
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        secret, token = found
        if token is not None and params.get("X-Amz-Security-Token") != token:
            return (
                "400 Bad Request",
                "InvalidToken",
                "The provided token is malformed or otherwise invalid.",
            )
        signature = params["X-Amz-Signature"]
        try:
            issued = datetime.strptime(params.get("X-Amz-Date", ""), _AMZ_DATE).replace(tzinfo=UTC)
            expires = int(params.get("X-Amz-Expires", "0"))
        except ValueError:
            return ("400 Bad Request", "AuthorizationQueryParametersError", "bad X-Amz-Date")
        if signature in self.revoked or self.clock() > issued.timestamp() + expires:
            return ("403 Forbidden", "AccessDenied", "Request has expired")
        signed = params.get("X-Amz-SignedHeaders", "").split(";")
        header_lines = []
        for name in signed:
            value = self._header(environ, name)
            if value is None:
                return (
                    "403 Forbidden",
                    "AccessDenied",
                    f"There were headers present in the request which were not signed: {name}",
                )
            header_lines.append(f"{name}:{' '.join(value.split())}")
        canonical_query = "&".join(
            f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query) if k != "X-Amz-Signature"
        )
        canonical = "\n".join(
            [
                environ["REQUEST_METHOD"],
                path,
                canonical_query,
                "\n".join(header_lines) + "\n",
                ";".join(signed),
                "UNSIGNED-PAYLOAD",
            ]
        )
        date, region, service = credential[1], credential[2], credential[3]
        scope = "/".join(credential[1:])
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, _sha256_hex(canonical.encode())]
        )
        key = _hmac(f"AWS4{secret}".encode(), date)
        for part in (region, service, "aws4_request"):
            key = _hmac(key, part)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    @staticmethod
    def _header(environ: dict[str, Any], name: str) -> str | None:
        if name == "content-length":
            return environ.get("CONTENT_LENGTH") or None
        if name == "content-type":
            return environ.get("CONTENT_TYPE") or None
        return environ.get("HTTP_" + name.upper().replace("-", "_"))


class RunningChecksumBuilder(moto_s3_models.MultipartChecksumBuilder):
    """moto's builder, minus one copy of the whole object.

    For a multipart upload created without a checksum algorithm (as the jobs API creates them)
    moto computes S3's default full-object checksum on complete by first appending every part
    to one more buffer, and then hashing it: for 1 GiB, seconds of work that real S3 does not
    make the client wait for, and that boto3's ``upload_file`` (which declares CRC32 per part)
    never triggers, which would skew the uploader's benchmark. Without awscrt, moto's value is a
    CRC32 of the whole object; this builder folds each part into a running CRC32 instead: the
    same value, without the copy. Any other algorithm or type goes to moto's own code.
    """

    def __init__(self, checksum_algorithm: str | None, checksum_type: str | None) -> None:
        super().__init__(checksum_algorithm, checksum_type)
        self._running: int | None = None
        full_object_crc32 = self.checksum_algorithm == "CRC32" or (
            self.checksum_algorithm == "CRC64NVME" and not moto_s3_utils.HAS_CRT
        )
        if self.checksum_type == "FULL_OBJECT" and full_object_crc32:
            self._running = 0

    def addPart(self, part: bytes) -> None:
        if self._running is None:
            super().addPart(part)
            return
        self._running = binascii.crc32(part, self._running)
        self.part_count += 1

    def build(self) -> tuple[str, str, int] | None:
        if self._running is None:
            return super().build()
        return (self.checksum_type, base64.b64encode(self._running.to_bytes(4, "big")).decode(), 1)


@contextlib.contextmanager
def running_checksums() -> Iterator[None]:
    """``RunningChecksumBuilder`` as moto's builder for the block (moto's own again after)."""
    original = moto_s3_models.MultipartChecksumBuilder
    moto_s3_models.MultipartChecksumBuilder = RunningChecksumBuilder  # type: ignore[misc]
    try:
        yield
    finally:
        moto_s3_models.MultipartChecksumBuilder = original  # type: ignore[misc]


class GuardedMotoServer(ThreadedMotoServer):
    """moto's threaded server on 127.0.0.1:``port`` (0: a free one) behind ``S3Guard``."""

    def __init__(
        self,
        *,
        secrets: Mapping[str, str] | SecretLookup,
        port: int = 0,
        on_arrival: Callable[[ObjectArrival], None] | None = None,
        secure_transport: bool = False,
    ) -> None:
        super().__init__("127.0.0.1", port, verbose=False)
        self.guard = S3Guard(
            DomainDispatcherApplication(create_backend_app),
            secrets=secrets,
            on_arrival=on_arrival,
            secure_transport=secure_transport,
        )

    def _server_entry(self) -> None:
        # Same as ThreadedMotoServer._server_entry, with the guard as the application.
        self._server = make_server(
            self._ip_address, self._port, self.guard, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.05)  # stops in 50 ms, not 500
