"""Who may see a job, and what they see: the status from S3, the job item and the linked asset,
and the result links once the asset is processed."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from lambdas.shared.catalog import Catalog
from lambdas.shared.jobs import JobStore
from tests.lambdas.api.conftest import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    CLIP,
    JWT_ADMIN,
    PROCESSED_BUCKET,
    SESSION,
    TABLE,
    UNSIGNED,
    iam_caller,
    job_items,
    jwt_caller,
    nothing_created,
)

ASSET_ID = "upload-0123456789abcdef0123"


@pytest.fixture
def catalog(aws) -> Catalog:
    return Catalog(TABLE, resource=SESSION.resource("dynamodb"))


@pytest.fixture
def jobs(aws) -> JobStore:
    return JobStore(TABLE, resource=SESSION.resource("dynamodb"))


def upload(job: dict[str, Any]) -> None:
    answer = requests.put(
        job["upload"]["url"], data=CLIP, headers=job["upload"]["headers"], timeout=5
    )
    assert answer.status_code == 200, answer.text


def ingest(catalog: Catalog, jobs: JobStore, job: dict[str, Any]) -> None:
    """What ingest does with an uploaded job's file: commit the asset, link it to the job."""
    catalog.claim("upload", job["key"], "etag-1", ASSET_ID)
    catalog.commit_asset(
        {
            "asset_id": ASSET_ID,
            "source": "upload",
            "source_id": job["key"],
            "campaign": "travel",
            "checksum": "etag-1",
            "bucket": "media-raw-api-test",
            "key": f"video/upload/travel/20260601_060000/{job['key'].rsplit('/', 1)[1]}",
        }
    )
    jobs.link_asset(job["job_id"], ASSET_ID, checksum_ok=True)


def test_an_unsigned_request_is_forbidden_whatever_it_asks(api, table, s3):
    for method, path in (("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/" + "a" * 32)):
        answer = api.call(method, path, caller=UNSIGNED, body={} if method == "POST" else None)
        assert answer.status == 403
        assert answer.message == "the request is not signed (IAM) or authorized (JWT)"
    # An authorizer context without a principal is no caller either.
    assert api.call("GET", "/jobs", caller=iam_caller("")).status == 403
    assert api.call("GET", "/jobs", caller=jwt_caller("")).status == 403
    assert nothing_created(table, s3)


def test_a_job_is_visible_to_its_owner_and_admins_only(api):
    job = api.create().body
    path = f"/jobs/{job['job_id']}"

    assert api.call("GET", path).status == 200
    for stranger in (BOB, CAROL):
        for route in (path, path + "/result"):
            answer = api.call("GET", route, caller=stranger)
            assert (answer.status, answer.body) == (404, {"message": f"no job {job['job_id']}"})
    # A session of the admin role (ADMIN_PRINCIPALS names the role) and a JWT caller in the
    # admin group read it; admins still cannot upload into someone else's job.
    for admin in (ADMIN, JWT_ADMIN):
        assert api.call("GET", path, caller=admin).body["job_id"] == job["job_id"]
    parts = api.call("POST", path + "/parts", caller=ADMIN, body={"part_numbers": [1]})
    assert parts.status == 404


def test_a_jwt_caller_owns_the_jobs_it_creates(api, table):
    job = api.create(caller=CAROL).body

    assert job_items(table)[0]["owner"] == CAROL.owner
    assert api.call("GET", f"/jobs/{job['job_id']}", caller=CAROL).status == 200
    assert api.call("GET", f"/jobs/{job['job_id']}", caller=ALICE).status == 404


def test_unknown_and_malformed_job_ids_are_not_found(api):
    assert api.call("GET", "/jobs/" + "0" * 32).message == f"no job {'0' * 32}"
    answer = api.call("GET", "/jobs/not-a-job")
    assert (answer.status, answer.message) == (404, "no job 'not-a-job'")
    route = api.call("DELETE", "/jobs")
    assert (route.status, route.message) == (404, "no route DELETE '/jobs'")


def test_status_follows_the_upload_and_the_asset_to_processed(api, catalog, jobs, table):
    job = api.create().body
    path = f"/jobs/{job['job_id']}"
    view = api.call("GET", path).body
    assert view == {
        "job_id": job["job_id"],
        "status": "WAITING_FOR_UPLOAD",
        "reason": None,
        "filename": "Harbour at dawn.mp4",
        "campaign": "travel",
        "source": "drone-7",
        "captured_at": "2026-06-01T03:30:00Z",
        "created_at": job_items(table)[0]["created_at"],
        "size_bytes": len(CLIP),
        "asset_id": None,
    }
    assert "expires_at" in job_items(table)[0]
    result = api.call("GET", path + "/result")
    assert (result.status, result.message) == (
        409,
        f"job {job['job_id']} is WAITING_FOR_UPLOAD, no result yet",
    )

    upload(job)
    assert api.call("GET", path).body["status"] == "UPLOADED"
    item = job_items(table)[0]
    assert item["status"] == "UPLOADED" and "expires_at" not in item  # recorded, kept

    ingest(catalog, jobs, job)
    view = api.call("GET", path).body
    assert (view["status"], view["asset_id"]) == ("RUNNING", ASSET_ID)
    catalog.set_status(ASSET_ID, "PROCESSING")
    assert api.call("GET", path).body["status"] == "RUNNING"
    result = api.call("GET", path + "/result")
    assert (result.status, result.message) == (
        409,
        f"job {job['job_id']} is RUNNING, no result yet",
    )

    catalog.set_status(
        ASSET_ID,
        "PROCESSED",
        attributes={
            "labels_key": "video/upload/travel/20260601_060000/Harbour_at_dawn_labels.json",
            "top_labels": ["Boat", "Harbor", "Sunrise"],
            "mp4_key": "video/upload/travel/20260601_060000/Harbour_at_dawn/mp4/proxy.mp4",
            "thumbnail_key": "video/upload/travel/20260601_060000/Harbour_at_dawn/thumbnails/thumb.0000000.jpg",
        },
    )
    assert api.call("GET", path).body["status"] == "PROCESSED"
    result = api.call("GET", path + "/result", caller=JWT_ADMIN)
    assert result.status == 200, result.body
    assert result.body["job_id"] == job["job_id"]
    assert result.body["asset_id"] == ASSET_ID
    assert result.body["top_labels"] == ["Boat", "Harbor", "Sunrise"]
    for name, key in (
        ("labels_json", "Harbour_at_dawn_labels.json"),
        ("proxy", "Harbour_at_dawn/mp4/proxy.mp4"),
        ("thumbnail", "Harbour_at_dawn/thumbnails/thumb.0000000.jpg"),
    ):
        link = urlsplit(result.body[name])
        assert link.netloc == f"{PROCESSED_BUCKET}.s3.amazonaws.com"
        assert link.path == f"/video/upload/travel/20260601_060000/{key}"
        assert parse_qs(link.query)["X-Amz-SignedHeaders"] == ["host"]
        assert parse_qs(link.query)["X-Amz-Expires"] == ["3600"]


def test_a_failed_asset_fails_the_job_with_its_reason(api, catalog, jobs):
    job = api.create().body
    upload(job)
    ingest(catalog, jobs, job)
    catalog.mark_failed(ASSET_ID, "MediaConvert could not decode the video stream")

    view = api.call("GET", f"/jobs/{job['job_id']}").body
    assert (view["status"], view["reason"]) == (
        "FAILED",
        "MediaConvert could not decode the video stream",
    )
    result = api.call("GET", f"/jobs/{job['job_id']}/result")
    assert (result.status, result.message) == (
        409,
        f"job {job['job_id']} is FAILED, there is no result: MediaConvert could not decode the "
        "video stream",
    )


def test_a_checksum_mismatch_found_by_ingest_fails_the_job(api, jobs, table):
    job = api.create(size_bytes=7 * 1024 * 1024).body  # multipart: S3 checks no SHA-256
    jobs.link_asset(job["job_id"], ASSET_ID, checksum_ok=False)

    view = api.call("GET", f"/jobs/{job['job_id']}").body
    assert (view["status"], view["reason"]) == (
        "FAILED",
        "the uploaded file does not match the job's SHA-256",
    )
    item = job_items(table)[0]
    assert item["asset_id"] == ASSET_ID and "expires_at" not in item
