"""Helpers shared by the ingest tests: fixture files, file bodies, HTTP mocks, lake snapshots."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import responses

from lambdas.shared.keys import CACHE_PREFIX

FIXTURES = Path(__file__).parent / "fixtures"
COMMONS_API = "https://commons.wikimedia.org/w/api.php"
PIXABAY_API = "https://pixabay.com/api/videos/"
UPLOAD = "https://upload.wikimedia.org/wikipedia/commons"
CDN = "https://cdn.pixabay.com/video"
CONTACT = "media-team@example.org"

# File bodies: deterministic bytes whose SHA-1 is what the fixture files declare.
LISBON_URL = f"{UPLOAD}/a/ab/Lisbon_tram_28_in_Alfama.webm"
PORTO_URL = f"{UPLOAD}/3/3c/Night_train_to_Porto.webm"
FERRY_480_URL = f"{UPLOAD}/transcoded/4/4f/Ferry_crossing_the_Tagus.ogv/Ferry_crossing_the_Tagus.ogv.480p.vp9.webm"
SINTRA_URL = f"{UPLOAD}/9/9a/Sintra_palace_timelapse.webm"
PIX_125_MEDIUM = f"{CDN}/2015/08/08/125-135736646_medium.mp4"
PIX_28860_LARGE = f"{CDN}/2019/10/23/28860-368501609_large.mp4"


def clip(seed: str, size: int) -> bytes:
    pattern = hashlib.sha256(seed.encode()).digest()
    return (pattern * (size // len(pattern) + 1))[:size]


BODIES: dict[str, tuple[bytes, str]] = {
    LISBON_URL: (clip("lisbon", 48213), "video/webm"),
    PORTO_URL: (clip("porto", 31000), "video/webm"),
    FERRY_480_URL: (clip("ferry-480p", 20480), "video/webm"),
    SINTRA_URL: (clip("sintra", 64000), "video/webm"),
    PIX_125_MEDIUM: (clip("pix-125-medium", 36211), "video/mp4"),
    PIX_28860_LARGE: (clip("pix-28860-large", 52000), "video/mp4"),
}


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture document, safe to modify in a test."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text()))


def commons_page(*pages: dict[str, Any], more: dict[str, Any] | None = None) -> dict[str, Any]:
    """An API answer holding the given file pages (optionally with a continue object)."""
    document: dict[str, Any] = {"batchcomplete": True, "query": {"pages": list(pages)}}
    if more:
        document["continue"] = more
    return document


def commons_file(title: str) -> dict[str, Any]:
    """One file page from the first search fixture, by title."""
    for page in (
        fixture("commons_search_page1.json")["query"]["pages"]
        + fixture("commons_search_page2.json")["query"]["pages"]
    ):
        if page["title"] == title:
            return page
    raise KeyError(title)


def mock_commons(rsps: responses.RequestsMock, *answers: dict[str, Any]) -> None:
    """The Commons API answering each request with the next document (the last one repeats)."""
    for answer in answers:
        rsps.add(
            responses.GET,
            COMMONS_API,
            json=answer,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )


def mock_pixabay(rsps: responses.RequestsMock, answer: dict[str, Any] | None = None) -> None:
    rsps.add(
        responses.GET,
        PIXABAY_API,
        json=fixture("pixabay_videos_travel.json") if answer is None else answer,
        headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99"},
    )


def mock_files(rsps: responses.RequestsMock, *urls: str, content_length: bool = True) -> None:
    for url in urls or tuple(BODIES):
        body, content_type = BODIES[url]
        headers = {"Content-Length": str(len(body))} if content_length else {}
        rsps.add(responses.GET, url, body=body, content_type=content_type, headers=headers)


def calls_to(rsps: responses.RequestsMock, prefix: str) -> int:
    return sum(1 for call in rsps.calls if call.request.url.startswith(prefix))


@dataclass
class Lake:
    """What the ingest step can change: raw-zone objects, pending uploads, catalog items."""

    session: Any
    bucket: str
    table: str

    @functools.cached_property
    def s3(self) -> Any:
        return self.session.client("s3")

    @functools.cached_property
    def dynamodb(self) -> Any:
        return self.session.resource("dynamodb")

    def object_keys(self, *, include_cache: bool = False) -> list[str]:
        """Object keys; the Pixabay search cache (scratch) is left out unless asked for."""
        found: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            found += [o["Key"] for o in page.get("Contents", [])]
        return sorted(k for k in found if include_cache or not k.startswith(CACHE_PREFIX))

    def versions(self) -> list[str]:
        """Every object version and delete marker, as ``key@kind``: what a versioned bucket keeps
        after a delete without a version id (the raw bucket is versioned)."""
        found: list[str] = []
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            found += [f"{v['Key']}@version" for v in page.get("Versions", [])]
            found += [f"{m['Key']}@delete-marker" for m in page.get("DeleteMarkers", [])]
        return sorted(k for k in found if not k.startswith(CACHE_PREFIX))

    def versioned(self) -> Lake:
        """Turn on versioning, as the deployed raw bucket has it."""
        self.s3.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        return self

    def pending_uploads(self) -> list[str]:
        return [
            u["Key"] for u in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        ]

    def items(self) -> list[dict[str, Any]]:
        return (
            self.session.resource("dynamodb").Table(self.table).scan(ConsistentRead=True)["Items"]
        )

    def item_keys(self) -> list[str]:
        return sorted(f"{i['pk']}|{i['sk']}" for i in self.items())

    def snapshot(self) -> tuple[list[str], list[str], list[str]]:
        return self.object_keys(), self.pending_uploads(), self.item_keys()

    def body(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def head(self, key: str) -> dict[str, Any]:
        return self.s3.head_object(Bucket=self.bucket, Key=key)

    def json(self, key: str) -> dict[str, Any]:
        return json.loads(self.body(key))

    def assert_untouched(self) -> None:
        """No object, no half-written upload and no catalog item (not even a claim)."""
        assert self.object_keys() == []
        assert self.pending_uploads() == []
        assert self.items() == []


@dataclass(frozen=True)
class FakeContext:
    """The parts of the Lambda context Powertools and the handler read."""

    function_name: str = "ingest-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ingest-test"
    aws_request_id: str = "6f1c2a8e-0000-4000-8000-000000000001"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def run(event: dict, context: FakeContext | None = None) -> dict:
    """Invoke the real entry point; imported late so Powertools reads the test environment."""
    from lambdas.ingest.handler import handler

    result: dict = handler(event, context or FakeContext())
    return result


@dataclass
class LambdaClock:
    """The Lambda's remaining time, moved on by the test (slow servers, back-off pauses)."""

    left_s: float

    def advance(self, seconds: float) -> None:
        self.left_s = max(0.0, self.left_s - seconds)

    def context(self) -> ClockedContext:
        return ClockedContext(clock=self)


@dataclass(frozen=True)
class ClockedContext(FakeContext):
    """A Lambda context whose remaining time is a ``LambdaClock``'s."""

    clock: LambdaClock = field(default_factory=lambda: LambdaClock(900.0))

    def get_remaining_time_in_millis(self) -> int:
        return int(self.clock.left_s * 1000)


def slow_files(rsps: responses.RequestsMock, clock: LambdaClock, cost_s: float, *urls: str) -> None:
    """File downloads that each take ``cost_s`` of the Lambda's time."""
    for url in urls or tuple(BODIES):
        body, content_type = BODIES[url]

        def answer(_request: Any, body: bytes = body, content_type: str = content_type) -> tuple:
            clock.advance(cost_s)
            return 200, {"Content-Type": content_type, "Content-Length": str(len(body))}, body

        rsps.add_callback(responses.GET, url, callback=answer)
