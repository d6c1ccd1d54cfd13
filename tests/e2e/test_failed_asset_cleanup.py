"""A failed asset leaves nothing unreferenced in the processed zone (issue 14, defect 6).

The transcode of one clip succeeds, so MediaConvert writes its proxy, HLS ladder and thumbnails;
then Rekognition fails the clip's analysis. Mark-failed records the failure and deletes what the
clip left; the bucket is versioned, so what was there shows as noncurrent versions behind delete
markers (Housekeeping expires them), and the run's other assets keep everything they published.
"""

from __future__ import annotations

from typing import Any

from lambdas.shared.keys import AssetKeys
from localworld import World
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

    # Given Rekognition fails the label analysis of nature's Pixabay clip (its transcode succeeds)
    # When a run for nature starts
    message = "Internal error while reading frame 42 of the video."
    run = run_nature_failing_pixabay_analysis(world, message, "analysis-fails-after-transcode")

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
