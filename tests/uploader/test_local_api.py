"""``media-upload`` against the real jobs API: the local world's, not the fake.

The same commands as the fake-based tests run here against the deployed API served by
``localworld`` (the real handler behind API Gateway's checks, S3's checks in front of moto, the
pipeline started by what lands). The fake stays for what this world cannot do (injected 5xx,
cut connections, expired URLs on demand); ``test_the_fake_answers_with_the_real_apis_shapes``
keeps the two from drifting apart, route by route.

The world's API is deployed with this folder's sizes (5 MiB parts above 8 MiB), so a 12 MiB
file goes in three parts here as with the fake. Every command signs with an IAM user of the
world, found by the default credential chain in the environment.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from localworld import World, WorldOptions
from localworld.api_gateway import signed_call
from media_upload.cli import Runtime
from tests.conftest import SynthesizedApp
from tests.uploader.conftest import PART, FakeClock, run_cli, write_file
from tests.uploader.fake_api import MIB
from tests.uploader.test_upload import Crash, crash

UPLOADED = re.compile(r"^uploaded (?P<path>\S+) job=(?P<job>\w+) ")


@pytest.fixture(scope="module")
def local(synthesized: SynthesizedApp) -> Iterator[World]:
    """The world, named so that this folder's ``world`` (the fake) stays the fake."""
    sizes = {"MULTIPART_THRESHOLD_BYTES": str(8 * MIB), "PART_SIZE_BYTES": str(PART)}
    options = WorldOptions(
        env="Dev", server_port=0, function_environment={"lambdas.api.handler.handler": sizes}
    )
    with World(synthesized.templates, options) as started:
        yield started
        started.drain_events()
        assert not any(api.errors for api in started.apis.values())


@pytest.fixture
def device(local: World, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> dict:
    """A fresh IAM user per test (its own jobs), its keys where the default chain finds them."""
    name = re.sub(r"[^A-Za-z0-9]", "-", request.node.name)[:60]
    user = local.api_user(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", user["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", user["secret_access_key"])
    return user


def runtime(clock: FakeClock, **kwargs: Any) -> Runtime:
    return Runtime(clock=clock, sleep=clock.sleep, rng=random.Random(11), **kwargs)  # noqa: S311 - jitter


def api(local: World, *command: str) -> list[str]:
    assert local.api_url
    return [*command, "--api", local.api_url]


def job_ids(lines: list[str]) -> list[str]:
    found = [UPLOADED.match(line) for line in lines]
    return [m["job"] for m in found if m]


def stored(local: World, job_id: str, name: str) -> bytes:
    key = f"uploads/jobs/{job_id}/{name}"
    return bytes(local.client("s3").get_object(Bucket=local.raw_bucket, Key=key)["Body"].read())


def test_watch_once_then_status_and_ls_show_the_jobs(local, device, tmp_path, clock):
    # Given a camera folder with a small clip and one above the multipart threshold
    folder = tmp_path / "cam"
    small = write_file(folder / "a.mp4", 64 * 1024)
    large = write_file(folder / "day2" / "b.mov", 9 * MIB)

    # When the watcher uploads what is there, once
    done = run_cli(
        api(local, "watch", str(folder), "--once", "--settle-s", "0", "--campaign", "travel"),
        runtime(clock),
    )

    # Then both files are in the raw bucket, byte for byte, under their jobs
    assert done.code == 0, done.err
    first, second = job_ids(done.lines)
    assert stored(local, first, "a.mp4") == small
    assert stored(local, second, "b.mov") == large
    # And status shows each job as the API says it, and ls lists both, newest first
    status = run_cli(api(local, "status", second, "--json"))
    shown = json.loads(status.out)
    assert status.code == 0 and shown["job_id"] == second and shown["filename"] == "b.mov"
    assert shown["status"] in ("UPLOADED", "RUNNING", "PROCESSED", "FAILED")
    listed = run_cli(api(local, "ls", "--campaign", "travel", "--json"))
    assert listed.code == 0, listed.err
    assert [j["job_id"] for j in json.loads(listed.out)["jobs"]] == [second, first]
    table = run_cli(api(local, "ls"))
    assert table.lines[0].split()[:2] == ["JOB_ID", "STATUS"] and len(table.lines) == 3


def test_a_second_upload_of_the_same_content_is_skipped_by_checksum(local, device, tmp_path, clock):
    clip = tmp_path / "clip.mp4"
    write_file(clip, 100 * 1024, seed=3)
    state = tmp_path / "state"
    args = api(local, "upload", str(clip), "--campaign", "travel", "--state-dir", str(state))

    first = run_cli(args, runtime(clock))
    again = run_cli(args, runtime(clock))

    assert first.code == 0 and again.code == 0, (first.err, again.err)
    (job_id,) = job_ids(first.lines)
    assert again.lines == [f"skipped {clip} already uploaded job={job_id}"]
    status, page = signed_call(
        str(local.api_url),
        "GET",
        "/jobs?limit=10",
        access_key=device["access_key_id"],
        secret_key=device["secret_access_key"],
        region=local.options.region,
    )
    assert status == 200 and [j["job_id"] for j in page["jobs"]] == [job_id]  # one job only


def test_a_restart_after_a_crash_resends_at_most_one_part(local, device, tmp_path, clock):
    # Given a 12 MiB file whose upload dies once S3 acknowledged a part
    clip = tmp_path / "long.mov"
    data = write_file(clip, 12 * MIB)
    state = tmp_path / "state"
    args = api(local, "upload", str(clip), "--campaign", "travel", "--state-dir", str(state))
    assert local._server is not None
    guard = local._server.guard
    with pytest.raises(Crash):
        run_cli(args, runtime(clock, hooks=crash(recorded=1)))
    (record,) = (state / "inflight").iterdir()
    job_id = json.loads(record.read_text())["job_id"]
    key = f"uploads/jobs/{job_id}/long.mov"

    # When it runs again
    done = run_cli(args, runtime(clock))

    # Then it resumed the same job: what S3 held counts, one part at most goes twice
    assert done.code == 0, done.err
    assert done.lines[0].startswith(f"uploaded {clip} job={job_id} ")
    assert re.search(r"resumed: (5|10|12)\.00 MiB were already in S3$", done.lines[0])
    numbers = [p.part_number for p in guard.puts(key)]
    assert sorted(set(numbers)) == [1, 2, 3] and len(numbers) - len(set(numbers)) <= 1
    assert 0 <= guard.bytes_received(key) - len(data) <= PART
    assert stored(local, job_id, "long.mov") == data
    assert not list((state / "inflight").iterdir())


# -- the fake's contract -------------------------------------------------------------------------
def shape(value: Any, *, maps: frozenset[str] = frozenset({"headers"}), name: str = "") -> Any:
    """A JSON document's shape: keys and value types, lists by their first element; the
    objects named in ``maps`` (free-form string maps) by their value type only."""
    if isinstance(value, dict):
        if name in maps:
            return {"*": sorted({shape(v) for v in value.values()})}
        return {k: shape(v, maps=maps, name=k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0], maps=maps, name=name)] if value else []
    return "null" if value is None else type(value).__name__


def test_the_fake_answers_with_the_real_apis_shapes(local, device, world, tmp_path):
    """Every route the uploader calls, the same request to both: same status, same JSON shape."""
    data = write_file(tmp_path / "long.mov", 12 * MIB, seed=5)
    document = {
        "filename": "long.mov",
        "content_type": "video/quicktime",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "campaign": "travel",
        "captured_at": "2025-06-01T12:00:00Z",
    }
    real_ids: dict[str, str] = {}
    fake_ids: dict[str, str] = {}

    def compare(method: str, path: str, body: Any = None, job: str | None = None) -> tuple:
        real = signed_call(
            str(local.api_url),
            method,
            path.format(job=real_ids.get(job or "", "")),
            access_key=device["access_key_id"],
            secret_key=device["secret_access_key"],
            region=local.options.region,
            body=body,
        )
        faked = signed_call(
            world.api_url,
            method,
            path.format(job=fake_ids.get(job or "", "")),
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            body=body,
        )
        assert real[0] == faked[0], (method, path, real, faked)
        assert shape(real[1]) == shape(faked[1]), (method, path, real[1], faked[1])
        return real[1], faked[1]

    # POST /jobs, both kinds of upload
    small = {**document, "filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 4}
    real_put, fake_put = compare("POST", "/jobs", small)
    assert real_put["upload"]["method"] == fake_put["upload"]["method"] == "PUT"
    real_multi, fake_multi = compare("POST", "/jobs", document)
    assert real_multi["upload"]["method"] == fake_multi["upload"]["method"] == "MULTIPART"
    real_ids["multi"], fake_ids["multi"] = real_multi["job_id"], fake_multi["job_id"]
    # Part 1 sent to each, then POST /jobs/{id}/parts: fresh URLs and what S3 holds
    held: dict[str, list[dict[str, Any]]] = {}
    for side, answer in (("real", real_multi), ("fake", fake_multi)):
        sent = requests.put(answer["upload"]["parts"][0]["url"], data=data[:PART], timeout=30)
        assert sent.status_code == 200, sent.text
        held[side] = [{"part_number": 1, "etag": sent.headers["ETag"]}]
    real_parts, fake_parts = compare("POST", "/jobs/{job}/parts", {"part_numbers": [2, 3]}, "multi")
    assert len(real_parts["uploaded"]) == len(fake_parts["uploaded"]) == 1
    # GET /jobs/{id} and GET /jobs, with a page token
    compare("GET", "/jobs/{job}", job="multi")
    listed, _ = compare("GET", "/jobs?limit=1")
    assert listed["next"]
    # POST /jobs/{id}/complete once the other parts are in
    for side, urls in (("real", real_parts), ("fake", fake_parts)):
        for part in urls["parts"]:
            start = (part["part_number"] - 1) * PART
            sent = requests.put(part["url"], data=data[start : start + PART], timeout=30)
            assert sent.status_code == 200, sent.text
            held[side].append({"part_number": part["part_number"], "etag": sent.headers["ETag"]})
    real_done = signed_call(
        str(local.api_url),
        "POST",
        f"/jobs/{real_ids['multi']}/complete",
        access_key=device["access_key_id"],
        secret_key=device["secret_access_key"],
        region=local.options.region,
        body={"parts": held["real"]},
    )
    fake_done = signed_call(
        world.api_url,
        "POST",
        f"/jobs/{fake_ids['multi']}/complete",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        body={"parts": held["fake"]},
    )
    assert real_done[0] == fake_done[0] == 200, (real_done, fake_done)
    assert shape(real_done[1]) == shape(fake_done[1])
    # The errors: an unknown job, an invalid request, an unsigned one
    compare("GET", "/jobs/" + "0" * 32)
    compare("POST", "/jobs", {**document, "size_bytes": -1})
    unsigned = [requests.get(f"{url}/jobs", timeout=10) for url in (local.api_url, world.api_url)]
    assert [(a.status_code, a.json()) for a in unsigned] == [(403, {"message": "Forbidden"})] * 2
