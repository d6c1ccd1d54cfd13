"""Through the jobs API, end to end: a device uploads with the edge uploader, the pipeline labels.

The world serves the deployed HTTP API on loopback (``localworld.api_gateway``): SigV4 checked
against the caller's IAM user, ``execute-api:Invoke`` decided by its policy, the real handler
invoked with the payload format 2.0 event. The handler presigns for the world's moto server,
where S3's checks (signature, expiry, SHA-256, length) stand in front, and an object that lands
in the raw bucket over HTTP is announced to EventBridge as S3 announces it, so the upload
trigger starts the run by itself. The uploader is ``media_upload``'s own client and uploader.

The API's multipart threshold is lowered for this module (5 MiB, S3's smallest part size) so a
6 MiB file goes in two parts, as a file above the deployed 100 MiB would.

Reprocess shares this world: a Deep-Archived upload reprocessed through the API (the restore
takes a simulated hour, ``localworld.glacier``), one not archived, and an unknown asset.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials

from localworld import World, WorldOptions
from localworld.media import PIXABAY_MP4_240, UPLOAD_ROTATED, render
from localworld.sources import variant
from media_upload.api import JobsApi
from media_upload.retry import Backoff
from media_upload.state import StateStore
from media_upload.uploader import Hooks, JobRequest, Uploader
from tests.conftest import SynthesizedApp

MIB = 1024 * 1024
# A simulated hour for an S3 restore (Deep Archive's Standard tier promises 12).
RESTORE_S = 3600.0
API_HANDLER = "lambdas.api.handler.handler"


@pytest.fixture(scope="module")
def world(synthesized: SynthesizedApp) -> Iterator[World]:
    options = WorldOptions(
        env="Dev",
        server_port=0,
        restore_duration_s=RESTORE_S,
        function_environment={
            API_HANDLER: {
                "MULTIPART_THRESHOLD_BYTES": str(5 * MIB),
                "PART_SIZE_BYTES": str(5 * MIB),
            }
        },
    )
    with World(synthesized.templates, options) as local:
        yield local
        for key in local.iter_labels_files():
            local.labels_document(key)
        assert not any(api.errors for api in local.apis.values())


@pytest.fixture(scope="module")
def device(world: World) -> dict[str, str]:
    """A dash cam's IAM user, allowed to invoke the API as ``Api.grant_invoke`` allows."""
    return world.api_user("dash-cam-07")


def client(world: World, user: dict[str, str]) -> JobsApi:
    assert world.api_url
    return JobsApi(
        world.api_url,
        region=world.options.region,
        credentials=Credentials(user["access_key_id"], user["secret_access_key"]),
        backoff=Backoff(attempts=2),  # an answer worth retrying here is a bug to see
    )


def uploader(
    world: World, user: dict[str, str], state: Path, hooks: Hooks | None = None
) -> Uploader:
    return Uploader(client(world, user), StateStore(state), hooks=hooks)


def call(world: World, user: dict[str, str], method: str, path: str) -> tuple[int, Any]:
    return world.call_api(user, method, path)


def arrivals(world: World, key: str) -> list[dict[str, Any]]:
    """The deliveries of S3's "Object Created" events for ``key`` (after they all ran)."""
    return [
        d
        for d in world.drain_events()
        if d["event"]["detail-type"] == "Object Created"
        and d["event"]["detail"]["object"]["key"] == key
    ]


def padded_mp4(body: bytes, size: int) -> bytes:
    """The clip with a top-level ``free`` box after it up to ``size`` bytes: the same video
    (players and FFmpeg skip ``free``), big enough to need several parts."""
    filler = size - len(body) - 8
    return body + struct.pack(">I4s", filler + 8, b"free") + bytes(filler)


def test_a_clip_uploaded_through_the_api_is_processed_once_and_its_results_download(
    clean_world: World, device: dict[str, str], tmp_path: Path
) -> None:
    world = clean_world
    # Given a dash cam with a clip and an IAM user allowed to invoke the jobs API
    clip = tmp_path / "harbour-at-dusk.mp4"
    clip.write_bytes(render(UPLOAD_ROTATED))
    before = {e["name"] for e in world.executions()}

    # When the edge uploader sends it through the API (one presigned PUT)
    outcome = uploader(world, device, tmp_path / "state").upload(clip, JobRequest("travel"))

    # Then S3 took it, announced it once, and the upload trigger started exactly one run
    assert outcome.status == "uploaded", outcome.reason
    job_id = str(outcome.job_id)
    key = f"uploads/jobs/{job_id}/harbour-at-dusk.mp4"
    (delivery,) = arrivals(world, key)
    assert delivery["event"]["detail"]["reason"] == "PutObject"
    assert delivery["event"]["detail"]["object"]["size"] == clip.stat().st_size
    (answer,) = delivery["answers"]
    assert answer["error"] is None and answer["payload"]["started"] is True
    started = [e for e in world.executions() if e["name"] not in before]
    assert [e["name"] for e in started] == [answer["payload"]["name"]]
    run = world.wait(started[0]["executionArn"], timeout_s=120)
    assert run.status == "SUCCEEDED", run.cause

    # And the job is PROCESSED, its asset in the job's campaign
    status, job = call(world, device, "GET", f"/jobs/{job_id}")
    assert status == 200 and job["status"] == "PROCESSED", job
    (asset,) = [a for a in world.assets() if a["asset_id"] == job["asset_id"]]
    assert asset["campaign"] == "travel" and str(asset["source_id"]).startswith(f"{key}?versionId=")

    # And its result links are presigned GETs that download from the world's server
    status, result = call(world, device, "GET", f"/jobs/{job_id}/result")
    assert status == 200, result
    assert result["asset_id"] == asset["asset_id"]
    assert result["top_labels"] == list(asset["top_labels"])
    assert all(
        str(result[name]).startswith(f"{world.endpoint_url}/")
        and "X-Amz-Signature=" in result[name]
        for name in ("labels_json", "proxy", "thumbnail")
    )
    labels = requests.get(result["labels_json"], timeout=10)
    assert labels.status_code == 200
    assert json.loads(labels.content) == world.labels_document(asset["labels_key"])
    proxy = requests.get(result["proxy"], timeout=10)
    stored = world.client("s3").get_object(Bucket=world.processed_bucket, Key=asset["mp4_key"])
    assert proxy.status_code == 200 and proxy.content == stored["Body"].read()
    thumbnail = requests.get(result["thumbnail"], timeout=10)
    assert thumbnail.status_code == 200 and thumbnail.content[:3] == b"\xff\xd8\xff"  # a JPEG


def test_a_multipart_upload_through_the_api_lands_whole_and_starts_one_run(
    clean_world: World, device: dict[str, str], tmp_path: Path
) -> None:
    world = clean_world
    # Given a 6 MiB clip, above this world's 5 MiB threshold
    clip = tmp_path / "long-shift.mp4"
    data = padded_mp4(render(UPLOAD_ROTATED), 6 * MIB)
    clip.write_bytes(data)
    before = {e["name"] for e in world.executions()}

    # When the uploader sends it: two part PUTs, then POST /jobs/{id}/complete
    outcome = uploader(world, device, tmp_path / "state").upload(clip, JobRequest("travel"))

    # Then the object is the file, byte for byte, and only its completion was announced
    assert outcome.status == "uploaded", outcome.reason
    key = f"uploads/jobs/{outcome.job_id}/long-shift.mp4"
    stored = world.client("s3").get_object(Bucket=world.raw_bucket, Key=key)
    assert stored["Body"].read() == data
    assert stored["ETag"].strip('"').endswith("-2")  # S3's multipart ETag: two parts
    (delivery,) = arrivals(world, key)
    assert delivery["event"]["detail"]["reason"] == "CompleteMultipartUpload"
    assert delivery["event"]["detail"]["object"]["size"] == len(data)
    # And one run processes it
    started = [e for e in world.executions() if e["name"] not in before]
    assert len(started) == 1
    run = world.wait(started[0]["executionArn"], timeout_s=120)
    assert run.status == "SUCCEEDED", run.cause
    status, job = call(world, device, "GET", f"/jobs/{outcome.job_id}")
    assert (status, job["status"]) == (200, "PROCESSED"), job


def test_the_callers_list_shows_its_processed_job(
    clean_world: World, device: dict[str, str]
) -> None:
    world = clean_world
    # Given the device's jobs, one of them PROCESSED by the first scenario
    processed = [j for j in world.catalog_items("JOB#") if j.get("asset_id")]
    assert processed

    # When it lists its jobs (GET /jobs reads the linked assets to say their status)
    status, listed = call(world, device, "GET", "/jobs")
    assert world.permissions is not None
    denials = world.permissions.new_denials()  # read here: a later scenario must not get them

    # Then the handler's role may read those assets, and the processed job is there, PROCESSED
    assert (status, [str(d) for d in denials]) == (200, []), listed
    shown = {j["job_id"]: j["status"] for j in listed["jobs"]}
    assert all(shown.get(str(j["job_id"])) == "PROCESSED" for j in processed), shown


def test_a_checksum_mismatch_is_refused_by_s3_and_leaves_nothing_behind(
    clean_world: World, device: dict[str, str], tmp_path: Path
) -> None:
    world = clean_world
    # Given a clip whose bytes change after the uploader hashed it (same size, same mtime)
    clip = tmp_path / "flipped.mp4"
    clip.write_bytes(render(UPLOAD_ROTATED))

    def tamper(path: Path) -> None:
        facts = path.stat()
        with path.open("r+b") as handle:
            handle.seek(4000)
            byte = handle.read(1)
            handle.seek(4000)
            handle.write(bytes([byte[0] ^ 0xFF]))
        os.utime(path, ns=(facts.st_atime_ns, facts.st_mtime_ns))

    before = {e["name"] for e in world.executions()}
    assets_before = len(world.assets())

    # When the uploader PUTs it to the URL the API signed with the declared SHA-256
    outcome = uploader(world, device, tmp_path / "state", Hooks(after_hash=tamper)).upload(
        clip, JobRequest("travel")
    )

    # Then S3 refuses it (BadDigest) and the uploader reports that
    assert outcome.status == "failed"
    assert "BadDigest" in outcome.reason and "(HTTP 400)" in outcome.reason
    (job,) = [j for j in world.catalog_items("JOB#") if j["filename"] == "flipped.mp4"]
    # And the job is still waiting, with nothing half-created anywhere
    status, shown = call(world, device, "GET", f"/jobs/{job['job_id']}")
    assert (status, shown["status"], shown["asset_id"]) == (200, "WAITING_FOR_UPLOAD", None)
    prefix = f"uploads/jobs/{job['job_id']}/"
    assert world.keys(world.raw_bucket, prefix) == []
    uploads = world.client("s3").list_multipart_uploads(Bucket=world.raw_bucket, Prefix=prefix)
    assert not uploads.get("Uploads")
    assert not [
        d
        for d in world.drain_events()
        if d["event"]["detail-type"] == "Object Created"
        and d["event"]["detail"]["object"]["key"].startswith(prefix)
    ]
    assert {e["name"] for e in world.executions()} == before
    assert len(world.assets()) == assets_before


def test_another_callers_job_is_answered_as_no_job(
    clean_world: World, device: dict[str, str], tmp_path: Path
) -> None:
    world = clean_world
    # Given the dash cam's job, and a second device allowed to invoke the API
    clip = tmp_path / "mine.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4000))
    created = client(world, device).create_job(
        {
            "filename": "mine.mp4",
            "content_type": "video/mp4",
            "size_bytes": 4024,
            "sha256": "0" * 64,
            "campaign": "travel",
        }
    )
    other = world.api_user("render-farm-2")

    # When the other device asks for it, its result, or its own list
    shown = call(world, other, "GET", f"/jobs/{created['job_id']}")
    result = call(world, other, "GET", f"/jobs/{created['job_id']}/result")
    listed = call(world, other, "GET", "/jobs")

    # Then it is answered exactly like a job that does not exist, and listed nowhere
    missing = call(world, other, "GET", "/jobs/" + "f" * 32)
    assert shown == (404, {"message": f"no job {created['job_id']}"})
    assert result[0] == 404 and missing == (404, {"message": f"no job {'f' * 32}"})
    assert listed == (200, {"jobs": [], "next": None})
    # And its owner still sees it
    assert call(world, device, "GET", f"/jobs/{created['job_id']}")[0] == 200


def test_the_device_reprocesses_its_deep_archived_clip_through_the_api(
    clean_world: World, device: dict[str, str], tmp_path: Path
) -> None:
    world = clean_world
    # Given a clip the device uploaded and the pipeline processed (Rekognition read the raw MP4),
    # whose raw object the lifecycle has since moved to Deep Archive
    clip = tmp_path / "pier-at-noon.mp4"
    clip.write_bytes(render(variant(PIXABAY_MP4_240, "pier-at-noon", 11, 350.0)))
    before = {e["name"] for e in world.executions()}
    outcome = uploader(world, device, tmp_path / "state").upload(clip, JobRequest("travel"))
    assert outcome.status == "uploaded", outcome.reason
    world.drain_events()
    (started,) = [e for e in world.executions() if e["name"] not in before]
    assert world.wait(started["executionArn"], timeout_s=120).status == "SUCCEEDED"
    status, job = call(world, device, "GET", f"/jobs/{outcome.job_id}")
    assert (status, job["status"]) == (200, "PROCESSED"), job
    asset_id = job["asset_id"]
    (asset,) = [a for a in world.assets() if a["asset_id"] == asset_id]
    first = world.labels_document(asset["labels_key"])
    assert first["processing"]["analysed"]["input"] == "source"
    world.archive(world.raw_bucket, asset["key"], "DEEP_ARCHIVE")

    # When the device asks for a reprocess, and again while it runs, and someone else asks too
    status, started_run = call(world, device, "POST", f"/assets/{asset_id}/reprocess")
    again, conflict = call(world, device, "POST", f"/assets/{asset_id}/reprocess")
    stranger = world.api_user("someone-else")
    other, hidden = call(world, stranger, "POST", f"/assets/{asset_id}/reprocess")

    # Then one run started (the second ask is a conflict, the stranger sees no such asset)
    assert status == 202, started_run
    assert (again, conflict["message"]) == (
        409,
        f"asset {asset_id} is already being reprocessed by run {started_run['run']}",
    )
    assert (other, hidden["message"]) == (404, f"no asset {asset_id}")
    run = world.wait(started_run["execution_arn"], timeout_s=120)

    # ... which restored the object, waited for S3's event, and analysed it again
    assert run.status == "SUCCEEDED", run.cause
    assert "Restore stored video" in run.entered()
    assert world.glacier is not None
    assert [r.storage_class for r in world.glacier.restores if r.key == asset["key"]] == [
        "DEEP_ARCHIVE"
    ]
    assert run.transitions <= 14  # no state polled while S3 restored
    second = world.labels_document(asset["labels_key"])
    assert second["processing"]["run"] == {"name": started_run["run"], "kind": "reprocess"}
    assert second["processing"]["analysed"] == first["processing"]["analysed"]
    assert second["renditions"] == first["renditions"]
    for feature in ("labels", "moderation", "segments"):  # new jobs, not the first run's
        assert (
            second["processing"]["analysis"][feature]["job_id"]
            != first["processing"]["analysis"][feature]["job_id"]
        ), feature
    listed = world.client("s3").list_object_versions(
        Bucket=world.processed_bucket, Prefix=asset["labels_key"]
    )
    assert len(listed["Versions"]) == 2

    # And the results list both versions, newest first, each link reading its own version
    status, results = call(world, device, "GET", f"/assets/{asset_id}/results")
    assert status == 200, results
    assert results["reprocess_run"] is None and results["status"] == "PROCESSED"
    assert [v["kind"] for v in results["versions"]] == ["reprocess", "pipeline"]
    kinds = [
        json.loads(requests.get(v["labels_json"], timeout=10).content)["processing"]["run"]["kind"]
        for v in results["versions"]
    ]
    assert kinds == ["reprocess", "pipeline"]


def _reprocess_directly(world: World, asset_id: str, name: str, **extra: Any) -> Any:
    """Start the reprocess workflow as the API does, without its checks."""
    arn = world.deployments["Pipeline"].outputs["ReprocessStateMachineArn"]
    started = world.client("stepfunctions").start_execution(
        stateMachineArn=arn, name=name, input=json.dumps({"asset_id": asset_id, **extra})
    )
    return world.wait(started["executionArn"], timeout_s=120)


def test_a_stored_asset_not_archived_is_moderated_again_without_a_restore(
    clean_world: World,
) -> None:
    world = clean_world
    body = render(variant(PIXABAY_MP4_240, "quay-standard", 8, 308.0))
    [answer] = world.deliver_event(world.upload("uploads/quay-standard.mp4", body))
    first = world.wait(world.execution_arn(answer["payload"]["name"]), timeout_s=120)
    assert first.status == "SUCCEEDED", first.cause
    [asset] = [a for a in world.assets() if str(a["source_id"]).startswith("uploads/quay-")]
    assert world.glacier is not None
    restores = len(world.glacier.restores)

    before = world.labels_document(asset["labels_key"])

    run = _reprocess_directly(
        world, asset["asset_id"], "reprocess-quay-standard", features=["moderation"]
    )

    assert run.status == "SUCCEEDED", run.cause
    entered = run.entered()
    assert "Restore stored video" not in entered
    assert len(world.glacier.restores) == restores
    # Only moderation ran again; labels and shots are the first run's, and say so
    assert "Analyze moderation (stored)" in entered
    assert not {"Analyze labels (stored)", "Analyze segments (stored)"} & set(entered)
    assert {"Keep labels", "Keep segments"} <= set(entered)
    after = world.labels_document(asset["labels_key"])
    analysis = after["processing"]["analysis"]
    for kept in ("labels", "segments"):
        assert analysis[kept]["job_id"] == before["processing"]["analysis"][kept]["job_id"]
        assert analysis[kept]["kept_from"]["run"] == before["processing"]["run"]["name"]
    assert (
        analysis["moderation"]["job_id"] != before["processing"]["analysis"]["moderation"]["job_id"]
    )
    assert after["summary"]["top_labels"] == before["summary"]["top_labels"]
    assert after["summary"]["shots"] == before["summary"]["shots"]
    versions = sorted(
        (i for i in world.catalog_items(f"ASSET#{asset['asset_id']}") if i["sk"] != "ASSET"),
        key=lambda i: i["sk"],
    )
    assert [(v["kind"], v.get("features")) for v in versions] == [
        ("pipeline", ["labels", "moderation", "segments"]),
        ("reprocess", ["moderation"]),
    ]


def test_a_reprocess_of_an_unknown_asset_fails_with_the_reason(clean_world: World) -> None:
    run = _reprocess_directly(clean_world, "no-such-asset", "reprocess-unknown")

    assert run.status == "FAILED"
    assert run.error == "ReprocessFailed"
    assert "asset no-such-asset is not in the catalog" in str(run.cause)
    assert "Record reprocess failure" in run.entered()
