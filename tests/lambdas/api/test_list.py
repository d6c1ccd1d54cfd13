"""``GET /jobs``: the caller's own jobs, newest first, filtered, in pages with owner-bound tokens."""

from __future__ import annotations

import base64
import json

import pytest

from lambdas.shared.catalog import Catalog
from lambdas.shared.jobs import JobStore
from tests.lambdas.api.conftest import ALICE, BOB, SESSION, TABLE


@pytest.fixture
def history(api) -> list[str]:
    """Alice's five jobs (oldest first) in two campaigns, and one of Bob's."""
    ids = [
        api.create(campaign=campaign, filename=f"clip-{i}.mp4").body["job_id"]
        for i, campaign in enumerate(["travel", "tech", "travel", "nature", "travel"])
    ]
    api.create(caller=BOB)
    return ids


def listing(api, caller=ALICE, **query: str):
    answer = api.call("GET", "/jobs", caller=caller, query=query)
    assert answer.status == 200, answer.body
    return answer.body


def test_the_history_is_the_callers_own_jobs_newest_first(api, history):
    body = listing(api)

    assert [job["job_id"] for job in body["jobs"]] == history[::-1]
    assert body["next"] is None
    first = body["jobs"][0]
    assert set(first) == {
        "job_id",
        "status",
        "reason",
        "filename",
        "campaign",
        "source",
        "captured_at",
        "created_at",
        "size_bytes",
        "asset_id",
    }
    assert first["filename"] == "clip-4.mp4"
    assert first["status"] == "WAITING_FOR_UPLOAD"
    [bobs] = listing(api, caller=BOB)["jobs"]
    assert bobs["job_id"] not in history


def test_pages_follow_the_next_token_to_the_end(api, history):
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": "2"} | ({"next": token} if token else {})
        body = listing(api, **query)
        seen += [job["job_id"] for job in body["jobs"]]
        pages += 1
        token = body["next"]
        if token is None:
            break
        assert len(body["jobs"]) == 2
    assert seen == history[::-1]
    assert pages == 3


def test_filters_by_campaign_and_by_derived_status(api, history):
    travel = listing(api, campaign="travel")
    assert [job["job_id"] for job in travel["jobs"]] == [history[4], history[2], history[0]]

    jobs = JobStore(TABLE, resource=SESSION.resource("dynamodb"))
    catalog = Catalog(TABLE, resource=SESSION.resource("dynamodb"))
    for n, (job_id, status) in enumerate(((history[1], "PROCESSED"), (history[2], "PROCESSING"))):
        asset_id = f"upload-{n:020d}"
        catalog.claim("upload", job_id, "etag", asset_id)
        catalog.commit_asset(
            {
                "asset_id": asset_id,
                "source": "upload",
                "source_id": job_id,
                "campaign": "tech",
                "checksum": "etag",
            }
        )
        catalog.set_status(asset_id, status)
        jobs.link_asset(job_id, asset_id, checksum_ok=True)
    jobs.mark_uploaded(history[3])
    jobs.link_asset(history[0], "upload-gone", checksum_ok=False, reason="wrong bytes")

    def ids(**query: str) -> list[str]:
        return [job["job_id"] for job in listing(api, **query)["jobs"]]

    assert ids(status="PROCESSED") == [history[1]]
    assert ids(status="RUNNING") == [history[2]]
    assert ids(status="UPLOADED") == [history[3]]
    assert ids(status="WAITING_FOR_UPLOAD") == [history[4]]
    assert ids(status="FAILED") == [history[0]]
    assert ids(status="RUNNING", campaign="travel") == [history[2]]
    failed = listing(api, status="FAILED")["jobs"][0]
    assert failed["reason"] == "wrong bytes"
    statuses = {job["job_id"]: job["status"] for job in listing(api)["jobs"]}
    assert statuses == {
        history[0]: "FAILED",
        history[1]: "PROCESSED",
        history[2]: "RUNNING",
        history[3]: "UPLOADED",
        history[4]: "WAITING_FOR_UPLOAD",
    }


def _token(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def test_tokens_are_bound_to_their_owner_and_checked(api, history):
    token = listing(api, limit="2")["next"]
    key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert key["gsi1pk"] == f"OWNER#{ALICE.owner}"

    # Bob cannot page through Alice's jobs with her token (nor forge one naming her).
    stolen = api.call("GET", "/jobs", caller=BOB, query={"next": token})
    assert (stolen.status, stolen.message) == (
        400,
        "next: the token belongs to another caller's listing",
    )
    malformed = "next: is not a page token of this API (pass the 'next' of the last answer)"
    for bad in (
        "not a token!",
        token[:-3],
        _token({**key, "pk": "ASSET#x"}),
        _token({**key, "extra": "1"}),
        _token({k: v for k, v in key.items() if k != "sk"}),
        _token([1, 2]),
        "x" * 3000,
    ):
        answer = api.call("GET", "/jobs", query={"next": bad})
        assert (answer.status, answer.message) == (400, malformed), bad


def test_bad_query_parameters_are_named(api):
    for query, message in (
        ({"limit": "0"}, "limit: input should be greater than or equal to 1"),
        ({"limit": "101"}, "limit: input should be less than or equal to 100"),
        ({"limit": "ten"}, "limit: input should be a valid integer"),
        (
            {"status": "DONE"},
            "status: input should be 'WAITING_FOR_UPLOAD', 'UPLOADED', 'RUNNING', 'PROCESSED' "
            "or 'FAILED'",
        ),
    ):
        answer = api.call("GET", "/jobs", query=query)
        assert answer.status == 400, query
        assert answer.message.startswith(message), answer.message
