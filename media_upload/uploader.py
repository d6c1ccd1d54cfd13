"""One file into the pipeline: ask for a job, send the bytes, complete the job, remember it.

Small files go in one presigned PUT with exactly the headers the API signed (content length,
type and ``x-amz-checksum-sha256``), so S3 itself refuses bytes that do not hash to what the
job was created with. Large files go as a multipart upload, each part streamed from the file by
``os.pread`` in small reads: memory stays flat whatever the file size (about 1 MiB of buffers
in the benchmark, for 1 GiB).

Parts are pipelined two deep over one "wire" (``_Wire``): while one part waits for S3's answer
the next one is already being sent, but only one body is ever partly sent. That keeps the link
busy (on loopback it is what lets one uploader keep up with boto3's ten-thread
``upload_file``, see benchmarks/uploader.py) without giving up the resume bound below. More
parallel bodies would buy little on an edge uplink and would multiply what a crash costs.

Resume: the in-flight record (see ``state``) is rewritten after every part S3 acknowledges. A
restarted uploader finds the record, checks the job is still waiting, and calls ``/parts``,
which returns fresh URLs (presigned URLs expire) and the parts S3 already holds. S3's list is
the truth: a part it holds with the right size counts as done even if the crash came before our
record was written, and a part only our record claims is sent again. Since only one body was
partly sent when the process died, that part is all a restart sends again.

Retries: connection errors, 5xx and 429 are retried with jittered backoff (``retry``); an
expired part URL is refreshed through ``/parts`` and the part sent again; any other 4xx fails
the file with the message S3 or the API gave.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from media_upload.api import JobsApi
from media_upload.errors import ApiError, RetryableError, UploadError
from media_upload.files import content_type_for, iso_utc, sha256_file
from media_upload.progress import NoProgress, ProgressFactory, ProgressSink
from media_upload.ratelimit import TokenBucket
from media_upload.retry import Backoff, is_retryable_status
from media_upload.state import InFlight, StateStore

MIB = 1024 * 1024
# Size of the pieces a body is sent in: the memory one transfer holds, besides socket buffers.
CHUNK = 1024 * 1024
URL_BATCH = 100
# Parts in flight: one whose body is being sent, one sent and waiting for S3's answer.
PIPELINE = 2
# Job states in which the bytes are in: the job needs nothing more from the uploader.
DONE_STATUSES = frozenset({"UPLOADED", "RUNNING", "PROCESSED"})
# Answers to /parts or GET /jobs that mean the recorded job cannot be continued.
GONE_STATUSES = frozenset({404, 409, 410})


@dataclass
class Hooks:
    """Injection points for tests and benchmarks (a simulated crash raises from one)."""

    after_hash: Callable[[Path], None] | None = None
    # S3 acknowledged part n; our record does not hold it yet.
    part_sent: Callable[[int], None] | None = None
    # Our record holds part n.
    part_recorded: Callable[[int], None] | None = None


@dataclass(frozen=True)
class JobRequest:
    """What the job is created with besides the file's own facts."""

    campaign: str | None
    source: str | None = None
    device: str | None = None
    captured_at: str | None = None  # ISO-8601 UTC; the file's mtime when None


@dataclass
class Outcome:
    """What became of one file; ``line()`` is what the log gets."""

    status: str  # "uploaded", "skipped" or "failed"
    path: Path
    job_id: str | None = None
    size: int = 0
    sent_bytes: int = 0
    seconds: float = 0.0
    reason: str = ""
    transient: bool = False
    resumed_bytes: int = 0

    def line(self) -> str:
        if self.status == "uploaded":
            fresh = max(self.size - self.resumed_bytes, 0)
            rate = fresh / MIB / self.seconds if self.seconds > 0 else 0.0
            text = (
                f"uploaded {self.path} job={self.job_id} {fresh / MIB:.2f} MiB "
                f"in {self.seconds:.2f} s ({rate:.2f} MiB/s)"
            )
            if self.resumed_bytes:
                text += f", resumed: {self.resumed_bytes / MIB:.2f} MiB were already in S3"
            return text
        if self.status == "skipped":
            return f"skipped {self.path} {self.reason} job={self.job_id}"
        return f"failed {self.path} {self.reason}"


class FileSlice:
    """``length`` bytes of a file from ``offset``, as a request body for ``requests``.

    It has a length, so requests sends Content-Length, not chunked encoding (which presigned
    S3 URLs refuse), and it is an iterable of chunks rather than a file object: urllib3 reads
    file objects 16 KiB at a time, and on a fast link the per-chunk Python work then costs as
    much CPU as the transfer. Chunks are read with ``os.pread`` (no shared file position, so a
    retry just makes a new slice); each first takes its bytes from the rate limiter, which is
    why chunks shrink to half the limiter's burst when a rate is set.
    """

    def __init__(
        self,
        fd: int,
        offset: int,
        length: int,
        *,
        limiter: TokenBucket | None = None,
        on_read: Callable[[int], None] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        self._fd = fd
        self._offset = offset
        self._length = length
        self._limiter = limiter
        self._on_read = on_read
        self._on_sent = on_sent
        self._chunk = (
            CHUNK if limiter is None else max(16 * 1024, min(CHUNK, int(limiter.burst / 2)))
        )
        self.position = 0

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        while self.position < self._length:
            wanted = min(self._chunk, self._length - self.position)
            if self._limiter is not None:
                self._limiter.consume(wanted)
            data = os.pread(self._fd, wanted, self._offset + self.position)
            if not data:
                raise UploadError("the file shrank while it was being uploaded", transient=True)
            self.position += len(data)
            if self._on_read is not None:
                self._on_read(len(data))
            yield data
        # The HTTP stack asked for more after the last chunk: the whole body is on the wire.
        if self._on_sent is not None:
            self._on_sent()


_XML_FIELD = re.compile(r"<(Code|Message)>(.*?)</\1>", re.DOTALL)


def s3_error(response: requests.Response) -> tuple[str, str]:
    """(Code, Message) of an S3 XML error; read by pattern, the document is not parsed."""
    found = {
        name: html.unescape(value.strip())
        for name, value in _XML_FIELD.findall(response.text or "")
    }
    return found.get("Code", f"HTTP{response.status_code}"), found.get(
        "Message", response.reason or ""
    )


class _Hold:
    """One turn on the wire; ``release()`` may be called any number of times."""

    def __init__(self, semaphore: threading.Semaphore) -> None:
        self._semaphore = semaphore
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._semaphore.release()


class _Wire:
    """At most one part body is being sent at any moment.

    A part holds the wire while its body goes out and lets go once the last byte is with the
    HTTP stack; the next part then starts sending while the previous one waits for S3's
    answer. That overlap is where a second stream's speed comes from (S3's work on a part
    and the round trip no longer stall the link), and since only one body is ever partly
    sent, a crash still costs at most one part: a part whose body went out in full is
    stored by S3 even if we die before reading the answer, and ``/parts`` reports it.
    """

    def __init__(self) -> None:
        self._semaphore = threading.Semaphore(1)

    def take(self) -> _Hold:
        self._semaphore.acquire()
        return _Hold(self._semaphore)


class _LockedProgress:
    """A progress sink shared by the part threads."""

    def __init__(self, sink: ProgressSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    def advance(self, amount: int) -> None:
        with self._lock:
            self._sink.advance(amount)

    def close(self) -> None:
        with self._lock:
            self._sink.close()


class Uploader:
    """Uploads files one at a time; shared by ``upload`` and ``watch``."""

    def __init__(
        self,
        api: JobsApi,
        store: StateStore,
        *,
        http: requests.Session | None = None,
        limiter: TokenBucket | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        hooks: Hooks | None = None,
        progress: ProgressFactory | None = None,
        timeout: tuple[float, float] = (10.0, 300.0),
    ) -> None:
        self.api = api
        self.store = store
        self._http_injected = http
        self._sessions = threading.local()
        self._lock = threading.Lock()
        self._limiter = limiter
        self._backoff = backoff if backoff is not None else Backoff()
        self._clock = clock
        self._hooks = hooks if hooks is not None else Hooks()
        self._progress: ProgressFactory = progress or (lambda label, total, done: NoProgress())
        self._timeout = timeout
        # Body bytes handed to S3 by this process, retries and abandoned attempts included.
        self.bytes_sent = 0

    # -- entry point ---------------------------------------------------------------------------
    def upload(self, path: Path, request: JobRequest) -> Outcome:
        """Upload ``path`` unless its content was uploaded before; never raises UploadError."""
        started = self._clock()
        sent_before = self.bytes_sent
        try:
            outcome = self._upload(path, request)
        except UploadError as exc:
            self.store.forget_checksum(path)
            outcome = Outcome("failed", path, reason=exc.message, transient=exc.transient)
        except OSError as exc:
            self.store.forget_checksum(path)
            outcome = Outcome(
                "failed", path, reason=f"cannot read or record it: {exc}", transient=True
            )
        except (KeyError, TypeError, ValueError) as exc:
            # An answer that does not follow the contract: worth another try later, and it must
            # not end a watcher that serves other files.
            outcome = Outcome(
                "failed",
                path,
                reason=f"unexpected answer from the API: {type(exc).__name__}: {exc}",
                transient=True,
            )
        outcome.seconds = self._clock() - started
        outcome.sent_bytes = self.bytes_sent - sent_before
        return outcome

    def _upload(self, path: Path, request: JobRequest) -> Outcome:
        facts = path.stat()
        size, mtime_ns = facts.st_size, facts.st_mtime_ns
        if size == 0:
            raise UploadError("the file is empty")
        inflight = self.store.load_inflight(path)
        if inflight is not None and (inflight.size, inflight.mtime_ns) != (size, mtime_ns):
            # The file changed since that upload began: its job is abandoned (it expires).
            self.store.drop_inflight(path)
            inflight = None
        if inflight is not None:
            resumed = self._resume(path, inflight)
            if resumed is not None:
                return resumed

        sha256 = self.store.cached_checksum(path, size, mtime_ns)
        if sha256 is None:
            sha256 = self._hash(path, size)
            self.store.remember_checksum(path, size, mtime_ns, sha256)
        if self._hooks.after_hash is not None:
            self._hooks.after_hash(path)
        previous = self.store.uploaded(sha256)
        if previous is not None:
            return Outcome(
                "skipped", path, job_id=previous.get("job_id"), size=size, reason="already uploaded"
            )

        job = self.api.create_job(self._job_document(path, size, mtime_ns, sha256, request))
        return self._send(path, job, size, mtime_ns, sha256)

    # -- steps ---------------------------------------------------------------------------------
    def _hash(self, path: Path, size: int) -> str:
        progress = self._progress(f"hashing {path.name}", size, 0)
        try:
            return sha256_file(path, on_read=progress.advance)
        finally:
            progress.close()

    @staticmethod
    def _job_document(
        path: Path, size: int, mtime_ns: int, sha256: str, request: JobRequest
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "filename": path.name,
            "content_type": content_type_for(path),
            "size_bytes": size,
            "sha256": sha256,
            "captured_at": request.captured_at or iso_utc(mtime_ns),
        }
        if request.campaign is not None:
            document["campaign"] = request.campaign
        if request.source:
            document["source"] = request.source
        if request.device:
            document["metadata"] = {"device": request.device}
        return document

    def _send(
        self, path: Path, job: dict[str, Any], size: int, mtime_ns: int, sha256: str
    ) -> Outcome:
        job_id = str(job.get("job_id") or "")
        upload = job.get("upload")
        if not job_id or not isinstance(upload, dict):
            raise UploadError("the API created a job without a job_id or upload instructions")
        method = upload.get("method")
        if method == "PUT":
            inflight = InFlight(str(path), size, mtime_ns, sha256, job_id, "PUT")
            self.store.save_inflight(inflight)
            self._put_whole(path, upload, size)
            self._finish(path, inflight, [])
        elif method == "MULTIPART":
            inflight = InFlight(
                str(path),
                size,
                mtime_ns,
                sha256,
                job_id,
                "MULTIPART",
                upload_id=str(upload.get("upload_id")),
                part_size=int(upload.get("part_size") or 0),
            )
            if inflight.part_size <= 0:
                raise UploadError("the API offered a multipart upload without a part size")
            self.store.save_inflight(inflight)
            urls = {int(p["part_number"]): str(p["url"]) for p in upload.get("parts") or []}
            self._send_parts(path, inflight, urls)
            self._finish(path, inflight, self._part_list(inflight))
        else:
            raise UploadError(
                f"the API offered an upload method this uploader does not know: {method!r}"
            )
        return Outcome("uploaded", path, job_id=job_id, size=size)

    def _resume(self, path: Path, inflight: InFlight) -> Outcome | None:
        """Continue a recorded upload; None when it cannot be continued (start a new job)."""
        try:
            job = self.api.get_job(inflight.job_id)
        except ApiError as exc:
            if exc.status in GONE_STATUSES:
                self.store.drop_inflight(path)
                return None
            raise
        status = job.get("status")
        if status in DONE_STATUSES:
            # Completed before the crash, recorded only now.
            self._record(path, inflight)
            return Outcome(
                "uploaded",
                path,
                job_id=inflight.job_id,
                size=inflight.size,
                resumed_bytes=inflight.size,
            )
        if status != "WAITING_FOR_UPLOAD" or inflight.method != "MULTIPART":
            # Failed or expired jobs cannot take more bytes, and a PUT URL cannot be renewed.
            self.store.drop_inflight(path)
            return None

        missing = [n for n in range(1, inflight.part_count + 1) if n not in inflight.parts]
        try:
            answer = self.api.parts(inflight.job_id, missing[:URL_BATCH] or [inflight.part_count])
        except ApiError as exc:
            if exc.status in GONE_STATUSES:
                self.store.drop_inflight(path)
                return None
            raise
        held = {int(p["part_number"]): p for p in answer.get("uploaded") or []}
        inflight.parts = {
            number: str(held[number]["etag"])
            for number in range(1, inflight.part_count + 1)
            if number in held
            and int(held[number].get("size", -1)) == inflight.part_range(number)[1]
        }
        self.store.save_inflight(inflight)
        resumed_bytes = sum(inflight.part_range(number)[1] for number in inflight.parts)
        urls = {int(p["part_number"]): str(p["url"]) for p in answer.get("parts") or []}
        self._send_parts(path, inflight, urls)
        self._finish(path, inflight, self._part_list(inflight))
        return Outcome(
            "uploaded",
            path,
            job_id=inflight.job_id,
            size=inflight.size,
            resumed_bytes=resumed_bytes,
        )

    def _put_whole(self, path: Path, upload: dict[str, Any], size: int) -> None:
        url = str(upload.get("url") or "")
        if not url:
            raise UploadError("the API offered a PUT upload without a URL")
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(
            {str(k): str(v) for k, v in dict(upload.get("headers") or {}).items()}
        )
        declared = headers.get("Content-Length")
        if declared is not None and declared != str(size):
            raise UploadError(f"the API expects {declared} bytes but the file has {size}")
        headers["Content-Length"] = str(size)
        fd = os.open(path, os.O_RDONLY)
        progress = self._progress(path.name, size, 0)
        try:
            self._put_range(
                fd,
                0,
                size,
                url_for=lambda stale: url,
                headers=dict(headers),
                progress=progress,
                what="the file",
                refreshable=False,
            )
        finally:
            os.close(fd)
            progress.close()

    def _send_parts(self, path: Path, inflight: InFlight, urls: dict[int, str]) -> None:
        """Send every part S3 does not hold yet, pipelined two deep (see ``_Wire``)."""
        todo = [n for n in range(1, inflight.part_count + 1) if n not in inflight.parts]
        done_bytes = sum(inflight.part_range(number)[1] for number in inflight.parts)
        fd = os.open(path, os.O_RDONLY)
        progress = _LockedProgress(self._progress(path.name, inflight.size, done_bytes))
        wire = _Wire()
        slots = threading.Semaphore(PIPELINE)
        futures: list[Future[None]] = []
        try:
            with ThreadPoolExecutor(PIPELINE, thread_name_prefix="media-upload-part") as pool:
                for number in todo:
                    slots.acquire()
                    hold = wire.take()  # in part order: this part's first attempt owns it
                    if any(f.done() and f.exception() is not None for f in futures):
                        hold.release()
                        slots.release()
                        break
                    future = pool.submit(
                        self._send_part,
                        number,
                        fd=fd,
                        inflight=inflight,
                        urls=urls,
                        progress=progress,
                        wire=wire,
                        hold=hold,
                    )
                    future.add_done_callback(lambda _done: slots.release())
                    futures.append(future)
            for future in futures:
                future.result()  # the first failure, in part order
        finally:
            os.close(fd)
            progress.close()

    def _send_part(
        self,
        number: int,
        *,
        fd: int,
        inflight: InFlight,
        urls: dict[int, str],
        progress: ProgressSink,
        wire: _Wire,
        hold: _Hold,
    ) -> None:
        offset, length = inflight.part_range(number)

        def url_for(stale: str | None) -> str:
            with self._lock:
                return self._part_url(inflight, urls, number, stale)

        etag = self._put_range(
            fd,
            offset,
            length,
            url_for=url_for,
            headers={"Content-Length": str(length)},
            progress=progress,
            what=f"part {number}",
            wire=wire,
            hold=hold,
        )
        with self._lock:
            if self._hooks.part_sent is not None:
                self._hooks.part_sent(number)
            inflight.parts[number] = etag
            self.store.save_inflight(inflight)
            if self._hooks.part_recorded is not None:
                self._hooks.part_recorded(number)

    def _part_url(
        self, inflight: InFlight, urls: dict[int, str], number: int, stale: str | None
    ) -> str:
        """The URL for a part; asks ``/parts`` for the next batch when it is missing, or when
        ``stale`` (a URL S3 called expired) is still the one we have."""
        if number not in urls or (stale is not None and urls[number] == stale):
            # This part first, then every other part not done yet (the one beside it in the
            # pipeline included, so it finds a fresh URL too instead of asking again).
            others = [n for n in range(1, inflight.part_count + 1) if n not in inflight.parts]
            wanted = [number, *(n for n in others if n != number)][:URL_BATCH]
            answer = self.api.parts(inflight.job_id, wanted)
            urls.update({int(p["part_number"]): str(p["url"]) for p in answer.get("parts") or []})
        url = urls.get(number)
        if url is None or url == stale:
            raise UploadError(f"the API gave no {'fresh ' if stale else ''}URL for part {number}")
        return url

    def _put_range(
        self,
        fd: int,
        offset: int,
        length: int,
        *,
        url_for: Callable[[str | None], str],
        headers: dict[str, str],
        progress: ProgressSink,
        what: str,
        refreshable: bool = True,
        wire: _Wire | None = None,
        hold: _Hold | None = None,
    ) -> str:
        """PUT ``length`` bytes from ``offset``; the ETag S3 answered.

        With a ``wire``, each attempt holds it while its body is being sent (the first attempt
        comes with ``hold``, taken in part order by the caller; retries take it again).
        """
        stale: str | None = None
        first = hold

        def attempt() -> str:
            nonlocal stale, first
            url = url_for(stale)
            stale = None
            held, first = (first or (wire.take() if wire is not None else None)), None
            body = FileSlice(
                fd,
                offset,
                length,
                limiter=self._limiter,
                on_read=progress.advance,
                on_sent=held.release if held is not None else None,
            )
            try:
                response = self._http_for_thread().put(
                    url, data=body, headers=headers, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                progress.advance(-body.position)
                raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
            finally:
                if held is not None:
                    held.release()
                with self._lock:
                    self.bytes_sent += body.position
            if response.ok:
                etag = response.headers.get("ETag")
                if not etag:
                    raise UploadError(f"S3 accepted {what} without an ETag")
                return str(etag)
            progress.advance(-body.position)
            code, message = s3_error(response)
            if response.status_code == 403 and refreshable and "expired" in message.lower():
                stale = url
                raise RetryableError(f"the URL for {what} expired")
            if is_retryable_status(response.status_code):
                raise RetryableError(f"S3 answered {response.status_code} {code}: {message}")
            raise UploadError(f"S3 refused {what}: {code}: {message} (HTTP {response.status_code})")

        try:
            return self._backoff.call(attempt, what=f"uploading {what}")
        finally:
            if first is not None:  # never attempted (cannot happen, but never leak the wire)
                first.release()

    def _http_for_thread(self) -> requests.Session:
        """One session per part thread: requests does not promise a Session is thread-safe."""
        if self._http_injected is not None:
            return self._http_injected
        session: requests.Session | None = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    @staticmethod
    def _part_list(inflight: InFlight) -> list[dict[str, Any]]:
        return [{"part_number": n, "etag": etag} for n, etag in sorted(inflight.parts.items())]

    def _finish(self, path: Path, inflight: InFlight, parts: list[dict[str, Any]]) -> None:
        """Check the file did not change under us, complete the job, record it."""
        facts = path.stat()
        if (facts.st_size, facts.st_mtime_ns) != (inflight.size, inflight.mtime_ns):
            self.store.drop_inflight(path)
            raise UploadError(
                "the file changed during the upload; its new version goes once it settles",
                transient=True,
            )
        if inflight.method == "PUT":
            # A single PUT needs no completion (the API answers 409 to one): the job sees the
            # object itself, which GET /jobs/{id} confirms.
            status = self.api.get_job(inflight.job_id).get("status")
            if status not in DONE_STATUSES:
                self.store.drop_inflight(path)
                raise UploadError(f"S3 took the file but job {inflight.job_id} is {status}")
            self._record(path, inflight)
            return
        try:
            self.api.complete(inflight.job_id, parts)
        except ApiError:
            # A complete retried after a lost answer may be refused though the first went in.
            try:
                status = self.api.get_job(inflight.job_id).get("status")
            except UploadError:
                status = None
            if status not in DONE_STATUSES:
                self.store.drop_inflight(path)
                raise
        self._record(path, inflight)

    def _record(self, path: Path, inflight: InFlight) -> None:
        self.store.record_uploaded(
            sha256=inflight.sha256, job_id=inflight.job_id, path=path, size=inflight.size
        )
        self.store.drop_inflight(path)


@dataclass
class UploadStats:
    """Totals over a run of the watcher, for its exit status."""

    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == "uploaded":
            self.uploaded += 1
        elif outcome.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
