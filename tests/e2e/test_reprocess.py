"""Reprocess: a processed asset analysed again from what is stored, through a Glacier restore.

The synthesized reprocess state machine runs in the local world with the real handlers. Its raw
object is moved to Deep Archive as the lifecycle rule would; the run asks S3 for a restore and
waits for the "Object Restore Completed" event (``localworld.glacier``), then runs new
Rekognition jobs and finalize. The first run's results stay readable as a result version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localworld import World, WorldOptions
from localworld.media import PIXABAY_MP4_240, render
from localworld.sources import variant
from tests.conftest import SynthesizedApp

# An hour of simulated time for the restore (S3 promises 12 for Deep Archive's Standard tier:
# the stand-in's default, shortened here to keep the scenario to seconds).
RESTORE_S = 3600.0


@pytest.fixture(scope="module")
def world(synthesized: SynthesizedApp) -> Iterator[World]:
    options = WorldOptions(env="Dev", restore_duration_s=RESTORE_S)
    with World(synthesized.templates, options) as local:
        yield local
        for key in local.iter_labels_files():
            local.labels_document(key)


def _processed_upload(world: World, key: str, seed: int) -> dict[str, Any]:
    body = render(variant(PIXABAY_MP4_240, f"reprocess-{seed}", seed, 300.0 + seed))
    [answer] = world.deliver_event(world.upload(key, body))
    run = world.wait(world.execution_arn(answer["payload"]["name"]), timeout_s=120)
    assert run.status == "SUCCEEDED", run.cause
    [asset] = [a for a in world.assets() if str(a["source_id"]).startswith(key)]
    assert asset["status"] == "PROCESSED", asset.get("failure_reason")
    return asset


def _reprocess(world: World, asset_id: str, name: str) -> Any:
    arn = world.deployments["Pipeline"].outputs["ReprocessStateMachineArn"]
    started = world.client("stepfunctions").start_execution(
        stateMachineArn=arn, name=name, input=json.dumps({"asset_id": asset_id})
    )
    return world.wait(started["executionArn"], timeout_s=120)


def _versions(world: World, asset_id: str) -> list[dict[str, Any]]:
    items = world.catalog_items(f"ASSET#{asset_id}")
    return sorted((i for i in items if str(i["sk"]).startswith("RESULT#")), key=lambda i: i["sk"])


def test_a_deep_archived_asset_is_restored_then_analysed_again_and_both_results_are_kept(
    world: World,
) -> None:
    # Given an uploaded clip the pipeline processed (Rekognition read the raw MP4 itself) whose
    # raw object has since tiered to Deep Archive
    asset = _processed_upload(world, "uploads/harbour-archive.mp4", 7)
    first = world.labels_document(asset["labels_key"])
    assert first["processing"]["analysed"]["input"] == "source"
    assert first["processing"]["run"]["kind"] == "pipeline"
    world.archive(world.raw_bucket, asset["key"], "DEEP_ARCHIVE")
    s3 = world.client("s3")
    with pytest.raises(s3.exceptions.ClientError, match="InvalidObjectState"):
        s3.get_object(Bucket=world.raw_bucket, Key=asset["key"])
    started_at = world.clock.seconds()

    # When it is reprocessed
    run = _reprocess(world, asset["asset_id"], "reprocess-harbour-archive")

    # Then the run restored the object (one Standard restore from Deep Archive) and waited for
    # S3's completion event: the simulated hour passed, and no state polled meanwhile
    assert run.status == "SUCCEEDED", run.cause
    assert world.glacier is not None
    [restore] = [r for r in world.glacier.restores if r.key == asset["key"]]
    assert (restore.storage_class, restore.tier, restore.days) == ("DEEP_ARCHIVE", "Standard", 2)
    assert world.clock.seconds() - started_at >= RESTORE_S
    entered = run.entered()
    assert entered[:3] == ["Prepare reprocess", "Stored video archived?", "Restore stored video"]
    assert entered.count("Restore stored video") == 1
    assert run.transitions <= 14
    head = s3.head_object(Bucket=world.raw_bucket, Key=asset["key"])
    assert head["StorageClass"] == "DEEP_ARCHIVE"
    assert 'ongoing-request="false"' in head["Restore"]

    # ... ran new Rekognition jobs on the restored source, and wrote a new labels.json
    second = world.labels_document(asset["labels_key"])
    assert second["processing"]["run"] == {"name": run.name, "kind": "reprocess"}
    assert second["processing"]["analysed"] == first["processing"]["analysed"]
    for feature in ("labels", "moderation", "segments"):
        assert (
            second["processing"]["analysis"][feature]["job_id"]
            != first["processing"]["analysis"][feature]["job_id"]
        ), feature
    assert second["renditions"] == first["renditions"]
    assert second["summary"]["top_labels"] == first["summary"]["top_labels"]

    # ... and the catalog keeps both runs' versions, each naming its labels.json version
    versions = _versions(world, asset["asset_id"])
    assert [v["kind"] for v in versions] == ["pipeline", "reprocess"]
    assert versions[1]["run"] == run.name
    listed = s3.list_object_versions(Bucket=world.processed_bucket, Prefix=asset["labels_key"])
    version_ids = {v["VersionId"] for v in listed["Versions"]}
    assert {v["labels_version_id"] for v in versions} == version_ids
    older = s3.get_object(
        Bucket=world.processed_bucket,
        Key=asset["labels_key"],
        VersionId=versions[0]["labels_version_id"],
    )
    assert json.loads(older["Body"].read())["processing"]["run"]["kind"] == "pipeline"
    after = next(a for a in world.assets() if a["asset_id"] == asset["asset_id"])
    assert after["status"] == "PROCESSED"
    assert "reprocess_run" not in after


def test_a_stored_asset_not_archived_is_analysed_again_without_a_restore(world: World) -> None:
    asset = _processed_upload(world, "uploads/quay-standard.mp4", 8)
    assert world.glacier is not None
    restores = len(world.glacier.restores)

    run = _reprocess(world, asset["asset_id"], "reprocess-quay-standard")

    assert run.status == "SUCCEEDED", run.cause
    assert "Restore stored video" not in run.entered()
    assert len(world.glacier.restores) == restores
    assert [v["kind"] for v in _versions(world, asset["asset_id"])] == ["pipeline", "reprocess"]


def test_a_reprocess_of_an_unknown_asset_fails_with_the_reason_and_touches_nothing(
    world: World,
) -> None:
    run = _reprocess(world, "no-such-asset", "reprocess-unknown")

    assert run.status == "FAILED"
    assert run.error == "ReprocessFailed"
    assert "asset no-such-asset is not in the catalog" in str(run.cause)
    assert "Record reprocess failure" in run.entered()
