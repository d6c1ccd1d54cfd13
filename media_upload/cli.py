"""``media-upload``: watch a folder, upload a file, show a job, list jobs.

Every command reads the API URL from ``--api`` or ``MEDIA_UPLOAD_API`` and signs with the
default AWS credential chain. Summary lines go to stdout (one per file), the progress bar to
stderr and only on a terminal, errors to stderr. Exit status: 0 when everything went (or was
already there), 1 when a file failed or the API refused a request, 2 for usage and
configuration errors, 130 on Ctrl-C.

Tests and benchmarks call ``main(argv, runtime)`` with a ``Runtime`` carrying a fake clock,
fault hooks and output streams; the console script calls ``main()``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import requests

from media_upload import __version__
from media_upload.api import JobsApi
from media_upload.errors import ApiError, ConfigError, UploadError
from media_upload.files import DEFAULT_PATTERNS
from media_upload.progress import terminal_progress
from media_upload.ratelimit import TokenBucket
from media_upload.retry import Backoff
from media_upload.state import StateStore
from media_upload.uploader import MIB, Hooks, JobRequest, Uploader
from media_upload.watch import Watcher

STATUSES = ("WAITING_FOR_UPLOAD", "UPLOADED", "RUNNING", "PROCESSED", "FAILED")
STATE_DIR_NAME = ".media-upload"


@dataclass
class Runtime:
    """What a test injects: clocks, randomness, faults, streams, the HTTP session."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    hooks: Hooks = field(default_factory=Hooks)
    stdout: TextIO | None = None
    stderr: TextIO | None = None
    http: requests.Session | None = None
    # watch only: stop after this many polls, call this after each one.
    max_polls: int | None = None
    on_poll: Callable[[int], None] | None = None
    backoff: Backoff | None = None

    @property
    def out(self) -> TextIO:
        return self.stdout if self.stdout is not None else sys.stdout

    @property
    def err(self) -> TextIO:
        return self.stderr if self.stderr is not None else sys.stderr


# -- argument parsing ------------------------------------------------------------------------
def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _utc_timestamp(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text}") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (2025-06-01T12:00:00Z): {text}")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api",
        default=os.environ.get("MEDIA_UPLOAD_API"),
        help="jobs API base URL (default: $MEDIA_UPLOAD_API)",
    )
    common.add_argument(
        "--region", help="region to sign for (default: the AWS chain's, or the URL's)"
    )

    sending = argparse.ArgumentParser(add_help=False)
    sending.add_argument("--campaign", required=True, help="campaign the files belong to")
    sending.add_argument("--source", help="where the files come from (site, rig)")
    sending.add_argument("--device", help="device id, sent as metadata device=...")
    sending.add_argument(
        "--state-dir", type=Path, help=f"state folder (default: <folder>/{STATE_DIR_NAME})"
    )
    sending.add_argument(
        "--max-rate", type=_positive, metavar="MIB_PER_S", help="bandwidth cap, MiB/s"
    )

    parser = argparse.ArgumentParser(
        prog="media-upload", description="Upload media files into the pipeline."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    watch = commands.add_parser(
        "watch", parents=[common, sending], help="upload files as they appear in a folder"
    )
    watch.add_argument("dir", type=Path, metavar="DIR")
    watch.add_argument(
        "--settle-s", type=_non_negative, default=5.0, help="seconds a file must hold still (5)"
    )
    watch.add_argument("--once", action="store_true", help="upload what is there, then exit")
    watch.add_argument(
        "--pattern",
        action="append",
        metavar="GLOB",
        help="file name pattern, repeatable (default: common video extensions)",
    )
    watch.add_argument("--poll-s", type=_positive, default=1.0, help="seconds between looks (1)")
    watch.set_defaults(handler=_watch)

    upload = commands.add_parser("upload", parents=[common, sending], help="upload one file now")
    upload.add_argument("file", type=Path, metavar="FILE")
    upload.add_argument(
        "--captured-at", type=_utc_timestamp, help="capture time (default: the file's mtime)"
    )
    upload.set_defaults(handler=_upload)

    status = commands.add_parser("status", parents=[common], help="show one job")
    status.add_argument("job_id", metavar="JOB_ID")
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    status.set_defaults(handler=_status)

    listing = commands.add_parser("ls", parents=[common], help="list jobs")
    listing.add_argument("--campaign")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=int, default=20, help="at most this many jobs (20)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_ls)
    return parser


# -- commands --------------------------------------------------------------------------------
def _api(args: argparse.Namespace, runtime: Runtime) -> JobsApi:
    return JobsApi(args.api, region=args.region, http=runtime.http, backoff=_backoff(runtime))


def _backoff(runtime: Runtime) -> Backoff:
    if runtime.backoff is None:
        runtime.backoff = Backoff(sleep=runtime.sleep, rng=runtime.rng)
    return runtime.backoff


def _uploader(args: argparse.Namespace, runtime: Runtime, state_dir: Path) -> Uploader:
    limiter = None
    if args.max_rate:
        limiter = TokenBucket(args.max_rate * MIB, clock=runtime.clock, sleep=runtime.sleep)
    return Uploader(
        _api(args, runtime),
        StateStore(state_dir),
        http=runtime.http,
        limiter=limiter,
        backoff=_backoff(runtime),
        clock=runtime.clock,
        hooks=runtime.hooks,
        progress=terminal_progress(runtime.err),
    )


def _report(runtime: Runtime) -> Callable[[str], None]:
    def report(line: str) -> None:
        print(line, file=runtime.out, flush=True)

    return report


def _watch(args: argparse.Namespace, runtime: Runtime) -> int:
    root: Path = args.dir
    if not root.is_dir():
        raise ConfigError(f"not a folder: {root}")
    state_dir = args.state_dir or root / STATE_DIR_NAME
    watcher = Watcher(
        root,
        _uploader(args, runtime, state_dir),
        campaign=args.campaign,
        source=args.source,
        device=args.device,
        patterns=args.pattern or DEFAULT_PATTERNS,
        settle_s=args.settle_s,
        state_dir=state_dir,
        clock=runtime.clock,
        sleep=runtime.sleep,
        report=_report(runtime),
        poll_s=args.poll_s,
    )
    stats = watcher.run(once=args.once, max_polls=runtime.max_polls, on_poll=runtime.on_poll)
    return 1 if stats.failed else 0


def _upload(args: argparse.Namespace, runtime: Runtime) -> int:
    path: Path = args.file
    if not path.is_file():
        raise ConfigError(f"not a file: {path}")
    uploader = _uploader(args, runtime, args.state_dir or path.parent / STATE_DIR_NAME)
    request = JobRequest(
        args.campaign, source=args.source, device=args.device, captured_at=args.captured_at
    )
    outcome = uploader.upload(path, request)
    _report(runtime)(outcome.line())
    return 1 if outcome.status == "failed" else 0


def _mib(value: Any) -> str:
    return f"{value / MIB:.1f}" if isinstance(value, int | float) else "-"


def _status(args: argparse.Namespace, runtime: Runtime) -> int:
    job = _api(args, runtime).get_job(args.job_id)
    if args.json:
        print(json.dumps(job, indent=2, sort_keys=True), file=runtime.out)
        return 0
    rows = [
        ("job_id", job.get("job_id")),
        ("status", job.get("status")),
        ("reason", job.get("reason")),
        ("filename", job.get("filename")),
        ("campaign", job.get("campaign")),
        ("created_at", job.get("created_at")),
        ("size", f"{_mib(job.get('size_bytes'))} MiB ({job.get('size_bytes')} bytes)"),
        ("asset_id", job.get("asset_id")),
    ]
    for name, value in rows:
        if value is not None:
            print(f"{name + ':':<12}{value}", file=runtime.out)
    return 0


def _table(jobs: Sequence[dict[str, Any]]) -> list[str]:
    header = ("JOB_ID", "STATUS", "CAMPAIGN", "MIB", "CREATED_AT", "FILENAME")
    rows = [
        tuple(
            str(cell) if cell not in (None, "") else "-"
            for cell in (
                job.get("job_id"),
                job.get("status"),
                job.get("campaign"),
                _mib(job.get("size_bytes")),
                job.get("created_at"),
                job.get("filename"),
            )
        )
        for job in jobs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _ls(args: argparse.Namespace, runtime: Runtime) -> int:
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    api = _api(args, runtime)
    jobs: list[dict[str, Any]] = []
    token: str | None = None
    while len(jobs) < args.limit:
        page = api.list_jobs(
            campaign=args.campaign,
            status=args.status,
            limit=args.limit - len(jobs),
            next_token=token,
        )
        jobs += [job for job in page.get("jobs") or [] if isinstance(job, dict)]
        token = page.get("next") or None
        if token is None:
            break
    jobs = jobs[: args.limit]
    if args.json:
        print(json.dumps({"jobs": jobs, "next": token}, indent=2, sort_keys=True), file=runtime.out)
    elif jobs:
        for line in _table(jobs):
            print(line, file=runtime.out)
    else:
        print("no jobs", file=runtime.out)
    return 0


def main(argv: Sequence[str] | None = None, runtime: Runtime | None = None) -> int:
    """The console script; returns the exit status."""
    runtime = runtime or Runtime()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, runtime))
    except ConfigError as exc:
        print(f"media-upload: error: {exc}", file=runtime.err)
        return 2
    except ApiError as exc:
        print(f"media-upload: the API refused: {exc.message}", file=runtime.err)
        return 1
    except UploadError as exc:
        print(f"media-upload: {exc.message}", file=runtime.err)
        return 1
    except KeyboardInterrupt:
        print(
            "media-upload: interrupted; in-flight uploads resume on the next run", file=runtime.err
        )
        return 130
