"""The ingest Lambda end to end: moto for AWS, HTTP mocked at the transport, real-shaped answers.

Every bad input checks both the error and that the data lake is unchanged: no object, no pending
multipart upload, no catalog item (not even a leftover claim).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import responses
from botocore.exceptions import ClientError

from lambdas.shared.catalog import Catalog
from lambdas.shared.errors import InvalidInput, SourceUnavailable
from lambdas.shared.jobs import JobStore
from tests.lambdas.ingest.support import (
    BODIES,
    COMMONS_API,
    FERRY_480_URL,
    LISBON_URL,
    PIX_125_MEDIUM,
    PIX_28860_LARGE,
    PIXABAY_API,
    SINTRA_URL,
    UPLOAD,
    calls_to,
    commons_file,
    commons_page,
    fixture,
    mock_commons,
    mock_files,
    mock_pixabay,
    run,
)

TS = r"\d{8}_\d{6}"
ASSET_FIELDS = {
    "bucket", "key", "asset_id", "source", "campaign", "duration_s", "size_bytes", "width", "height",
    "media_type",
}  # fmt: skip


def commons_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES", "commons")


def mock_both_sources(http: responses.RequestsMock) -> None:
    mock_commons(http, fixture("commons_search_page1.json"), fixture("commons_search_page2.json"))
    mock_pixabay(http)
    mock_files(http)


# -- campaign searches ---------------------------------------------------------------------------


def test_a_campaign_run_fills_the_batch_taking_turns_across_sources(
    ingest_env, http, lake, no_sleep, capsys
):
    # Given both sources answering, with a GFDL file ranked second on Commons
    mock_both_sources(http)

    # When the state machine asks for 4 new travel clips
    output = run({"campaign": "travel", "batch_sizes": {"video": 4}})

    # Then the sources took turns: Commons, Pixabay, Commons, Pixabay
    assert output["campaign"] == "travel"
    assert [(a["source"], a["size_bytes"]) for a in output["assets"]] == [
        ("commons", 48213),
        ("pixabay", 36211),
        ("commons", 20480),
        ("pixabay", 52000),
    ]
    assert output["skipped"] == {"non_free_license": 1}
    assert output["errors"] == []
    lisbon, pix125, ferry, _pix28860 = output["assets"]
    assert set(lisbon) == ASSET_FIELDS
    assert re.fullmatch(rf"video/commons/travel/{TS}/Lisbon_tram_28_in_Alfama\.webm", lisbon["key"])
    assert re.fullmatch(
        rf"video/pixabay/travel/{TS}/pixabay_125_tram_city_travel\.mp4", pix125["key"]
    )
    assert re.fullmatch(rf"video/commons/travel/{TS}/Ferry_crossing_the_Tagus\.webm", ferry["key"])
    assert (lisbon["duration_s"], lisbon["width"], lisbon["height"]) == (93.5, 1920, 1080)
    assert lisbon["bucket"] == ingest_env.raw_bucket
    assert lisbon["asset_id"].startswith("commons-")

    # and each file landed whole, with provenance metadata and an attribution sidecar
    assert lake.body(lisbon["key"]) == BODIES[LISBON_URL][0]
    head = lake.head(lisbon["key"])
    assert head["ContentType"] == "video/webm"
    assert head["Metadata"] == {
        "source": "commons",
        "source-id": "133133133",
        "source-url": "https://commons.wikimedia.org/wiki/File:Lisbon_tram_28_in_Alfama.webm",
        "license": "CC BY-SA 4.0",
        "checksum": head["Metadata"]["checksum"],
        "asset-id": lisbon["asset_id"],
    }
    sidecar = lake.json(lisbon["key"].replace(".webm", "_attribution.json"))
    assert sidecar["author"] == "Ana Silva & friends"
    assert sidecar["license_url"] == "https://creativecommons.org/licenses/by-sa/4.0"
    assert sidecar["sha1"] == head["Metadata"]["checksum"]
    pix_sidecar = lake.json(pix125["key"].replace(".mp4", "_attribution.json"))
    assert pix_sidecar["license"] == "Pixabay Content License"
    assert pix_sidecar["source_page_url"] == "https://pixabay.com/videos/id-125/"
    assert len(lake.object_keys()) == 8
    assert lake.pending_uploads() == []

    # and the catalog knows each asset, with its claim made permanent
    catalog = Catalog(ingest_env.catalog_table, resource=lake.dynamodb)
    stored = catalog.get_asset(lisbon["asset_id"])
    assert stored is not None
    assert (stored["status"], stored["key"], stored["license"]) == (
        "INGESTED",
        lisbon["key"],
        "CC BY-SA 4.0",
    )
    assert catalog.status_counts("travel")["INGESTED"] == 4

    # and metrics went out per source, in EMF
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    ingested = {m["source"]: m["AssetsIngested"] for m in emitted if "AssetsIngested" in m}
    assert ingested == {"commons": [2.0], "pixabay": [2.0]}
    skipped = [m for m in emitted if "AssetsSkipped" in m]
    assert [(m["source"], m["reason"], m["AssetsSkipped"]) for m in skipped] == [
        ("commons", "non_free_license", [1.0])
    ]
    assert {m["source"]: m["BytesIngested"] for m in emitted if "BytesIngested" in m} == {
        "commons": [48213.0 + 20480],
        "pixabay": [36211.0 + 52000],
    }
    assert {m["_aws"]["CloudWatchMetrics"][0]["Namespace"] for m in emitted} == {
        "MediaPipelineTest"
    }


def test_a_second_run_downloads_nothing_already_in_the_catalog(ingest_env, http, lake, no_sleep):
    # Given a first run that ingested two clips (the search answers stay the same)
    mock_commons(http, fixture("commons_search_page1.json"))
    mock_pixabay(http)
    mock_files(http)
    first = run({"campaign": "travel", "batch_sizes": {"video": 2}})
    downloads_before = calls_to(http, UPLOAD) + calls_to(http, "https://cdn.pixabay.com")
    keys_before = lake.object_keys()

    # When the same batch runs again over the same search results
    second = run({"campaign": "travel", "batch_sizes": {"video": 2}})

    # Then the known clips are skipped without a download, and the next new ones are taken
    assert second["skipped"]["already_ingested"] == 2
    assert {a["asset_id"] for a in second["assets"]}.isdisjoint(
        {a["asset_id"] for a in first["assets"]}
    )
    assert calls_to(http, UPLOAD) + calls_to(http, "https://cdn.pixabay.com") == (
        downloads_before + 2
    )
    assert set(keys_before) < set(lake.object_keys())


def test_a_clip_claimed_by_a_concurrent_run_is_left_to_that_run(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given another run that claims the top Commons hit right after this run checked it
    from lambdas.shared.keys import asset_id

    commons_only(monkeypatch)
    real_seen = Catalog.seen

    def seen_then_raced(self, source, source_id, checksum):
        answer = real_seen(self, source, source_id, checksum)
        if source_id == "133133133":
            self.claim(source, source_id, checksum, asset_id(source, source_id, checksum))
        return answer

    monkeypatch.setattr(Catalog, "seen", seen_then_raced)
    mock_commons(
        http,
        commons_page(
            commons_file("File:Lisbon tram 28 in Alfama.webm"),
            commons_file("File:Sintra palace timelapse.webm"),
        ),
    )
    mock_files(http, LISBON_URL, SINTRA_URL)

    # When this run wants one clip
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}})

    # Then it loses the conditional write, leaves the clip alone and takes the next one
    assert output["skipped"] == {"already_claimed": 1}
    assert [a["size_bytes"] for a in output["assets"]] == [64000]
    assert calls_to(http, LISBON_URL) == 0
    # and the other run's claim is still in place
    assert "SOURCE#commons#133133133|SOURCE" in lake.item_keys()


def test_a_clip_being_ingested_by_another_run_counts_as_seen(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given another run's live claim on the top Commons hit
    from lambdas.shared.keys import asset_id

    commons_only(monkeypatch)
    page = commons_file("File:Lisbon tram 28 in Alfama.webm")
    sha1 = page["videoinfo"][0]["sha1"]
    catalog = Catalog(ingest_env.catalog_table, resource=lake.dynamodb)
    catalog.claim("commons", "133133133", sha1, asset_id("commons", "133133133", sha1))
    mock_commons(http, commons_page(page, commons_file("File:Sintra palace timelapse.webm")))
    mock_files(http, LISBON_URL, SINTRA_URL)

    # When this run wants one clip
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}})

    # Then the claimed clip is not downloaded and the next one is taken
    assert output["skipped"] == {"already_ingested": 1}
    assert [a["size_bytes"] for a in output["assets"]] == [64000]
    assert calls_to(http, LISBON_URL) == 0


def test_when_one_source_is_down_the_other_fills_the_batch(ingest_env, http, lake, no_sleep):
    # Given Pixabay answering 503 on every try, Commons healthy
    mock_commons(http, fixture("commons_search_page1.json"), fixture("commons_search_page2.json"))
    http.add(responses.GET, PIXABAY_API, status=503)
    mock_files(http)

    # When a batch of 3 is asked for
    output = run({"campaign": "travel", "batch_sizes": {"video": 3}})

    # Then Commons provides all three and Pixabay's failure is reported by name
    assert [a["source"] for a in output["assets"]] == ["commons", "commons", "commons"]
    assert output["errors"] == [
        {
            "source": "pixabay",
            "error": "pixabay: pixabay.com/api/videos/ is unavailable: HTTP 503 after 4 attempts",
        }
    ]
    assert len(no_sleep) == 3  # backed off between the attempts, without really sleeping


def test_an_unconfigured_pixabay_key_skips_the_source_with_a_reason(
    ingest_env, http, lake, no_sleep, aws_session
):
    # Given the secret still holds the placeholder the stack deploys
    aws_session.client("secretsmanager").put_secret_value(
        SecretId=ingest_env.pixabay_secret_arn, SecretString="REPLACE_ME"
    )
    mock_commons(http, fixture("commons_search_page1.json"))
    mock_files(http)

    # When a batch of 2 runs
    output = run({"campaign": "travel", "batch_sizes": {"video": 2}})

    # Then Commons fills it, Pixabay is skipped with a reason, and that is not an error
    assert [a["source"] for a in output["assets"]] == ["commons", "commons"]
    assert output["skipped"] == {"non_free_license": 1, "source_not_configured": 1}
    assert output["errors"] == []
    assert calls_to(http, PIXABAY_API) == 0


def test_when_every_source_fails_the_run_fails_naming_each(ingest_env, http, lake, no_sleep):
    # Given Commons answering an error page and Pixabay rejecting the key
    http.add(
        responses.GET, COMMONS_API, body="<html>Wikimedia Error</html>", content_type="text/html"
    )
    http.add(responses.GET, PIXABAY_API, status=400, body="[ERROR 400] Invalid or missing API key")

    # When the run starts
    with pytest.raises(SourceUnavailable) as caught:
        run({"campaign": "travel", "batch_sizes": {"video": 2}})

    # Then the error names both sources and their causes, and nothing was written
    message = str(caught.value)
    assert message.startswith("every source failed: ")
    assert "commons: commons.wikimedia.org/w/api.php answered text/html instead of JSON" in message
    assert "pixabay: pixabay.com/api/videos/ answered HTTP 400" in message
    # each source named once, the endpoint without its long query, the whole line bounded
    assert "commons: commons:" not in message and "gsrsearch" not in message
    assert len(message) < 400
    assert "[ERROR 400] Invalid or missing API key" in message
    assert "test-pixabay-key-123" not in message
    lake.assert_untouched()


@pytest.mark.parametrize(
    ("answer", "content_type", "expected"),
    [
        ("<!DOCTYPE html><title>502 Bad Gateway</title>", "text/html", "instead of JSON"),
        ('{"batchcomplete": true, "query": {"pages": [', "application/json", "malformed JSON"),
        (
            '{"batchcomplete": true, "query": {"pages": "none"}}',
            "application/json",
            "no query.pages list",
        ),
    ],
    ids=["html", "malformed-json", "missing-pages"],
)
def test_an_unusable_api_answer_fails_cleanly(
    ingest_env, http, lake, no_sleep, monkeypatch, answer, content_type, expected
):
    # Given Commons is the only source and answers with something unusable
    commons_only(monkeypatch)
    http.add(responses.GET, COMMONS_API, body=answer, content_type=content_type)

    # When the run starts
    with pytest.raises(SourceUnavailable) as caught:
        run({"campaign": "travel", "batch_sizes": {"video": 1}})

    # Then the error says what was wrong and the lake is unchanged
    assert "commons" in str(caught.value)
    assert expected in str(caught.value)
    lake.assert_untouched()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"campaign": "fashion", "batch_sizes": {"video": 2}},
         "campaign: 'fashion' is not one of ['travel', 'tech', 'nature']"),
        ({"campaign": "travel", "batch_sizes": {"video": 0}},
         "batch_sizes.video: must be a whole number from 1 to 50, got 0"),
        ({"campaign": "travel", "batch_sizes": {"video": 51}},
         "batch_sizes.video: must be a whole number from 1 to 50, got 51"),
        ({"campaign": "travel", "batch_sizes": {"video": "2"}},
         "batch_sizes.video: must be a whole number from 1 to 50, got '2'"),
        ({"campaign": "travel", "batch_sizes": {"video": True}},
         "batch_sizes.video: must be a whole number from 1 to 50, got True"),
        ({"campaign": "travel", "batch_sizes": {"audio": 2}},
         "batch_sizes: unknown media type 'audio'"),
    ],
    ids=["unknown-campaign", "batch-0", "batch-51", "batch-string", "batch-bool", "unknown-media"],
)  # fmt: skip
def test_bad_campaign_input_is_rejected_before_anything_happens(
    ingest_env, http, lake, event, message
):
    # Given an event the resolve step should never have produced
    # When the handler gets it
    with pytest.raises(InvalidInput) as caught:
        run(event)

    # Then it fails with the field named, without a single request or write
    assert message in str(caught.value)
    assert len(http.calls) == 0
    lake.assert_untouched()


def test_an_empty_event_means_the_active_campaign_and_its_batch_size(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given the config parameter (travel, 2 clips) and Commons only
    commons_only(monkeypatch)
    mock_commons(http, fixture("commons_search_page1.json"))
    mock_files(http)

    # When invoked with {}
    output = run({})

    # Then the stored configuration decides
    assert output["campaign"] == "travel"
    assert len(output["assets"]) == 2


# -- per-file problems: skipped with a reason, nothing left behind ------------------------------


def single_file_run(http, monkeypatch, page: dict, *, event: dict | None = None) -> dict:
    commons_only(monkeypatch)
    mock_commons(http, commons_page(page))
    return run(event or {"campaign": "travel", "batch_sizes": {"video": 1}})


def test_a_non_free_license_is_skipped_and_nothing_is_written(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given the only hit is GFDL-only
    mock_files(http)

    # When the run meets it
    output = single_file_run(http, monkeypatch, commons_file("File:Night train to Porto.webm"))

    # Then it is skipped with the reason, never downloaded, and the lake is unchanged
    assert output == {
        "campaign": "travel",
        "assets": [],
        "skipped": {"non_free_license": 1},
        "errors": [],
    }
    assert calls_to(http, UPLOAD) == 0
    lake.assert_untouched()


def test_a_hit_with_missing_fields_is_skipped_and_nothing_is_written(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given a hit whose videoinfo has no URL and no SHA-1
    page = commons_file("File:Sintra palace timelapse.webm")
    del page["videoinfo"][0]["url"]
    del page["videoinfo"][0]["sha1"]

    # When the run meets it
    output = single_file_run(http, monkeypatch, page)

    # Then it is skipped as malformed and the lake is unchanged
    assert output["skipped"] == {"missing_fields": 1}
    assert output["assets"] == []
    lake.assert_untouched()


def test_a_file_declared_over_the_size_limit_is_not_downloaded(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given a limit of 40 000 bytes and a 48 213-byte file
    monkeypatch.setenv("MAX_FILE_BYTES", "40000")
    mock_files(http, LISBON_URL)

    # When the run meets it
    output = single_file_run(http, monkeypatch, commons_file("File:Lisbon tram 28 in Alfama.webm"))

    # Then it is skipped without a download
    assert output["assets"] == []
    assert output["skipped"] == {"too_large": 1}
    assert calls_to(http, LISBON_URL) == 0
    lake.assert_untouched()


def test_a_file_found_over_the_size_limit_while_streaming_leaves_nothing(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given a WebM derivative (no declared size) served without Content-Length, limit 10 000 bytes
    monkeypatch.setenv("MAX_FILE_BYTES", "10000")
    mock_files(http, FERRY_480_URL, content_length=False)

    # When the run streams it
    output = single_file_run(http, monkeypatch, commons_file("File:Ferry crossing the Tagus.ogv"))

    # Then the upload is aborted, the claim released, and the limit counted as the reason
    assert output["assets"] == []
    assert output["skipped"] == {"too_large": 1}
    assert calls_to(http, FERRY_480_URL) == 1
    lake.assert_untouched()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # a 6 h 0 min 1 s recording: Rekognition Video could not read it
        pytest.param({"duration": 21601.0}, "too_long", id="longer than six hours"),
        pytest.param({"mime": "image/png", "mediatype": "BITMAP"}, "not_video", id="an image"),
    ],
)
def test_a_hit_the_pipeline_cannot_take_is_skipped_before_any_download(
    ingest_env, http, lake, no_sleep, monkeypatch, change: dict[str, Any], reason: str
):
    # Given a search hit whose metadata rules it out
    page = commons_file("File:Sintra palace timelapse.webm")
    page["videoinfo"][0].update(change)

    # When the run meets it
    output = single_file_run(http, monkeypatch, page)

    # Then it is skipped with the reason, never fetched
    assert output["skipped"] == {reason: 1}
    assert calls_to(http, SINTRA_URL) == 0
    lake.assert_untouched()


def test_a_server_answering_html_instead_of_the_video_is_refused(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given the media host serving an HTML page for the file
    http.add(responses.GET, SINTRA_URL, body="<html>Not here</html>", content_type="text/html")

    # When the run fetches it
    output = single_file_run(http, monkeypatch, commons_file("File:Sintra palace timelapse.webm"))

    # Then it is refused as not video, reported, and nothing is left
    assert output["skipped"] == {"not_video": 1}
    assert output["errors"] == [
        {
            "source": "commons",
            "error": f"commons: {SINTRA_URL.removeprefix('https://')} served 'text/html', "
            "not a video",
        }
    ]
    lake.assert_untouched()


def test_a_redirect_to_a_foreign_host_is_refused_and_leaves_nothing(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given the file URL redirecting off Wikimedia
    http.add(
        responses.GET,
        SINTRA_URL,
        status=302,
        headers={"Location": "https://files.example.com/sintra.webm"},
    )

    # When the run fetches it
    output = single_file_run(http, monkeypatch, commons_file("File:Sintra palace timelapse.webm"))

    # Then the foreign host is named, nothing was fetched from it, the claim is gone
    assert output["skipped"] == {"foreign_host": 1}
    assert output["errors"] == [
        {
            "source": "commons",
            "error": "commons: refusing https://files.example.com/sintra.webm: host "
            "files.example.com is not the source's host (upload.wikimedia.org)",
        }
    ]
    assert calls_to(http, "https://files.example.com") == 0
    lake.assert_untouched()


def test_a_file_whose_sha1_does_not_match_commons_is_discarded(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given a corrupted transfer (same size, different bytes)
    http.add(
        responses.GET, SINTRA_URL, body=b"\0" * 64000, content_type="video/webm",
        headers={"Content-Length": "64000"},
    )  # fmt: skip

    # When the run streams it
    output = single_file_run(http, monkeypatch, commons_file("File:Sintra palace timelapse.webm"))

    # Then the checksum failure is reported and nothing remains
    assert output["skipped"] == {"checksum_mismatch": 1}
    assert "does not match the source's" in output["errors"][0]["error"]
    lake.assert_untouched()


def test_a_pixabay_file_shorter_than_declared_is_discarded(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given Pixabay serving a truncated rendition (no checksum: the size is the check)
    monkeypatch.setenv("SOURCES", "pixabay")
    mock_pixabay(http)
    http.add(responses.GET, PIX_125_MEDIUM, body=b"\0" * 1000, content_type="video/mp4")
    mock_files(http, PIX_28860_LARGE)

    # When a batch of 1 runs
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}})

    # Then the short file is discarded and the next hit fills the batch
    assert output["skipped"] == {"size_mismatch": 1}
    assert [a["size_bytes"] for a in output["assets"]] == [52000]
    assert lake.pending_uploads() == []
    assert not any("125" in key for key in lake.object_keys())


@pytest.mark.parametrize(
    ("title", "expected_name"),
    [
        ("File:../../etc/passwd\x07.webm", "etc_passwd.webm"),
        ("File:Tram/28\\Lisboa\tnight.webm", "Tram_28_Lisboa_night.webm"),
        ("File:Café à Lisboa – São Jorge.webm", "Cafe_a_Lisboa_Sao_Jorge.webm"),
        ("File:北京的胡同.webm", "commons_77700077.webm"),
        ("File:" + "Very long title " * 20 + ".webm", None),
    ],
    ids=["dot-dot-and-control", "separators", "accents", "non-latin", "very-long"],
)
def test_unsafe_titles_become_readable_safe_keys(
    ingest_env, http, lake, no_sleep, monkeypatch, title, expected_name
):
    # Given a free file with an awkward title
    page = commons_file("File:Sintra palace timelapse.webm")
    page["title"] = title
    mock_files(http, SINTRA_URL)

    # When it is ingested
    output = single_file_run(http, monkeypatch, page)

    # Then its key stays in the layout, ASCII, short, and readable
    [asset] = output["assets"]
    folder, name = asset["key"].rsplit("/", 1)
    assert re.fullmatch(rf"video/commons/travel/{TS}", folder)
    assert name.isascii()
    assert len(name) <= 120
    assert ".." not in name
    assert name.endswith(".webm")
    if expected_name:
        assert name == expected_name
    else:
        assert name.startswith("Very_long_title_Very_long_title")
    assert lake.body(asset["key"]) == BODIES[SINTRA_URL][0]


def run_two_titled(
    http, monkeypatch, first_title: str, second_title: str, **second_info: Any
) -> dict:
    """One run over two different free files (Sintra's and Lisbon's bytes) under these titles."""
    first = commons_file("File:Sintra palace timelapse.webm")
    first["title"] = first_title
    second = commons_file("File:Lisbon tram 28 in Alfama.webm")
    second["title"], second["index"] = second_title, 9
    second["videoinfo"][0].update(second_info)
    commons_only(monkeypatch)
    mock_commons(http, commons_page(first, second))
    mock_files(http, SINTRA_URL, LISBON_URL)
    return run({"campaign": "travel", "batch_sizes": {"video": 2}})


def test_two_titles_folding_to_the_same_name_get_distinct_keys(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given two different free files whose titles become the same safe name
    # When both are ingested in one run
    output = run_two_titled(http, monkeypatch, "File:Sintra palace.webm", "File:Sintra_palace.webm")

    # Then neither overwrote the other
    keys = [a["key"] for a in output["assets"]]
    assert len(set(keys)) == 2
    assert lake.body(keys[0]) == BODIES[SINTRA_URL][0]
    assert lake.body(keys[1]) == BODIES[LISBON_URL][0]


def test_two_files_with_one_stem_get_distinct_output_names(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given two different free files whose names differ only by extension: their renditions
    # folder, labels.json and sidecar are all named by the stem
    # When both are ingested in one run
    output = run_two_titled(
        http, monkeypatch, "File:Sintra palace.webm", "File:Sintra palace.mpg", mime="video/mpeg"
    )

    # Then their stems differ, so no output of one can overwrite the other's
    stems = [a["key"].rsplit("/", 1)[-1].rsplit(".", 1)[0] for a in output["assets"]]
    assert len(output["assets"]) == 2 and len(set(stems)) == 2, stems


def test_a_failed_catalog_commit_removes_the_file_and_releases_the_claim(
    ingest_env, http, lake, no_sleep, monkeypatch
):
    # Given a catalog whose transaction is cancelled
    def cancelled(self, asset):
        raise ClientError(
            {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}},
            "TransactWriteItems",
        )

    monkeypatch.setattr(Catalog, "commit_asset", cancelled)
    mock_files(http, SINTRA_URL)

    # When the run ingests a file
    output = single_file_run(http, monkeypatch, commons_file("File:Sintra palace timelapse.webm"))

    # Then the error is reported and neither the object, its sidecar nor the claim remain
    assert output["assets"] == []
    assert output["skipped"] == {"catalog_commit_failed": 1}
    assert "catalog commit failed" in output["errors"][0]["error"]
    lake.assert_untouched()


def test_the_output_stays_far_below_the_state_payload_limit_at_50_assets():
    # Given a report with 50 assets on the longest keys the layout allows, and many errors
    from lambdas.ingest.models import IngestedAsset
    from lambdas.ingest.service import RunReport, SkipNote

    report = RunReport("travel")
    for i in range(50):
        report.assets.append(
            IngestedAsset(
                bucket="media-pipeline-prod-raw-123456789012-eu-west-1",
                key=f"video/commons/a-forty-character-campaign-name-xxxxxxxxx/20250101_060000/{'n' * 115}{i:02d}.webm",
                asset_id=f"commons-{i:020d}",
                source="commons",
                campaign="a-forty-character-campaign-name-xxxxxxxxx",
                duration_s=21599.96,
                size_bytes=2 * 1024**3,
                width=3840,
                height=2160,
            )
        )
    for i in range(500):
        report.skips.append(SkipNote("commons", str(i), "non_free_license", "x" * 500))
        report.error("commons", "e" * 5000)

    # When it is serialized for Step Functions
    size = len(json.dumps(report.to_output()).encode())

    # Then it is a small fraction of the 256 KB limit
    assert size < 40 * 1024


# -- uploads ---------------------------------------------------------------------------------


def put_upload(lake, key: str, body: bytes, content_type: str = "video/mp4", **extra) -> str:
    answer = lake.s3.put_object(
        Bucket=lake.bucket, Key=key, Body=body, ContentType=content_type, **extra
    )
    return answer["ETag"].strip('"')


def test_an_upload_is_registered_as_an_asset_and_copied_into_the_layout(ingest_env, http, lake):
    # Given a clip a person dropped under uploads/
    body = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 4096
    etag = put_upload(lake, "uploads/team a/some clip.mp4", body, Metadata={"license": "CC0"})

    # When the upload event arrives without a campaign
    output = run({"upload": {"bucket": lake.bucket, "key": "uploads/team a/some clip.mp4"}})

    # Then it is a new asset of source "upload" in the "uploads" campaign, copied server-side
    [asset] = output["assets"]
    assert output["campaign"] == "uploads"
    assert re.fullmatch(rf"video/upload/uploads/{TS}/some_clip\.mp4", asset["key"])
    assert (asset["source"], asset["size_bytes"], asset["width"], asset["height"]) == (
        "upload",
        len(body),
        None,
        None,
    )
    assert asset["duration_s"] is None
    assert lake.body(asset["key"]) == body
    assert lake.head(asset["key"])["Metadata"]["checksum"] == etag
    assert lake.head(asset["key"])["Metadata"]["source-id"] == "uploads/team a/some clip.mp4"
    # and the original stays where it was (lifecycle deals with it)
    assert lake.body("uploads/team a/some clip.mp4") == body
    sidecar = lake.json(asset["key"].replace(".mp4", "_attribution.json"))
    assert sidecar["license"] == "CC0"
    assert sidecar["uploaded_object"] == f"s3://{lake.bucket}/uploads/team a/some clip.mp4"
    catalog = Catalog(ingest_env.catalog_table, resource=lake.dynamodb)
    assert catalog.get_asset(asset["asset_id"])["source_id"] == "uploads/team a/some clip.mp4"


def test_the_same_upload_event_twice_registers_one_asset(ingest_env, http, lake):
    # Given an upload already registered
    put_upload(lake, "uploads/clip.mov", b"\x00moov" * 100, content_type="video/quicktime")
    event = {"upload": {"bucket": lake.bucket, "key": "uploads/clip.mov"}, "campaign": "travel"}
    first = run(event)

    # When the event is delivered again
    second = run(event)

    # Then the second delivery changes nothing
    assert first["assets"][0]["key"].startswith("video/upload/travel/")
    assert second["assets"] == []
    assert second["skipped"] == {"already_ingested": 1}
    assert len([k for k in lake.object_keys() if k.startswith("video/")]) == 2  # clip + sidecar


@pytest.mark.parametrize(
    ("key", "content_type", "body", "env", "message"),
    [
        ("uploads/notes.txt", "text/plain", b"hello", {},
         ".txt is not a video or image file"),
        ("uploads/clip.mp4", "image/png", b"\x89PNG", {},
         "content type 'image/png' is not a video type"),
        ("uploads/big.mp4", "video/mp4", b"\0" * 2048, {"MAX_FILE_BYTES": "1024"},
         "2048 bytes, over the 1024-byte limit"),
        ("uploads/empty.mp4", "video/mp4", b"", {},
         "the file is empty"),
    ],
    ids=["not-video-extension", "not-video-type", "too-large", "empty"],
)  # fmt: skip
def test_a_bad_upload_is_rejected_and_nothing_is_registered(
    ingest_env, http, lake, monkeypatch, key, content_type, body, env, message
):
    # Given a file under uploads/ that is not a usable video
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    put_upload(lake, key, body, content_type=content_type)

    # When its event arrives
    with pytest.raises(InvalidInput) as caught:
        run({"upload": {"bucket": lake.bucket, "key": key}})

    # Then the error says why, and only the uploaded file itself exists
    assert message in str(caught.value)
    assert lake.object_keys() == [key]
    assert lake.pending_uploads() == []
    assert lake.items() == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"upload": {"bucket": "media-raw-test", "key": "uploads/missing.mp4"}},
         "upload s3://media-raw-test/uploads/missing.mp4 does not exist"),
        ({"upload": {"bucket": "media-raw-test", "key": "video/commons/x.mp4"}},
         "upload.key: 'video/commons/x.mp4' must name a file under uploads/"),
        ({"upload": {"bucket": "Bad_Bucket", "key": "uploads/x.mp4"}},
         "upload.bucket: 'Bad_Bucket' is not a valid bucket name"),
        ({"upload": "uploads/x.mp4"},
         "upload: must be an object"),
        ({"upload": {"bucket": "media-raw-test", "key": "uploads/x.mp4"}, "campaign": "fashion"},
         "campaign: 'fashion' is not one of ['travel', 'tech', 'nature', 'uploads']"),
    ],
    ids=["missing-object", "outside-uploads", "bad-bucket", "not-an-object", "unknown-campaign"],
)  # fmt: skip
def test_a_malformed_upload_event_is_rejected(ingest_env, http, lake, event, message):
    with pytest.raises(InvalidInput) as caught:
        run(event)
    assert message in str(caught.value)
    lake.assert_untouched()


def test_a_missing_environment_variable_is_named(ingest_env, monkeypatch):
    # Given a deployment that forgot the contact address and the bucket
    from lambdas.ingest.errors import IngestConfigurationError

    monkeypatch.delenv("CONTACT_EMAIL")
    monkeypatch.delenv("RAW_BUCKET")
    monkeypatch.setenv("MAX_FILE_BYTES", "lots")

    # When the function starts
    with pytest.raises(IngestConfigurationError) as caught:
        run({})

    # Then every problem is listed
    assert str(caught.value) == (
        "ingest configuration: RAW_BUCKET is not set; CONTACT_EMAIL is not set; "
        "MAX_FILE_BYTES must be a whole number, got 'lots'"
    )


# -- which object an upload event names (issue 14, defect 2) ---------------------------------


def test_an_upload_is_read_by_its_exact_key_never_a_look_alike(ingest_env, http, lake):
    # Given an upload "a b.mp4", and a run for a literal "a+b.mp4" (the trigger decodes the
    # event's key once; it does not exist here)
    put_upload(lake, "uploads/a b.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 512)

    # When that run ingests
    with pytest.raises(InvalidInput) as caught:
        run({"upload": {"bucket": lake.bucket, "key": "uploads/a+b.mp4"}})

    # Then it refuses, rather than guessing that "+" meant a space and taking "a b.mp4"
    assert "uploads/a+b.mp4 does not exist" in str(caught.value)
    assert lake.object_keys() == ["uploads/a b.mp4"]


def test_each_version_of_an_upload_is_its_own_asset(ingest_env, http, lake):
    # Given one key written twice in the versioned raw bucket before either run started
    lake.versioned()
    first = lake.s3.put_object(
        Bucket=lake.bucket,
        Key="uploads/clip.mp4",
        Body=b"\x00ftyp" + b"\x01" * 512,
        ContentType="video/mp4",
    )
    second = lake.s3.put_object(
        Bucket=lake.bucket,
        Key="uploads/clip.mp4",
        Body=b"\x00ftyp" + b"\x02" * 512,
        ContentType="video/mp4",
    )

    # When the run started by the first version's event runs, then the second's
    def event(answer):
        upload = {
            "bucket": lake.bucket,
            "key": "uploads/clip.mp4",
            "version_id": answer["VersionId"],
            "etag": answer["ETag"].strip('"'),
        }
        return {"upload": upload}

    [one] = run(event(first))["assets"]
    [two] = run(event(second))["assets"]

    # Then each run ingested exactly the version its event named, as two assets
    assert one["asset_id"] != two["asset_id"]
    assert lake.body(one["key"]) == b"\x00ftyp" + b"\x01" * 512
    assert lake.body(two["key"]) == b"\x00ftyp" + b"\x02" * 512
    # and the same event again is still the same asset
    assert run(event(first))["skipped"] == {"already_ingested": 1}


def test_an_upload_overwritten_after_its_event_is_refused_by_its_etag(ingest_env, http, lake):
    # Given an unversioned bucket where the object changed after its event was sent
    old = put_upload(lake, "uploads/clip.mp4", b"\x00ftyp" + b"\x01" * 512)
    put_upload(lake, "uploads/clip.mp4", b"\x00ftyp" + b"\x02" * 512)

    # When the run for the old event starts
    with pytest.raises(InvalidInput) as caught:
        run({"upload": {"bucket": lake.bucket, "key": "uploads/clip.mp4", "etag": old}})

    # Then it refuses to ingest the newer bytes in the old event's name
    assert "was overwritten after its event" in str(caught.value)
    assert lake.object_keys() == ["uploads/clip.mp4"]


def _job(lake, ingest_env, key: str, **fields) -> tuple[JobStore, str]:
    jobs = JobStore(ingest_env.catalog_table, resource=lake.dynamodb)
    job_id = "0" * 31 + "1"
    jobs.create(
        {
            "job_id": job_id,
            "owner": "arn:aws:iam::123456789012:role/cam-07",
            "created_at": "2026-12-01T10:00:00Z",
            "upload_key": key,
            "campaign": "dashcam",
            "expires_at": 1_900_000_000,
            **fields,
        }
    )
    return jobs, job_id


def test_an_upload_through_the_jobs_api_lands_in_its_jobs_campaign_and_links_the_job(
    ingest_env, http, lake
):
    # Given a job of the jobs API (campaign "dashcam") and its file uploaded to the job's key,
    # with the job id in its metadata as the presigned PUT sends it
    key = "uploads/jobs/" + "0" * 31 + "1/front.mp4"
    jobs, job_id = _job(lake, ingest_env, key)
    put_upload(lake, key, b"\x00\x00\x00\x18ftypmp42" + b"\x02" * 2048, Metadata={"job-id": job_id})

    # When the upload event arrives (the trigger names no campaign)
    output = run({"upload": {"bucket": lake.bucket, "key": key}})

    # Then the asset is in the job's campaign, and the job follows it from now on
    [asset] = output["assets"]
    assert asset["campaign"] == "dashcam"
    assert asset["key"].startswith("video/upload/dashcam/")
    job = jobs.get(job_id)
    assert job is not None and job["asset_id"] == asset["asset_id"]
    assert job["status"] == "UPLOADED"
    assert "expires_at" not in job


def test_an_upload_naming_a_job_it_does_not_belong_to_links_nothing(ingest_env, http, lake):
    # Given a job, and a file dropped elsewhere that claims to be that job's
    jobs, job_id = _job(lake, ingest_env, "uploads/jobs/" + "0" * 31 + "1/front.mp4")
    put_upload(lake, "uploads/jobs/other/front.mp4", b"\x00moov" * 300, Metadata={"job-id": job_id})

    # When it is ingested
    output = run({"upload": {"bucket": lake.bucket, "key": "uploads/jobs/other/front.mp4"}})

    # Then it is an ordinary upload of the "uploads" campaign; the job is untouched
    [asset] = output["assets"]
    assert asset["campaign"] == "uploads"
    job = jobs.get(job_id)
    assert job is not None and "asset_id" not in job and job["status"] == "WAITING_FOR_UPLOAD"
