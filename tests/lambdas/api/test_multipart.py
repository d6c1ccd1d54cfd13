"""Multipart jobs: fresh part URLs for a resuming client, and a complete that checks every part
against what S3 holds before asking S3 to assemble them."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.lambdas.api.conftest import BOB, PART_SIZE, RAW_BUCKET, job_items

SIZE = 2 * PART_SIZE + 1000  # three parts: 5 MiB, 5 MiB, 1000 bytes
DATA = (b"0123456789abcdef" * (SIZE // 16 + 1))[:SIZE]


def chunk(number: int) -> bytes:
    return DATA[(number - 1) * PART_SIZE : number * PART_SIZE]


def put_part(url: str, number: int, data: bytes | None = None) -> str:
    answer = requests.put(url, data=chunk(number) if data is None else data, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.headers["ETag"]


@pytest.fixture
def job(api) -> dict[str, Any]:
    answer = api.create(size_bytes=SIZE, sha256="ab" * 32)
    assert answer.status == 201, answer.body
    assert answer.body["upload"]["method"] == "MULTIPART"
    return answer.body


def urls(job: dict[str, Any]) -> dict[int, str]:
    return {part["part_number"]: part["url"] for part in job["upload"]["parts"]}


def test_parts_are_uploaded_completed_and_the_job_is_uploaded(api, job, table, s3):
    etags = {n: put_part(url, n) for n, url in urls(job).items()}

    answer = api.call(
        "POST",
        f"/jobs/{job['job_id']}/complete",
        body={"parts": [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3)]},
    )

    assert answer.status == 200, answer.body
    assert answer.body == {"job_id": job["job_id"], "status": "UPLOADED"}
    stored = s3.get_object(Bucket=RAW_BUCKET, Key=job["key"])
    assert stored["Body"].read() == DATA
    assert stored["ContentType"] == "video/mp4"
    assert stored["Metadata"]["job-id"] == job["job_id"]
    [item] = job_items(table)
    assert item["status"] == "UPLOADED"
    assert "expires_at" not in item  # a used job is kept
    assert api.call("GET", f"/jobs/{job['job_id']}").body["status"] == "UPLOADED"

    # A retried complete (its answer was lost) is answered the same; the parts are not re-checked.
    again = api.call(
        "POST", f"/jobs/{job['job_id']}/complete", body={"parts": [{"part_number": 1, "etag": "x"}]}
    )
    assert again.status == 200 and again.body["status"] == "UPLOADED"
    assert (
        api.call("POST", f"/jobs/{job['job_id']}/parts", body={"part_numbers": [1]}).status == 409
    )


def test_a_resuming_client_gets_fresh_urls_and_what_s3_already_has(api, job):
    etag = put_part(urls(job)[1], 1)

    answer = api.call("POST", f"/jobs/{job['job_id']}/parts", body={"part_numbers": [2, 3]})

    assert answer.status == 200, answer.body
    assert [part["part_number"] for part in answer.body["parts"]] == [2, 3]
    assert answer.body["uploaded"] == [{"part_number": 1, "etag": etag, "size": PART_SIZE}]
    etags = {1: etag} | {
        p["part_number"]: put_part(p["url"], p["part_number"]) for p in answer.body["parts"]
    }
    done = api.call(
        "POST",
        f"/jobs/{job['job_id']}/complete",
        body={"parts": [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3)]},
    )
    assert done.status == 200, done.body


def test_parts_outside_the_upload_are_refused(api, job):
    for numbers, message in (
        ([2, 2], "part_numbers: part 2 is listed more than once"),
        ([1, 4, 9], "part_numbers: parts 4, 9 are out of range; this upload has parts 1-3"),
        ([0], "part_numbers[0]: input should be greater than or equal to 1"),
        ([], "part_numbers: list should have at least 1 item after validation, not 0"),
    ):
        answer = api.call("POST", f"/jobs/{job['job_id']}/parts", body={"part_numbers": numbers})
        assert (answer.status, answer.message) == (400, message)


def test_complete_refuses_missing_duplicate_reordered_or_unknown_parts(api, job, s3, table):
    etags = {n: put_part(url, n) for n, url in urls(job).items() if n != 3}
    path = f"/jobs/{job['job_id']}/complete"

    def complete(*pairs: tuple[int, str]) -> Any:
        return api.call(
            "POST", path, body={"parts": [{"part_number": n, "etag": e} for n, e in pairs]}
        )

    cases = [
        (
            complete((1, etags[1]), (2, etags[2])),
            "parts: part 3 is missing; this upload has parts 1-3",
        ),
        (complete((1, etags[1])), "parts: parts 2, 3 are missing; this upload has parts 1-3"),
        (
            complete((1, etags[1]), (2, etags[2]), (2, etags[2]), (3, "e")),
            "parts: part 2 is listed more than once",
        ),
        (
            complete((2, etags[2]), (1, etags[1]), (3, "e")),
            "parts: must be in ascending part_number order; part 1 comes after part 2",
        ),
        (
            complete((1, etags[1]), (2, etags[2]), (3, "e"), (4, "e")),
            "parts: part 4 is out of range; this upload has parts 1-3",
        ),
        (
            complete((1, etags[1]), (2, etags[2]), (3, '"abc"')),
            "parts: part 3 is not uploaded yet",
        ),
    ]
    for answer, message in cases:
        assert (answer.status, answer.message) == (400, message)

    etags[3] = put_part(urls(job)[3], 3)
    wrong_etag = complete((1, etags[1]), (2, etags[3]), (3, etags[3]))
    assert wrong_etag.status == 400
    assert wrong_etag.message.startswith("parts: the etag of part 2 is not the one S3 holds for it")

    # Nothing was assembled by any of them.
    assert not s3.list_objects_v2(Bucket=RAW_BUCKET).get("Contents")
    assert job_items(table)[0]["status"] == "WAITING_FOR_UPLOAD"


def test_complete_refuses_parts_of_the_wrong_size(api, job):
    etags = {n: put_part(url, n) for n, url in urls(job).items() if n != 3}
    etags[3] = put_part(urls(job)[3], 3, data=b"x" * 10)

    answer = api.call(
        "POST",
        f"/jobs/{job['job_id']}/complete",
        body={"parts": [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3)]},
    )

    assert answer.status == 400
    assert answer.message == (
        f"parts: part 3 is 10 bytes, expected 1000 (parts of {PART_SIZE} bytes, the last one the "
        f"rest of {SIZE})"
    )


def test_single_put_jobs_have_no_parts_to_sign_or_complete(api):
    job = api.create().body
    for route, body in (
        ("parts", {"part_numbers": [1]}),
        ("complete", {"parts": [{"part_number": 1, "etag": "e"}]}),
    ):
        answer = api.call("POST", f"/jobs/{job['job_id']}/{route}", body=body)
        assert answer.status == 409
        assert answer.message == (
            f"job {job['job_id']} is a single PUT upload: PUT the file to its URL, it has no parts"
        )


def test_an_aborted_upload_is_a_conflict(api, job, s3):
    s3.abort_multipart_upload(
        Bucket=RAW_BUCKET, Key=job["key"], UploadId=job["upload"]["upload_id"]
    )

    answer = api.call("POST", f"/jobs/{job['job_id']}/parts", body={"part_numbers": [1]})

    assert answer.status == 409
    assert answer.message == (
        f"job {job['job_id']}: its multipart upload is no longer open (aborted or expired); "
        "create a new job"
    )


def test_only_the_owner_signs_or_completes_parts(api, job):
    for route, body in (
        ("parts", {"part_numbers": [1]}),
        ("complete", {"parts": [{"part_number": 1, "etag": "e"}]}),
    ):
        answer = api.call("POST", f"/jobs/{job['job_id']}/{route}", caller=BOB, body=body)
        assert (answer.status, answer.message) == (404, f"no job {job['job_id']}")
