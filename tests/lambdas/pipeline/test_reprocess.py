"""The reprocess unit's handlers against moto: prepare, the restore start and its completion event,
the failure record; and the catalog's claim and result versions they rest on.

S3's restore behaviour (202/409/200/403, the event at the end) comes from the local world's
Glacier stand-in, active on moto's S3 for these tests, on a fast simulated clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from lambdas.reprocess import failed, prepare, restore
from lambdas.reprocess.settings import PrepareSettings, RestoreSettings
from lambdas.shared.catalog import Catalog, CatalogError, ReprocessRunning
from lambdas.shared.errors import InvalidInput
from localworld import glacier
from localworld.clock import SimClock
from tests.lambdas.pipeline.builders import PROCESSED_BUCKET, RAW_BUCKET, TABLE, aws_client
from tests.lambdas.pipeline.conftest import WaitingTask

LABELS_KEY = "video/upload/uploads/20261201_080000/harbour_labels.json"
RAW_KEY = "video/upload/uploads/20261201_080000/harbour.mp4"
MP4_KEY = "video/upload/uploads/20261201_080000/harbour_proxy.mp4"


def _document(analysed: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "schema_version": "2.5",
        "renditions": {
            "bucket": PROCESSED_BUCKET,
            "mp4_key": MP4_KEY,
            "hls_manifest_key": "video/upload/uploads/20261201_080000/hls/harbour.m3u8",
        },
        "thumbnails": {"prefix": "video/upload/uploads/20261201_080000/thumbnails/"},
        "technical": {"container": "mp4", "duration_s": 7.0},
        "processing": {"transcode_job_ids": ["job-1"], "analysed": analysed},
    }


@pytest.fixture
def stored(catalog: Catalog, buckets: Any) -> Callable[..., dict[str, Any]]:
    """A PROCESSED asset with its raw object, proxy and labels.json, as the pipeline left it."""

    def make(
        asset_id: str = "upload-harbour",
        *,
        storage_class: str = "STANDARD",
        analysed: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        buckets.put_object(Bucket=RAW_BUCKET, Key=RAW_KEY, Body=b"raw", StorageClass=storage_class)
        buckets.put_object(Bucket=PROCESSED_BUCKET, Key=MP4_KEY, Body=b"proxy")
        analysed = analysed or {
            "input": "source",
            "bucket": RAW_BUCKET,
            "key": RAW_KEY,
            "reason": "H.264 in MP4",
        }
        buckets.put_object(
            Bucket=PROCESSED_BUCKET, Key=LABELS_KEY, Body=json.dumps(_document(analysed))
        )
        asset = {
            "asset_id": asset_id,
            "source": "upload",
            "source_id": f"uploads/{asset_id}.mp4",
            "campaign": "uploads",
            "checksum": "sha256-x",
            "bucket": RAW_BUCKET,
            "key": RAW_KEY,
            "duration_s": Decimal("7.0"),
        }
        catalog.claim("upload", asset["source_id"], "sha256-x", asset_id)
        catalog.commit_asset(asset)
        catalog.set_status(asset_id, "PROCESSED", attributes={"labels_key": LABELS_KEY})
        return asset

    return make


def _settings() -> PrepareSettings:
    return PrepareSettings(catalog_table=TABLE, processed_bucket=PROCESSED_BUCKET)


@pytest.mark.parametrize(
    ("head", "state"),
    [
        ({}, "available"),
        ({"StorageClass": "STANDARD_IA"}, "available"),
        ({"StorageClass": "GLACIER"}, "archived"),
        ({"StorageClass": "DEEP_ARCHIVE", "Restore": 'ongoing-request="true"'}, "restoring"),
        (
            {
                "StorageClass": "DEEP_ARCHIVE",
                "Restore": 'ongoing-request="false", expiry-date="Fri, 04 Dec 2026 00:00:00 GMT"',
            },
            "restored",
        ),
    ],
)
def test_the_archive_state_is_read_from_head_object(head: dict[str, str], state: str):
    assert prepare.archive_state(head) == state


def test_prepare_rebuilds_what_finalize_reads_from_the_last_labels_document(
    catalog: Catalog, stored: Callable[..., dict[str, Any]]
):
    stored()
    state = prepare.prepare(
        "upload-harbour", settings=_settings(), catalog=catalog, s3=aws_client("s3")
    )
    assert state["asset_id"] == "upload-harbour"
    assert state["asset"]["key"] == RAW_KEY and state["asset"]["duration_s"] == 7
    assert state["plan"]["outputs"]["mp4_key"] == MP4_KEY
    assert state["plan"]["analysis"] == {
        "input": "source",
        "video": {"bucket": RAW_BUCKET, "key": RAW_KEY},
        "reason": "H.264 in MP4",
    }
    assert state["work"] == {"transcode_job_ids": ["job-1"]}
    assert state["probe"] == {"technical": {"container": "mp4", "duration_s": 7.0}}
    assert state["restore"]["needed"] is False and state["restore"]["state"] == "available"


def test_prepare_says_which_analyses_run_again_and_which_document_version_keeps_the_rest(
    catalog: Catalog, stored: Callable[..., dict[str, Any]], buckets: Any
):
    buckets.put_bucket_versioning(
        Bucket=PROCESSED_BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )
    stored()
    version = buckets.head_object(Bucket=PROCESSED_BUCKET, Key=LABELS_KEY)["VersionId"]
    state = prepare.prepare(
        "upload-harbour",
        settings=_settings(),
        catalog=catalog,
        s3=buckets,
        features=("labels", "segments"),
    )
    assert state["plan"]["rerun"] == {"labels": True, "moderation": False, "segments": True}
    assert state["previous"] == {
        "labels_key": LABELS_KEY,
        "version_id": version,
        "run": None,
        "generated_at": None,
    }


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (["segments", "moderation"], "segments cannot be rerun without labels"),
        ("labels", "must be a non-empty list"),
        (["labels", "faces"], "['faces'] not among"),
    ],
)
def test_prepare_refuses_features_that_cannot_run_before_reading_anything(
    features: Any, message: str, lambda_context: Any
):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        prepare.handler({"asset_id": "upload-harbour", "features": features}, lambda_context)


def test_prepare_says_a_deep_archived_source_needs_a_restore(
    catalog: Catalog, stored: Callable[..., dict[str, Any]]
):
    stored(storage_class="DEEP_ARCHIVE")
    state = prepare.prepare(
        "upload-harbour", settings=_settings(), catalog=catalog, s3=aws_client("s3")
    )
    assert state["restore"] == {
        "needed": True,
        "state": "archived",
        "storage_class": "DEEP_ARCHIVE",
        "bucket": RAW_BUCKET,
        "key": RAW_KEY,
    }


def test_prepare_reads_the_proxy_when_the_first_run_did_and_it_never_needs_a_restore(
    catalog: Catalog, stored: Callable[..., dict[str, Any]]
):
    proxy = {"input": "proxy", "bucket": PROCESSED_BUCKET, "key": MP4_KEY, "reason": "VP9"}
    stored(storage_class="DEEP_ARCHIVE", analysed=proxy)
    state = prepare.prepare(
        "upload-harbour", settings=_settings(), catalog=catalog, s3=aws_client("s3")
    )
    assert state["plan"]["analysis"]["video"] == {"bucket": PROCESSED_BUCKET, "key": MP4_KEY}
    assert state["restore"]["needed"] is False


def test_prepare_refuses_what_cannot_be_reprocessed_naming_why(
    catalog: Catalog, stored: Callable[..., dict[str, Any]]
):
    s3 = aws_client("s3")
    with pytest.raises(prepare.NotReprocessable, match="asset nope is not in the catalog"):
        prepare.prepare("nope", settings=_settings(), catalog=catalog, s3=s3)
    stored()
    catalog.mark_failed("upload-harbour", "probe: not a video")
    with pytest.raises(prepare.NotReprocessable, match=r"is FAILED \(probe: not a video\)"):
        prepare.prepare("upload-harbour", settings=_settings(), catalog=catalog, s3=s3)


def test_prepare_refuses_an_asset_whose_labels_document_or_source_is_gone(
    catalog: Catalog, stored: Callable[..., dict[str, Any]]
):
    s3 = aws_client("s3")
    stored()
    s3.delete_object(Bucket=RAW_BUCKET, Key=RAW_KEY)
    with pytest.raises(prepare.NotReprocessable, match="no longer exists"):
        prepare.prepare("upload-harbour", settings=_settings(), catalog=catalog, s3=s3)
    s3.delete_object(Bucket=PROCESSED_BUCKET, Key=LABELS_KEY)
    with pytest.raises(prepare.NotReprocessable, match=r"labels document .* is gone"):
        prepare.prepare("upload-harbour", settings=_settings(), catalog=catalog, s3=s3)


# -- restore ----------------------------------------------------------------------------------
@pytest.fixture
def s3_glacier(aws: None) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """moto's S3 with the Glacier stand-in (restores take an hour on a fast clock); yields the
    EventBridge events S3 emitted, as (detail-type, detail)."""
    emitted: list[tuple[str, dict[str, Any]]] = []
    clock = SimClock(0.0001)
    glacier.install()
    glacier.activate(
        glacier.GlacierStandIn(
            clock=clock,
            emit=lambda kind, bucket, detail: emitted.append((kind, detail)),
            duration_s=3600,
        )
    )
    try:
        yield emitted
    finally:
        glacier.activate(None)
        clock.cancel_all()


def _event(kind: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"detail-type": kind, "source": "aws.s3", "detail": detail}


def _start(task: WaitingTask, catalog: Catalog, run: str) -> dict[str, Any]:
    return restore.start_restore(
        {
            "task_token": task.token,
            "bucket": RAW_BUCKET,
            "key": RAW_KEY,
            "asset_id": "upload-harbour",
            "run": run,
        },
        settings=RestoreSettings(catalog_table=TABLE),
        catalog=catalog,
        s3=aws_client("s3"),
        sfn=aws_client("stepfunctions"),
    )


def _wait_for(emitted: list[tuple[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [detail for k, detail in emitted if k == kind]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"S3 never emitted {kind}")


def test_two_runs_wait_for_one_restore_and_its_completion_resumes_both(
    catalog: Catalog,
    buckets: Any,
    s3_glacier: list[tuple[str, dict[str, Any]]],
    start_waiting_task: Callable[[str], WaitingTask],
):
    buckets.put_object(Bucket=RAW_BUCKET, Key=RAW_KEY, Body=b"raw", StorageClass="DEEP_ARCHIVE")
    first, second = start_waiting_task("run-a"), start_waiting_task("run-b")

    assert _start(first, catalog, "run-a")["state"] == "requested"  # 202
    assert _start(second, catalog, "run-b")["state"] == "in_progress"  # 409
    assert {w["run"] for w in catalog.restore_waiters(RAW_BUCKET, RAW_KEY)} == {"run-a", "run-b"}
    assert first.outcome(timeout_s=0.1)["status"] == "RUNNING"

    detail = _wait_for(s3_glacier, "Object Restore Completed")
    counts = restore.restore_completed(
        _event("Object Restore Completed", detail), catalog=catalog, sfn=aws_client("stepfunctions")
    )

    assert counts == {"resumed": 2, "closed": 0}
    for task in (first, second):
        outcome = task.outcome()
        assert outcome["status"] == "SUCCEEDED"
        assert outcome["output"]["restored"] == "completed"
        assert outcome["output"]["expiry"] == detail["restore-expiry-time"]
    assert catalog.restore_waiters(RAW_BUCKET, RAW_KEY) == []
    # A redelivered event finds nobody waiting.
    again = restore.restore_completed(
        _event("Object Restore Completed", detail), catalog=catalog, sfn=aws_client("stepfunctions")
    )
    assert again == {"resumed": 0, "closed": 0}


def test_an_object_already_restored_or_not_archived_resumes_the_run_at_once(
    catalog: Catalog,
    buckets: Any,
    s3_glacier: list[tuple[str, dict[str, Any]]],
    start_waiting_task: Callable[[str], WaitingTask],
):
    buckets.put_object(Bucket=RAW_BUCKET, Key=RAW_KEY, Body=b"raw", StorageClass="GLACIER")
    _start(start_waiting_task("run-a"), catalog, "run-a")
    _wait_for(s3_glacier, "Object Restore Completed")

    later = start_waiting_task("run-b")
    assert _start(later, catalog, "run-b")["state"] == "already_restored"  # 200
    assert later.outcome()["status"] == "SUCCEEDED"

    buckets.put_object(Bucket=RAW_BUCKET, Key=RAW_KEY, Body=b"raw again")  # STANDARD now
    standard = start_waiting_task("run-c")
    assert _start(standard, catalog, "run-c")["state"] == "not_archived"  # 403
    assert standard.outcome()["output"]["restored"] == "not_archived"
    assert {w["run"] for w in catalog.restore_waiters(RAW_BUCKET, RAW_KEY)} == {"run-a"}


def test_a_restore_s3_refuses_leaves_no_waiter_behind(
    catalog: Catalog,
    buckets: Any,
    s3_glacier: list[tuple[str, dict[str, Any]]],
    start_waiting_task: Callable[[str], WaitingTask],
):
    task = start_waiting_task("run-a")
    with pytest.raises(Exception, match="NoSuchKey"):
        _start(task, catalog, "run-a")
    assert catalog.restore_waiters(RAW_BUCKET, RAW_KEY) == []


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "Object Created", "detail": {}},
        {"detail-type": "Object Restore Completed", "detail": {"bucket": {}}},
        {"detail-type": "Object Restore Completed"},
    ],
)
def test_an_event_that_is_not_a_usable_restore_completion_is_ignored(
    catalog: Catalog, event: dict[str, Any]
):
    counts = restore.restore_completed(event, catalog=catalog, sfn=aws_client("stepfunctions"))
    assert counts == {"resumed": 0, "closed": 0}


# -- the claim, the failure record and result versions ----------------------------------------
def test_one_reprocess_at_a_time_and_a_failure_releases_the_asset_with_its_reason(
    catalog: Catalog, stored: Callable[..., dict[str, Any]]
):
    stored()
    catalog.begin_reprocess("upload-harbour", "run-a")
    with pytest.raises(ReprocessRunning) as running:
        catalog.begin_reprocess("upload-harbour", "run-b")
    assert running.value.run == "run-a"
    with pytest.raises(CatalogError, match="not in the catalog"):
        catalog.begin_reprocess("nope", "run-b")

    # a run that does not hold the claim changes nothing
    failed.record_failure(
        {"asset_id": "upload-harbour", "run": "run-b", "error": {"Error": "X"}}, catalog=catalog
    )
    assert catalog.get_asset("upload-harbour")["reprocess_run"] == "run-a"

    answer = failed.record_failure(
        {
            "asset_id": "upload-harbour",
            "run": "run-a",
            "error": {
                "Error": "States.TaskFailed",
                "Cause": json.dumps(
                    {"errorType": "RekognitionJobFailed", "errorMessage": "Unsupported codec."}
                ),
            },
        },
        catalog=catalog,
    )
    after = catalog.get_asset("upload-harbour")
    assert after is not None
    assert "reprocess_run" not in after
    assert "Unsupported codec." in after["last_reprocess_error"]
    assert after["status"] == "PROCESSED" and after["labels_key"] == LABELS_KEY
    assert answer["status"] == "REPROCESS_FAILED"
    # taken over once released
    catalog.begin_reprocess("upload-harbour", "run-c", replacing="run-a")


def test_result_versions_are_kept_newest_first(catalog: Catalog, stored: Callable[..., Any]):
    stored()
    for run in ("upload-1", "reprocess-2", "reprocess-3"):
        catalog.add_result_version(
            "upload-harbour",
            {"generated_at": "2026-12-01T08:00:00Z", "run": run, "kind": "reprocess"},
        )
    assert [v["run"] for v in catalog.result_versions("upload-harbour")] == [
        "reprocess-3",
        "reprocess-2",
        "upload-1",
    ]
    with pytest.raises(CatalogError, match="generated_at and run"):
        catalog.add_result_version("upload-harbour", {"run": "x"})
    # The asset item itself is untouched by its versions.
    assert catalog.get_asset("upload-harbour")["status"] == "PROCESSED"
