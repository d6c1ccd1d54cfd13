"""A failed asset leaves nothing unreferenced in the processed zone (issue 14, defect 6).

The transcode of one clip succeeds, so MediaConvert writes its proxy, HLS ladder and thumbnails;
then Rekognition fails the clip's analysis. Mark-failed records the failure and deletes what the
clip left; the bucket is versioned, so what was there shows as noncurrent versions behind delete
markers (Housekeeping expires them), and the run's other assets keep everything they published.
"""

from __future__ import annotations

import time
from typing import Any

from lambdas.shared.keys import AssetKeys
from localworld import World
from localworld.interpreter import SYNC_POLL_S
from localworld.media import PIXABAY_MP4_240, render
from localworld.sources import variant
from tests.e2e.conftest import run_nature_failing_pixabay_analysis


def _versions(world: World, prefix: str) -> tuple[set[str], set[str]]:
    """Keys under ``prefix`` with any stored version, and those whose latest is a delete marker."""
    s3 = world.client("s3")
    stored: set[str] = set()
    deleted: set[str] = set()
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=world.processed_bucket, Prefix=prefix
    ):
        stored |= {v["Key"] for v in page.get("Versions", [])}
        deleted |= {m["Key"] for m in page.get("DeleteMarkers", []) if m["IsLatest"]}
    return stored, deleted


def _published(world: World, asset: dict[str, Any]) -> list[str]:
    """The processed-zone keys a PROCESSED asset's record points at, checked to exist."""
    keys = [asset["mp4_key"], asset["hls_key"], asset["thumbnail_key"], asset["labels_key"]]
    for key in keys:
        assert world.keys(world.processed_bucket, key) == [key], key
    return keys


def test_an_asset_failing_analysis_after_its_transcode_leaves_no_renditions(
    clean_world: World,
) -> None:
    world = clean_world
    before = {a["asset_id"] for a in world.assets()}

    # Given Rekognition fails the label analysis of nature's Pixabay clip, and takes long
    # enough that the transcode running beside it has finished (its renditions exist)
    # When a run for nature starts
    message = "Internal error while reading frame 42 of the video."
    assert world.rekognition is not None
    world.rekognition.job_duration_s = 120.0
    try:
        run = run_nature_failing_pixabay_analysis(world, message, "analysis-fails-after-transcode")
    finally:
        world.rekognition.job_duration_s = None

    # Then the run goes on without that asset, which is FAILED with Rekognition's message
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["status"] == "PARTIAL", run.output
    new = {a["asset_id"]: a for a in world.assets() if a["asset_id"] not in before}
    failed = [a for a in new.values() if a["status"] == "FAILED"]
    landed = [a for a in new.values() if a["status"] == "PROCESSED"]
    assert [a["source"] for a in failed] == ["pixabay"], new
    assert landed and {a["source"] for a in landed} == {"commons"}, new
    asset = failed[0]
    assert message in asset["failure_reason"], asset["failure_reason"]

    # and nothing of it is left in the processed bucket: its renditions were written (the
    # transcode succeeded) and are now behind delete markers, as is everything under its folder
    keys = AssetKeys(asset["key"])
    assert world.keys(world.processed_bucket, keys.renditions_prefix) == []
    assert world.keys(world.processed_bucket, keys.labels) == []
    stored, deleted = _versions(world, keys.renditions_prefix)
    assert any(k.startswith(keys.mp4_prefix) for k in stored), stored
    assert any(k.startswith(keys.hls_prefix) and k.endswith(".m3u8") for k in stored), stored
    assert any(k.startswith(keys.thumbnails_prefix) for k in stored), stored
    assert deleted == stored
    # its record points at nothing that is gone, and no label index entry names it
    assert not {"mp4_key", "hls_key", "thumbnail_key", "labels_key"} & set(asset)
    assert "renditions_left" not in asset
    labelled = {i["asset_id"] for i in world.catalog_items("LABEL#")}
    assert asset["asset_id"] not in labelled
    # its raw clip and attribution sidecar stay: the source of truth, to reprocess it from
    assert world.keys(world.raw_bucket, asset["key"]) == [asset["key"]]
    assert world.keys(world.raw_bucket, keys.attribution) == [keys.attribution]

    # and the run's other assets are untouched: everything they published is there, indexed
    for other in landed:
        published = _published(world, other)
        assert world.labels_document(other["labels_key"])["renditions"]["mp4_key"] == published[0]
        other_keys = AssetKeys(other["key"])
        assert world.keys(world.processed_bucket, other_keys.renditions_prefix)
        assert _versions(world, other_keys.renditions_prefix)[1] == set()
        assert other["asset_id"] in labelled


def test_an_analysis_failing_while_its_transcode_runs_cancels_the_job(clean_world: World) -> None:
    world = clean_world
    assert world.rekognition is not None and world.mediaconvert is not None
    # Given an MP4 upload (Rekognition reads it as it is, so its analyses run beside the whole
    # transcode) whose label analysis fails within seconds, long before the transcode ends
    message = "Internal error while reading frame 3 of the video."
    world.rekognition.fail_job("/bench-cancel.mp4", message)
    world.rekognition.job_duration_s = 1.0
    world.mediaconvert.job_duration_s = 3600.0
    try:
        body = render(variant(PIXABAY_MP4_240, "bench-cancel", 3, 392.0))
        [answer] = world.deliver_event(world.upload("uploads/phone/bench-cancel.mp4", body))
        assert answer["error"] is None, answer["payload"]
        run = world.wait(world.execution_arn(answer["payload"]["name"]), timeout_s=120)
    finally:
        world.rekognition.job_duration_s = world.mediaconvert.job_duration_s = None

    # Then the asset is FAILED with Rekognition's message
    assert run.status == "SUCCEEDED", run.cause
    [asset] = [a for a in world.assets() if "/bench-cancel.mp4" in str(a.get("source_id", ""))]
    assert asset["status"] == "FAILED" and message in asset["failure_reason"], asset
    # and its transcode, stopped with the Parallel, was cancelled as Step Functions does (the
    # stopped task notices at its next look at the job: within a simulated poll interval)
    [job] = [
        j for j in world.mediaconvert.jobs.values()
        if j.body["UserMetadata"]["asset_id"] == asset["asset_id"]
    ]  # fmt: skip
    deadline = time.monotonic() + 10.0  # real seconds; only a failing run waits this long
    while job.body["Status"] != "CANCELED" and time.monotonic() < deadline:
        world.clock.sleep(SYNC_POLL_S)
    assert job.body["Status"] == "CANCELED", job.body["Status"]
    assert job.body["Id"] in world.mediaconvert.canceled
    # so MediaConvert wrote nothing for it, not even once its modelled end has passed; and the
    # transcription, which cannot be cancelled, had its files removed when it ended
    world.clock.sleep(3600.0)
    world.drain_events()
    assert job.body["Status"] == "CANCELED"
    keys = AssetKeys(asset["key"])
    stored, deleted = _versions(world, keys.renditions_prefix)
    speech = {key for key in stored if key.startswith(keys.speech_prefix)}
    assert stored - speech == set()
    # (deleted as the cleanup deletes: a delete marker, recoverable until Housekeeping expires it)
    assert {key.rsplit(".", 1)[-1] for key in speech} == {"json", "vtt", "srt"}
    assert deleted == speech
