"""Mark failed: one readable root cause per failed asset, and the batch goes on."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from lambdas.finalize.failed import handler, root_cause
from lambdas.shared.catalog import Catalog
from lambdas.shared.keys import AssetKeys
from lambdas.transcode.plan import PlanAsset, build_plan
from tests.lambdas.pipeline.builders import (
    DEPLOYMENT,
    PROCESSED_BUCKET,
    RAW_BUCKET,
    RAW_KEY,
    ingested_asset,
    mediaconvert_job,
    service_model,
    validate,
)


def mediaconvert_failure_cause(*, wire_casing: bool) -> str:
    """The Cause of a failed createJob.sync: the job description, as SDK or API JSON."""
    plan = build_plan(
        PlanAsset.parse(ingested_asset()), processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT
    )
    job = mediaconvert_job(
        plan["settings"],
        plan["user_metadata"],
        job_id="1735711260123-zz9x8w",
        status="ERROR",
        error_code=1030,
        error_message="Video codec [theora] is not a supported input codec",
    )
    assert validate(job, service_model("mediaconvert").operation_model("GetJob").output_shape) == []
    if not wire_casing:
        return json.dumps(job["Job"])
    # The REST API's own (camelCase) names, as in MediaConvert's job events.
    return json.dumps(
        {
            "id": job["Job"]["Id"],
            "status": "ERROR",
            "errorCode": 1030,
            "errorMessage": job["Job"]["ErrorMessage"],
            "userMetadata": job["Job"]["UserMetadata"],
        }
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {
                "Error": "RekognitionRequestRejected",
                "Cause": json.dumps(
                    {
                        "errorMessage": "StartLabelDetection failed with "
                        "InvalidS3ObjectException: Unable to get object metadata",
                        "errorType": "RekognitionRequestRejected",
                        "requestId": "5f1e",
                        "stackTrace": ["  File ..."],
                    }
                ),
            },
            "RekognitionRequestRejected: StartLabelDetection failed with "
            "InvalidS3ObjectException: Unable to get object metadata",
        ),
        (
            {"Error": "States.TaskFailed", "Cause": mediaconvert_failure_cause(wire_casing=True)},
            "MediaConvert job 1735711260123-zz9x8w failed (error 1030): "
            "Video codec [theora] is not a supported input codec",
        ),
        (
            {"Error": "States.TaskFailed", "Cause": mediaconvert_failure_cause(wire_casing=False)},
            "MediaConvert job 1735711260123-zz9x8w failed (error 1030): "
            "Video codec [theora] is not a supported input codec",
        ),
        (
            {
                "Error": "RekognitionJobFailed",
                "Cause": "StartContentModeration job abc for asset x (moderation) ended with "
                "status FAILED",
            },
            "RekognitionJobFailed: StartContentModeration job abc for asset x (moderation) "
            "ended with status FAILED",
        ),
        ({"Error": "States.Timeout"}, "States.Timeout: the step did not finish within its timeout"),
        (
            {"Error": "States.HeartbeatTimeout", "Cause": ""},
            "States.HeartbeatTimeout: the step stopped sending heartbeats",
        ),
        (
            {
                "Error": "Lambda.Unknown",
                "Cause": json.dumps(
                    {"errorMessage": "2025-01-01T06:00:00Z abc Task timed out after 900.00 seconds"}
                ),
            },
            "Lambda.Unknown: 2025-01-01T06:00:00Z abc Task timed out after 900.00 seconds",
        ),
        ({"Error": "States.Runtime", "Cause": "{not json"}, "States.Runtime: {not json"),
        (None, "unknown error (no error details were passed on)"),
    ],
)
def test_root_cause_is_one_readable_line(error, reason):
    assert root_cause(error) == reason


def test_failed_asset_is_recorded_with_its_reason(
    buckets, committed_asset, catalog, lambda_context
):
    # Given an asset whose transcode failed in MediaConvert
    event = {
        "asset": committed_asset,
        "error": {
            "Error": "States.TaskFailed",
            "Cause": mediaconvert_failure_cause(wire_casing=False),
        },
    }
    # When the Map's Catch hands it to mark-failed
    result = handler(event, lambda_context)
    # Then the catalog shows it FAILED with the root cause, and the batch gets a small result
    reason = (
        "MediaConvert job 1735711260123-zz9x8w failed (error 1030): "
        "Video codec [theora] is not a supported input codec"
    )
    assert result == {
        "asset_id": committed_asset["asset_id"],
        "status": "FAILED",
        "reason": reason,
        "recorded": True,
        # the transcode wrote nothing, so there was nothing to clean up
        "renditions": {"removed": 0, "tagged_for_expiry": 0},
    }
    item = catalog.get_asset(committed_asset["asset_id"])
    assert (item["status"], item["failure_reason"]) == ("FAILED", reason)
    failed = catalog.campaign_assets("travel", status="FAILED")
    assert [a["asset_id"] for a in failed] == [committed_asset["asset_id"]]


def test_very_long_causes_are_shortened(committed_asset, catalog, lambda_context):
    event = {"asset": committed_asset, "error": {"Error": "X", "Cause": "y " * 5000}}
    result = handler(event, lambda_context)
    assert len(result["reason"]) <= 1000 and result["reason"].endswith("…")


def test_asset_missing_from_the_catalog_still_returns_a_result(catalog, lambda_context):
    # Given a failure for an asset the catalog never saw
    event = {
        "asset": ingested_asset(asset_id="wikimedia-unknown"),
        "error": {"Error": "States.Timeout"},
    }
    # When marked failed
    result = handler(event, lambda_context)
    # Then the batch still gets a FAILED result instead of a second failure, saying it is unrecorded
    assert result["status"] == "FAILED" and result["asset_id"] == "wikimedia-unknown"
    assert result["recorded"] is False
    assert result["not_recorded"] == "asset wikimedia-unknown is not in the catalog"


def test_malformed_catch_payload_does_not_stop_the_batch(catalog, lambda_context):
    result = handler({"error": {"Error": "States.Runtime", "Cause": "bad path"}}, lambda_context)
    assert result == {
        "asset_id": None,
        "status": "FAILED",
        "reason": "States.Runtime: bad path",
        "recorded": False,
        "not_recorded": "the failure names no asset_id",
    }


@pytest.mark.parametrize(
    "failure",
    [
        ClientError(
            {
                "Error": {
                    "Code": "ProvisionedThroughputExceededException",
                    "Message": "The level of configured provisioned throughput for the table was "
                    "exceeded. Consider increasing your provisioning level with the UpdateTable "
                    "API.",
                }
            },
            "TransactWriteItems",
        ),
        ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "GetItem"
        ),
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
    ],
    ids=["throttled", "access-denied", "no-endpoint"],
)
def test_a_catalog_that_cannot_record_the_failure_never_stops_the_batch(
    committed_asset, catalog, lambda_context, monkeypatch, capsys, failure
):
    # Given DynamoDB refusing (or unreachable) when the failure is recorded
    def refuse(self, asset_id, reason):
        raise failure

    monkeypatch.setattr(Catalog, "mark_failed", refuse)
    event = {"asset": committed_asset, "error": {"Error": "States.Timeout"}}

    # When mark-failed runs
    result = handler(event, lambda_context)

    # Then the batch gets its FAILED result, which says the catalog does not know about it
    assert result["status"] == "FAILED"
    assert result["asset_id"] == committed_asset["asset_id"]
    assert result["reason"] == "States.Timeout: the step did not finish within its timeout"
    assert result["recorded"] is False
    assert result["not_recorded"].startswith("the catalog could not record it: ")
    assert len(result["not_recorded"]) <= 300
    # and a FailuresNotRecorded metric goes out for the alarm
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    names = {
        m["Name"] for doc in emitted for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"AssetsFailed", "FailuresNotRecorded"} <= names


# -- what a failed asset leaves in the processed zone ------------------------------------------

# What one asset's transcode and finalize write under the processed bucket (plan.py's keys).
KEYS = AssetKeys(RAW_KEY)
RENDITIONS = [
    f"{KEYS.mp4_prefix}proxy.mp4",
    f"{KEYS.hls_prefix}index.m3u8",
    *(f"{KEYS.hls_prefix}index_{h}p.m3u8" for h in (360, 720)),
    *(f"{KEYS.hls_prefix}index_{h}p_{n:05d}.ts" for h in (360, 720) for n in range(3)),
    *(f"{KEYS.thumbnails_prefix}thumb.{n:07d}.jpg" for n in range(4)),
]
# Another asset of the same batch folder: a different stem, so not this asset's business.
NEIGHBOUR = AssetKeys(RAW_KEY.replace("Lisbon_tram_28", "Lisbon_tram_28_night"))
NEIGHBOUR_KEYS = [f"{NEIGHBOUR.mp4_prefix}proxy.mp4", NEIGHBOUR.labels]


def _put(s3, bucket: str, keys) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def _keys(s3, bucket: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [item["Key"] for item in page.get("Contents", [])]
    return sorted(found)


def _analysis_failure() -> dict:
    return {
        "Error": "RekognitionJobFailed",
        "Cause": "StartLabelDetection job j1 for asset x (labels) ended with status FAILED",
    }


@pytest.fixture
def landed(buckets, committed_asset):
    """The asset's raw clip and sidecar in raw, its renditions and labels.json in processed,
    and a neighbour's renditions beside them."""
    _put(buckets, RAW_BUCKET, [RAW_KEY, KEYS.attribution, NEIGHBOUR.raw])
    _put(buckets, PROCESSED_BUCKET, [*RENDITIONS, KEYS.labels, *NEIGHBOUR_KEYS])
    return buckets


def test_a_failed_asset_leaves_nothing_in_the_processed_zone(
    landed, committed_asset, catalog, lambda_context
):
    # Given an asset whose transcode succeeded (proxy, HLS ladder, thumbnails in processed) and
    # whose finalize had written labels.json, before an analysis failed the asset
    s3 = landed
    event = {"asset": committed_asset, "error": _analysis_failure()}

    # When the Map's Catch hands it to mark-failed
    result = handler(event, lambda_context)

    # Then it is FAILED with its reason, and nothing of it is left in the processed bucket
    assert result["recorded"] is True
    assert result["renditions"] == {"removed": len(RENDITIONS) + 1, "tagged_for_expiry": 0}
    assert _keys(s3, PROCESSED_BUCKET, KEYS.renditions_prefix) == []
    assert KEYS.labels not in _keys(s3, PROCESSED_BUCKET)
    # and the neighbour's renditions, the raw clip and its attribution sidecar stay
    assert _keys(s3, PROCESSED_BUCKET) == sorted(NEIGHBOUR_KEYS)
    assert _keys(s3, RAW_BUCKET) == sorted([RAW_KEY, KEYS.attribution, NEIGHBOUR.raw])
    item = catalog.get_asset(committed_asset["asset_id"])
    assert item["status"] == "FAILED" and "renditions_left" not in item

    # When the step runs again (a retry), Then it is a no-op that still succeeds
    again = handler(event, lambda_context)
    assert again["renditions"] == {"removed": 0, "tagged_for_expiry": 0}
    assert _keys(s3, PROCESSED_BUCKET) == sorted(NEIGHBOUR_KEYS)


def test_cleanup_pages_through_a_large_hls_ladder(
    buckets, committed_asset, catalog, lambda_context
):
    # Given more segments than one listing page and one DeleteObjects call hold (1000)
    segments = [f"{KEYS.hls_prefix}index_720p_{n:05d}.ts" for n in range(1203)]
    _put(buckets, PROCESSED_BUCKET, segments)

    # When mark-failed runs
    result = handler({"asset": committed_asset, "error": _analysis_failure()}, lambda_context)

    # Then every page is removed
    assert result["renditions"] == {"removed": 1203, "tagged_for_expiry": 0}
    assert _keys(buckets, PROCESSED_BUCKET) == []


def test_a_finalized_then_failed_asset_drops_its_label_index_and_pointers(
    landed, committed_asset, catalog, lambda_context
):
    # Given finalize got as far as PROCESSED and the label index before it failed
    asset_id = committed_asset["asset_id"]
    catalog.set_status(
        asset_id,
        "PROCESSED",
        attributes={
            "labels_key": KEYS.labels,
            "top_labels": ["Tram", "Street"],
            "mp4_key": RENDITIONS[0],
            "hls_key": RENDITIONS[1],
            "thumbnail_key": RENDITIONS[-1],
            "moderation_flagged": False,
            "speech_words": ["aboard", "all"],
        },
    )
    catalog.index_labels(committed_asset, {"Tram": 98.1, "Street": 91.0})
    catalog.index_words(committed_asset, {"all": (1, 1.0), "aboard": (1, 1.5)})

    # When mark-failed runs
    result = handler({"asset": committed_asset, "error": _analysis_failure()}, lambda_context)

    # Then the record no longer points at the removed objects, and neither label nor word
    # search finds the asset
    assert result["recorded"] is True
    item = catalog.get_asset(asset_id)
    assert item["status"] == "FAILED"
    published = {"labels_key", "top_labels", "mp4_key", "hls_key", "thumbnail_key", "speech_words"}
    assert not published & set(item)
    assert list(catalog.assets_with_label("tram")) == []
    assert list(catalog.assets_with_label("street")) == []
    assert catalog.assets_saying("aboard") == [] and catalog.assets_saying("all") == []
    assert catalog.status_counts("travel")["FAILED"] == 1
    assert catalog.status_counts("travel")["PROCESSED"] == 0


class RefusingS3:
    """The real (moto) client, except that DeleteObjects refuses some keys, or S3 is down."""

    def __init__(self, client, *, refuse=(), down=False):
        self._client = client
        self.refuse = set(refuse)
        self.down = down

    def __getattr__(self, name):
        return getattr(self._client, name)

    def get_paginator(self, name):
        if self.down:
            raise EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com/")
        return self._client.get_paginator(name)

    def delete_objects(self, *, Bucket, Delete):  # boto3's parameter names
        keep = [o for o in Delete["Objects"] if o["Key"] not in self.refuse]
        answer = (
            self._client.delete_objects(Bucket=Bucket, Delete={**Delete, "Objects": keep})
            if keep
            else {}
        )
        errors = [
            {"Key": key, "Code": "InternalError", "Message": "We encountered an internal error."}
            for key in sorted(self.refuse & {o["Key"] for o in Delete["Objects"]})
        ]
        return {**answer, "Errors": errors}


def _use_s3(monkeypatch, client) -> None:
    from lambdas.finalize import failed

    monkeypatch.setattr(failed, "_s3", lambda: client)


def test_keys_s3_refuses_to_delete_are_tagged_for_lifecycle_expiry(
    landed, committed_asset, catalog, lambda_context, monkeypatch
):
    # Given S3 answers InternalError for two keys of the batch delete
    refused = [RENDITIONS[2], KEYS.labels]
    _use_s3(monkeypatch, RefusingS3(landed, refuse=refused))

    # When mark-failed runs
    result = handler({"asset": committed_asset, "error": _analysis_failure()}, lambda_context)

    # Then the rest is deleted, the two are tagged orphaned=true (the processed bucket's
    # lifecycle rule expires them), and the batch goes on
    assert result["recorded"] is True
    assert result["renditions"] == {"removed": len(RENDITIONS) - 1, "tagged_for_expiry": 2}
    left = set(_keys(landed, PROCESSED_BUCKET)) - set(NEIGHBOUR_KEYS)
    assert left == set(refused)
    for key in refused:
        tags = landed.get_object_tagging(Bucket=PROCESSED_BUCKET, Key=key)["TagSet"]
        assert tags == [{"Key": "orphaned", "Value": "true"}]


def test_an_unreachable_s3_never_stops_the_batch_and_the_leftovers_are_recorded(
    landed, committed_asset, catalog, lambda_context, monkeypatch, capsys
):
    # Given S3 cannot be reached when mark-failed cleans up
    _use_s3(monkeypatch, RefusingS3(landed, down=True))

    # When mark-failed runs
    result = handler({"asset": committed_asset, "error": _analysis_failure()}, lambda_context)

    # Then the failure is recorded, the result and the catalog say where objects are left and
    # why, and a RenditionsLeft metric goes out for the alarm
    assert result["status"] == "FAILED" and result["recorded"] is True
    renditions = result["renditions"]
    assert renditions["left"] == [KEYS.labels, KEYS.renditions_prefix]
    assert renditions["not_removed"].startswith("S3 could not be reached")
    item = catalog.get_asset(committed_asset["asset_id"])
    assert item["status"] == "FAILED"
    assert item["renditions_left"] == [KEYS.labels, KEYS.renditions_prefix]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    names = {
        m["Name"] for doc in emitted for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert "RenditionsLeft" in names


def test_renditions_shared_with_another_clip_of_the_same_stem_are_left_alone(
    landed, committed_asset, catalog, lambda_context
):
    # Given another clip of the batch folder has the same stem (Lisbon_tram_28.mp4), so its
    # renditions folder is this asset's too
    twin = RAW_KEY.removesuffix(".webm") + ".mp4"
    _put(landed, RAW_BUCKET, [twin])

    # When mark-failed runs
    result = handler({"asset": committed_asset, "error": _analysis_failure()}, lambda_context)

    # Then nothing is deleted (the twin's renditions may be what is there), and the result says
    # why
    assert result["recorded"] is True
    assert result["renditions"]["removed"] == 0
    assert twin in result["renditions"]["not_removed"]
    assert set(_keys(landed, PROCESSED_BUCKET)) == {*RENDITIONS, KEYS.labels, *NEIGHBOUR_KEYS}


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"key": "uploads/Lisbon_tram_28.webm"}, "is not under video/wikimedia/travel/<batch>/"),
        ({"key": "video/wikimedia/travel/../y.webm"}, "is not under video/wikimedia/travel/"),
        ({"key": RAW_KEY.replace("/travel/", "/tech/")}, "is not under video/wikimedia/travel/"),
        ({"key": "video/wikimedia/travel/Lisbon_tram_28.webm"}, "is not under video/wikimedia/"),
        ({"key": None}, "names no key, source and campaign"),
        ({"source": "wikimedia/.."}, "is not a valid name"),
        ({"bucket": "someone-elses-bucket"}, "not in this deployment's raw bucket"),
    ],
    ids=[
        "uploads",
        "dot-dot",
        "other-campaign",
        "no-batch-folder",
        "no-key",
        "bad-source",
        "other-bucket",
    ],
)
def test_an_asset_outside_its_own_folder_deletes_nothing(
    landed, catalog, lambda_context, overrides, why
):
    # Given a failure whose asset names a key outside video/<source>/<campaign>/<batch>/
    asset = ingested_asset(**overrides)
    # When mark-failed runs, Then nothing is deleted and the result says why
    result = handler({"asset": asset, "error": _analysis_failure()}, lambda_context)
    assert result["renditions"]["removed"] == 0
    assert result["renditions"]["not_removed"].startswith("nothing removed: ")
    assert why in result["renditions"]["not_removed"]
    assert set(_keys(landed, PROCESSED_BUCKET)) == {*RENDITIONS, KEYS.labels, *NEIGHBOUR_KEYS}


def test_renditions_are_removed_even_when_the_catalog_cannot_record_the_failure(
    landed, committed_asset, catalog, lambda_context, monkeypatch
):
    # Given DynamoDB refusing the failure record
    def refuse(self, asset_id, reason):
        raise ClientError({"Error": {"Code": "InternalServerError"}}, "TransactWriteItems")

    monkeypatch.setattr(Catalog, "mark_failed", refuse)
    # When mark-failed runs
    result = handler({"asset": committed_asset, "error": _analysis_failure()}, lambda_context)
    # Then the result says the failure is not recorded, and the orphans are gone all the same
    assert result["recorded"] is False
    assert result["renditions"] == {"removed": len(RENDITIONS) + 1, "tagged_for_expiry": 0}
    assert _keys(landed, PROCESSED_BUCKET) == sorted(NEIGHBOUR_KEYS)


@pytest.mark.parametrize(
    ("time_left_s", "bound", "why", "removed", "left"),
    [
        (
            lambda: 3.0,
            10_000,
            "the invocation's time ran low",
            0,
            [KEYS.labels, KEYS.renditions_prefix],
        ),
        (None, 5, "stopped at the bound of 5 objects per asset", 1, [KEYS.renditions_prefix]),
    ],
    ids=["time", "bound"],
)
def test_cleanup_stops_within_its_budget_and_says_where_it_stopped(
    landed, committed_asset, monkeypatch, time_left_s, bound, why, removed, left
):
    from lambdas.finalize import cleanup

    # Given the invocation is about to run out of time, or an asset has more objects than the
    # bound allows
    monkeypatch.setattr(cleanup, "MAX_KEYS", bound)
    # When the cleanup runs
    result = cleanup.remove_renditions(
        committed_asset,
        store=cleanup.RenditionStore(landed),
        raw_bucket=RAW_BUCKET,
        processed_bucket=PROCESSED_BUCKET,
        time_left_s=time_left_s,
    )
    # Then it stops (the labels document, one key, goes first), and says what is left and why
    assert result.removed == removed
    assert result.left == left
    assert why in (result.not_removed or "")
    assert set(_keys(landed, PROCESSED_BUCKET, KEYS.renditions_prefix)) == set(RENDITIONS)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        ({"Error": "Unprocessable", "Cause": "no video stream: audio only"}, "refused"),
        ({"Error": "States.Timeout"}, "failed"),
        ({"Error": "States.TaskFailed", "Cause": "{}"}, "failed"),
    ],
)
def test_a_refusal_and_a_failure_are_different_outcomes(
    buckets, committed_asset, catalog, lambda_context, capsys, error, outcome
):
    # Given an asset the probe refused, or one that failed
    handler({"asset": committed_asset, "error": error}, lambda_context)
    # Then the availability objective's metric counts it as refused (good) or failed (bad)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    (slo,) = [doc for doc in emitted if doc.get("service") == "slo"]
    assert slo["outcome"] == outcome and slo["AssetOutcome"] == [1.0]
    assert slo["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "outcome"]]
