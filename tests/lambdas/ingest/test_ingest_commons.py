"""Wikimedia Commons source: the search request, continuation, licenses, attribution, formats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from lambdas.ingest.errors import BadSourceResponse
from lambdas.ingest.http import HttpClient
from lambdas.ingest.models import Candidate, Rejected
from lambdas.ingest.sources.commons import CommonsSource, html_to_text, is_free_license
from tests.lambdas.ingest.support import (
    FERRY_480_URL,
    LISBON_URL,
    commons_file,
    commons_page,
    fixture,
    mock_commons,
)

UA = "media-pipeline-ingest/1.0 (media-team@example.org) python-requests/2.34.2"


@pytest.fixture
def commons() -> CommonsSource:
    http = HttpClient(source="commons", user_agent=UA, sleep=lambda _s: None)
    return CommonsSource(http, max_file_bytes=2 * 1024**3)


def only_hit(rsps: responses.RequestsMock, commons: CommonsSource, page: dict[str, Any]) -> Any:
    """Serve one result page holding ``page``; what the search makes of it (one hit)."""
    mock_commons(rsps, commons_page(page))
    [hit] = list(commons.search("travel", 1))
    return hit


def query_of(call: responses.Call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def test_search_asks_for_video_files_with_everything_needed_and_a_descriptive_agent(rsps, commons):
    # Given the API with the first result page
    mock_commons(rsps, fixture("commons_search_page2.json"))

    # When the first hit is taken
    next(commons.search("travel", 2))

    # Then the request is a namespace-6 keyword search for videos with videoinfo and maxlag
    query = query_of(rsps.calls[0])
    assert query["action"] == "query"
    assert query["generator"] == "search"
    assert query["gsrnamespace"] == "6"
    assert query["gsrsearch"] == "filetype:video travel"
    assert query["prop"] == "videoinfo"
    assert query["viprop"].split("|") == [
        "url", "size", "mime", "mediatype", "sha1", "extmetadata", "derivatives",
    ]  # fmt: skip
    assert query["maxlag"] == "5"
    assert query["formatversion"] == "2"
    assert rsps.calls[0].request.headers["User-Agent"] == UA


def test_hits_come_in_rank_order_and_continuation_sends_the_whole_continue_object(rsps, commons):
    # Given two pages, the first with a continue object and its pages out of rank order
    mock_commons(rsps, fixture("commons_search_page1.json"), fixture("commons_search_page2.json"))

    # When every hit is read
    hits = list(commons.search("travel", 2))

    # Then they follow the search index, across pages
    assert [h.source_id for h in hits] == ["133133133", "98765432", "55512345", "77700077"]
    # and the second request carried back both continue fields
    second = query_of(rsps.calls[1])
    assert second["gsroffset"] == "3"
    assert second["continue"] == "gsroffset||"
    assert second["gsrsearch"] == "filetype:video travel"
    assert len(rsps.calls) == 2


def test_pages_are_fetched_only_as_hits_are_consumed(rsps, commons):
    # Given two pages
    mock_commons(rsps, fixture("commons_search_page1.json"), fixture("commons_search_page2.json"))

    # When only the first hit is taken
    next(commons.search("travel", 2))

    # Then the second page was not requested (serial, polite, no wasted requests)
    assert len(rsps.calls) == 1


def test_a_free_webm_becomes_a_candidate_with_checksum_and_plain_text_attribution(rsps, commons):
    # Given a CC BY-SA WebM whose extmetadata is HTML, when searched
    hit = only_hit(rsps, commons, commons_file("File:Lisbon tram 28 in Alfama.webm"))

    # Then it is fetched as is, verified by SHA-1, and credited in plain text
    assert isinstance(hit, Candidate)
    assert hit.download_url == LISBON_URL
    assert hit.mime == "video/webm"
    assert hit.size_bytes == 48213
    assert hit.expected_sha1 == hit.checksum
    assert len(hit.checksum) == 40
    assert (hit.duration_s, hit.width, hit.height) == (93.5, 1920, 1080)
    assert hit.license == "CC BY-SA 4.0"
    assert hit.license_url == "https://creativecommons.org/licenses/by-sa/4.0"
    assert hit.attribution["author"] == "Ana Silva & friends"
    assert hit.attribution["credit"] == "Own work"
    assert hit.attribution["description"] == (
        "Tram 28 climbing through Alfama, Lisbon – early morning."
    )
    assert hit.attribution["attribution_required"] is True
    assert hit.attribution["credit_line"] == (
        "Lisbon tram 28 in Alfama by Ana Silva & friends, CC BY-SA 4.0 "
        "(https://creativecommons.org/licenses/by-sa/4.0), via Wikimedia Commons"
    )


# Real extmetadata from Commons file pages built with {{Artwork}}/{{Information}} and Creator or
# Wikidata-backed templates: the visible text is followed by hidden QuickStatements labels.
QS_OBJECT_NAME = (
    '<span lang="en">Tram 28 in Alfama</span>\n'
    '<span style="display: none;">label QS:Len,"Tram 28 in Alfama"</span>'
)
QS_ARTIST = (
    '<bdi><a href="https://www.wikidata.org/wiki/Q12345" class="extiw" title="d:Q12345">'
    '<span title="Portuguese photographer">Ana Silva</span></a></bdi>'
    '<div style="display:none"><span>creator QS:P170,Q12345</span><br>'
    '<span style="DISPLAY : NONE">nested</span></div>'
    "<span hidden>hidden attribute</span>"
    ' &amp; <span class="mw-empty-elt"></span>friends'
)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (QS_OBJECT_NAME, "Tram 28 in Alfama"),
        (QS_ARTIST, "Ana Silva & friends"),
        ("<p>Line one<br/>line two</p><style>p{}</style><script>x()</script>", "Line one line two"),
        ('<span style="color:red;display:none !important">x</span>shown', "shown"),
        ('<span style="visibility: hidden">x</span>shown', "shown"),
        ('a<img src="x.png" style="display:none">b', "ab"),
        ('<span style="display: inline">kept</span>', "kept"),
    ],
    ids=[
        "qs-label",
        "creator-qs-nested",
        "script-style",
        "important",
        "visibility",
        "void",
        "shown",
    ],
)
def test_hidden_elements_are_dropped_from_extmetadata_text(html, text):
    assert html_to_text(html) == text


def test_hidden_quickstatements_labels_never_reach_the_attribution(rsps, commons):
    # Given a file whose ObjectName and Artist carry hidden QuickStatements labels, as real
    # Wikidata-backed file pages do
    page = commons_file("File:Lisbon tram 28 in Alfama.webm")
    meta = page["videoinfo"][0]["extmetadata"]
    meta["ObjectName"]["value"] = QS_OBJECT_NAME
    meta["Artist"]["value"] = QS_ARTIST

    # When searched
    hit = only_hit(rsps, commons, page)

    # Then the title, the author and the credit line hold only the visible text
    assert isinstance(hit, Candidate)
    assert hit.attribution["title"] == "Tram 28 in Alfama"
    assert hit.attribution["author"] == "Ana Silva & friends"
    assert hit.attribution["credit_line"].startswith("Tram 28 in Alfama by Ana Silva & friends, ")
    for value in hit.attribution.values():
        assert "QS:" not in str(value) and "hidden" not in str(value)


def test_a_non_free_license_is_rejected_with_the_license_named(rsps, commons):
    # Given a GFDL-only file, when searched
    hit = only_hit(rsps, commons, commons_file("File:Night train to Porto.webm"))

    # Then it is turned down, saying which license and what is accepted
    assert isinstance(hit, Rejected)
    assert hit.reason == "non_free_license"
    assert hit.detail == (
        "commons File:Night train to Porto.webm: license 'GFDL' is not CC0, public domain, "
        "CC BY or CC BY-SA"
    )


def test_ogg_theora_is_taken_from_the_best_webm_derivative(rsps, commons):
    # Given an Ogg file with VP9 and VP8 transcodes at 360p and 480p, when searched
    hit = only_hit(rsps, commons, commons_file("File:Ferry crossing the Tagus.ogv"))

    # Then the 480p VP9 WebM is fetched, versioned by original SHA-1 plus transcode
    assert isinstance(hit, Candidate)
    assert hit.download_url == FERRY_480_URL
    assert hit.mime == "video/webm"
    assert hit.file_name == "Ferry crossing the Tagus.webm"
    assert hit.checksum.endswith(":480p.vp9.webm")
    assert hit.expected_sha1 is None  # the transcode's bytes differ from the original's
    assert hit.size_bytes is None
    assert (hit.width, hit.height) == (640, 480)
    assert hit.license == "CC BY 3.0"


def _without_transcodes(info: dict[str, Any]) -> None:
    info["derivatives"] = info["derivatives"][:1]


def _as_jpeg(info: dict[str, Any]) -> None:
    info.update(mime="image/jpeg", mediatype="BITMAP")


@pytest.mark.parametrize(
    ("title", "change", "reason", "said"),
    [
        pytest.param(
            # MediaConvert cannot read Theora, and the WebM transcodes are not ready
            "File:Ferry crossing the Tagus.ogv",
            _without_transcodes,
            "unsupported_format",
            "application/ogg cannot be read by MediaConvert",
            id="ogg without a webm derivative",
        ),
        pytest.param(
            "File:Sintra palace timelapse.webm",
            _as_jpeg,
            "not_video",
            "image/jpeg (BITMAP) is not video",
            id="a still image",
        ),
    ],
)
def test_a_file_mediaconvert_cannot_take_is_rejected_with_a_reason(
    rsps,
    commons,
    title: str,
    change: Callable[[dict[str, Any]], None],
    reason: str,
    said: str,
):
    # Given a hit whose videoinfo says it is not a video MediaConvert reads
    page = commons_file(title)
    change(page["videoinfo"][0])

    # When searched
    hit = only_hit(rsps, commons, page)

    # Then it is rejected with the reason, saying why
    assert isinstance(hit, Rejected)
    assert hit.reason == reason
    assert said in hit.detail


def test_missing_fields_are_rejected_with_the_fields_named(rsps, commons):
    # Given a hit whose videoinfo lost its sha1 and duration
    page = commons_file("File:Sintra palace timelapse.webm")
    del page["videoinfo"][0]["sha1"]
    del page["videoinfo"][0]["duration"]
    mock_commons(rsps, commons_page(page, {"pageid": 5, "ns": 6, "index": 9}))

    # When searched
    hits = list(commons.search("travel", 1))

    # Then both hits are rejected, each saying what is missing
    assert [(h.reason, h.detail) for h in hits if isinstance(h, Rejected)] == [
        (
            "missing_fields",
            "commons File:Sintra palace timelapse.webm: missing or empty ['sha1', 'duration']",
        ),
        ("missing_fields", "commons: hit without pageid/title"),
    ]


def test_no_results_is_an_empty_search(rsps, commons):
    # Given MediaWiki's answer for a search without hits (no "query" at all)
    mock_commons(rsps, {"batchcomplete": True})

    # When searched
    # Then nothing is offered, and that is not an error
    assert list(commons.search("travel", 2)) == []


def test_an_api_error_is_a_bad_response_naming_the_code(rsps, commons):
    # Given an API error document
    mock_commons(
        rsps,
        {"error": {"code": "badvalue", "info": 'Unrecognized value for parameter "prop".'}},
    )

    # When searched
    with pytest.raises(BadSourceResponse) as caught:
        list(commons.search("travel", 2))

    # Then the code and text are in the message
    assert str(caught.value) == (
        'commons: API error badvalue: Unrecognized value for parameter "prop".'
    )


def test_a_body_without_pages_is_a_bad_response(rsps, commons):
    mock_commons(rsps, {"batchcomplete": True, "query": {"searchinfo": {}}})
    with pytest.raises(BadSourceResponse, match=r"no query\.pages list"):
        list(commons.search("travel", 2))


@pytest.mark.parametrize(
    ("license_code", "short_name", "free"),
    [
        ("cc-by-sa-4.0", "CC BY-SA 4.0", True),
        ("cc-by-3.0-de", "CC BY 3.0 DE", True),
        ("cc-by-sa-3.0,2.5,2.0,1.0", "CC BY-SA 3.0", True),
        ("cc0", "CC0", True),
        ("pd", "Public domain", True),
        (None, "CC BY-SA 3.0 IGO", True),
        ("gfdl", "GFDL", False),
        ("gfdl", "GFDL, CC BY-SA 3.0", True),
        ("cc-by-nc-4.0", "CC BY-NC 4.0", False),
        ("cc-by-nd-2.0", "CC BY-ND 2.0", False),
        (None, "Fair use", False),
        (None, None, False),
    ],
)
def test_free_licenses_are_cc0_pd_cc_by_and_cc_by_sa_only(license_code, short_name, free):
    assert is_free_license(license_code, short_name) is free
