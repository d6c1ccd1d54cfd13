"""Watch a folder: upload each matching file once it has stopped changing.

Polling rather than inotify: it works the same on local disks, SD cards, NFS and SMB mounts
(where inotify sees nothing written by other hosts), and "stopped changing" has to be measured
by looking at the file over time anyway. A file is *settled* when its size and mtime are the
same as they were at least ``settle_s`` ago (by the monotonic clock, never by comparing mtimes
with the wall clock, which cameras and network shares get wrong).

Files are uploaded one at a time, in name order. A file whose content is already recorded as
uploaded is skipped at first sight, without waiting for it to settle. A permanent failure is
reported once and not retried until the file changes; a transient one (network down, retries
exhausted) is retried after ``retry_after_s``, resuming a multipart upload where it stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from media_upload.files import find_files, iso_utc
from media_upload.uploader import JobRequest, Outcome, Uploader, UploadStats


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # clock() when this size and mtime were first seen


class Watcher:
    """One folder, one uploader; ``poll()`` is one look at the folder."""

    def __init__(
        self,
        root: Path,
        uploader: Uploader,
        *,
        campaign: str,
        source: str | None = None,
        device: str | None = None,
        patterns: Iterable[str],
        settle_s: float = 5.0,
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        report: Callable[[str], None] = print,
        poll_s: float = 1.0,
        retry_after_s: float = 60.0,
    ) -> None:
        self.root = root
        self.uploader = uploader
        self.campaign = campaign
        self.source = source
        self.device = device
        self.patterns = tuple(patterns)
        self.settle_s = settle_s
        self.state_dir = state_dir
        self._clock = clock
        self._sleep = sleep
        self._report = report
        self.poll_s = poll_s
        self.retry_after_s = retry_after_s
        self._seen: dict[Path, _Seen] = {}
        # Path -> (size, mtime_ns) of the version already dealt with (uploaded, skipped, refused).
        self._handled: dict[Path, tuple[int, int]] = {}
        self._retry_at: dict[Path, float] = {}
        self.stats = UploadStats()

    def _request(self, facts: os.stat_result) -> JobRequest:
        return JobRequest(
            campaign=self.campaign,
            source=self.source,
            device=self.device,
            captured_at=iso_utc(facts.st_mtime_ns),
        )

    def waiting(self) -> list[Path]:
        """Files seen but neither dealt with nor settled yet (failed ones waiting for a retry
        were reported already and are not counted)."""
        return sorted(
            path
            for path, seen in self._seen.items()
            if self._handled.get(path) != (seen.size, seen.mtime_ns) and path not in self._retry_at
        )

    def poll(self) -> list[Outcome]:
        """Look at the folder once; upload what has settled. Returns what was done."""
        done: list[Outcome] = []
        present: set[Path] = set()
        for path in find_files(self.root, self.patterns, exclude=self.state_dir):
            try:
                facts = path.stat()
            except FileNotFoundError:
                continue
            present.add(path)
            version = (facts.st_size, facts.st_mtime_ns)
            if self._handled.get(path) == version:
                continue
            seen = self._seen.get(path)
            now = self._clock()
            if seen is None or (seen.size, seen.mtime_ns) != version:
                self._seen[path] = seen = _Seen(facts.st_size, facts.st_mtime_ns, now)
                if self._already_uploaded(path, facts):
                    done.append(self._deal(path, facts, version))
                continue
            if now - seen.since < self.settle_s or now < self._retry_at.get(path, 0.0):
                continue
            done.append(self._deal(path, facts, version))
        for gone in set(self._seen) - present:
            self._seen.pop(gone, None)
            self._handled.pop(gone, None)
            self._retry_at.pop(gone, None)
        return done

    def _already_uploaded(self, path: Path, facts: os.stat_result) -> bool:
        """Known content (checksum cached for this size and mtime) that was uploaded before."""
        store = self.uploader.store
        sha256 = store.cached_checksum(path, facts.st_size, facts.st_mtime_ns)
        return sha256 is not None and store.uploaded(sha256) is not None

    def _deal(self, path: Path, facts: os.stat_result, version: tuple[int, int]) -> Outcome:
        outcome = self.uploader.upload(path, self._request(facts))
        self._report(outcome.line())
        self.stats.add(outcome)
        if outcome.status == "failed" and outcome.transient:
            self._retry_at[path] = self._clock() + self.retry_after_s
        else:
            self._handled[path] = version
            self._retry_at.pop(path, None)
        return outcome

    def run(
        self,
        *,
        once: bool = False,
        max_polls: int | None = None,
        on_poll: Callable[[int], None] | None = None,
    ) -> UploadStats:
        """Poll until stopped (Ctrl-C, SIGTERM), or ``max_polls``.

        ``once``: look, wait one settle period, upload everything that held still, report the
        rest as still changing and return: for cron and for tests.
        """
        polls = 0
        while True:
            self.poll()
            polls += 1
            if on_poll is not None:
                on_poll(polls)
            if once:
                if self.waiting():
                    self._sleep(self.settle_s)
                    self.poll()
                    for path in self.waiting():
                        self._report(f"waiting {path} still changing; it goes on a later run")
                return self.stats
            if max_polls is not None and polls >= max_polls:
                return self.stats
            self._sleep(self.poll_s)
