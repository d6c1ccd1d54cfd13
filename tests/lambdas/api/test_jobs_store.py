"""``JobStore``: the job items in the catalog table (shared with ingest)."""

from __future__ import annotations

import pytest

from lambdas.shared.catalog import MAX_REASON_LEN
from lambdas.shared.jobs import JobError, JobExists, JobStore, job_id_from_key, upload_key
from tests.lambdas.api.conftest import SESSION, TABLE

JOB_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def jobs(aws) -> JobStore:
    return JobStore(TABLE, resource=SESSION.resource("dynamodb"))


def new_job(jobs: JobStore, job_id: str = JOB_ID, **fields) -> dict:
    return jobs.create(
        {
            "job_id": job_id,
            "owner": "arn:aws:iam::123456789012:user/alice",
            "created_at": "2026-12-02T06:00:00.000000Z",
            "filename": "a.mp4",
            "size_bytes": 2048,
            "campaign": "travel",
            "upload_key": upload_key(job_id, "a.mp4"),
            "expires_at": 1_900_000_000,
            **fields,
        }
    )


def test_create_adds_the_keys_and_never_overwrites(jobs):
    stored = new_job(jobs)
    assert {k: stored[k] for k in ("pk", "sk", "gsi1pk", "gsi1sk", "status")} == {
        "pk": f"JOB#{JOB_ID}",
        "sk": "JOB",
        "gsi1pk": "OWNER#arn:aws:iam::123456789012:user/alice",
        "gsi1sk": f"2026-12-02T06:00:00.000000Z#{JOB_ID}",
        "status": "WAITING_FOR_UPLOAD",
    }
    with pytest.raises(JobExists, match=f"job {JOB_ID} already exists"):
        new_job(jobs, filename="other.mp4")
    assert jobs.get(JOB_ID)["filename"] == "a.mp4"
    assert jobs.get(JOB_ID)["size_bytes"] == 2048  # an int, not a Decimal
    with pytest.raises(JobError, match="job is missing owner"):
        jobs.create({"job_id": JOB_ID, "created_at": "x"})
    assert jobs.get("not-an-id") is None


def test_mark_uploaded_once_and_only_from_waiting(jobs):
    new_job(jobs)
    assert jobs.mark_uploaded(JOB_ID) is True
    item = jobs.get(JOB_ID)
    assert item["status"] == "UPLOADED" and "expires_at" not in item and item["uploaded_at"]
    assert jobs.mark_uploaded(JOB_ID) is False
    assert jobs.mark_uploaded("f" * 32) is False  # no such job: nothing is created
    assert jobs.get("f" * 32) is None


def test_link_asset_keeps_the_job_and_records_a_failed_checksum(jobs):
    new_job(jobs)
    jobs.link_asset(JOB_ID, "upload-1", checksum_ok=True)
    item = jobs.get(JOB_ID)
    assert (item["asset_id"], item["status"]) == ("upload-1", "UPLOADED")
    assert "expires_at" not in item

    other = "fedcba9876543210fedcba9876543210"
    new_job(jobs, other)
    jobs.link_asset(other, "upload-2", checksum_ok=False, reason="x" * 2000)
    failed = jobs.get(other)
    assert failed["status"] == "FAILED"
    assert len(failed["failure_reason"]) == MAX_REASON_LEN
    with pytest.raises(JobError, match="is not in the catalog"):
        jobs.link_asset("e" * 32, "upload-3", checksum_ok=True)


def test_list_for_pages_newest_first_with_filters(jobs):
    for n in range(3):
        new_job(
            jobs,
            f"{n:032x}",
            created_at=f"2026-12-02T06:00:0{n}.000000Z",
            campaign=("a", "b")[n % 2],
        )
    page = jobs.list_for("arn:aws:iam::123456789012:user/alice", limit=2)
    assert [item["job_id"] for item in page.items] == [f"{2:032x}", f"{1:032x}"]
    assert page.last_key is not None
    rest = jobs.list_for("arn:aws:iam::123456789012:user/alice", limit=2, start_key=page.last_key)
    assert [item["job_id"] for item in rest.items] == [f"{0:032x}"]
    assert rest.last_key is None
    only_a = jobs.list_for(
        "arn:aws:iam::123456789012:user/alice", campaign="a", status="WAITING_FOR_UPLOAD", limit=10
    )
    assert [item["job_id"] for item in only_a.items] == [f"{2:032x}", f"{0:032x}"]
    assert jobs.list_for("someone-else", limit=10).items == []


def test_keys_name_their_job():
    key = upload_key(JOB_ID, "Harbour.mp4")
    assert key == f"uploads/jobs/{JOB_ID}/Harbour.mp4"
    assert job_id_from_key(key) == JOB_ID
    for other in (
        "uploads/a.mp4",
        f"uploads/jobs/{JOB_ID}/",
        f"uploads/jobs/{JOB_ID}/x/y.mp4",
        "uploads/jobs/zz/a.mp4",
    ):
        assert job_id_from_key(other) is None
