"""Faults inside one run: a bad hit, a failing step, the Lambda deadline.

Every asset lands or fails alone: a hit with values no real clip has is skipped with its reason,
a step that fails for one candidate undoes that candidate's writes completely (no object version,
no delete marker, no claim), and the run stops before the Lambda deadline with what it committed.
"""

from __future__ import annotations

import json
import math

import pytest
import responses

from lambdas.ingest.budget import RESERVE_S, START_BUDGET_S
from lambdas.ingest.errors import ItemError
from lambdas.ingest.http import Download
from lambdas.ingest.models import Candidate, Rejected
from lambdas.shared.catalog import Catalog
from tests.lambdas.ingest.support import (
    BODIES,
    COMMONS_API,
    PIX_125_MEDIUM,
    PIX_28860_LARGE,
    SINTRA_URL,
    LambdaClock,
    commons_file,
    commons_page,
    fixture,
    mock_commons,
    mock_files,
    mock_pixabay,
    run,
    slow_files,
)

# -- defect 1: one bad hit must not fail the run -------------------------------------------------


def test_hits_with_absurd_numbers_are_skipped_and_the_batch_goes_on(
    ingest_env, http, lake, no_sleep
):
    # Given Commons ranking first a clip whose duration is NaN and later one 10**40 pixels wide,
    # with good clips around them on Commons and Pixabay
    page1 = fixture("commons_search_page1.json")
    lisbon = next(p for p in page1["query"]["pages"] if p["pageid"] == 133133133)
    lisbon["videoinfo"][0]["duration"] = math.nan
    page2 = fixture("commons_search_page2.json")
    page2["query"]["pages"][0]["videoinfo"][0]["width"] = 10**40
    mock_commons(http, page1, page2)
    mock_pixabay(http)
    mock_files(http)
    lake.versioned()

    # When a batch of 4 is asked for
    output = run({"campaign": "travel", "batch_sizes": {"video": 4}})

    # Then both bad hits are skipped with their reason and the good clips of both sources land
    assert [(a["source"], a["size_bytes"]) for a in output["assets"]] == [
        ("commons", 20480),
        ("pixabay", 36211),
        ("pixabay", 52000),
    ]
    assert output["skipped"] == {"invalid_metadata": 2, "non_free_license": 1}
    # and the bad hits were never downloaded, so no version or delete marker is left of them
    assert not any("Lisbon" in key or "Sintra" in key for key in lake.versions())
    assert all(key.endswith("@version") for key in lake.versions())


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("duration", math.nan, "duration"),
        ("duration", math.inf, "duration"),
        ("duration", -3.0, "duration"),
        ("width", 10**40, "width"),
        ("height", -720, "height"),
        ("width", 1.5, "width"),
        ("size", 10**40, "size"),
        ("sha1", "not-a-sha1", "sha1"),
        ("descriptionurl", {"href": "x"}, "descriptionurl"),
        ("descriptionurl", "javascript:alert(1)", "descriptionurl"),
    ],
)
def test_commons_rejects_a_hit_whose_values_no_real_clip_has(field, value, says):
    from lambdas.ingest.http import HttpClient
    from lambdas.ingest.sources.commons import CommonsSource

    # Given a Commons hit with one impossible value, followed by a good hit
    bad = commons_file("File:Sintra palace timelapse.webm")
    bad["videoinfo"][0][field] = value
    good = commons_file("File:Lisbon tram 28 in Alfama.webm")
    good["index"] = 9
    commons = CommonsSource(
        HttpClient(source="commons", user_agent="ua", sleep=lambda _s: None),
        max_file_bytes=2 * 1024**3,
    )
    with responses.RequestsMock() as rsps:
        mock_commons(rsps, commons_page(bad, good))

        # When searched
        hits = list(commons.search("travel", 2))

    # Then the bad hit is rejected naming the field, and the search goes on to the good one
    first, second = hits
    assert isinstance(first, Rejected), first
    assert first.reason == "invalid_metadata"
    assert says in first.detail
    assert len(first.detail) <= 300
    assert isinstance(second, Candidate) and second.source_id == "133133133"


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (("duration",), math.nan, "duration"),
        (("duration",), "12", "duration"),
        (("videos", "medium", "width"), 10**40, "width"),
        (("videos", "medium", "size"), math.nan, "size"),
        (("user",), "x" * 10_000, None),
        (("tags",), ", ".join(["t" * 500] * 200), None),
        (("pageURL",), "ftp://pixabay.com/videos/id-125/", "pageURL"),
        (("user_id",), {"id": 1}, "user_id"),
    ],
)
def test_pixabay_rejects_or_bounds_every_value_of_a_hit(
    http, aws_session, raw_bucket, path, value, says
):
    from lambdas.ingest.adapters import S3SearchCache
    from lambdas.ingest.http import HttpClient
    from lambdas.ingest.sources.pixabay import PixabaySource

    # Given a Pixabay answer whose first hit carries one odd value
    answer = fixture("pixabay_videos_travel.json")
    target = answer["hits"][0]
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    mock_pixabay(http, answer)
    pixabay = PixabaySource(
        HttpClient(source="pixabay", user_agent="ua", sleep=lambda _s: None),
        api_key="k",
        cache=S3SearchCache(aws_session.client("s3"), raw_bucket),
        max_file_bytes=2 * 1024**3,
    )

    # When searched
    first, second = list(pixabay.search("travel", 2))

    # Then an impossible number or URL rejects the hit naming the field; long text is shortened
    if says is not None:
        assert isinstance(first, Rejected), first
        assert first.reason == "invalid_metadata"
        assert says in first.detail
    else:
        assert isinstance(first, Candidate)
        assert len(first.title) <= 300
        assert len(first.file_name) <= 300
        assert all(len(v) <= 2000 for v in first.attribution.values() if isinstance(v, str)), (
            first.attribution
        )
        assert len(first.attribution["tags"]) <= 20
    assert isinstance(second, Candidate) and second.source_id == "28860"


@pytest.mark.parametrize(
    "field",
    ["duration_s", "width", "height", "size_bytes"],
)
def test_a_candidate_with_a_non_finite_or_absurd_number_cannot_be_built(field):
    # Given the contract every source (including a future third one) builds candidates through
    good = dict(
        source="commons", source_id="1", checksum="c", title="t", file_name="t.webm",
        download_url="https://upload.wikimedia.org/x.webm", mime="video/webm", license="CC0",
        license_url=None, source_page_url=None,
    )  # fmt: skip
    Candidate(**good, duration_s=1.0, width=2, height=2, size_bytes=1)
    for bad in (math.nan, math.inf, -1, 10**40, True):
        with pytest.raises(ValueError, match=field):
            Candidate(**{**good, field: bad})


def test_an_unexpected_failure_of_one_clip_is_undone_completely_and_the_run_goes_on(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given a catalog that fails with a non-AWS error for the first clip only (a bug, a type the
    # serializer refuses...), and a versioned raw bucket as deployed
    lake.versioned()
    monkeypatch.setenv("SOURCES", "commons")
    mock_commons(http, fixture("commons_search_page1.json"), fixture("commons_search_page2.json"))
    mock_files(http)
    real_commit = Catalog.commit_asset
    calls: list[str] = []

    def flaky(self, item):
        calls.append(item["asset_id"])
        if len(calls) == 1:
            raise TypeError("Infinity and NaN not supported")
        return real_commit(self, item)

    monkeypatch.setattr(Catalog, "commit_asset", flaky)

    # When a batch of 2 runs
    output = run({"campaign": "travel", "batch_sizes": {"video": 2}})

    # Then that clip is skipped with the reason, the next two land
    assert [a["size_bytes"] for a in output["assets"]] == [20480, 64000]
    assert output["skipped"] == {"catalog_commit_failed": 1, "non_free_license": 1}
    assert "catalog commit failed" in output["errors"][0]["error"]
    # and nothing of the failed clip is left: no object version, no delete marker, no claim
    assert not any("Lisbon" in key for key in lake.versions()), lake.versions()
    assert len(lake.versions()) == 4  # two clips and their sidecars
    assert not any(calls[0].split("-", 1)[1] in key for key in lake.item_keys())


def test_when_one_source_breaks_the_other_sources_work_is_kept(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given Commons healthy and Pixabay's source raising an unexpected error mid-search
    lake.versioned()
    mock_commons(http, fixture("commons_search_page1.json"), fixture("commons_search_page2.json"))
    mock_files(http)
    from lambdas.ingest.sources import pixabay

    def broken(self, query):
        raise KeyError("hits")

    monkeypatch.setattr(pixabay.PixabaySource, "_page", broken)

    # When a batch of 3 runs
    output = run({"campaign": "travel", "batch_sizes": {"video": 3}})

    # Then Commons fills the batch, Pixabay is reported by name, and only whole clips are left
    assert [a["source"] for a in output["assets"]] == ["commons", "commons", "commons"]
    assert [e["source"] for e in output["errors"]] == ["pixabay"]
    assert "pixabay" in output["errors"][0]["error"]
    assert lake.pending_uploads() == []
    assert all(key.endswith("@version") for key in lake.versions())
    assert len(lake.versions()) == 6


def test_an_upload_whose_commit_fails_leaves_no_version_of_its_copy(
    ingest_env, http, lake, monkeypatch
):
    # Given a versioned raw bucket, a dropped clip, and a catalog that refuses the commit
    lake.versioned()
    lake.s3.put_object(
        Bucket=lake.bucket, Key="uploads/clip.mp4", Body=b"\x00moov" * 100, ContentType="video/mp4"
    )

    def refuse(self, item):
        raise TypeError("Infinity and NaN not supported")

    monkeypatch.setattr(Catalog, "commit_asset", refuse)

    # When the upload is registered
    with pytest.raises(ItemError, match="catalog commit failed"):
        run({"upload": {"bucket": lake.bucket, "key": "uploads/clip.mp4"}})

    # Then only the original upload remains: no copy, no sidecar, no delete marker, no claim
    assert lake.versions() == ["uploads/clip.mp4@version"]
    assert lake.items() == []


# -- defect 11: Pixabay's declared size is approximate ------------------------------------------


@pytest.mark.parametrize(("delta", "lands"), [(-1, True), (+1, True), (-2000, False)])
def test_a_pixabay_file_a_little_off_its_declared_size_is_kept(
    ingest_env, http, lake, no_sleep, monkeypatch, delta, lands
):
    # Given Pixabay declaring 36 211 bytes for a rendition whose file is a little (or far) off
    monkeypatch.setenv("SOURCES", "pixabay")
    mock_pixabay(http)
    body = BODIES[PIX_125_MEDIUM][0]
    body = body + b"\0" * delta if delta > 0 else body[:delta]
    http.add(responses.GET, PIX_125_MEDIUM, body=body, content_type="video/mp4")
    mock_files(http, PIX_28860_LARGE)

    # When a batch of 1 runs
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}})

    # Then a byte or so off is within the tolerance and lands; a truncated file does not
    if lands:
        assert [a["size_bytes"] for a in output["assets"]] == [len(body)]
        assert output["skipped"] == {}
    else:
        assert output["skipped"] == {"size_mismatch": 1}
        assert [a["size_bytes"] for a in output["assets"]] == [52000]


def test_the_size_tolerance_never_lifts_the_maximum_file_size(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given a limit exactly at the declared size and a file one byte longer
    monkeypatch.setenv("SOURCES", "pixabay")
    monkeypatch.setenv("MAX_FILE_BYTES", "36211")
    answer = fixture("pixabay_videos_travel.json")
    answer["hits"] = answer["hits"][:1]
    answer["totalHits"] = 1
    mock_pixabay(http, answer)
    http.add(
        responses.GET,
        PIX_125_MEDIUM,
        body=BODIES[PIX_125_MEDIUM][0] + b"\0",
        content_type="video/mp4",
    )

    # When it is streamed
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}})

    # Then the hard limit wins over the tolerance
    assert output["assets"] == []
    assert output["skipped"] == {"too_large": 1}
    lake.assert_untouched()


# -- defect 3: stop before the Lambda deadline, return what was committed ----------------------
#
# The guard reads the Lambda context's remaining time (``get_remaining_time_in_millis``) before
# every hit, every HTTP attempt and pause, and on every chunk of a download. Here the context's
# time is a ``LambdaClock`` the slow servers and back-off pauses move on.


def test_a_run_near_its_deadline_returns_what_it_committed(ingest_env, http, lake, monkeypatch):
    # Given 200 s of Lambda time and downloads that take 40 s each
    clock = LambdaClock(200.0)
    monkeypatch.setattr("lambdas.ingest.http.default_sleep", clock.advance)
    mock_commons(http, fixture("commons_search_page1.json"), fixture("commons_search_page2.json"))
    mock_pixabay(http)
    slow_files(http, clock, 40.0)

    # When a batch of 4 is asked for
    output = run({"campaign": "travel", "batch_sizes": {"video": 4}}, clock.context())

    # Then the run returns while it still has its reserve, with the three assets it committed
    # (the state machine processes them), and says it stopped for time
    assert [a["size_bytes"] for a in output["assets"]] == [48213, 36211, 20480]
    assert output["skipped"] == {"non_free_license": 1, "out_of_time": 1}
    catalog = Catalog(ingest_env.catalog_table, resource=lake.dynamodb)
    for asset in output["assets"]:
        assert catalog.get_asset(asset["asset_id"])["status"] == "INGESTED"
    assert lake.pending_uploads() == []
    assert clock.left_s >= RESERVE_S


def test_a_search_that_keeps_failing_near_the_deadline_is_given_up_in_time(
    ingest_env, http, lake, monkeypatch
):
    # Given 125 s left, and Commons answering 503 (Retry-After 10 s) after 20 s every time
    monkeypatch.setenv("SOURCES", "commons")
    clock = LambdaClock(125.0)
    monkeypatch.setattr("lambdas.ingest.http.default_sleep", clock.advance)

    def overloaded(_request):
        clock.advance(20.0)
        return 503, {"Retry-After": "10"}, "busy"

    http.add_callback(responses.GET, COMMONS_API, callback=overloaded)

    # When the run starts
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}}, clock.context())

    # Then the source is given up while the reserve is still there, and the run says why
    assert clock.left_s >= RESERVE_S
    assert output["assets"] == []
    assert output["skipped"] == {"out_of_time": 1}
    (error,) = output["errors"]
    assert error["error"].startswith("commons: gave up on commons.wikimedia.org/w/api.php after")
    assert error["error"].endswith("the run's time is nearly up")
    lake.assert_untouched()


def test_pages_of_rejected_hits_do_not_run_past_the_deadline(ingest_env, http, lake, monkeypatch):
    # Given 200 s left and a search whose pages (30 s each) hold only non-free files, forever
    monkeypatch.setenv("SOURCES", "commons")
    clock = LambdaClock(200.0)
    porto = commons_file("File:Night train to Porto.webm")

    def page(_request):
        clock.advance(30.0)
        body = commons_page(porto, more={"gsroffset": 1, "continue": "gsroffset||"})
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    http.add_callback(responses.GET, COMMONS_API, callback=page)

    # When the run pages through them
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}}, clock.context())

    # Then it stops paging before a new clip could no longer fit, and returns
    assert output["assets"] == []
    assert output["skipped"]["out_of_time"] == 1
    assert clock.left_s >= START_BUDGET_S - 30.0


def test_a_file_still_streaming_when_the_reserve_is_reached_is_abandoned(
    ingest_env, http, lake, monkeypatch
):
    # Given one Commons clip whose download is slow: 10 s of Lambda time per 4 KiB chunk
    monkeypatch.setenv("SOURCES", "commons")
    clock = LambdaClock(200.0)
    mock_commons(http, commons_page(commons_file("File:Sintra palace timelapse.webm")))
    mock_files(http, SINTRA_URL)
    real_chunks = Download.chunks

    def slow_chunks(self, chunk_bytes=0):
        for chunk in real_chunks(self, 4096):
            clock.advance(10.0)
            yield chunk

    monkeypatch.setattr(Download, "chunks", slow_chunks)

    # When the run streams it
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}}, clock.context())

    # Then the download is abandoned at the reserve, nothing half-written is left, and the run
    # returns in time to report it
    assert output["assets"] == []
    assert output["skipped"] == {"out_of_time": 1}
    assert "the run's time is nearly up" in output["errors"][0]["error"]
    assert clock.left_s >= RESERVE_S - 10.0
    lake.assert_untouched()
