"""``POST /jobs``: a single presigned PUT that S3 itself holds to the declared bytes, or a multipart
upload for large files; and every malformed declaration refused with nothing created."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest

from lambdas.shared.jobs import TTL_GRACE_S
from tests.lambdas.api.conftest import (
    CLIP,
    MIB,
    PART_SIZE,
    RAW_BUCKET,
    SESSION,
    THRESHOLD,
    b64_sha256,
    job_body,
    job_items,
    nothing_created,
    sha256_hex,
)


def signature_matches(url: str, method: str, headers: dict[str, str]) -> bool:
    """Recompute the URL's SigV4 signature for a request carrying exactly ``headers``, as S3
    does on arrival; False means S3 would answer SignatureDoesNotMatch."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    pairs = [pair for pair in parts.query.split("&") if not pair.startswith("X-Amz-Signature=")]
    unsigned = parts._replace(query="&".join(pairs)).geturl()
    signed = set(query["X-Amz-SignedHeaders"][0].split(";"))
    sent = {name.lower(): value for name, value in headers.items()} | {"host": parts.netloc}
    if not signed <= set(sent):
        return False  # a signed header missing from the request
    request = AWSRequest(method=method, url=unsigned, headers={k: sent[k] for k in signed})
    request.context["timestamp"] = query["X-Amz-Date"][0]
    credentials = SESSION.get_credentials().get_frozen_credentials()
    assert query["X-Amz-Credential"][0].startswith(f"{credentials.access_key}/")
    region = query["X-Amz-Credential"][0].split("/")[2]
    auth = S3SigV4QueryAuth(credentials, "s3", region, expires=int(query["X-Amz-Expires"][0]))
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return expected == query["X-Amz-Signature"][0]


def test_a_small_file_gets_one_presigned_put_bound_to_its_type_length_checksum_and_metadata(
    api, table, s3
):
    answer = api.create()

    assert answer.status == 201, answer.body
    job = answer.body
    job_id = job["job_id"]
    assert job["status"] == "WAITING_FOR_UPLOAD"
    assert job["key"] == f"uploads/jobs/{job_id}/Harbour_at_dawn.mp4"
    upload = job["upload"]
    assert upload["method"] == "PUT"
    assert upload["headers"] == {
        "Content-Type": "video/mp4",
        "Content-Length": str(len(CLIP)),
        "x-amz-checksum-sha256": b64_sha256(CLIP),
        "x-amz-meta-job-id": job_id,
        "x-amz-meta-campaign": "travel",
        "x-amz-meta-source": "drone-7",
        "x-amz-meta-captured-at": "2026-06-01T03:30:00Z",
    }
    url = urlsplit(upload["url"])
    assert url.netloc == f"{RAW_BUCKET}.s3.amazonaws.com"
    assert url.path == "/" + job["key"]
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["3600"]
    assert set(query["X-Amz-SignedHeaders"][0].split(";")) == {
        "host",
        "content-type",
        "content-length",
        "x-amz-checksum-sha256",
        "x-amz-meta-job-id",
        "x-amz-meta-campaign",
        "x-amz-meta-source",
        "x-amz-meta-captured-at",
    }
    expires = datetime.fromisoformat(job["expires_at"])
    assert 3590 <= (expires - datetime.now(UTC)).total_seconds() <= 3600

    # The signature covers those headers: S3 refuses a PUT whose bytes differ in checksum or
    # length, or that drops or changes the metadata.
    headers = upload["headers"]
    assert signature_matches(upload["url"], "PUT", headers)
    other = b"\x00" * len(CLIP)
    assert not signature_matches(
        upload["url"], "PUT", {**headers, "x-amz-checksum-sha256": b64_sha256(other)}
    )
    assert not signature_matches(upload["url"], "PUT", {**headers, "Content-Length": "99"})
    assert not signature_matches(upload["url"], "PUT", {**headers, "Content-Type": "video/webm"})
    assert not signature_matches(
        upload["url"], "PUT", {k: v for k, v in headers.items() if k != "x-amz-meta-job-id"}
    )

    [item] = job_items(table)
    assert item["pk"] == f"JOB#{job_id}" and item["sk"] == "JOB"
    assert item["gsi1pk"] == "OWNER#arn:aws:iam::123456789012:user/alice"
    assert item["gsi1sk"] == f"{item['created_at']}#{job_id}"
    assert item["created_at"].endswith("Z")
    assert item["status"] == "WAITING_FOR_UPLOAD"
    assert item["sha256"] == sha256_hex(CLIP)
    assert item["metadata"] == {"crew": "north", "take": "3"}
    assert "upload_id" not in item
    created = datetime.fromisoformat(item["created_at"]).timestamp()
    assert abs(int(item["expires_at"]) - (created + 3600 + TTL_GRACE_S)) <= 2

    # moto intercepts the presigned URL too: the client's PUT, with exactly those headers.
    put = requests.put(upload["url"], data=CLIP, headers=headers, timeout=5)
    assert put.status_code == 200, put.text
    head = s3.head_object(Bucket=RAW_BUCKET, Key=job["key"])
    assert head["ContentType"] == "video/mp4"
    assert head["ContentLength"] == len(CLIP)
    assert head["Metadata"] == {
        "job-id": job_id,
        "campaign": "travel",
        "source": "drone-7",
        "captured-at": "2026-06-01T03:30:00Z",
    }


def test_moto_verifies_neither_checksums_nor_signatures(api, s3):
    """Why the signature check above is the proof: moto 5.2 stores a ChecksumSHA256 without
    comparing it with the body (its own TODO) and does not check presigned signatures. When this
    fails, moto started enforcing them: replace it with a real refused-upload test."""
    job = api.create().body
    wrong = b"\xff" * len(CLIP)
    s3.put_object(
        Bucket=RAW_BUCKET,
        Key=job["key"],
        Body=wrong,
        ContentType="video/mp4",
        ChecksumSHA256=b64_sha256(CLIP),
    )
    assert s3.get_object(Bucket=RAW_BUCKET, Key=job["key"])["Body"].read() == wrong
    headers = {**job["upload"]["headers"], "x-amz-checksum-sha256": b64_sha256(wrong)}
    assert requests.put(job["upload"]["url"], data=wrong, headers=headers, timeout=5).ok


def test_a_large_file_gets_a_multipart_upload_with_one_url_per_part(api, table, s3):
    size = 2 * PART_SIZE + 12_345  # over the 6 MiB threshold of the tests
    answer = api.create(
        size_bytes=size, filename="Café über alles.MOV", content_type="Video/QuickTime"
    )

    assert answer.status == 201, answer.body
    job = answer.body
    upload = job["upload"]
    assert upload["method"] == "MULTIPART"
    assert upload["part_size"] == PART_SIZE
    assert [part["part_number"] for part in upload["parts"]] == [1, 2, 3]
    assert len(upload["parts"]) == math.ceil(size / PART_SIZE)
    assert job["key"] == f"uploads/jobs/{job['job_id']}/Cafe_uber_alles.mov"
    for part in upload["parts"]:
        query = parse_qs(urlsplit(part["url"]).query)
        assert query["uploadId"] == [upload["upload_id"]]
        assert query["partNumber"] == [str(part["part_number"])]
    [open_upload] = s3.list_multipart_uploads(Bucket=RAW_BUCKET)["Uploads"]
    assert open_upload["UploadId"] == upload["upload_id"]
    assert open_upload["Key"] == job["key"]
    [item] = job_items(table)
    assert item["upload_id"] == upload["upload_id"]
    assert int(item["part_size"]) == PART_SIZE
    assert item["content_type"] == "video/quicktime"
    assert item["filename"] == "Café über alles.MOV"


def test_the_threshold_itself_is_still_one_put(api):
    assert api.create(size_bytes=THRESHOLD).body["upload"]["method"] == "PUT"
    assert api.create(size_bytes=THRESHOLD + 1).body["upload"]["method"] == "MULTIPART"


def test_optional_fields_default_and_names_without_latin_letters_keep_their_extension(api, table):
    answer = api.create(
        campaign=None,
        source=None,
        captured_at=None,
        metadata=None,
        filename="東京 夜景.webm",
        content_type="video/webm",
    )

    assert answer.status == 201, answer.body
    assert answer.body["key"].endswith("/upload.webm")
    assert set(answer.body["upload"]["headers"]) == {
        "Content-Type",
        "Content-Length",
        "x-amz-checksum-sha256",
        "x-amz-meta-job-id",
        "x-amz-meta-campaign",
    }
    assert answer.body["upload"]["headers"]["x-amz-meta-campaign"] == "uploads"
    [item] = job_items(table)
    assert item["campaign"] == "uploads"
    assert "source" not in item and "captured_at" not in item
    assert item["filename"] == "東京 夜景.webm"


def test_upper_case_checksums_are_accepted_and_stored_lower_case(api, table):
    assert api.create(sha256=sha256_hex(CLIP).upper()).status == 201
    assert job_items(table)[0]["sha256"] == sha256_hex(CLIP)


BAD_INPUT: list[tuple[dict[str, Any], int, str]] = [
    ({"filename": "clips/harbour.mp4"}, 400, "filename: must be a file name without folders"),
    ({"filename": "..\\harbour.mp4"}, 400, "filename: must be a file name without folders"),
    ({"filename": "harbour\x00.mp4"}, 400, "filename: must not contain control characters"),
    ({"filename": "line\nbreak.mp4"}, 400, "filename: must not contain control characters"),
    ({"filename": ""}, 400, "filename: must be 1 to 255 characters, got 0"),
    ({"filename": "a" * 252 + ".mp4"}, 400, "filename: must be 1 to 255 characters, got 256"),
    ({"filename": ".."}, 400, "filename: must name a file"),
    ({"filename": 42}, 400, "filename: input should be a valid string"),
    ({"content_type": "application/pdf"}, 400, "content_type: 'application/pdf' is not accepted"),
    ({"content_type": "video/mp4; codecs=avc1"}, 400, "content_type: 'video/mp4; codecs=avc1'"),
    ({"size_bytes": 0}, 400, "size_bytes: input should be greater than 0"),
    ({"size_bytes": -5}, 400, "size_bytes: input should be greater than 0"),
    ({"size_bytes": "2048"}, 400, "size_bytes: input should be a valid integer"),
    ({"size_bytes": 1.5}, 400, "size_bytes: input should be a valid integer"),
    (
        {"size_bytes": 64 * MIB + 1},
        413,
        f"size_bytes: {64 * MIB + 1} is over the limit of {64 * MIB} bytes",
    ),
    (
        {"sha256": "abc123"},
        400,
        "sha256: must be the file's SHA-256 as 64 hexadecimal characters, got 'abc123'",
    ),
    ({"sha256": "g" * 64}, 400, "sha256: must be the file's SHA-256 as 64 hexadecimal"),
    ({"sha256": "a" * 65}, 400, "sha256: must be the file's SHA-256 as 64 hexadecimal"),
    (
        {"campaign": "holidays"},
        400,
        "campaign: 'holidays' is not a configured campaign; expected one of travel, tech, nature, uploads",
    ),
    ({"campaign": "Travel"}, 400, "campaign: 'Travel' is not a configured campaign"),
    (
        {"source": "Drone 7"},
        400,
        "source: must be 1-40 lowercase letters, digits or '-', got 'Drone 7'",
    ),
    ({"captured_at": "yesterday"}, 400, "captured_at: must be an ISO-8601 date and time"),
    ({"captured_at": "2026-06-01T05:30:00"}, 400, "captured_at: must say its UTC offset (or Z)"),
    (
        {"metadata": {f"k{i}": "v" for i in range(11)}},
        400,
        "metadata: must have at most 10 keys, got 11",
    ),
    (
        {"metadata": {"Crew": "north"}},
        400,
        "metadata: key 'Crew' must be 1-64 characters of a-z, 0-9 or '-'",
    ),
    ({"metadata": {"k" * 65: "v"}}, 400, "metadata: key 'kkkk"),
    (
        {"metadata": {"crew": "n" * 257}},
        400,
        "metadata: value of 'crew' must be at most 256 characters, got 257",
    ),
    ({"metadata": {"crew": 7}}, 400, "metadata.crew: input should be a valid string"),
    ({"filename": None}, 400, "filename: is required"),
    ({"sha256": None, "size_bytes": None}, 400, "size_bytes: is required; sha256: is required"),
    ({"colour": "blue"}, 400, "colour: is not a field of this request"),
]


def test_bad_input_is_refused_naming_the_field_and_nothing_is_created(api, table, s3):
    # Every case in one moto world (nothing is created, so they cannot see each other), with a
    # size over the threshold, so a mistake would also leave a multipart upload behind.
    wrong = []
    for change, status, message in BAD_INPUT:
        answer = api.call("POST", "/jobs", body=job_body(**{"size_bytes": THRESHOLD + 1, **change}))
        if (
            answer.status != status
            or set(answer.body) != {"message"}
            or message not in answer.message
            or not nothing_created(table, s3)
        ):
            wrong.append((change, answer.status, answer.body))
    assert not wrong


MALFORMED = [
    ('{"filename": "a.mp4",', 400, "the request body is not valid JSON"),
    ("[1, 2]", 400, "the request body must be a JSON object"),
    ('"a.mp4"', 400, "the request body must be a JSON object"),
    ("", 400, "a JSON object body is required"),
    (
        json.dumps(job_body(metadata={"note": "x" * 200})) + " " * 16_384,
        413,
        "the request body is ",
    ),
]


def test_a_malformed_or_oversized_body_is_refused(api, table, s3):
    wrong = []
    for raw, status, message in MALFORMED:
        answer = api.call("POST", "/jobs", raw_body=raw)
        if answer.status != status or not answer.message.startswith(message):
            wrong.append((raw[:40], answer.status, answer.body))
    assert not wrong
    assert nothing_created(table, s3)
    oversized = api.call("POST", "/jobs", raw_body=MALFORMED[-1][0])
    assert oversized.message == (
        f"the request body is {len(MALFORMED[-1][0])} bytes, over the limit of 16384"
    )


def test_a_body_that_is_not_json_is_refused(api, table, s3):
    answer = api.call(
        "POST", "/jobs", raw_body="filename=a.mp4", headers={"content-type": "text/plain"}
    )
    assert answer.status == 415
    assert answer.message == "the request body must be JSON"
    assert nothing_created(table, s3)


def test_a_failed_job_write_aborts_the_multipart_upload(api, table, s3, monkeypatch):
    from lambdas.api import handler

    _, services = handler._dependencies()

    def fail(item: dict[str, Any]) -> None:
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(services.jobs, "create", fail)
    with pytest.raises(RuntimeError, match="DynamoDB is down"):
        api.create(size_bytes=THRESHOLD + 1)
    assert nothing_created(table, s3)
