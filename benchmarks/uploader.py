"""Benchmark: the edge uploader (``media-upload upload``) against boto3 ``upload_file``, its
memory, and what a restart after SIGKILL sends again.

What it measures (issue 17):

* ``throughput_ratio``: uploader MiB/s over ``upload_file`` MiB/s for the same 1 GiB file to the
  same S3 endpoint in the same run; target >= 0.9. The uploader's time is the whole command as
  a user runs it: SHA-256 of the file, job creation, every part, complete. ``upload_file`` only
  sends (ten threads, 8 MiB parts).
* ``rss_growth_mib``: peak RSS of the uploader process minus its RSS once its modules are
  imported, i.e. what uploading the file costs in memory; target <= 32 MiB.
* ``resume_resent_mib``: the uploader is started as its own process, SIGKILLed in the middle of
  a part, and started again; the bytes S3 received for that object over both runs, minus the
  file size, are the bytes sent twice; target <= one part. Three kills (after a quarter, half
  and three quarters of the file, at 20, 50 and 80% of a part's transfer time past that
  boundary), the worst reported. The client is a few socket buffers ahead of what S3 has read,
  so a kill may land after a part's last byte left the process; S3 then still stores that part
  (the kernel delivers what was written) and nothing is sent twice.

How, all on 127.0.0.1: the fake jobs API and moto's S3 (``tests/uploader/fake_api.py``, the
same world the tests check the uploader against, imported from there so the two cannot drift)
run in this parent process; each measured transfer runs in a fresh child process, so its peak
RSS is its own. The fake uses 8 MiB parts above 8 MiB, ``upload_file``'s own defaults, so both
send the same requests. The fake's optional whole-object SHA-256 check on complete is off: it
would charge the uploader for a server-side re-read that ``upload_file`` is not charged for.
The bucket is emptied after every transfer (moto keeps objects in memory). Each method runs
``--repeat`` times (default 5), alternating; throughput uses each method's best run, the least
disturbed by other work on the machine (medians are reported too), memory the worst.

Usage: ``python -m benchmarks.uploader`` (1 GiB) or ``--quick`` (64 MiB, targets reported but
not enforced). Writes ``benchmarks/results/uploader.json``; exits 1 when a full run misses a
target. The generated file lives in a temporary folder and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    MIB,
    ROOT,
    high_water_rss_mib,
    run_child,
    timed_transfer,
    write_result,
)

NAME = "uploader"
FULL_SIZE_MIB = 1024
QUICK_SIZE_MIB = 64
PART = 8 * MIB
TARGET_THROUGHPUT_RATIO = 0.9
TARGET_RSS_GROWTH_MIB = 32.0
# Where the kills land: once this fraction of the file reached S3, plus this share of the time
# one part takes.
KILLS = ((0.25, 0.2), (0.5, 0.5), (0.75, 0.8))
API_KEY = ("bench", "bench-secret")  # what the fake jobs API accepts
S3_KEY = ("fake-s3-key", "fake-s3-secret")  # what its S3 guard accepts


def child_env(api_url: str) -> dict[str, str]:
    """Credentials for the fake's execute-api signature check, and nothing from the host."""
    return {
        "AWS_ACCESS_KEY_ID": API_KEY[0],
        "AWS_SECRET_ACCESS_KEY": API_KEY[1],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "MEDIA_UPLOAD_API": api_url,
    }


def generate(path: Path, size: int) -> None:
    """Incompressible bytes: one random 1 MiB block, each copy stamped with its index."""
    block = bytearray(random.Random(20250617).randbytes(MIB))  # noqa: S311 - test data
    with path.open("wb") as out:
        for index in range(size // MIB):
            block[:8] = index.to_bytes(8, "big")
            out.write(block)
        out.write(bytes(size % MIB))


# -- the measured children -----------------------------------------------------------------------
def child_uploader(path: str, state_dir: str) -> dict[str, Any]:
    """``media-upload upload`` in this process, as the console script runs it."""
    from media_upload.cli import Runtime, main

    out = io.StringIO()
    with timed_transfer("uploader", os.path.getsize(path), peak=high_water_rss_mib) as figures:
        code = main(
            ["upload", path, "--campaign", "bench", "--state-dir", state_dir],
            Runtime(stdout=out, stderr=sys.stderr),
        )
    if code != 0:
        raise SystemExit(f"uploader failed: {out.getvalue()}")
    return {**_with_growth(figures), "line": out.getvalue().strip()}


def _with_growth(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        **figures,
        "rss_growth_mib": round(figures["peak_rss_mib"] - figures["start_rss_mib"], 1),
    }


def child_upload_file(path: str, endpoint: str, bucket: str) -> dict[str, Any]:
    """The reference: boto3's managed upload of the same bytes to the same S3."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY[0],
        aws_secret_access_key=S3_KEY[1],
    )
    s3.head_bucket(Bucket=bucket)
    with timed_transfer("upload_file", os.path.getsize(path), peak=high_water_rss_mib) as figures:
        s3.upload_file(path, bucket, "reference/upload_file.bin")
    return _with_growth(figures)


# -- resume after SIGKILL ------------------------------------------------------------------------
def measure_resume(
    world: Any,
    path: Path,
    state_dir: Path,
    env: dict[str, str],
    *,
    fraction: float,
    delay_s: float,
) -> dict[str, Any]:
    """Kill the uploader ``delay_s`` after S3 has taken ``fraction`` of the file, start it
    again, count the bytes sent twice."""
    size = path.stat().st_size
    parts = -(-size // PART)
    kill_at = max(1, int(parts * fraction)) * PART
    command = [sys.executable, "-m", "media_upload", "upload", str(path), "--campaign", "bench",
               "--state-dir", str(state_dir)]  # fmt: skip
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 600
        while world.guard.bytes_received() < kill_at:
            if child.poll() is not None:
                raise RuntimeError(f"the uploader ended before the kill: {child.stderr.read()!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("the uploader made no progress")
            time.sleep(0.002)
        time.sleep(delay_s)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    received_at_kill = world.guard.bytes_received()
    started = time.perf_counter()
    restarted = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    restart_seconds = time.perf_counter() - started
    if restarted.returncode != 0:
        raise RuntimeError(f"the restarted uploader failed: {restarted.stderr[-2000:]}")
    (job,) = world.api.jobs.values()
    head = world.api.s3.head_object(Bucket=world.bucket, Key=job.key)
    if head["ContentLength"] != size or job.status != "UPLOADED":
        raise RuntimeError(
            f"resumed upload incomplete: {head['ContentLength']} bytes, {job.status}"
        )
    puts = world.guard.puts(job.key)
    numbers = [p.part_number for p in puts]
    resent = world.guard.bytes_received(job.key) - size
    return {
        "resent_mib": round(resent / MIB, 2),
        "parts_resent": len(numbers) - len(set(numbers)),
        "killed_at_mib": round(received_at_kill / MIB, 1),
        "restart_seconds": round(restart_seconds, 2),
        "restart_line": restarted.stdout.strip(),
    }


# -- orchestration -------------------------------------------------------------------------------
def measure(size_mib: int, repeat: int) -> dict[str, Any]:
    from tests.uploader.fake_api import fake_world

    runs: dict[str, list[dict[str, Any]]] = {"uploader": [], "upload_file": []}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)  # children inherit the environment: only child_env counts
    with (
        fake_world(
            part_size=PART,
            multipart_threshold=PART,
            verify_sha256_on_complete=False,
            credentials={API_KEY[0]: API_KEY[1]},
            bucket="bench-edge-uploads",
        ) as world,
        tempfile.TemporaryDirectory(prefix="bench-uploader-") as tmp,
    ):
        env = child_env(world.api_url)
        path = Path(tmp) / "generated.mp4"
        generate(path, size_mib * MIB)
        for attempt in range(repeat):
            state = Path(tmp) / f"state-{attempt}"  # fresh: the file is new to each run
            runs["uploader"].append(
                run_child(
                    "benchmarks.uploader",
                    ["--child", "uploader", "--path", str(path), "--state-dir", str(state)],
                    env,
                )
            )
            world.reset()
            runs["upload_file"].append(
                run_child(
                    "benchmarks.uploader",
                    ["--child", "upload_file", "--path", str(path), "--endpoint", world.s3_endpoint,
                     "--bucket", world.bucket],
                    env,
                )
            )  # fmt: skip
            world.reset()
        # S3 (moto) counts a part's bytes when it has read the whole body, so "S3 has taken
        # fraction of the file" is a part boundary; the kill then waits a share of one part's
        # transfer time (from the runs above) to land at different points inside the next.
        part_s = PART / MIB / statistics.median(r["throughput_mib_s"] for r in runs["uploader"])
        resumes = []
        for index, (fraction, share) in enumerate(KILLS):
            state = Path(tmp) / f"state-resume-{index}"
            resumes.append(
                measure_resume(world, path, state, env, fraction=fraction, delay_s=share * part_s)
            )
            resumes[-1]["kill_delay_ms"] = round(share * part_s * 1000, 1)
            world.reset()
    return {"runs": runs, "resumes": resumes}


def summarize(measured: dict[str, Any]) -> dict[str, Any]:
    runs = measured["runs"]

    def best(method: str) -> float:
        return float(max(r["throughput_mib_s"] for r in runs[method]))

    def median(method: str) -> float:
        return float(statistics.median(r["throughput_mib_s"] for r in runs[method]))

    return {
        "throughput_mib_s": best("uploader"),
        "upload_file_throughput_mib_s": best("upload_file"),
        "throughput_ratio": round(best("uploader") / best("upload_file"), 3),
        "throughput_median_mib_s": median("uploader"),
        "upload_file_throughput_median_mib_s": median("upload_file"),
        "throughput_ratio_median": round(median("uploader") / median("upload_file"), 3),
        "rss_growth_mib": max(r["rss_growth_mib"] for r in runs["uploader"]),
        "upload_file_rss_growth_mib": max(r["rss_growth_mib"] for r in runs["upload_file"]),
        # The worst of the kills: the target is a bound.
        "resume_resent_mib": max(r["resent_mib"] for r in measured["resumes"]),
        "resume_parts_resent": max(r["parts_resent"] for r in measured["resumes"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE_MIB} MiB, not 1 GiB")
    parser.add_argument("--repeat", type=int, default=5, help="runs per method")
    parser.add_argument("--size-mib", type=int, help="file size (overrides --quick)")
    parser.add_argument("--child", choices=("uploader", "upload_file"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "uploader":
        print(json.dumps(child_uploader(args.path, args.state_dir)))
        return 0
    if args.child == "upload_file":
        print(json.dumps(child_upload_file(args.path, args.endpoint, args.bucket)))
        return 0

    size_mib = args.size_mib or (QUICK_SIZE_MIB if args.quick else FULL_SIZE_MIB)
    started = time.monotonic()
    measured = measure(size_mib, max(1, args.repeat))
    summary = summarize(measured)
    part_mib = PART / MIB
    met = (
        summary["throughput_ratio"] >= TARGET_THROUGHPUT_RATIO
        and summary["rss_growth_mib"] <= TARGET_RSS_GROWTH_MIB
        and summary["resume_resent_mib"] <= part_mib
    )
    document = {
        "benchmark": NAME,
        "mode": "quick" if args.quick else "full",
        "size_mib": size_mib,
        "repeat": max(1, args.repeat),
        "part_size_mib": part_mib,
        **summary,
        "targets": {
            "throughput_ratio_min": TARGET_THROUGHPUT_RATIO,
            "rss_growth_mib_max": TARGET_RSS_GROWTH_MIB,
            "resume_resent_mib_max": part_mib,
        },
        "targets_met": met,
        "runs": measured["runs"],
        "resumes": measured["resumes"],
    }
    path = write_result(NAME, document, started=started)
    mine, theirs = summary["throughput_mib_s"], summary["upload_file_throughput_mib_s"]
    print(
        f"{NAME}: throughput_ratio={summary['throughput_ratio']} ({mine} vs upload_file "
        f"{theirs} MiB/s) rss_growth_mib={summary['rss_growth_mib']} "
        f"resume_resent_mib={summary['resume_resent_mib']} targets_met={met} -> {path}"
    )
    return 0 if met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
