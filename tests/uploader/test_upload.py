"""``media-upload upload``: single PUT with S3's checksum check, multipart, resume after a crash,
retries and refusals, against the fake jobs API and moto on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
from pathlib import Path

import pytest
import requests

from media_upload.cli import Runtime
from media_upload.files import iso_utc
from media_upload.retry import Backoff
from media_upload.state import StateStore
from media_upload.uploader import Hooks
from tests.uploader.conftest import PART, FakeClock, run_cli, write_file
from tests.uploader.fake_api import MIB

UPLOADED = re.compile(
    r"^uploaded (?P<path>\S+) job=(?P<job>\w+) (?P<mib>[\d.]+) MiB in [\d.]+ s \([\d.]+ MiB/s\)"
)


class Crash(BaseException):
    """The process dying at an injected point: nothing in the uploader may catch it."""


def crash(*, sent: int | None = None, recorded: int | None = None) -> Hooks:
    """Hooks that die at one point and, being dead, at every later one: the part in flight
    beside the one that died records nothing either, as in a real crash."""
    dead = False

    def at(point: int | None):
        def hook(number: int) -> None:
            nonlocal dead
            if dead or number == point:
                dead = True
                raise Crash

        return hook

    return Hooks(part_sent=at(sent), part_recorded=at(recorded))


def upload_args(world, path: Path, state: Path, *extra: str) -> list[str]:
    return [
        "upload",
        str(path),
        "--campaign",
        "travel",
        "--api",
        world.api_url,
        "--state-dir",
        str(state),
        *extra,
    ]


def runtime(clock: FakeClock, **kwargs) -> Runtime:
    return Runtime(clock=clock, sleep=clock.sleep, rng=random.Random(7), **kwargs)  # noqa: S311 - jitter


def job_of(world, line: str):
    match = UPLOADED.match(line)
    assert match, line
    return world.api.jobs[match["job"]]


def test_small_file_goes_in_one_put_with_the_checksum_header(world, tmp_path, clock):
    clip = tmp_path / "cam" / "clip.MP4"
    data = write_file(clip, 300 * 1024)
    os.utime(clip, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))

    done = run_cli(
        upload_args(
            world, clip, tmp_path / "state", "--source", "harbour-rig", "--device", "cam-07"
        ),
        runtime(clock),
    )

    assert done.code == 0, done.err
    assert len(done.lines) == 1 and done.lines[0].startswith(f"uploaded {clip} job=")
    job = job_of(world, done.lines[0])
    assert job.status == "UPLOADED" and job.method == "PUT"
    # The job document follows the contract.
    created = next(body for method, path, body in world.api.bodies if path == "/jobs")
    assert created == {
        "filename": "clip.MP4",
        "content_type": "video/mp4",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "campaign": "travel",
        "source": "harbour-rig",
        "captured_at": iso_utc(1_700_000_000_000_000_000),
        "metadata": {"device": "cam-07"},
    }
    assert created["captured_at"] == "2023-11-14T22:13:20Z"
    # One PUT, checked by the guard against x-amz-checksum-sha256; no completion (the API has
    # none for a single PUT): the job itself confirms the object arrived.
    (put,) = world.guard.puts(job.key)
    assert (put.part_number, put.received, put.status) == (None, len(data), 200)
    assert world.object_bytes(job.key) == data
    assert world.api.calls("POST", r"/jobs/\w+/complete") == 0
    assert world.api.jobs[job.job_id].status == "UPLOADED"
    store = StateStore(tmp_path / "state")
    assert store.uploaded(created["sha256"])["job_id"] == job.job_id
    assert not list((tmp_path / "state" / "inflight").iterdir())


def test_a_byte_changed_after_hashing_is_refused_by_s3_and_reported(world, tmp_path, clock):
    clip = tmp_path / "clip.mp4"
    write_file(clip, 200 * 1024)

    def tamper(path: Path) -> None:
        facts = path.stat()
        with path.open("r+b") as handle:
            handle.seek(1234)
            original = handle.read(1)
            handle.seek(1234)
            handle.write(bytes([original[0] ^ 0xFF]))
        os.utime(path, ns=(facts.st_atime_ns, facts.st_mtime_ns))  # same size, same mtime

    done = run_cli(
        upload_args(world, clip, tmp_path / "state"), runtime(clock, hooks=Hooks(after_hash=tamper))
    )

    assert done.code == 1
    assert done.lines == [
        f"failed {clip} S3 refused the file: BadDigest: The SHA256 you specified did not match "
        "the calculated checksum. (HTTP 400)"
    ]
    (job,) = world.api.jobs.values()
    assert job.status == "WAITING_FOR_UPLOAD"
    assert world.api.calls("POST", r"/jobs/\w+/complete") == 0
    assert [p.status for p in world.guard.puts(job.key)] == [400]  # refused, and not retried
    keys = world.api.s3.list_objects_v2(Bucket=world.bucket).get("KeyCount", 0)
    assert keys == 0

    # The next attempt hashes the file as it now is and goes through.
    again = run_cli(upload_args(world, clip, tmp_path / "state"), runtime(clock))
    assert again.code == 0 and again.lines[0].startswith("uploaded "), again.out


def test_file_above_the_threshold_goes_multipart_in_order(world, tmp_path, clock):
    clip = tmp_path / "long.mov"
    data = write_file(clip, 12 * MIB + 4321)

    done = run_cli(upload_args(world, clip, tmp_path / "state"), runtime(clock))

    assert done.code == 0, done.err
    job = job_of(world, done.lines[0])
    assert job.method == "MULTIPART" and job.status == "UPLOADED"
    assert [(p.part_number, p.received) for p in world.guard.puts(job.key)] == [
        (1, PART),
        (2, PART),
        (3, 2 * MIB + 4321),
    ]
    completed = next(b for m, p, b in world.api.bodies if p.endswith("/complete"))
    assert [p["part_number"] for p in completed["parts"]] == [1, 2, 3]
    assert all(re.fullmatch(r'"[0-9a-f]{32}"', p["etag"]) for p in completed["parts"])
    assert world.object_bytes(job.key) == data  # also checked by the fake's sha256 on complete
    assert world.api.calls("POST", r"/jobs/\w+/parts") == 0  # create gave every URL


def test_restart_after_a_crash_resumes_from_the_state_file(world, tmp_path, clock):
    clip = tmp_path / "long.mov"
    data = write_file(clip, 12 * MIB)
    state = tmp_path / "state"

    with pytest.raises(Crash):
        run_cli(upload_args(world, clip, state), runtime(clock, hooks=crash(recorded=1)))

    (record,) = (state / "inflight").iterdir()
    inflight = json.loads(record.read_text())
    (job,) = world.api.jobs.values()
    assert inflight["job_id"] == job.job_id and inflight["upload_id"] == job.upload_id
    # Part 1 is recorded; so may be part 2 if, pipelined beside it, it finished first.
    assert inflight["part_size"] == PART and "1" in inflight["parts"]
    assert (inflight["size"], inflight["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())

    done = run_cli(upload_args(world, clip, state), runtime(clock))

    assert done.code == 0, done.err
    # Whatever S3 took in full before the crash counts, recorded by us or not.
    assert re.search(r"resumed: (5|10|12)\.00 MiB were already in S3$", done.lines[0]), done.lines
    assert world.api.calls("POST", "/jobs") == 1  # the same job, not a new one
    assert world.api.calls("POST", r"/jobs/\w+/parts") == 1  # fresh URLs and what S3 holds
    sent = [p.part_number for p in world.guard.puts(job.key)]
    resent = len(sent) - len(set(sent))
    assert sorted(set(sent)) == [1, 2, 3] and resent <= 1
    assert world.object_bytes(job.key) == data
    assert not list((state / "inflight").iterdir())


def test_a_part_s3_holds_but_the_state_file_missed_is_not_sent_again(world, tmp_path, clock):
    clip = tmp_path / "long.mov"
    data = write_file(clip, 12 * MIB)
    state = tmp_path / "state"

    with pytest.raises(Crash):  # S3 acknowledged part 2; the record never gets it
        run_cli(upload_args(world, clip, state), runtime(clock, hooks=crash(sent=2)))
    (record,) = (state / "inflight").iterdir()
    recorded = json.loads(record.read_text())["parts"]
    assert "2" not in recorded  # (1 or 3 may be, whichever finished before 2's answer)

    done = run_cli(upload_args(world, clip, state), runtime(clock))

    assert done.code == 0, done.err
    # Parts 1 and 2, and part 3 too if it went in beside part 2 before the crash.
    assert re.search(r"resumed: 1[02]\.00 MiB were already in S3$", done.lines[0]), done.lines
    (job,) = world.api.jobs.values()
    assert sorted(p.part_number for p in world.guard.puts(job.key)) == [1, 2, 3]  # none twice
    assert world.object_bytes(job.key) == data


def test_a_connection_cut_mid_part_is_retried_with_backoff(world, tmp_path, clock):
    clip = tmp_path / "long.mov"
    data = write_file(clip, 12 * MIB)
    world.guard.reset_connection(part_number=2, after_bytes=MIB)
    backoff = Backoff(sleep=clock.sleep, rng=random.Random(1))  # noqa: S311 - jitter

    done = run_cli(upload_args(world, clip, tmp_path / "state"), runtime(clock, backoff=backoff))

    assert done.code == 0, done.err
    (job,) = world.api.jobs.values()
    puts = world.guard.puts(job.key)
    assert sorted(p.part_number for p in puts) == [1, 2, 2, 3]
    assert next(p.received for p in puts if p.part_number == 2) == MIB  # the cut attempt
    assert sum(p.received for p in puts) - len(data) == MIB
    assert len(backoff.slept) == 1 and 0 <= backoff.slept[0] <= 0.5
    assert world.object_bytes(job.key) == data


def test_api_5xx_and_429_are_retried_honouring_retry_after(world, tmp_path, clock):
    clip = tmp_path / "clip.mp4"
    write_file(clip, 64 * 1024)
    world.api.fail("POST", "/jobs", status=503, times=2, message="busy")
    world.api.fail("GET", r"/jobs/\w+", status=429, retry_after=4, message="slow down")
    backoff = Backoff(sleep=clock.sleep, rng=random.Random(3))  # noqa: S311 - jitter

    done = run_cli(upload_args(world, clip, tmp_path / "state"), runtime(clock, backoff=backoff))

    assert done.code == 0, done.err
    assert [s for m, p, s in world.api.requests if p == "/jobs"] == [503, 503, 201]
    assert len(backoff.slept) == 3
    assert backoff.slept[0] <= 0.5 and backoff.slept[1] <= 1.0  # full jitter under 0.5 * 2**n
    assert backoff.slept[2] >= 4  # Retry-After is a floor


def test_retries_give_up_and_report_a_transient_failure(world, tmp_path, clock):
    clip = tmp_path / "clip.mp4"
    write_file(clip, 64 * 1024)
    world.api.fail("POST", "/jobs", status=502, times=100, message="bad gateway")

    done = run_cli(upload_args(world, clip, tmp_path / "state"), runtime(clock))

    assert done.code == 1
    assert done.lines == [
        f"failed {clip} POST /jobs: gave up after 6 attempts: POST /jobs: HTTP 502 bad gateway"
    ]
    assert world.api.calls("POST", "/jobs") == 6


def test_a_4xx_fails_the_file_with_the_api_message_and_no_retry(world, tmp_path, clock):
    clip = tmp_path / "clip.mp4"
    write_file(clip, 64 * 1024)

    done = run_cli(
        [
            "upload",
            str(clip),
            "--campaign",
            "Bad Campaign!",
            "--api",
            world.api_url,
            "--state-dir",
            str(tmp_path / "s"),
        ],
        runtime(clock),
    )

    assert done.code == 1
    assert done.lines == [
        f"failed {clip} campaign must be lowercase letters, digits and hyphens (at most 63) (HTTP 400)"
    ]
    assert world.api.calls("POST", "/jobs") == 1 and clock.sleeps == []


def test_an_expired_part_url_is_refreshed_through_parts(world, tmp_path, clock):
    clip = tmp_path / "long.mov"
    data = write_file(clip, 12 * MIB)

    expired: list[int] = []

    def expire_everything(number: int) -> None:
        # At the first part recorded: part 3 can only start after that (no free slot before).
        if not expired:
            expired.append(number)
            world.guard.expire(world.api.issued_signatures)

    done = run_cli(
        upload_args(world, clip, tmp_path / "state"),
        runtime(clock, hooks=Hooks(part_recorded=expire_everything)),
    )

    assert done.code == 0, done.err
    (job,) = world.api.jobs.values()
    puts = world.guard.puts(job.key)  # (refused requests never reach the counters)
    assert sorted(p.part_number for p in puts) == [1, 2, 3]
    assert {p.status for p in puts} == {200}
    # Whichever part met an expired URL first fetched fresh ones for every part still missing.
    assert world.api.calls("POST", r"/jobs/\w+/parts") == 1
    assert world.object_bytes(job.key) == data


def test_the_fake_refuses_what_aws_would_refuse(world):
    """The checks the other tests rely on are real: unsigned API calls, altered presigned PUTs."""
    unsigned = requests.get(f"{world.api_url}/jobs", timeout=5)
    assert (unsigned.status_code, unsigned.json()) == (
        403,
        {"message": "Forbidden"},
    )

    checksum = base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
    params = {
        "Key": "probe/x.mp4",
        "ContentType": "video/mp4",
        "ContentLength": 3,
        "ChecksumSHA256": checksum,
    }
    url = world.api._presign("put_object", params)
    signed = {"Content-Type": "video/mp4", "x-amz-checksum-sha256": checksum}

    def put(target: str, headers: dict[str, str], body: bytes = b"abc") -> requests.Response:
        return requests.put(target, data=body, headers=headers, timeout=5)

    assert put(url, {"Content-Type": "video/mp4"}).status_code == 403  # signed header left out
    altered = put(url, {**signed, "Content-Type": "video/webm"})
    assert altered.status_code == 403 and "SignatureDoesNotMatch" in altered.text
    assert put(url[:-4] + "0000", signed).status_code == 403  # forged signature
    assert "BadDigest" in put(url, signed, b"abd").text
    assert put(url, signed).status_code == 200
