"""Finalize: every Get* page is read, the labels document is written, the catalog updated."""

from __future__ import annotations

import copy
import json
import posixpath
from typing import Any

import pytest
from botocore.stub import Stubber

import lambdas.finalize.handler as finalize_module
from lambdas.finalize.handler import (
    AttributionMissing,
    FinalizeRequest,
    FinalizeSettings,
    Storage,
    finalize,
    handler,
)
from lambdas.shared.catalog import CatalogError
from lambdas.shared.errors import InvalidInput
from lambdas.shared.keys import AssetKeys
from lambdas.shared.rekognition import (
    AnalysisResultsUnavailable,
    RekognitionLimitExceeded,
    RekognitionVideo,
)
from lambdas.transcode.plan import PlanAsset, build_plan
from localworld.world import labels_schema
from tests.lambdas.pipeline.builders import (
    DEPLOYMENT,
    PROCESSED_BUCKET,
    RAW_BUCKET,
    RAW_KEY,
    TABLE,
    PagedRekognition,
    cue_segment,
    ingested_asset,
    label_detection,
    label_page,
    mediaconvert_job,
    moderation_detection,
    moderation_page,
    segment_page,
    service_model,
    shot_segment,
    ts_segment,
    validate,
)

KEYS = AssetKeys(RAW_KEY)
JOBS = {
    "labels": "labels-job-0001",
    "moderation": "moderation-job-0001",
    "segments": "segments-job-0001",
}
SIDECAR = {  # as ingest writes it next to the raw file
    "asset_id": "wikimedia-3f2a9c1e8b7d6a5f4e3d",
    "source": "wikimedia",
    "source_id": "File:Lisbon_tram_28.webm",
    "campaign": "travel",
    "title": "Lisbon tram 28",
    "license": "CC BY-SA 4.0",
    "license_url": "https://creativecommons.org/licenses/by-sa/4.0",
    "source_page_url": "https://commons.wikimedia.org/wiki/File:Lisbon_tram_28.webm",
    "download_url": "https://upload.wikimedia.org/wikipedia/commons/a/ab/Lisbon_tram_28.webm",
    "checksum": "sha1-abc",
    "retrieved_at": "2025-01-01T06:00:03+00:00",
    "author": "Jane Doe",
    "credit": "Own work",
}
SETTINGS = FinalizeSettings(
    catalog_table=TABLE, processed_bucket=PROCESSED_BUCKET, min_label_confidence=70.0, top_labels=15
)


def transcode_result() -> dict:
    """What the state machine keeps from the plan and the MediaConvert .sync output."""
    plan = build_plan(
        PlanAsset.parse(ingested_asset()), processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT
    )
    job = mediaconvert_job(plan["settings"], plan["user_metadata"])
    output_shape = service_model("mediaconvert").operation_model("GetJob").output_shape
    assert validate(job, output_shape) == []
    return {"outputs": plan["outputs"], "job_ids": [job["Job"]["Id"]]}


def finalize_event(asset: dict) -> dict:
    """What the workflow sends: the plan's outputs and analysis choice, the Parallel's work."""
    return {
        "asset": asset,
        "transcode": transcode_result(),
        "analysed": {
            "input": "proxy",
            "video": {"bucket": PROCESSED_BUCKET, "key": "video/x/proxy.mp4"},
            "reason": "Rekognition Video reads H.264 in MP4 or MOV only; this is VP9 in WebM",
        },
        "analysis": [
            {"feature": f, "job_id": JOBS[f], "status": "SUCCEEDED"}
            for f in ("labels", "moderation", "segments")
        ],
    }


def run_finalize(asset: dict, client: Any, catalog: Any) -> Any:
    """Finalize one asset as the handler does, with this Rekognition client and catalog."""
    return finalize(
        FinalizeRequest.parse(finalize_event(asset)),
        settings=SETTINGS,
        storage=Storage(),
        rekognition=RekognitionVideo(client),
        catalog=catalog,
    )


@pytest.fixture
def processing(committed_asset, catalog, buckets):
    """An asset mid-pipeline: PROCESSING, its sidecar in raw, thumbnails in processed."""
    catalog.set_status(committed_asset["asset_id"], "PROCESSING")
    buckets.put_object(Bucket=RAW_BUCKET, Key=KEYS.attribution, Body=json.dumps(SIDECAR))
    for i in range(10):
        buckets.put_object(
            Bucket=PROCESSED_BUCKET, Key=f"{KEYS.thumbnails_prefix}thumb.{i:07d}.jpg", Body=b"jpg"
        )
    return committed_asset


def stub_results(stubber: Stubber) -> None:
    """Two pages of segments, three of labels, two of moderation, in the order finalize reads."""

    def params(feature, token=None, **extra):
        p = {"JobId": JOBS[feature], "MaxResults": 1000, **extra}
        if token:
            p["NextToken"] = token
        return p

    stubber.add_response(
        "get_segment_detection",
        segment_page(
            [
                cue_segment("ColorBars", 0, 2000),
                shot_segment(0, 0, 29_999),
                shot_segment(1, 30_000, 59_999),
            ],
            job_id=JOBS["segments"],
            next_token="s1",
        ),
        params("segments"),
    )
    stubber.add_response(
        "get_segment_detection",
        segment_page(
            [shot_segment(2, 60_000, 93_499), cue_segment("EndCredits", 88_000, 93_499)],
            job_id=JOBS["segments"],
        ),
        params("segments", "s1"),
    )
    sort = {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"}
    tram = ("Vehicle", "Transportation")
    stubber.add_response(
        "get_label_detection",
        label_page(
            [
                label_detection(1000, "Tram", 98.0, tram, ("Vehicles and Automotive",)),
                label_detection(1000, "Street", 91.0),
                label_detection(1500, "Tram", 97.0, tram),
                label_detection(2000, "Person", 65.0),  # below MIN_LABEL_CONFIDENCE
            ],
            job_id=JOBS["labels"],
            next_token="l1",
        ),
        params("labels", **sort),
    )
    stubber.add_response(
        "get_label_detection",
        label_page(
            [
                label_detection(31_000, "Tram", 95.0, tram),
                label_detection(31_000, "Building", 88.0),
                label_detection(32_000, "Building", 90.0),
            ],
            job_id=JOBS["labels"],
            next_token="l2",
        ),
        params("labels", "l1", **sort),
    )
    stubber.add_response(
        "get_label_detection",
        label_page(
            [
                label_detection(61_000, "River", 85.0),
                label_detection(62_000, "Tram", 80.0, tram),
                label_detection(90_000, "Sky", 75.0),
            ],
            job_id=JOBS["labels"],
        ),
        params("labels", "l2", **sort),
    )
    stubber.add_response(
        "get_content_moderation",
        moderation_page(
            [
                moderation_detection(45_000, "Violence", 62.0, "", 1),
                moderation_detection(45_000, "Weapons", 62.0, "Violence", 2),
            ],
            job_id=JOBS["moderation"],
            next_token="m1",
        ),
        params("moderation", SortBy="TIMESTAMP"),
    )
    stubber.add_response(
        "get_content_moderation",
        moderation_page(
            [
                moderation_detection(47_000, "Weapons", 71.0, "Violence", 2),
            ],
            job_id=JOBS["moderation"],
        ),
        params("moderation", "m1", SortBy="TIMESTAMP"),
    )


def read_labels(s3) -> dict:
    """The written document, which must match the published schema (lambdas/finalize)."""
    document = json.loads(s3.get_object(Bucket=PROCESSED_BUCKET, Key=KEYS.labels)["Body"].read())
    errors = [f"{list(e.path)}: {e.message}" for e in labels_schema().iter_errors(document)]
    assert errors == [], errors
    return document


@pytest.fixture
def deployed_handler(catalog, rekognition, monkeypatch, lambda_context):
    """The Lambda handler, its dependency factory swapped for one with stubbed Rekognition."""
    client, stubber = rekognition
    monkeypatch.setattr(
        finalize_module,
        "_dependencies",
        lambda: (SETTINGS, Storage(), RekognitionVideo(client), catalog),
    )
    return lambda event: handler(event, lambda_context), stubber


def test_handler_writes_the_labels_document_and_updates_the_catalog(
    processing, catalog, buckets, deployed_handler, capsys
):
    # Given an asset whose transcode and three analyses succeeded, with paged results
    invoke, stubber = deployed_handler
    stub_results(stubber)
    # When finalize runs
    result = invoke(finalize_event(processing))
    # Then every page was read (all NextTokens followed, nothing left unread)
    stubber.assert_no_pending_responses()
    # And the state machine gets a small summary
    assert result == {
        "asset_id": processing["asset_id"],
        "status": "PROCESSED",
        "labels_key": KEYS.labels,
        "top_labels": ["Tram", "Building", "Street", "River", "Sky"],
    }
    # And the document holds the summary people read
    doc = read_labels(buckets)
    assert doc["schema_version"] == "2.6" and doc["generated_at"].endswith("Z")
    assert doc["asset"] == {
        "asset_id": processing["asset_id"],
        "source": "wikimedia",
        "source_id": "File:Lisbon_tram_28.webm",
        "campaign": "travel",
        "title": "Lisbon tram 28",
        "raw_bucket": RAW_BUCKET,
        "raw_key": RAW_KEY,
        "source_url": "https://commons.wikimedia.org/wiki/File:Lisbon_tram_28.webm",
        "download_url": "https://upload.wikimedia.org/wikipedia/commons/a/ab/Lisbon_tram_28.webm",
        "checksum": "sha1-abc",
        "retrieved_at": "2025-01-01T06:00:03+00:00",
    }
    assert doc["license"] == {
        "name": "CC BY-SA 4.0",
        "url": "https://creativecommons.org/licenses/by-sa/4.0",
    }
    assert (doc["attribution"]["author"], doc["attribution"]["credit"]) == ("Jane Doe", "Own work")
    assert doc["video"] == {
        "codec": "h264",
        "format": "QuickTime / MOV",
        "duration_ms": 93_500,
        "duration_s": 93.5,
        "frame_rate": 29.97,
        "width": 1280,
        "height": 720,
        "color_range": "LIMITED",
        "audio": [{"codec": "aac", "duration_ms": 93_500, "sample_rate": 48_000, "channels": 2}],
    }
    tram = doc["summary"]["top_labels"][0]
    assert tram == {
        "name": "Tram",
        "occurrences": 4,
        "max_confidence": 98.0,
        "mean_confidence": 92.5,
        "first_seen_ms": 1000,
        "last_seen_ms": 62_000,
        "time_ranges_ms": [[1000, 1500], [31_000, 31_000], [62_000, 62_000]],
        "time_ranges_truncated": False,
        "parents": ["Transportation", "Vehicle"],
        "categories": ["Vehicles and Automotive"],
        "aliases": [],
        "instances": {"count": 0, "top": []},
    }
    assert "Person" not in {label["name"] for label in doc["summary"]["top_labels"]}
    shots = doc["summary"]["shots"]
    assert [s["index"] for s in shots] == [0, 1, 2]
    assert [label["name"] for label in shots[1]["labels"]] == ["Tram", "Building"]
    assert shots[0]["start_timecode"] == "00:00:00:00"
    assert [c["type"] for c in doc["summary"]["technical_cues"]] == ["ColorBars", "EndCredits"]
    moderation = doc["summary"]["moderation"]
    assert moderation["flagged"] is True and moderation["categories"] == ["Violence"]
    weapons = next(f for f in moderation["flags"] if f["name"] == "Weapons")
    expected_flag = {
        "parent_name": "Violence",
        "top_level_category": "Violence",
        "occurrences": 2,
        "max_confidence": 71.0,
        "timestamps_ms": [45_000, 47_000],
    }
    assert {key: weapons[key] for key in expected_flag} == expected_flag
    assert doc["renditions"] == {
        "bucket": PROCESSED_BUCKET,
        "mp4_key": f"{KEYS.mp4_prefix}proxy.mp4",
        "hls_manifest_key": f"{KEYS.hls_prefix}index.m3u8",
    }
    assert len(doc["thumbnails"]["keys"]) == 10
    assert doc["thumbnails"]["poster_key"] == f"{KEYS.thumbnails_prefix}thumb.0000005.jpg"
    assert doc["processing"]["transcode_job_id"] == "1735711260123-ab1c2d"
    assert doc["processing"]["transcode_job_ids"] == ["1735711260123-ab1c2d"]
    # and it says which file Rekognition read, and why
    assert doc["processing"]["analysed"] == {
        "input": "proxy",
        "bucket": PROCESSED_BUCKET,
        "key": "video/x/proxy.mp4",
        "reason": "Rekognition Video reads H.264 in MP4 or MOV only; this is VP9 in WebM",
    }
    assert doc["processing"]["analysis"]["labels"] == {
        "job_id": JOBS["labels"],
        "model_version": "3.0",
    }
    # And the catalog shows the asset as processed, with its keys, and indexed by label
    item = catalog.get_asset(processing["asset_id"])
    assert item["status"] == "PROCESSED"
    assert item["labels_key"] == KEYS.labels
    assert item["top_labels"] == ["Tram", "Building", "Street", "River", "Sky"]
    assert item["mp4_key"] == f"{KEYS.mp4_prefix}proxy.mp4"
    assert item["hls_key"] == f"{KEYS.hls_prefix}index.m3u8"
    assert item["thumbnail_key"] == doc["thumbnails"]["poster_key"]
    assert float(item["duration_s"]) == 93.5
    assert item["moderation_flagged"] is True
    assert catalog.status_counts("travel") == {
        "INGESTED": 0,
        "PROCESSING": 0,
        "PROCESSED": 1,
        "FAILED": 0,
    }
    assert [hit["asset_id"] for hit in catalog.assets_with_label("tram")] == [
        processing["asset_id"]
    ]
    # And per-asset metrics were emitted as EMF
    metrics = {}
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    for blob in blobs:
        for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            metrics[definition["Name"]] = blob[definition["Name"]][0]
    # And the service-level metrics, in their own dimension sets: a processed outcome, and the
    # time from the catalog record to labels.json (a 93.5 s clip: in the objective's scope)
    slo = {
        (
            b["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            b.get("outcome") or b.get("scope"),
        )
        for b in blobs
        if b.get("service") == "slo"
    }
    assert slo == {("AssetOutcome", "processed"), ("TimeToLabelsSeconds", "objective")}
    (latency,) = [b for b in blobs if "TimeToLabelsSeconds" in b]
    assert latency["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Seconds"
    assert 0 <= latency["TimeToLabelsSeconds"][0] < 600
    assert metrics["VideoMinutesTranscoded"] == pytest.approx(93.5 / 60)
    assert metrics["VideoMinutesAnalyzed"] == pytest.approx(3 * 93.5 / 60)
    assert metrics["LabelsFound"] == 5 and metrics["ModerationFlags"] == 2


def test_many_thousand_detections_are_aggregated_page_by_page(processing, catalog, buckets):
    # Given a 50-minute video: 30 pages of 1,000 label detections (40 labels recurring every
    # 4 s), 3 pages of moderation detections and 100 shots
    names = [f"Label{i:02d}" for i in range(40)]

    def labels(i):
        return label_page(
            [
                label_detection((i * 1000 + n) * 100, names[(i * 1000 + n) % 40], 71.0 + (n % 29))
                for n in range(1000)
            ],
            job_id=JOBS["labels"],
            duration_ms=3_000_000,
        )

    def moderation(i):
        return moderation_page(
            [
                moderation_detection((i * 1000 + n) * 1000, "Suggestive", 80.0, "", 1)
                for n in range(1000)
            ],
            job_id=JOBS["moderation"],
        )

    def segments(_):
        return segment_page(
            [shot_segment(n, n * 30_000, n * 30_000 + 29_999) for n in range(100)],
            job_id=JOBS["segments"],
        )

    fake = PagedRekognition(
        {
            "get_label_detection": (30, labels),
            "get_content_moderation": (3, moderation),
            "get_segment_detection": (1, segments),
        }
    )
    # When finalize runs
    result = run_finalize(processing, fake, catalog)
    # Then every page was requested, in order, each with the previous page's NextToken
    label_calls = [p for op, p in fake.calls if op == "get_label_detection"]
    assert len(label_calls) == 30
    assert [p.get("NextToken") for p in label_calls] == [None] + [
        f"get_label_detection-{i}" for i in range(1, 30)
    ]
    # And no page was kept once the next one was requested (memory stays bounded)
    assert fake.max_alive <= 1
    # And all detections were counted, while the document stays small
    assert result.label_detections == 30_000 and result.labels_found == 40
    top = result.document["summary"]["top_labels"]
    assert len(top) == 15 and all(label["occurrences"] == 750 for label in top)
    assert all(
        len(label["time_ranges_ms"]) == 50 and label["time_ranges_truncated"] for label in top
    )
    flag = result.document["summary"]["moderation"]["flags"][0]
    assert flag["occurrences"] == 3000 and len(flag["timestamps_ms"]) == 100
    assert sum(len(s["labels"]) for s in result.document["summary"]["shots"]) <= 100 * 10
    assert (
        len(buckets.get_object(Bucket=PROCESSED_BUCKET, Key=KEYS.labels)["Body"].read()) < 400_000
    )
    assert result.duration_s == 3000.0


def test_missing_sidecar_falls_back_to_the_catalog_license(
    processing, catalog, buckets, rekognition
):
    # Given an attribution sidecar that is missing (the catalog record has the license)
    buckets.delete_object(Bucket=RAW_BUCKET, Key=KEYS.attribution)
    client, stubber = rekognition
    stub_results(stubber)
    # When finalize runs
    result = run_finalize(processing, client, catalog)
    # Then the license and credit come from the catalog record
    assert result.document["license"]["name"] == "CC BY-SA 4.0"
    assert result.document["attribution"] == {
        "title": "Lisbon tram 28",
        "author": "Jane Doe",
        "source_url": "https://commons.wikimedia.org/wiki/File:Lisbon_tram_28.webm",
    }
    assert result.document["asset"]["source_url"].startswith("https://commons.wikimedia.org/")


def test_asset_without_any_license_is_not_published(catalog, buckets, rekognition, asset):
    # Given an asset with no sidecar and no license in the catalog
    catalog.claim("wikimedia", "x", "c", asset["asset_id"])
    catalog.commit_asset({**asset, "duration_s": None, "source_id": "x", "checksum": "c"})
    client, _ = rekognition  # no responses queued: any Get* call would fail the test
    # When finalize runs
    with pytest.raises(AttributionMissing, match="no license"):
        run_finalize(asset, client, catalog)
    # Then no result was paged through and nothing was written
    assert buckets.list_objects_v2(Bucket=PROCESSED_BUCKET).get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            {"JobStatus": "FAILED", "StatusMessage": "Unsupported codec."},
            AnalysisResultsUnavailable,
        ),
        ({"JobStatus": "IN_PROGRESS"}, AnalysisResultsUnavailable),
        ("ResourceNotFoundException", AnalysisResultsUnavailable),
        ("InvalidParameterException", AnalysisResultsUnavailable),
        ("ThrottlingException", RekognitionLimitExceeded),
    ],
)
def test_unreadable_results_raise_typed_errors(processing, catalog, rekognition, response, error):
    # Given segment results that cannot be read
    client, stubber = rekognition
    if isinstance(response, str):
        stubber.add_client_error(
            "get_segment_detection", service_error_code=response, http_status_code=400
        )
    else:
        stubber.add_response("get_segment_detection", response)
    # When finalize runs
    with pytest.raises(error) as raised:
        run_finalize(processing, client, catalog)
    # Then the error names the job, and the asset is still PROCESSING (the Catch marks it)
    assert JOBS["segments"] in str(raised.value) or "Throttling" in str(raised.value)
    assert catalog.get_asset(processing["asset_id"])["status"] == "PROCESSING"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["analysis"].pop(), "segments"),
        (lambda e: e["analysis"].append({"feature": "faces", "job_id": "x"}), "feature"),
        (lambda e: e["transcode"]["outputs"].pop("mp4_key"), "mp4_key"),
        (lambda e: e["asset"].pop("key"), "asset.key"),
        (lambda e: e["analysis"][0].pop("job_id"), "job_id"),
        (lambda e: e["transcode"].update(job_ids="1-abc"), "transcode.job_ids"),
        (lambda e: e["transcode"].update(job_ids=[""]), "transcode.job_ids"),
        (lambda e: e["analysed"].update(input="raw"), "analysed.input"),
        (lambda e: e["analysed"]["video"].pop("key"), "analysed.video.key"),
    ],
)
def test_bad_input_names_the_field(mutate, field):
    event = copy.deepcopy(finalize_event(ingested_asset()))
    mutate(event)
    with pytest.raises(InvalidInput) as raised:
        FinalizeRequest.parse(event)
    assert field in str(raised.value)


def test_settings_from_environment():
    env = {"CATALOG_TABLE": "t", "PROCESSED_BUCKET": "b"}
    settings = FinalizeSettings.from_env(env)
    assert (settings.min_label_confidence, settings.top_labels) == (70.0, 15)
    with pytest.raises(ValueError, match="TOP_LABELS must be at least 1, got '0'"):
        FinalizeSettings.from_env({**env, "TOP_LABELS": "0"})


def test_label_instances_aliases_and_segment_ends_are_kept_in_bounded_form():
    # Given label pages with bounding boxes and aliases, seven sightings of a car (more boxes than
    # the document keeps), and one detection aggregated over a segment
    from lambdas.finalize.results import MAX_BOXES_PER_LABEL, LabelSummary

    summary = LabelSummary(min_confidence=50)
    cars = [
        label_detection(
            1000 * i,
            "Car",
            90.0,
            ("Vehicle",),
            boxes=((60.0 + i, 0.1 * i, 0.5, 0.2, 0.1),),
            aliases=("Automobile",),
        )
        for i in range(7)
    ]
    segment = label_detection(9000, "Road", 88.0)
    del segment["Timestamp"]
    segment |= {"StartTimestampMillis": 9000, "EndTimestampMillis": 14_500, "DurationMillis": 5500}
    summary.add_page(label_page([*cars, segment], job_id="labels-job-0001"))

    # When the document's labels are made
    top = {label["name"]: label for label in summary.top(10)}

    # Then every box is counted, and only the clearest few are kept, clearest first
    car = top["Car"]
    assert car["aliases"] == ["Automobile"]
    assert car["instances"]["count"] == 7
    kept = car["instances"]["top"]
    assert len(kept) == MAX_BOXES_PER_LABEL
    assert [box["confidence"] for box in kept] == [66.0, 65.0, 64.0, 63.0, 62.0]
    assert kept[0] == {
        "timestamp_ms": 6000,
        "confidence": 66.0,
        "bounding_box": {"width": 0.2, "height": 0.1, "left": 0.6, "top": 0.5},
    }
    # and a segment-aggregated label keeps where it ends, not only where it starts
    road = top["Road"]
    assert (road["first_seen_ms"], road["last_seen_ms"]) == (9000, 14_500)
    assert road["time_ranges_ms"] == [[9000, 14_500]]


def test_the_document_names_the_license_once_and_drops_empty_or_repeated_fields(
    processing, catalog, buckets, rekognition
):
    # Given a sidecar as Commons ingest writes it: the license, a checksum equal to the SHA-1
    # Commons published, and an empty Commons "Attribution" field
    sidecar = {
        **SIDECAR,
        "checksum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "sha1": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "attribution": None,
        "credit_line": "Lisbon tram 28 by Jane Doe, CC BY-SA 4.0, via Wikimedia Commons",
        "attribution_required": True,
    }
    buckets.put_object(Bucket=RAW_BUCKET, Key=KEYS.attribution, Body=json.dumps(sidecar))
    client, stubber = rekognition
    stub_results(stubber)

    # When finalize runs
    run_finalize(processing, client, catalog)

    # Then the license is in one place, the checksum once, and the credit holds credit fields
    doc = read_labels(buckets)
    assert doc["license"]["name"] == "CC BY-SA 4.0"
    assert doc["asset"]["checksum"] == sidecar["checksum"] and "sha1" not in doc["asset"]
    assert doc["attribution"] == {
        "title": "Lisbon tram 28",
        "author": "Jane Doe",
        "credit": "Own work",
        "credit_line": "Lisbon tram 28 by Jane Doe, CC BY-SA 4.0, via Wikimedia Commons",
        "attribution_required": True,
        "source_page_url": "https://commons.wikimedia.org/wiki/File:Lisbon_tram_28.webm",
    }


def test_the_probe_report_becomes_the_documents_technical_section():
    # Given the state machine's input with the probe's report of the source
    report = {
        "name": "video/commons/travel/x.webm",
        "refusal": None,
        "container": "webm",
        "format_name": "matroska,webm",
        "duration_s": 7.6,
        "bit_rate": 120_000,
        "size_bytes": 98_304,
        "video": [{"index": 0, "codec": "vp9", "width": 640, "height": 360}],
        "audio": [],
        "subtitles": [],
        "mediaconvert": {"ok": True, "reason": "MediaConvert reads VP9 in WebM"},
        "rekognition": {"ok": False, "reason": "H.264 in MP4 or MOV only; this is VP9 in WebM"},
    }
    event = {**finalize_event(ingested_asset()), "probe": report}

    # When parsed, Then the section keeps what describes the file, not the probe's bookkeeping
    technical = FinalizeRequest.parse(event).technical
    assert technical is not None
    assert set(technical) == set(report) - {"name", "refusal"}
    assert technical["rekognition"]["ok"] is False
    # and a report that is not an object is refused, naming the field
    with pytest.raises(InvalidInput, match=r"^probe: "):
        FinalizeRequest.parse({**event, "probe": "webm"})


@pytest.mark.parametrize(
    ("technical", "expected"),
    [
        (
            {
                "video": [{"codec": "hevc", "height": 2160, "hdr": "PQ"}],
                "audio": [{"codec": "aac"}],
            },
            {"source_codec": "hevc", "height": 2160, "has_audio": True, "hdr": "PQ"},
        ),
        (
            {"video": [{"codec": "vp9", "height": 360, "hdr": None}], "audio": []},
            {"source_codec": "vp9", "height": 360, "has_audio": False},
        ),
        (None, {}),
    ],
    ids=["hdr with sound", "sdr without sound", "no probe report"],
)
def test_the_catalog_keeps_what_people_filter_on_from_the_probe(technical, expected):
    from lambdas.finalize.handler import source_attributes

    assert source_attributes(technical) == expected


# -- a reprocess of some analyses -------------------------------------------------------------
REPROCESS_JOBS = {"labels": "labels-job-0002", "moderation": "moderation-job-0002"}


def reprocess_event(asset: dict, rerun: tuple[str, ...], version_id: str | None) -> dict:
    """What the reprocess workflow sends: a job per analysis run again, ``kept`` for the rest."""
    event = finalize_event(asset)
    event["analysis"] = [
        {"feature": f, "job_id": REPROCESS_JOBS[f], "status": "SUCCEEDED"}
        if f in rerun
        else {"feature": f, "kept": True}
        for f in ("labels", "moderation", "segments")
    ]
    event["run"] = {"name": "reprocess-2", "kind": "reprocess"}
    event["previous"] = {
        "labels_key": KEYS.labels,
        "version_id": version_id,
        "run": "upload-1",
        "generated_at": "2026-12-01T08:00:00Z",
    }
    return event


@pytest.fixture
def first_run(processing, catalog, buckets, deployed_handler) -> tuple[dict, str]:
    """The pipeline's pass over the asset (all three analyses) in a versioned bucket: its
    document and that document's version."""
    buckets.put_bucket_versioning(
        Bucket=PROCESSED_BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )
    invoke, stubber = deployed_handler
    stub_results(stubber)
    invoke({**finalize_event(processing), "run": {"name": "upload-1", "kind": "pipeline"}})
    head = buckets.head_object(Bucket=PROCESSED_BUCKET, Key=KEYS.labels)
    return read_labels(buckets), head["VersionId"]


def run_reprocess(asset: dict, rerun: tuple[str, ...], version_id: str | None, pages: Any, catalog):
    return finalize(
        FinalizeRequest.parse(reprocess_event(asset, rerun, version_id)),
        settings=SETTINGS,
        storage=Storage(),
        rekognition=RekognitionVideo(pages),
        catalog=catalog,
    )


def test_a_moderation_rerun_keeps_labels_and_shots_and_reads_only_moderation(
    processing, catalog, buckets, first_run
):
    before, version = first_run
    # Someone writes the key in between: the kept sections still come from the version read.
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=KEYS.labels, Body=b"{}")
    # Only moderation pages exist: reading labels or segments would raise AttributeError.
    pages = PagedRekognition(
        {
            "get_content_moderation": (
                1,
                lambda i: moderation_page(
                    [moderation_detection(10_000, "Smoking", 88.0, "", 1)],
                    job_id=REPROCESS_JOBS["moderation"],
                ),
            )
        }
    )

    result = run_reprocess(processing, ("moderation",), version, pages, catalog)

    doc = read_labels(buckets)
    assert [call[0] for call in pages.calls] == ["get_content_moderation"]
    for kept in ("label_count", "label_detections", "top_labels", "shots", "technical_cues"):
        assert doc["summary"][kept] == before["summary"][kept], kept
    assert [f["name"] for f in doc["summary"]["moderation"]["flags"]] == ["Smoking"]
    assert doc["video"] == before["video"]
    kept_from = {"run": "upload-1", "generated_at": "2026-12-01T08:00:00Z"}
    analysis = doc["processing"]["analysis"]
    assert analysis["labels"] == {
        **before["processing"]["analysis"]["labels"],
        "kept_from": kept_from,
    }
    assert analysis["segments"]["kept_from"] == kept_from
    assert analysis["moderation"]["job_id"] == REPROCESS_JOBS["moderation"]
    assert "kept_from" not in analysis["moderation"]
    assert result.moderation_flags == 1 and result.labels_found == before["summary"]["label_count"]
    record = catalog.get_asset(processing["asset_id"])
    assert record["moderation_flagged"] is True
    assert list(record["top_labels"]) == [
        label["name"] for label in before["summary"]["top_labels"]
    ]
    newest = catalog.result_versions(processing["asset_id"])[0]
    assert (newest["run"], newest["features"]) == ("reprocess-2", ["moderation"])


def test_a_labels_rerun_places_new_labels_in_the_kept_shots(
    processing, catalog, buckets, first_run
):
    before, version = first_run
    pages = PagedRekognition(
        {
            "get_label_detection": (
                1,
                lambda i: label_page(
                    [
                        label_detection(31_000, "Ferry", 93.0),
                        label_detection(65_000, "Ferry", 91.0),
                    ],
                    job_id=REPROCESS_JOBS["labels"],
                ),
            )
        }
    )

    run_reprocess(processing, ("labels",), version, pages, catalog)

    doc = read_labels(buckets)
    shots = doc["summary"]["shots"]
    assert [(s["start_ms"], s["end_ms"]) for s in shots] == [
        (s["start_ms"], s["end_ms"]) for s in before["summary"]["shots"]
    ]
    # The old run's labels are gone from the shots; the new ones are where they were seen.
    assert [[label["name"] for label in shot["labels"]] for shot in shots] == [
        [],
        ["Ferry"],
        ["Ferry"],
    ]
    assert [label["name"] for label in doc["summary"]["top_labels"]] == ["Ferry"]
    assert doc["summary"]["moderation"] == before["summary"]["moderation"]
    # What the last run indexed and this one does not find any more leaves the index.
    record = catalog.get_asset(processing["asset_id"])
    assert list(record["top_labels"]) == ["Ferry"]


def test_a_kept_analysis_whose_document_version_is_gone_fails_naming_it(
    processing, catalog, buckets, first_run
):
    _, version = first_run
    buckets.delete_object(Bucket=PROCESSED_BUCKET, Key=KEYS.labels, VersionId=version)
    with pytest.raises(
        finalize_module.PreviousResultsMissing, match="labels, segments were to be kept"
    ):
        run_reprocess(processing, ("moderation",), version, PagedRekognition({}), catalog)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda e: e.update(run={"name": "upload-1", "kind": "pipeline"}),
            "only a reprocess keeps",
        ),
        (lambda e: e.pop("previous"), "previous: must name the labels.json version"),
        (lambda e: e["previous"].pop("labels_key"), "previous.labels_key"),
        (
            lambda e: e.update(
                analysis=[
                    {"feature": "labels", "kept": True},
                    {"feature": "moderation", "kept": True},
                    {"feature": "segments", "job_id": "s-2"},
                ]
            ),
            "segments ran again but labels were kept",
        ),
    ],
)
def test_a_kept_analysis_needs_a_reprocess_and_its_document(mutate, message):
    event = reprocess_event(ingested_asset(), ("moderation",), "v1")
    mutate(event)
    with pytest.raises(InvalidInput, match=message):
        FinalizeRequest.parse(event)


def test_a_reprocess_counts_as_reprocessed_and_bills_only_what_it_ran(
    processing, catalog, buckets, first_run, deployed_handler, capsys
):
    _, version = first_run
    capsys.readouterr()
    invoke, stubber = deployed_handler
    stubber.add_response(
        "get_content_moderation",
        moderation_page([], job_id=REPROCESS_JOBS["moderation"]),
        {"JobId": REPROCESS_JOBS["moderation"], "MaxResults": 1000, "SortBy": "TIMESTAMP"},
    )

    invoke(reprocess_event(processing, ("moderation",), version))

    stubber.assert_no_pending_responses()
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    overall = next(e for e in emitted if "AssetsReprocessed" in e)
    assert "AssetsProcessed" not in overall and "VideoMinutesTranscoded" not in overall
    # 93.5 s analysed once (moderation), not three times.
    assert overall["VideoMinutesAnalyzed"] == [pytest.approx(93.5 / 60)]


# -- speech ------------------------------------------------------------------------------------
SPEECH_KEY = f"{KEYS.speech_prefix}media-pipeline-dev-asset.json"


VTT_KEY = SPEECH_KEY.replace(".json", ".vtt")
VTT = b"WEBVTT\n\n0\n00:00:01.000 --> 00:00:01.900\nAll aboard.\n"
PLAYLIST = (
    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=640x360,'
    "FRAME-RATE=30.000\nindex_360.m3u8\n"
)

TRANSCRIPT = {
    "jobName": "j-1",
    "status": "COMPLETED",
    "results": {
        "transcripts": [{"transcript": "All aboard."}],
        "items": [
            {
                "type": "pronunciation",
                "start_time": "1.0",
                "end_time": "1.4",
                "alternatives": [{"confidence": "0.99", "content": "All"}],
            },
            {
                "type": "pronunciation",
                "start_time": "1.5",
                "end_time": "1.9",
                "alternatives": [{"confidence": "0.97", "content": "aboard"}],
            },
            {"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": "."}]},
        ],
        "language_code": "en-US",
    },
}


SEGMENT_START_S = 2.0


def put_playlist(s3: Any) -> str:
    """The ladder the transcode wrote (multivariant playlist, one rung, its first segment: real
    MPEG-TS starting at ``SEGMENT_START_S``); the multivariant playlist's key."""
    key = str(transcode_result()["outputs"]["hls_manifest_key"])
    rung = posixpath.join(posixpath.dirname(key), "index_360.m3u8")
    s3.put_object(Bucket=PROCESSED_BUCKET, Key=key, Body=PLAYLIST.encode())
    s3.put_object(
        Bucket=PROCESSED_BUCKET,
        Key=rung,
        Body=b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.2,\nindex_360_00001.ts\n#EXT-X-ENDLIST\n",
    )
    s3.put_object(Bucket=PROCESSED_BUCKET, Key=rung[:-5] + "_00001.ts", Body=ts_segment())
    return key


def read_text(s3: Any, key: str) -> str:
    return str(s3.get_object(Bucket=PROCESSED_BUCKET, Key=key)["Body"].read().decode())


def speech_result(status: str = "COMPLETED") -> dict:
    """What the speech branch hands finalize (the Transcribe callback's task output)."""
    if status != "COMPLETED":
        return {"feature": "speech", "job_name": "j-1", "status": status, "reason": "why"}
    return {
        "feature": "speech",
        "job_name": "j-1",
        "status": "COMPLETED",
        "language_code": "en-US",
        "language_score": 0.97,
        "transcript": {"bucket": PROCESSED_BUCKET, "key": SPEECH_KEY},
        "subtitles": {
            "vtt": {"bucket": PROCESSED_BUCKET, "key": VTT_KEY},
            "srt": {"bucket": PROCESSED_BUCKET, "key": SPEECH_KEY.replace(".json", ".srt")},
        },
    }


def test_a_transcribed_clip_gets_a_speech_section_and_its_language_in_the_catalog(
    processing, catalog, buckets, deployed_handler
):
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=SPEECH_KEY, Body=json.dumps(TRANSCRIPT))
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=VTT_KEY, Body=VTT)
    playlist_key = put_playlist(buckets)
    invoke, stubber = deployed_handler
    stub_results(stubber)
    event = finalize_event(processing)
    event["analysis"].append(speech_result())

    invoke(event)

    doc = read_labels(buckets)
    assert doc["speech"]["status"] == "COMPLETED"
    assert doc["speech"]["transcript"] == "All aboard."
    assert doc["speech"]["segments"] == [
        {"start_s": 1.0, "end_s": 1.9, "text": "All aboard.", "confidence": 0.97}
    ]
    assert doc["speech"]["vtt_key"] == VTT_KEY
    record = catalog.get_asset(processing["asset_id"])
    assert record["speech_language"] == "en-US"
    # And its words are in the catalog's word index, with when each is first said
    assert record["speech_words"] == ["aboard", "all"]
    [hit] = catalog.assets_saying("Aboard")
    assert (hit["asset_id"], hit["word"], hit["count"], hit["first_s"]) == (
        processing["asset_id"],
        "aboard",
        1,
        "1.0",
    )
    # And the HLS presentation offers the captions: a SUBTITLES group every variant names,
    # whose media playlist is the VTT (players resolve it relative to the playlist)
    captions = doc["speech"]["captions"]
    assert captions == {
        "status": "REFERENCED",
        "playlist_key": playlist_key.replace(".m3u8", "_captions_en-US.m3u8"),
        "cues": 1,
    }
    multivariant = read_text(buckets, playlist_key)
    assert multivariant.count("#EXT-X-MEDIA:TYPE=SUBTITLES") == 1
    assert multivariant.count(',SUBTITLES="subs"') == multivariant.count("#EXT-X-STREAM-INF:") == 1
    subtitles = read_text(buckets, captions["playlist_key"]).splitlines()
    uri = subtitles[subtitles.index("#EXT-X-ENDLIST") - 1]
    copy = posixpath.join(posixpath.dirname(playlist_key), uri)
    assert copy == captions["playlist_key"].replace(".m3u8", ".vtt")
    # ... a copy of the VTT whose cue time 0 is the segments' first timestamp (players place
    # cues on the MPEG-TS clock), the cues as Transcribe wrote them
    mapped = read_text(buckets, copy).splitlines()
    assert mapped[0] == "WEBVTT" and mapped[2:] == VTT.decode().splitlines()[1:]
    mpegts = int(mapped[1].removeprefix("X-TIMESTAMP-MAP=MPEGTS:").split(",")[0])
    assert mapped[1].endswith(",LOCAL:00:00:00.000")
    assert SEGMENT_START_S - 0.05 <= mpegts / 90000 <= SEGMENT_START_S + 0.05


@pytest.mark.parametrize(
    ("vtt", "reason"),
    [
        (b"1\n00:00:01,000 --> 00:00:01,900\nAll aboard.\n", "does not start with WEBVTT"),
        (b"WEBVTT\n\n00:00:01.000 --> soon\nAll aboard.\n", "line 3 of the VTT"),
        (None, "does not exist"),
        (VTT, "no MPEG-TS timestamp"),  # a rung whose segment is not a transport stream
    ],
)
def test_a_vtt_that_does_not_parse_never_touches_the_playlist(
    processing, buckets, deployed_handler, vtt, reason
):
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=SPEECH_KEY, Body=json.dumps(TRANSCRIPT))
    if vtt is not None:
        buckets.put_object(Bucket=PROCESSED_BUCKET, Key=VTT_KEY, Body=vtt)
    playlist_key = put_playlist(buckets)
    if reason == "no MPEG-TS timestamp":
        segment = posixpath.join(posixpath.dirname(playlist_key), "index_360_00001.ts")
        buckets.put_object(Bucket=PROCESSED_BUCKET, Key=segment, Body=b"\x00" * 4096)
    invoke, stubber = deployed_handler
    stub_results(stubber)
    event = finalize_event(processing)
    event["analysis"].append(speech_result())

    assert invoke(event)["status"] == "PROCESSED"

    captions = read_labels(buckets)["speech"]["captions"]
    assert captions["status"] == "NOT_REFERENCED" and reason in captions["reason"]
    assert read_text(buckets, playlist_key) == PLAYLIST
    assert not buckets.list_objects_v2(
        Bucket=PROCESSED_BUCKET, Prefix=playlist_key.replace(".m3u8", "_captions")
    ).get("Contents")


def test_a_run_without_captions_removes_a_group_an_earlier_run_added(
    processing, buckets, deployed_handler
):
    playlist_key = put_playlist(buckets)
    earlier = PLAYLIST.replace(
        "#EXT-X-STREAM-INF:",
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="en-US",'
        'LANGUAGE="en-US",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="c.m3u8"\n#EXT-X-STREAM-INF:',
    ).replace("FRAME-RATE=30.000", 'FRAME-RATE=30.000,SUBTITLES="subs"')
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=playlist_key, Body=earlier.encode())
    invoke, stubber = deployed_handler
    stub_results(stubber)
    event = finalize_event(processing)
    event["analysis"].append(speech_result("SKIPPED"))

    invoke(event)

    assert read_text(buckets, playlist_key) == PLAYLIST
    assert read_labels(buckets)["speech"]["captions"] == {
        "status": "NOT_REFERENCED",
        "reason": "speech skipped: no captions",
    }


@pytest.mark.parametrize("status", ["FAILED", "SKIPPED"])
def test_a_failed_or_skipped_transcription_still_lands_the_asset_with_the_reason(
    processing, catalog, buckets, deployed_handler, status
):
    invoke, stubber = deployed_handler
    stub_results(stubber)
    event = finalize_event(processing)
    event["analysis"].append(speech_result(status))

    assert invoke(event)["status"] == "PROCESSED"

    speech = read_labels(buckets)["speech"]
    assert (speech["status"], speech["reason"]) == (status, "why")
    record = catalog.get_asset(processing["asset_id"])
    assert "speech_language" not in record and "speech_words" not in record


def test_a_later_run_that_no_longer_says_a_word_takes_it_out_of_the_word_index(
    processing, catalog, buckets, deployed_handler
):
    # Given a first run whose transcript says "all aboard"
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=SPEECH_KEY, Body=json.dumps(TRANSCRIPT))
    invoke, stubber = deployed_handler
    stub_results(stubber)
    event = finalize_event(processing)
    event["analysis"].append(speech_result())
    invoke(event)
    assert [h["asset_id"] for h in catalog.assets_saying("aboard")] == [processing["asset_id"]]
    # When a later run's transcript says "all ashore"
    ashore = json.loads(json.dumps(TRANSCRIPT).replace("aboard", "ashore"))
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=SPEECH_KEY, Body=json.dumps(ashore))
    stub_results(stubber)
    invoke(event)
    # Then "aboard" finds nothing any more, "ashore" finds the asset, "all" still does
    assert catalog.assets_saying("aboard") == []
    assert [h["asset_id"] for h in catalog.assets_saying("ashore")] == [processing["asset_id"]]
    assert [h["asset_id"] for h in catalog.assets_saying("ALL")] == [processing["asset_id"]]
    assert catalog.get_asset(processing["asset_id"])["speech_words"] == ["all", "ashore"]
    # And when a run has no speech at all, its words leave too
    stub_results(stubber)
    skipped = finalize_event(processing)
    skipped["analysis"].append(speech_result("SKIPPED"))
    invoke(skipped)
    assert catalog.assets_saying("ashore") == [] and catalog.assets_saying("all") == []
    assert "speech_words" not in catalog.get_asset(processing["asset_id"])


@pytest.mark.parametrize("query", ["", "a", "two words", "!?"])
def test_the_word_index_is_searched_one_word_at_a_time(catalog, query):
    with pytest.raises(CatalogError, match="not one searchable word"):
        catalog.assets_saying(query)


def test_a_reprocess_keeps_the_last_speech_section(processing, catalog, buckets, first_run):
    before, version = first_run
    # The first run's document, as if it had been transcribed
    kept = {
        **before,
        "speech": {"status": "SKIPPED", "reason": "the clip has no audio stream", "job_name": None},
    }
    buckets.put_object(Bucket=PROCESSED_BUCKET, Key=KEYS.labels, Body=json.dumps(kept))
    version = buckets.head_object(Bucket=PROCESSED_BUCKET, Key=KEYS.labels)["VersionId"]
    pages = PagedRekognition(
        {
            "get_content_moderation": (
                1,
                lambda i: moderation_page([], job_id=REPROCESS_JOBS["moderation"]),
            )
        }
    )
    run_reprocess(processing, ("moderation",), version, pages, catalog)

    speech = read_labels(buckets)["speech"]
    assert speech["status"] == "SKIPPED"
    assert speech["kept_from"] == {"run": "upload-1", "generated_at": "2026-12-01T08:00:00Z"}


def test_a_speech_result_with_an_unknown_status_is_refused():
    event = finalize_event(ingested_asset())
    event["analysis"].append({"feature": "speech", "status": "DONE"})
    with pytest.raises(InvalidInput, match=r"analysis\[3\].status"):
        FinalizeRequest.parse(event)


def test_with_cloudfront_delivery_the_document_names_each_renditions_url(
    processing, catalog, buckets, rekognition, monkeypatch, lambda_context
):
    client, stubber = rekognition
    settings = FinalizeSettings(
        **{**SETTINGS.__dict__, "delivery_base_url": "https://d1.cloudfront.net"}
    )
    monkeypatch.setattr(
        finalize_module,
        "_dependencies",
        lambda: (settings, Storage(), RekognitionVideo(client), catalog),
    )
    stub_results(stubber)

    handler(finalize_event(processing), lambda_context)

    doc = read_labels(buckets)
    delivery = doc["delivery"]
    assert delivery["base_url"] == "https://d1.cloudfront.net"
    assert delivery["mp4_url"] == f"https://d1.cloudfront.net/{doc['renditions']['mp4_key']}"
    assert delivery["hls_url"].endswith(doc["renditions"]["hls_manifest_key"])
    assert delivery["poster_url"].endswith(doc["thumbnails"]["poster_key"])
    assert delivery["vtt_url"] is None  # not transcribed in this event


def test_without_delivery_the_document_has_no_urls(processing, catalog, buckets, deployed_handler):
    invoke, stubber = deployed_handler
    stub_results(stubber)
    invoke(finalize_event(processing))
    assert read_labels(buckets)["delivery"] is None
