"""The pipeline's jobs API, signed with SigV4 (service ``execute-api``).

The API is an API Gateway HTTP API with IAM authorization, so every request is signed with the
device's credentials from botocore's default chain (environment, ``AWS_PROFILE`` and the shared
files, SSO, container or instance roles), which rotate without the uploader knowing: each
attempt is signed afresh from ``get_frozen_credentials()``. The region is the one botocore
resolves (``AWS_REGION``/``AWS_DEFAULT_REGION``/profile), else the one in an
``*.execute-api.<region>.amazonaws.com`` URL, else ``--region``.

Connection errors, 5xx and 429 are retried with jittered backoff; any other 4xx raises
``ApiError`` carrying the API's ``{"message": ...}`` verbatim, since that message is what the
operator needs to read (a bad campaign name, a file too large).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import botocore.session
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from media_upload.errors import ApiError, ConfigError, RetryableError, UploadError
from media_upload.retry import Backoff, is_retryable_status

SERVICE = "execute-api"
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def region_from_url(url: str) -> str | None:
    match = _REGION_IN_HOST.search(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def error_message(response: requests.Response) -> str:
    """The API's ``message``; API Gateway's own errors use ``message`` too (``Forbidden``)."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return str(document["message"])
    text = response.text.strip()
    return text[:300] if text else response.reason or "no message"


def retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back on our own backoff


class JobsApi:
    """Thin client of the contract in docs/uploader.md; each method returns the JSON body."""

    def __init__(
        self,
        base_url: str,
        *,
        region: str | None = None,
        http: requests.Session | None = None,
        backoff: Backoff | None = None,
        credentials: Any = None,
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        if not base_url:
            raise ConfigError("no API URL: pass --api URL or set MEDIA_UPLOAD_API")
        self.base_url = base_url.rstrip("/")
        session = botocore.session.get_session()
        found = credentials if credentials is not None else session.get_credentials()
        if found is None:
            raise ConfigError(
                "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY), or run with an instance or container role"
            )
        self._credentials: Any = found
        resolved = region or session.get_config_variable("region") or region_from_url(base_url)
        if not resolved:
            raise ConfigError("no AWS region: set AWS_REGION or pass --region")
        self.region = str(resolved)
        self._http = http if http is not None else requests.Session()
        self._backoff = backoff if backoff is not None else Backoff()
        self._timeout = timeout

    # -- the contract --------------------------------------------------------------------------
    def create_job(self, document: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/jobs", body=document)

    def parts(self, job_id: str, part_numbers: list[int]) -> dict[str, Any]:
        return self._call(
            "POST", f"/jobs/{quote(job_id, safe='')}/parts", body={"part_numbers": part_numbers}
        )

    def complete(self, job_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{quote(job_id, safe='')}/complete", body={"parts": parts})

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{quote(job_id, safe='')}")

    def list_jobs(
        self,
        *,
        campaign: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        query = {
            key: str(value)
            for key, value in (
                ("campaign", campaign),
                ("status", status),
                ("limit", limit),
                ("next", next_token),
            )
            if value is not None
        }
        return self._call("GET", "/jobs", query=query)

    # -- transport -----------------------------------------------------------------------------
    def _signed_headers(self, method: str, url: str, data: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(
            request
        )
        return dict(request.headers.items())

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        # The URL is built once, encoded exactly as it is signed: requests leaves an already
        # percent-encoded URL as it is, so the canonical query matches what goes on the wire.
        url = self.base_url + path
        if query:
            url += "?" + urlencode(sorted(query.items()), quote_via=quote)
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        what = f"{method} {path}"

        def attempt() -> dict[str, Any]:
            headers = self._signed_headers(method, url, data)
            try:
                response = self._http.request(
                    method, url, data=data, headers=headers, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc
            if is_retryable_status(response.status_code):
                raise RetryableError(
                    f"{what}: HTTP {response.status_code} {error_message(response)}",
                    retry_after=retry_after_s(response),
                )
            if response.status_code >= 400:
                raise ApiError(response.status_code, error_message(response))
            try:
                document = response.json()
            except ValueError as exc:
                raise UploadError(
                    f"{what}: the API answered {response.status_code} without JSON"
                ) from exc
            if not isinstance(document, dict):
                raise UploadError(f"{what}: the API answered a JSON {type(document).__name__}")
            return document

        return self._backoff.call(attempt, what=what)
