"""Pixabay source: key handling, rendition choice, license, and the 24-hour search cache."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from lambdas.ingest.adapters import S3SearchCache, SecretReader, clear_secret_cache
from lambdas.ingest.errors import SourceNotConfigured
from lambdas.ingest.http import HttpClient
from lambdas.ingest.models import Candidate, Rejected
from lambdas.ingest.sources.pixabay import (
    LICENSE,
    PixabaySource,
    cache_key,
    parse_api_key,
    pick_rendition,
)
from tests.lambdas.ingest.support import (
    PIX_125_MEDIUM,
    PIX_28860_LARGE,
    PIXABAY_API,
    calls_to,
    fixture,
    mock_pixabay,
)

KEY = "test-pixabay-key-123"


class Clock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(aws_session, raw_bucket, clock) -> S3SearchCache:
    return S3SearchCache(aws_session.client("s3"), raw_bucket, clock=clock)


def source(cache: S3SearchCache, max_bytes: int = 2 * 1024**3) -> PixabaySource:
    http = HttpClient(source="pixabay", user_agent="ua", sleep=lambda _s: None)
    return PixabaySource(http, api_key=KEY, cache=cache, max_file_bytes=max_bytes)


def test_empty_large_rendition_falls_back_to_medium_under_the_pixabay_license(http, cache):
    # Given hits where the first has an empty "large" rendition
    mock_pixabay(http)

    # When searched
    first, second = list(source(cache).search("travel", 2))

    # Then the first uses "medium", the second "large", both versioned by id and size
    assert isinstance(first, Candidate)
    assert isinstance(second, Candidate)
    assert first.download_url == PIX_125_MEDIUM
    assert first.checksum == "pixabay:125:36211"
    assert first.size_bytes == 36211
    assert (first.width, first.height) == (1280, 720)
    assert second.download_url == PIX_28860_LARGE
    # and the license is Pixabay's own, never Creative Commons
    assert first.license == LICENSE == "Pixabay Content License"
    assert "CC" not in first.license
    assert first.attribution["author"] == "Coverr-Free-Footage"
    assert (
        first.attribution["author_url"] == "https://pixabay.com/users/Coverr-Free-Footage-1281706/"
    )
    assert first.file_name == "pixabay_125_tram_city_travel.mp4"
    assert first.mime == "video/mp4"


def test_the_search_request_carries_key_query_and_paging(http, cache):
    # Given the API
    mock_pixabay(http)

    # When searched for a campaign
    list(source(cache).search("city-life", 2))

    # Then the documented parameters are sent
    query = {k: v[0] for k, v in parse_qs(urlsplit(http.calls[0].request.url).query).items()}
    assert query == {
        "key": KEY,
        "q": "city life",
        "per_page": "50",
        "page": "1",
        "safesearch": "true",
        "order": "popular",
    }


def test_the_biggest_rendition_within_the_size_limit_is_chosen():
    # Given a hit's renditions and a 40 000-byte limit
    videos = fixture("pixabay_videos_travel.json")["hits"][1]["videos"]

    # When the rendition is picked
    name, item = pick_rendition(videos, 40_000)

    # Then "large" (52 000 bytes) is passed over for "medium"
    assert (name, item["size"]) == ("medium", 30_000)


def test_a_hit_with_every_rendition_over_the_limit_is_rejected_as_too_large(http, cache):
    # Given a 5 000-byte limit
    mock_pixabay(http)

    # When searched
    hits = list(source(cache, max_bytes=5_000).search("travel", 2))

    # Then both hits say why they cannot be used
    assert all(isinstance(h, Rejected) and h.reason == "too_large" for h in hits)
    assert "is over the 5000-byte limit" in hits[0].detail


def test_answers_are_cached_for_24_hours_without_the_api_key(http, cache, clock, lake):
    # Given a first search that reaches the API
    mock_pixabay(http)
    list(source(cache).search("travel", 2))

    # When the same search runs again from a fresh container an hour later
    clock.now += 3600
    again = list(source(cache).search("travel", 2))

    # Then the API was called once, the cache object sits under scratch/cache/pixabay/
    assert calls_to(http, PIXABAY_API) == 1
    assert len(again) == 2
    [cached] = lake.object_keys(include_cache=True)
    assert cached.startswith("scratch/cache/pixabay/")
    assert cached == cache_key(
        {"q": "travel", "per_page": "50", "safesearch": "true", "order": "popular", "page": "1"}
    )
    # and the key is nowhere in what was stored
    assert KEY not in lake.body(cached).decode()


def test_a_cached_answer_older_than_24_hours_is_fetched_again(http, cache, clock):
    # Given a cached answer
    mock_pixabay(http)
    list(source(cache).search("travel", 2))

    # When a day and a minute have passed
    clock.now += 24 * 3600 + 60
    list(source(cache).search("travel", 2))

    # Then the API is asked again
    assert calls_to(http, PIXABAY_API) == 2


def test_a_corrupt_cache_entry_is_refetched(http, cache, lake):
    # Given garbage where the cached answer should be
    key = cache_key(
        {"q": "travel", "per_page": "50", "safesearch": "true", "order": "popular", "page": "1"}
    )
    lake.s3.put_object(
        Bucket=lake.bucket, Key=key, Body=json.dumps({"fetched_at": 1e12, "payload": [1]})
    )
    mock_pixabay(http)

    # When searched
    hits = list(source(cache).search("travel", 2))

    # Then the API answer is used (and replaces the entry)
    assert len(hits) == 2
    assert calls_to(http, PIXABAY_API) == 1


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("abc-123", "abc-123"),
        ('{"api_key": "abc-123"}', "abc-123"),
        ("  abc-123\n", "abc-123"),
    ],
)
def test_the_key_is_read_raw_or_from_json(secret, expected):
    assert parse_api_key(secret) == expected


@pytest.mark.parametrize("secret", ["REPLACE_ME", "", '{"api_key": "REPLACE_ME"}', "{}"])
def test_a_placeholder_secret_means_not_configured(secret):
    with pytest.raises(SourceNotConfigured, match="pixabay: the API key secret"):
        parse_api_key(secret)


def test_the_secret_is_read_once_per_container_but_placeholders_are_not_cached():
    # Given a Secrets Manager client that counts calls, first returning the placeholder
    class Secrets:
        def __init__(self) -> None:
            self.values = ["REPLACE_ME", '{"api_key": "real"}']
            self.calls = 0

        def get_secret_value(self, **kwargs: object) -> dict[str, object]:
            self.calls += 1
            return {"SecretString": self.values[min(self.calls - 1, 1)]}

    clear_secret_cache()
    client = Secrets()
    read = SecretReader(client)

    # When the secret is read four times
    values = [read("arn:secret:pixabay") for _ in range(4)]

    # Then the placeholder was re-read, and the real value came from the cache afterwards
    assert values == [
        "REPLACE_ME",
        '{"api_key": "real"}',
        '{"api_key": "real"}',
        '{"api_key": "real"}',
    ]
    assert client.calls == 2
    clear_secret_cache()
