"""``POST /assets/{asset_id}/reprocess`` and ``GET /assets/{asset_id}/results``.

Against moto: the reprocess state machine exists (moto does not run it; its executions stay
RUNNING until stopped), the catalog holds the asset and the job it came through.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lambdas.shared.catalog import Catalog
from lambdas.shared.jobs import JobStore
from tests.lambdas.api.conftest import (
    ADMIN,
    ALICE,
    BOB,
    PROCESSED_BUCKET,
    RAW_BUCKET,
    REPROCESS_STATE_MACHINE_ARN,
    TABLE,
    Api,
)
from tests.lambdas.conftest import SESSION, client

LABELS_KEY = "video/upload/travel/20261201_080000/harbour_labels.json"


@pytest.fixture
def machine(aws: None) -> Any:
    sfn = client("stepfunctions")
    created = sfn.create_state_machine(
        name=REPROCESS_STATE_MACHINE_ARN.rsplit(":", 1)[-1],
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/reprocess",
    )
    assert created["stateMachineArn"] == REPROCESS_STATE_MACHINE_ARN
    return sfn


def _asset(status: str = "PROCESSED", *, owner: str | None = ALICE.owner, **extra: Any) -> str:
    """An asset uploaded through ``owner``'s job (None: a campaign asset), in ``status``."""
    catalog = Catalog(TABLE, resource=SESSION.resource("dynamodb"))
    asset_id = f"upload-{status.lower()}-{len(extra)}"
    item: dict[str, Any] = {
        "asset_id": asset_id,
        "source": "upload",
        "source_id": f"uploads/jobs/{asset_id}.mp4",
        "campaign": "travel",
        "checksum": "sha256-x",
        "bucket": RAW_BUCKET,
        "key": f"video/upload/travel/20261201_080000/{asset_id}.mp4",
        "duration_s": Decimal("7.0"),
        **extra,
    }
    if owner is not None:
        job_id = uuid.uuid4().hex
        JobStore(TABLE, resource=SESSION.resource("dynamodb")).create(
            {
                "job_id": job_id,
                "owner": owner,
                "created_at": "2026-12-01T08:00:00Z",
                "filename": "harbour.mp4",
                "campaign": "travel",
                "size_bytes": 10,
            }
        )
        item["job_id"] = job_id
    catalog.claim("upload", item["source_id"], "sha256-x", asset_id)
    catalog.commit_asset(item)
    if status == "PROCESSED":
        catalog.set_status(asset_id, "PROCESSED", attributes={"labels_key": LABELS_KEY})
    elif status == "FAILED":
        catalog.mark_failed(asset_id, "probe: the file is not a video")
    return asset_id


def test_the_owner_reprocesses_a_processed_asset_and_one_run_starts(api: Api, machine: Any):
    asset_id = _asset()

    answer = api.call("POST", f"/assets/{asset_id}/reprocess", body={"note": "new model"})

    assert answer.status == 202, answer.body
    assert answer.body["status"] == "RUNNING" and answer.body["asset_id"] == asset_id
    run = answer.body["run"]
    assert run.startswith("reprocess-") and len(run) <= 80
    [execution] = machine.list_executions(stateMachineArn=REPROCESS_STATE_MACHINE_ARN)["executions"]
    assert execution["name"] == run and execution["executionArn"] == answer.body["execution_arn"]
    described = machine.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "asset_id": asset_id,
        "requested_by": ALICE.owner,
        "note": "new model",
    }
    assert (
        Catalog(TABLE, resource=SESSION.resource("dynamodb")).get_asset(asset_id)["reprocess_run"]
        == run
    )


def test_a_reprocess_needs_no_body(api: Api, machine: Any):
    answer = api.call("POST", f"/assets/{_asset()}/reprocess")
    assert answer.status == 202, answer.body


def test_a_second_reprocess_while_one_runs_is_a_conflict_and_starts_nothing(api: Api, machine: Any):
    asset_id = _asset()
    first = api.call("POST", f"/assets/{asset_id}/reprocess", body={})

    again = api.call("POST", f"/assets/{asset_id}/reprocess", body={})

    assert again.status == 409
    assert (
        again.message == f"asset {asset_id} is already being reprocessed by run {first.body['run']}"
    )
    runs = machine.list_executions(stateMachineArn=REPROCESS_STATE_MACHINE_ARN)["executions"]
    assert len(runs) == 1


def test_a_claim_left_by_a_run_that_ended_is_taken_over(api: Api, machine: Any):
    asset_id = _asset()
    first = api.call("POST", f"/assets/{asset_id}/reprocess", body={})
    machine.stop_execution(executionArn=first.body["execution_arn"], cause="test")

    again = api.call("POST", f"/assets/{asset_id}/reprocess", body={})

    assert again.status == 202, again.body
    assert again.body["run"] != first.body["run"]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("FAILED", "is FAILED (probe: the file is not a video): it has no renditions"),
        ("INGESTED", "is INGESTED: wait until the pipeline has processed it"),
    ],
)
def test_an_asset_that_is_not_processed_cannot_be_reprocessed(
    api: Api, machine: Any, status: str, message: str
):
    asset_id = _asset(status)

    answer = api.call("POST", f"/assets/{asset_id}/reprocess", body={})

    assert answer.status == 409
    assert message in answer.message
    assert machine.list_executions(stateMachineArn=REPROCESS_STATE_MACHINE_ARN)["executions"] == []


def test_nobody_else_reprocesses_or_reads_an_asset_and_admins_may(api: Api, machine: Any):
    mine = _asset()
    campaign_asset = _asset(owner=None, title="a commons clip")

    for caller, asset_id in ((BOB, mine), (ALICE, campaign_asset), (ALICE, "no-such-asset")):
        for method, path in (("POST", "reprocess"), ("GET", "results")):
            answer = api.call(
                method,
                f"/assets/{asset_id}/{path}",
                caller=caller,
                body={} if method == "POST" else None,
            )
            assert (answer.status, answer.message) == (404, f"no asset {asset_id}")

    assert (
        api.call("POST", f"/assets/{campaign_asset}/reprocess", caller=ADMIN, body={}).status == 202
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"note": "x" * 201}, "note: string should have at most 200 characters"),
        ({"note": "line\nbreak"}, "note: must not contain control characters"),
        ({"features": []}, "features: must be a non-empty list"),
        (
            {"features": ["faces"]},
            "features[0]: input should be 'labels', 'moderation' or 'segments'",
        ),
        ({"features": ["labels", "labels"]}, "names a feature twice"),
        ({"features": ["segments"]}, "segments cannot be rerun without labels"),
        ({"feature": ["labels"]}, "feature: is not a field of this request"),
    ],
)
def test_a_bad_reprocess_body_is_named_and_starts_nothing(
    api: Api, machine: Any, body: dict[str, Any], message: str
):
    asset_id = _asset()

    answer = api.call("POST", f"/assets/{asset_id}/reprocess", body=body)

    assert answer.status == 400
    assert message in answer.message
    assert machine.list_executions(stateMachineArn=REPROCESS_STATE_MACHINE_ARN)["executions"] == []


@pytest.mark.parametrize(
    ("features", "passed"),
    [(["moderation"], ["moderation"]), (["segments", "labels"], ["labels", "segments"])],
)
def test_the_features_asked_for_are_passed_to_the_run_in_analysis_order(
    api: Api, machine: Any, features: list[str], passed: list[str]
):
    answer = api.call("POST", f"/assets/{_asset()}/reprocess", body={"features": features})

    assert answer.status == 202, answer.body
    started = machine.describe_execution(executionArn=answer.body["execution_arn"])
    assert json.loads(started["input"])["features"] == passed


def test_malformed_json_is_a_400(api: Api, machine: Any):
    answer = api.call("POST", f"/assets/{_asset()}/reprocess", raw_body="{not json")
    assert answer.status == 400
    assert "not valid JSON" in answer.message


def test_results_list_every_version_newest_first_with_links_to_that_version(
    api: Api, machine: Any, s3: Any
):
    asset_id = _asset()
    s3.put_bucket_versioning(Bucket=PROCESSED_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    catalog = Catalog(TABLE, resource=SESSION.resource("dynamodb"))
    for run, kind in (("upload-1", "pipeline"), ("reprocess-2", "reprocess")):
        written = s3.put_object(
            Bucket=PROCESSED_BUCKET, Key=LABELS_KEY, Body=json.dumps({"run": run})
        )
        catalog.add_result_version(
            asset_id,
            {
                "generated_at": "2026-12-01T08:00:00Z",
                "run": run,
                "kind": kind,
                "labels_key": LABELS_KEY,
                "labels_version_id": written["VersionId"],
                "top_labels": ["Boat"],
                "analysed_input": "source",
                "label_count": 3,
                "moderation_flagged": False,
                # A result recorded before features could be chosen names none.
                **({"features": ["moderation"]} if kind == "reprocess" else {}),
            },
        )

    answer = api.call("GET", f"/assets/{asset_id}/results")

    assert answer.status == 200, answer.body
    assert answer.body["status"] == "PROCESSED" and answer.body["reprocess_run"] is None
    assert [v["run"] for v in answer.body["versions"]] == ["reprocess-2", "upload-1"]
    assert [v["features"] for v in answer.body["versions"]] == [
        ["moderation"],
        ["labels", "moderation", "segments"],
    ]
    ids = {v["labels_version_id"] for v in catalog.result_versions(asset_id)}
    for version in answer.body["versions"]:
        linked = parse_qs(urlsplit(version["labels_json"]).query)["versionId"][0]
        assert linked in ids
        ids.discard(linked)
        assert version["top_labels"] == ["Boat"] and version["kind"] in ("pipeline", "reprocess")
