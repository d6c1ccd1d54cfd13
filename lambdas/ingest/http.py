"""HTTP access to media sources: polite, bounded, and strict about where bytes come from.

Every request goes through one ``HttpClient`` per source, so the rules live in one place:

* timeouts on connect and on every read, so a stalled server cannot eat the Lambda's time;
* retries with exponential backoff (and jitter) on 429/5xx and connection failures, honouring
  ``Retry-After``; a server asking for a longer pause than ``max_wait_s`` is not retried in this
  run, because waiting minutes inside a Lambda costs more than the next scheduled run;
* redirects are followed by hand and only to hosts the source allows (Commons media comes only
  from ``upload.wikimedia.org``), so a compromised or misconfigured answer cannot make us copy
  arbitrary content into the data lake;
* error messages name the source and say what failed in a sentence; they name the endpoint as
  ``host/path`` without the query (which holds the search terms, a dozen parameters and, for
  Pixabay, the key), bounded in length;
* every attempt and back-off pause fits the run's ``TimeBudget``: a source that keeps failing
  near the Lambda's deadline is given up in time for the run to report what it did.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from lambdas.ingest.budget import CONNECT_TIMEOUT_S, NO_DEADLINE, READ_TIMEOUT_S, TimeBudget
from lambdas.ingest.errors import (
    BadSourceResponse,
    DownloadFailed,
    ForeignHost,
    NotImage,
    NotVideo,
    OutOfTime,
    SourceHttpError,
    SourceOutOfTime,
    TooLarge,
)
from lambdas.shared.media_types import is_image_type

__all__ = ["CONNECT_TIMEOUT_S", "READ_TIMEOUT_S", "Download", "HostPolicy", "HttpClient"]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_JSON_BYTES = 20 * 1024 * 1024
STREAM_CHUNK_BYTES = 1024 * 1024
SECRET_PARAMS = frozenset({"key", "api_key", "apikey", "token", "access_token"})
# A download may be labelled with any video type; servers that do not know say octet-stream.
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
VIDEO_CONTAINER_TYPES = frozenset({"application/ogg", "application/x-matroska", "application/mxf"})
MAX_WHERE_LEN = 80
MAX_SNIPPET_LEN = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def default_sleep(seconds: float) -> None:
    """The back-off wait; looked up at call time so a local run or test harness can replace it."""
    time.sleep(seconds)


def redact(url: str) -> str:
    """The URL with secret query values masked, for logs and error messages."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, "***" if name.lower() in SECRET_PARAMS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def describe(url: str, *, limit: int = MAX_WHERE_LEN) -> str:
    """``host/path`` of a URL for an error message: no scheme, no query, bounded in length.

    A long path keeps its end (the file name says more than the folders).
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    where = f"{host}{parts.path}"
    if len(where) <= limit:
        return where
    return f"{host}/…{parts.path[-(limit - len(host) - 2) :]}"


def snippet(text: str, *, limit: int = MAX_SNIPPET_LEN) -> str:
    """The start of a body a source sent, on one line and bounded, for an error message."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_generic_type(content_type: str) -> bool:
    """``application/octet-stream`` and the like: says nothing about what the file is."""
    return content_type.split(";", 1)[0].strip().lower() in GENERIC_TYPES


def is_video_type(content_type: str) -> bool:
    """True for a video MIME type (or a generic one a download server may send)."""
    base = content_type.split(";", 1)[0].strip().lower()
    return base.startswith("video/") or base in VIDEO_CONTAINER_TYPES or base in GENERIC_TYPES


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class HostPolicy:
    """Where a source's requests may go; checked on the first URL and on every redirect."""

    hosts: frozenset[str]
    schemes: frozenset[str] = field(default_factory=lambda: frozenset({"https"}))

    @classmethod
    def of(cls, *hosts: str, schemes: tuple[str, ...] = ("https",)) -> HostPolicy:
        return cls(frozenset(h.lower() for h in hosts), frozenset(schemes))

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in self.schemes and (parts.hostname or "") in self.hosts

    def describe(self) -> str:
        return " or ".join(sorted(self.hosts))


class Download:
    """An open streaming response; iterate ``chunks()`` once, then close (or use ``with``)."""

    def __init__(self, response: requests.Response, *, source: str) -> None:
        self._response = response
        self.source = source
        self.url = response.url
        self.content_type = response.headers.get("Content-Type", "")
        length = response.headers.get("Content-Length", "")
        self.content_length = int(length) if length.isdigit() else None

    def check(self, *, max_bytes: int, media_type: str = "video") -> None:
        """Refuse before reading a byte when the server itself says it is not a fitting video
        (or image)."""
        if media_type == "image":
            if not (is_image_type(self.content_type) or is_generic_type(self.content_type)):
                raise NotImage(
                    f"{self.source}: {describe(self.url)} served "
                    f"{snippet(self.content_type)!r}, not an image"
                )
        elif not is_video_type(self.content_type):
            raise NotVideo(
                f"{self.source}: {describe(self.url)} served {snippet(self.content_type)!r}, "
                "not a video"
            )
        if self.content_length is not None and self.content_length > max_bytes:
            raise TooLarge(
                f"{self.source}: {describe(self.url)} is {self.content_length} bytes, over the "
                f"{max_bytes}-byte limit"
            )

    def chunks(self, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
        try:
            yield from self._response.iter_content(chunk_size=chunk_bytes)
        except requests.RequestException as err:
            raise DownloadFailed(
                f"{self.source}: download of {describe(self.url)} broke off: {type(err).__name__}"
            ) from err

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HttpClient:
    """One per source: shared session, identity, retry and redirect rules."""

    def __init__(
        self,
        *,
        source: str,
        user_agent: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
        max_attempts: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 30.0,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
        budget: TimeBudget = NO_DEADLINE,
    ) -> None:
        self.source = source
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._jitter = jitter
        self.budget = budget

    # -- public ------------------------------------------------------------------------------
    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        policy: HostPolicy,
        retry_if: Callable[[requests.Response], bool] | None = None,
    ) -> object:
        """GET a JSON document; HTML, malformed or oversized answers raise ``BadSourceResponse``.

        ``retry_if`` lets a source treat an HTTP 200 as "try again later" (MediaWiki answers
        ``maxlag`` with 200 and a ``MediaWiki-API-Error: maxlag`` header).
        """
        response = self._request(url, params=params, policy=policy, stream=False, retry_if=retry_if)
        where = describe(response.url or url)
        content_type = snippet(response.headers.get("Content-Type", ""), limit=60)
        body = response.content
        if len(body) > MAX_JSON_BYTES:
            raise BadSourceResponse(f"{self.source}: {where} answered {len(body)} bytes of JSON")
        if "json" not in content_type.lower():
            start = snippet(body[:200].decode("utf-8", "replace"), limit=60)
            raise BadSourceResponse(
                f"{self.source}: {where} answered {content_type or 'no content type'} instead "
                f"of JSON (body starts {start!r})"
            )
        try:
            return json.loads(body)
        except ValueError as err:
            raise BadSourceResponse(
                f"{self.source}: {where} answered malformed JSON ({snippet(str(err))})"
            ) from err

    def open_stream(self, url: str, *, policy: HostPolicy) -> Download:
        """Open a download; the caller reads it in chunks and must close it.

        A file that cannot be fetched is a problem of that one item, not of the whole source.
        """
        try:
            response = self._request(url, params=None, policy=policy, stream=True, retry_if=None)
        except SourceOutOfTime as err:
            raise OutOfTime(str(err)) from err
        except SourceHttpError as err:
            raise DownloadFailed(str(err)) from err
        return Download(response, source=self.source)

    # -- internals ---------------------------------------------------------------------------
    def _request(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None,
        policy: HostPolicy,
        stream: bool,
        retry_if: Callable[[requests.Response], bool] | None,
    ) -> requests.Response:
        where = describe(url)
        failure = "no attempt made"
        attempt_s = sum(self.timeout)
        for attempt in range(1, self.max_attempts + 1):
            if not self.budget.allows(attempt_s):
                raise SourceOutOfTime(
                    f"{self.source}: gave up on {where} after {attempt - 1} attempt(s)"
                    + (f" ({failure})" if attempt > 1 else "")
                    + ": the run's time is nearly up"
                )
            wait: float | None = None
            try:
                response = self._follow(url, params=params, policy=policy, stream=stream)
            except (requests.Timeout, requests.ConnectionError) as err:
                failure = type(err).__name__
            else:
                status = response.status_code
                if status in RETRY_STATUSES or (status < 300 and retry_if and retry_if(response)):
                    failure = f"HTTP {status}" + (
                        f" ({response.headers['MediaWiki-API-Error']})"
                        if "MediaWiki-API-Error" in response.headers
                        else ""
                    )
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                    if wait is None and status == 429:
                        # Pixabay announces its window in X-RateLimit-Reset (seconds).
                        wait = parse_retry_after(response.headers.get("X-RateLimit-Reset"))
                    response.close()
                elif status >= 300:
                    body = "" if stream else snippet(response.text[:400])
                    response.close()
                    raise SourceHttpError(
                        f"{self.source}: {describe(response.url or url)} answered HTTP {status}"
                        + (f": {body}" if body else "")
                    )
                else:
                    return response
            if attempt == self.max_attempts:
                break
            if wait is not None and wait > self.max_wait_s:
                raise SourceHttpError(
                    f"{self.source}: {where} failed ({failure}) and asked to retry after "
                    f"{wait:.0f} s, longer than the {self.max_wait_s:.0f} s this run waits"
                )
            delay = self._delay(attempt, wait)
            if not self.budget.allows(delay + attempt_s):
                raise SourceOutOfTime(
                    f"{self.source}: gave up on {where} after {attempt} attempt(s) ({failure}): "
                    f"the run's time is nearly up"
                )
            (self._sleep or default_sleep)(delay)
        raise SourceHttpError(
            f"{self.source}: {where} is unavailable: {failure} after {self.max_attempts} attempts"
        )

    def _follow(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None,
        policy: HostPolicy,
        stream: bool,
    ) -> requests.Response:
        current, query = url, params
        for _ in range(MAX_REDIRECTS + 1):
            if not policy.allows(current):
                host = urlsplit(current).hostname or "?"
                raise ForeignHost(
                    f"{self.source}: refusing {snippet(redact(current), limit=MAX_WHERE_LEN)}: "
                    f"host {host} is not the source's host ({policy.describe()})"
                )
            response = self.session.get(
                current,
                params=query,
                timeout=self.timeout,
                stream=stream,
                allow_redirects=False,
            )
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            current, query = urljoin(response.url or current, location), None
        raise SourceHttpError(
            f"{self.source}: {describe(url)} redirected more than {MAX_REDIRECTS} times"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        base = min(self.max_wait_s, self.backoff_s * 2 ** (attempt - 1))
        return base * (0.5 + self._jitter() / 2)
