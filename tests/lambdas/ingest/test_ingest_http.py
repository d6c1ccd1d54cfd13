"""The HTTP client: retries and back-off, JSON checks, redirect policy, secrets kept out of errors."""

from __future__ import annotations

import pytest
import responses

from lambdas.ingest.errors import BadSourceResponse, DownloadFailed, ForeignHost, SourceHttpError
from lambdas.ingest.http import HostPolicy, HttpClient, parse_retry_after, redact
from lambdas.shared.errors import SourceUnavailable
from tests.lambdas.ingest.support import COMMONS_API, PIXABAY_API, fixture

API = HostPolicy.of("commons.wikimedia.org")
MEDIA = HostPolicy.of("upload.wikimedia.org")
FILE = "https://upload.wikimedia.org/wikipedia/commons/a/ab/Clip.webm"


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> HttpClient:
    return HttpClient(
        source="commons",
        user_agent="media-pipeline-ingest/1.0 (media-team@example.org)",
        sleep=waits.append,
        jitter=lambda: 1.0,
        max_attempts=4,
        backoff_s=1.0,
        max_wait_s=30.0,
    )


def test_a_503_with_retry_after_is_retried_after_exactly_that_wait(rsps, client, waits):
    # Given the API is briefly unavailable and says when to come back
    rsps.add(responses.GET, COMMONS_API, status=503, headers={"Retry-After": "3"})
    rsps.add(responses.GET, COMMONS_API, json={"batchcomplete": True})

    # When the client asks for JSON
    data = client.get_json(COMMONS_API, params={"action": "query"}, policy=API)

    # Then it waited the announced 3 s once, and got the answer
    assert data == {"batchcomplete": True}
    assert waits == [3.0]
    assert len(rsps.calls) == 2


def test_without_retry_after_the_waits_grow_exponentially_then_the_source_is_named(
    rsps, client, waits
):
    # Given a source that keeps answering 502
    rsps.add(responses.GET, COMMONS_API, status=502)

    # When the client asks for JSON
    with pytest.raises(SourceHttpError) as caught:
        client.get_json(COMMONS_API, policy=API)

    # Then it tried four times with doubling waits, and the error names the source and the cause
    assert len(rsps.calls) == 4
    assert waits == [1.0, 2.0, 4.0]
    assert "commons:" in str(caught.value)
    assert "HTTP 502 after 4 attempts" in str(caught.value)
    assert isinstance(caught.value, SourceUnavailable)


def test_a_retry_after_longer_than_the_cap_is_not_waited_for(rsps, client, waits):
    # Given a 429 asking for a two-minute pause
    rsps.add(responses.GET, COMMONS_API, status=429, headers={"Retry-After": "120"})

    # When the client asks for JSON
    with pytest.raises(SourceHttpError) as caught:
        client.get_json(COMMONS_API, policy=API)

    # Then it gives up at once instead of retrying early or sleeping inside the Lambda
    assert len(rsps.calls) == 1
    assert waits == []
    assert "asked to retry after 120 s, longer than the 30 s this run waits" in str(caught.value)


def test_pixabay_rate_limit_reset_header_is_used_when_retry_after_is_missing(rsps, waits):
    # Given Pixabay's 429 that only carries its rate-limit headers
    client = HttpClient(source="pixabay", user_agent="ua", sleep=waits.append)
    rsps.add(responses.GET, PIXABAY_API, status=429, headers={"X-RateLimit-Reset": "7"})
    rsps.add(responses.GET, PIXABAY_API, json={"hits": [], "totalHits": 0})

    # When the client asks again
    client.get_json(PIXABAY_API, policy=HostPolicy.of("pixabay.com"))

    # Then it waited until the window reset
    assert waits == [7.0]


def test_timeouts_are_retried_and_then_reported_with_the_source_name(rsps, client, waits):
    # Given a server that never answers in time
    import requests

    rsps.add(responses.GET, COMMONS_API, body=requests.ReadTimeout("read timed out"))

    # When the client asks for JSON
    with pytest.raises(SourceHttpError) as caught:
        client.get_json(COMMONS_API, policy=API)

    # Then every attempt was made and the error says what happened
    assert len(rsps.calls) == 4
    assert str(caught.value).startswith("commons: commons.wikimedia.org/w/api.php is unavailable")
    assert "ReadTimeout after 4 attempts" in str(caught.value)


def test_mediawiki_maxlag_is_retried_with_its_retry_after(rsps, client, waits):
    # Given MediaWiki answering maxlag (HTTP 200, an error header and Retry-After)
    rsps.add(
        responses.GET,
        COMMONS_API,
        json=fixture("commons_maxlag.json"),
        headers={"MediaWiki-API-Error": "maxlag", "Retry-After": "5", "X-Database-Lag": "7"},
    )
    rsps.add(responses.GET, COMMONS_API, json={"batchcomplete": True})

    # When the client asks with a maxlag-aware retry rule
    data = client.get_json(
        COMMONS_API,
        policy=API,
        retry_if=lambda r: r.headers.get("MediaWiki-API-Error") == "maxlag",
    )

    # Then it backed off as told and returned the next answer
    assert data == {"batchcomplete": True}
    assert waits == [5.0]


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        pytest.param(
            "<!DOCTYPE html><html><head><title>Wikimedia Error</title></head></html>",
            "text/html; charset=utf-8",
            # the content type and how the body starts
            ("text/html; charset=utf-8 instead of JSON", "<!DOCTYPE html>"),
            id="a proxy error page instead of the API",
        ),
        pytest.param(
            '{"batchcomplete": true, "query": {"pa',
            "application/json",
            ("answered malformed JSON",),
            id="a truncated JSON body",
        ),
    ],
)
def test_an_answer_that_is_not_json_is_a_bad_response(
    rsps, client, body: str, content_type: str, said: tuple[str, ...]
):
    # Given an answer that is not the JSON the API sends
    rsps.add(responses.GET, COMMONS_API, body=body, content_type=content_type)

    # When the client asks for JSON
    with pytest.raises(BadSourceResponse) as caught:
        client.get_json(COMMONS_API, policy=API)

    # Then the error names the source and says what came instead
    message = str(caught.value)
    assert message.startswith("commons: ")
    for fragment in said:
        assert fragment in message


def test_an_html_answer_to_a_long_query_reads_as_one_short_sentence(rsps, client):
    # Given the real search request (a dozen parameters) answered by an HTML error page
    rsps.add(
        responses.GET,
        COMMONS_API,
        body="<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Wikimedia Error</title>"
        + "<style>"
        + "x" * 2000
        + "</style>",
        content_type="text/html; charset=utf-8",
    )
    params = {
        "action": "query", "format": "json", "formatversion": "2", "generator": "search",
        "gsrsearch": "filetype:video travel", "gsrnamespace": "6", "gsrlimit": "50",
        "prop": "videoinfo", "viprop": "url|size|mime|mediatype|sha1|extmetadata|derivatives",
        "viextmetadatafilter": "LicenseShortName|License|LicenseUrl|Artist|Credit|Attribution|"
        "AttributionRequired|UsageTerms|ObjectName|ImageDescription",
        "viextmetadatalanguage": "en", "maxlag": "5",
    }  # fmt: skip

    # When the client asks for JSON
    with pytest.raises(BadSourceResponse) as caught:
        client.get_json(COMMONS_API, params=params, policy=API)

    # Then the message says who answered what instead of JSON, without the request's query
    message = str(caught.value)
    assert message.startswith(
        "commons: commons.wikimedia.org/w/api.php answered text/html; charset=utf-8 instead of "
        "JSON (body starts '<!DOCTYPE html> <html lang=en>"
    ), message
    assert "gsrsearch" not in message and "viprop" not in message
    assert len(message) <= 200


def test_redirects_are_followed_within_the_media_host(rsps, client):
    # Given a file that moved within upload.wikimedia.org
    moved = "https://upload.wikimedia.org/wikipedia/commons/b/bc/Clip.webm"
    rsps.add(responses.GET, FILE, status=301, headers={"Location": moved})
    rsps.add(responses.GET, moved, body=b"\x1aE\xdf\xa3webm", content_type="video/webm")

    # When the client opens the download
    with client.open_stream(FILE, policy=MEDIA) as download:
        body = b"".join(download.chunks())

    # Then the bytes come from the new location
    assert body == b"\x1aE\xdf\xa3webm"
    assert download.url == moved


def test_a_redirect_to_a_foreign_host_is_refused_before_it_is_requested(rsps, client):
    # Given a media URL redirecting somewhere else
    rsps.add(
        responses.GET, FILE, status=302, headers={"Location": "https://evil.example.net/clip.webm"}
    )

    # When the client opens the download
    with pytest.raises(ForeignHost) as caught:
        client.open_stream(FILE, policy=MEDIA)

    # Then the foreign URL was never requested and the error names both hosts
    assert [c.request.url for c in rsps.calls] == [FILE]
    assert "host evil.example.net is not the source's host (upload.wikimedia.org)" in str(
        caught.value
    )


def test_plain_http_is_refused_even_on_the_right_host(client):
    # Given an http:// URL on the media host
    # When the client opens it
    with pytest.raises(ForeignHost) as caught:
        client.open_stream("http://upload.wikimedia.org/x.webm", policy=MEDIA)

    # Then it is refused without a request
    assert "refusing http://upload.wikimedia.org/x.webm" in str(caught.value)


def test_a_missing_file_is_a_download_failure_of_that_item(rsps, client):
    # Given a 404 on a media file
    rsps.add(responses.GET, FILE, status=404)

    # When the client opens it
    with pytest.raises(DownloadFailed) as caught:
        client.open_stream(FILE, policy=MEDIA)

    # Then it is an item error naming the status, not a source outage
    assert "answered HTTP 404" in str(caught.value)


def test_the_api_key_never_appears_in_error_messages(rsps, waits):
    # Given Pixabay rejecting a request that carries the key in its query
    client = HttpClient(source="pixabay", user_agent="ua", sleep=waits.append)
    rsps.add(
        responses.GET,
        PIXABAY_API,
        status=400,
        body="[ERROR 400] Invalid or missing API key (https://pixabay.com/api/docs/).",
    )

    # When the request fails
    with pytest.raises(SourceHttpError) as caught:
        client.get_json(
            PIXABAY_API,
            params={"key": "sekret-123", "q": "travel"},
            policy=HostPolicy.of("pixabay.com"),
        )

    # Then the message explains the failure and masks the key
    message = str(caught.value)
    assert "sekret-123" not in message
    assert "key=" not in message  # the query is never part of a message
    assert "[ERROR 400] Invalid or missing API key" in message


def test_retry_after_accepts_http_dates_and_seconds():
    # Given both forms of Retry-After
    # When parsed against a fixed clock
    # Then both give seconds to wait
    assert parse_retry_after("17") == 17.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert parse_retry_after("soon") is None


def test_redact_masks_only_secret_parameters():
    assert (
        redact("https://pixabay.com/api/videos/?key=abc&q=city+tram")
        == "https://pixabay.com/api/videos/?key=***&q=city+tram"
    )
