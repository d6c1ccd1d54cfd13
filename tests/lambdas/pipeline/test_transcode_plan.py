"""Transcode plan: MediaConvert job settings from data files, validated against botocore's model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.shared.catalog import CatalogError
from lambdas.shared.errors import InvalidInput
from lambdas.shared.keys import AssetKeys
from lambdas.transcode.plan import (
    SETTINGS_DIR,
    PlanAsset,
    UnsupportedSource,
    build_jobs,
    build_plan,
    handler,
    ladder_for,
    load_settings,
)
from tests.lambdas.pipeline.builders import (
    DEPLOYMENT,
    MEDIACONVERT_ROLE_ARN,
    PROCESSED_BUCKET,
    RAW_KEY,
    ingested_asset,
    service_model,
    validate,
)

MODEL = service_model("mediaconvert")
CREATE_JOB = MODEL.operation_model("CreateJob").input_shape
SHAPES = {
    "job.json": "JobSettings",
    "mp4_proxy.json": "OutputGroup",
    "hls_group.json": "OutputGroup",
    "thumbnails.json": "OutputGroup",
}


def create_job_request(plan: dict) -> dict:
    """The request the state machine's MediaConvertCreateJob task sends."""
    request = {
        "Role": MEDIACONVERT_ROLE_ARN,
        "Settings": plan["settings"],
        "UserMetadata": plan["user_metadata"],
    }
    if "client_request_token" in plan:
        request["ClientRequestToken"] = plan["client_request_token"]
    return request


def hls_heights(plan: dict) -> list[int]:
    hls = plan["settings"]["OutputGroups"][1]
    return [output["VideoDescription"]["Height"] for output in hls["Outputs"]]


def test_every_settings_file_is_known_and_valid():
    # Given every JSON file in the settings folder
    files = sorted(p.name for p in Path(SETTINGS_DIR).glob("*.json"))
    assert files == sorted([*SHAPES, "hls_ladder.json"])
    # When each is validated against its MediaConvert shape
    problems = {
        name: validate(load_settings(name), MODEL.shape_for(shape))
        for name, shape in SHAPES.items()
    }
    ladder = load_settings("hls_ladder.json")
    problems |= {
        f"hls_ladder.json:{rung}": validate(output, MODEL.shape_for("Output"))
        for rung, output in ladder["rungs"].items()
    }
    # Then none has a problem (names, types, minimums, enums, maximums, patterns)
    assert {name: p for name, p in problems.items() if p} == {}
    # And every ladder names only rungs that exist, lowest first
    for rule in [*ladder["ladders"], {"rungs": ladder["unknown_source_height"]}]:
        heights = [ladder["rungs"][name]["VideoDescription"]["Height"] for name in rule["rungs"]]
        assert heights == sorted(heights)


def test_validator_catches_what_param_validator_misses():
    # Given settings with an enum typo, a quality above its maximum and a bad destination
    group = load_settings("mp4_proxy.json")
    h264 = group["Outputs"][0]["VideoDescription"]["CodecSettings"]["H264Settings"]
    h264["RateControlMode"] = "QVBRR"
    h264["QvbrSettings"]["QvbrQualityLevel"] = 11
    group["OutputGroupSettings"]["FileGroupSettings"]["Destination"] = "https://x/y"
    # When validated
    problems = validate(group, MODEL.shape_for("OutputGroup"))
    # Then all three are reported
    text = "\n".join(problems)
    assert "QVBRR" in text and "11 > max 10" in text and "does not match" in text


@pytest.mark.parametrize(
    ("height", "expected"),
    [
        (360, [360]),  # low: <=480 ladder, 480p would upscale
        (480, [360, 480]),  # low
        (720, [360, 480, 720]),  # mid
        (1080, [360, 480, 720, 1080]),  # high
        (2160, [360, 480, 720, 1080]),  # 4K source: the ladder tops out at 1080p
        (1000, [360, 480, 720, 1000]),  # between rungs: top rung capped at the source
        (240, [240]),  # tiny source: one rung at its own height, never upscaled
        (None, [360, 480, 720]),  # unknown height: the default ladder
    ],
)
def test_each_ladder_is_a_valid_create_job_request(height, expected):
    # Given an ingested asset of a given height
    asset = PlanAsset.parse(ingested_asset(height=height))
    # When the job is planned
    plan = build_plan(asset, processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT)
    # Then the full CreateJob request is valid against botocore's model
    assert validate(create_job_request(plan), CREATE_JOB) == []
    # And the HLS ladder fits the source
    assert hls_heights(plan) == expected
    # And no output is taller than a known source
    if height is not None:
        for group in plan["settings"]["OutputGroups"]:
            for output in group["Outputs"]:
                assert output["VideoDescription"]["Height"] <= height


def test_ladder_rules_come_from_the_data_file():
    # Given the ladder data
    ladder = load_settings("hls_ladder.json")
    # When a 480p, a 720p and a 1080p source are planned
    # Then each gets the rungs its rule names
    assert [name for name, _ in ladder_for(480, ladder)] == ["360p", "480p"]
    assert [name for name, _ in ladder_for(720, ladder)] == ["360p", "480p", "720p"]
    assert [name for name, _ in ladder_for(1080, ladder)] == ["360p", "480p", "720p", "1080p"]


def test_outputs_have_predictable_names_under_the_asset_prefixes():
    # Given an asset in the raw zone
    keys = AssetKeys(RAW_KEY)
    # When planned
    plan = build_plan(
        PlanAsset.parse(ingested_asset()), processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT
    )
    # Then the outputs are fixed names in the asset's rendition folders
    assert plan["outputs"] == {
        "mp4_key": f"{keys.mp4_prefix}proxy.mp4",
        "hls_manifest_key": f"{keys.hls_prefix}index.m3u8",
        "thumbnails_prefix": keys.thumbnails_prefix,
    }
    # And MediaConvert's naming rule (destination + name modifier + extension) yields exactly them
    mp4, hls, thumbs = plan["settings"]["OutputGroups"]
    mp4_dest = mp4["OutputGroupSettings"]["FileGroupSettings"]["Destination"]
    mp4_out = mp4["Outputs"][0]
    assert f"{mp4_dest}{mp4_out.get('NameModifier', '')}.{mp4_out['Extension']}" == (
        f"s3://{PROCESSED_BUCKET}/{plan['outputs']['mp4_key']}"
    )
    hls_dest = hls["OutputGroupSettings"]["HlsGroupSettings"]["Destination"]
    assert f"{hls_dest}.m3u8" == f"s3://{PROCESSED_BUCKET}/{plan['outputs']['hls_manifest_key']}"
    thumbs_dest = thumbs["OutputGroupSettings"]["FileGroupSettings"]["Destination"]
    assert thumbs_dest.startswith(f"s3://{PROCESSED_BUCKET}/{keys.thumbnails_prefix}")
    # And the input is the raw object; the job is tagged with this deployment
    assert plan["settings"]["Inputs"][0]["FileInput"] == f"s3://media-raw-test/{RAW_KEY}"
    assert plan["user_metadata"] == {
        "deployment": DEPLOYMENT,
        "asset_id": ingested_asset()["asset_id"],
        "campaign": "travel",
    }


def test_proxy_is_h264_aac_mp4_for_rekognition():
    # Given a planned job
    plan = build_plan(
        PlanAsset.parse(ingested_asset()), processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT
    )
    # When the proxy output is inspected
    output = plan["settings"]["OutputGroups"][0]["Outputs"][0]
    # Then it is what Rekognition Video reads: H.264 in MP4, with AAC audio
    assert output["ContainerSettings"]["Container"] == "MP4"
    assert output["VideoDescription"]["CodecSettings"]["Codec"] == "H_264"
    assert output["AudioDescriptions"][0]["CodecSettings"]["Codec"] == "AAC"


def test_quicktime_sources_follow_rotation_metadata():
    # Given a phone upload in MP4 and a WebM from Commons
    mp4 = build_plan(
        PlanAsset.parse(ingested_asset(key="video/upload/travel/20250101_060000/a.mp4")),
        processed_bucket=PROCESSED_BUCKET,
        deployment=DEPLOYMENT,
    )
    webm = build_plan(
        PlanAsset.parse(ingested_asset()), processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT
    )
    # Then only the MP4 input asks MediaConvert to honour rotation metadata
    assert mp4["settings"]["Inputs"][0]["VideoSelector"] == {"Rotate": "AUTO"}
    assert webm["settings"]["Inputs"][0]["VideoSelector"] == {}


def test_plans_never_share_state():
    # Given two plans built one after the other
    first = build_plan(
        PlanAsset.parse(ingested_asset(height=240)),
        processed_bucket=PROCESSED_BUCKET,
        deployment=DEPLOYMENT,
    )
    second = build_plan(
        PlanAsset.parse(ingested_asset(height=1080)),
        processed_bucket=PROCESSED_BUCKET,
        deployment=DEPLOYMENT,
    )
    # Then capping the first did not alter the cached settings the second was built from
    assert first["settings"]["OutputGroups"][0]["Outputs"][0]["VideoDescription"]["Height"] == 240
    assert second["settings"]["OutputGroups"][0]["Outputs"][0]["VideoDescription"]["Height"] == 720


def test_handler_marks_the_asset_processing_and_returns_the_plan(
    committed_asset, catalog, lambda_context
):
    # Given an ingested asset in the catalog
    # When the Map's transcode step plans it
    result = handler(committed_asset, lambda_context)
    # Then the asset is PROCESSING and the plan is small enough for a state payload
    assert catalog.get_asset(committed_asset["asset_id"])["status"] == "PROCESSING"
    assert catalog.status_counts("travel")["PROCESSING"] == 1
    assert set(result) == {"analysis", "jobs", "outputs"}
    # and without a probe report it analyses the proxy, which Rekognition can always read
    assert result["analysis"]["input"] == "proxy"
    assert len(json.dumps(result)) < 32_000


def probe_report(*, readable: bool, height: int = 1080, width: int = 1920, rotation: int = 0):
    """The fields of the probe's report (``Probe.to_dict()``) the plan reads."""
    return {
        "video": [{"index": 0, "codec": "h264", "width": width, "height": height,
                   "rotation": rotation}],
        "rekognition": {
            "ok": readable,
            "reason": "Rekognition Video reads H.264 in MP4 as it is"
            if readable
            else "Rekognition Video reads H.264 in MP4 or MOV only; this is VP9 in WebM",
        },
    }  # fmt: skip


MP4_KEY = "video/upload/travel/20250101_060000/a.mp4"


def test_a_source_rekognition_reads_is_analysed_beside_one_full_job():
    # Given an H.264 MP4 the probe says Rekognition Video reads as it is
    asset = PlanAsset.parse(
        {"asset": ingested_asset(key=MP4_KEY), "execution": "run-1",
         "probe": probe_report(readable=True)}
    )  # fmt: skip
    # When the jobs are planned
    plan = build_jobs(asset, processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT)
    # Then the analyses read the source object itself, and one job makes every output
    assert plan["analysis"] == {
        "input": "source",
        "video": {"bucket": "media-raw-test", "key": MP4_KEY},
        "reason": "Rekognition Video reads H.264 in MP4 as it is",
    }
    assert set(plan["jobs"]) == {"full"}
    full = plan["jobs"]["full"]
    whole = build_plan(asset, processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT)
    assert full["settings"] == whole["settings"]
    assert full["user_metadata"] == {**whole["user_metadata"], "job": "full"}
    assert full["client_request_token"] == whole["client_request_token"]
    assert validate(create_job_request(full), CREATE_JOB) == []


def test_other_sources_get_a_proxy_job_first_then_the_renditions():
    # Given a VP9 WebM (Rekognition Video reads H.264 in MP4/MOV only)
    asset = PlanAsset.parse(
        {"asset": ingested_asset(), "execution": "run-1", "probe": probe_report(readable=False)}
    )
    # When the jobs are planned
    plan = build_jobs(asset, processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT)
    whole = build_plan(asset, processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT)
    # Then the proxy job makes the MP4 proxy only, and the analyses read that proxy
    proxy, renditions = plan["jobs"]["proxy"], plan["jobs"]["renditions"]
    assert [g["CustomName"] for g in proxy["settings"]["OutputGroups"]] == ["mp4-proxy"]
    assert plan["analysis"]["input"] == "proxy"
    assert plan["analysis"]["video"] == {
        "bucket": PROCESSED_BUCKET,
        "key": plan["outputs"]["mp4_key"],
    }
    assert "VP9 in WebM" in plan["analysis"]["reason"]
    # and the renditions job makes the rest, so together they are exactly the whole job
    groups = proxy["settings"]["OutputGroups"] + renditions["settings"]["OutputGroups"]
    assert groups == whole["settings"]["OutputGroups"]
    for job in (proxy, renditions):
        assert {k: v for k, v in job["settings"].items() if k != "OutputGroups"} == {
            k: v for k, v in whole["settings"].items() if k != "OutputGroups"
        }
        assert validate(create_job_request(job), CREATE_JOB) == []
    # and each job has its own idempotency token (a retried CreateJob of one never returns
    # the other) and says which job it is in its metadata
    tokens = {proxy["client_request_token"], renditions["client_request_token"],
              whole["client_request_token"]}  # fmt: skip
    assert len(tokens) == 3 and all(len(t) <= 64 for t in tokens)
    assert proxy["user_metadata"]["job"] == "proxy"
    assert renditions["user_metadata"]["job"] == "renditions"


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (probe_report(readable=True, height=720, width=1280), [360, 480, 720]),
        # a portrait phone clip: coded 1920x1080, shown rotated (1080 wide, 1920 tall)
        (probe_report(readable=True, height=1080, width=1920, rotation=90),
         [360, 480, 720, 1080]),
        (probe_report(readable=True, height=360, width=640), [360]),
    ],
)  # fmt: skip
def test_the_ladder_follows_the_probed_height_not_the_source_metadata(report, expected):
    # Given source metadata that says 1080p, and a probe that read the file itself
    asset = PlanAsset.parse({"asset": ingested_asset(height=1080, key=MP4_KEY), "probe": report})
    # When planned
    plan = build_jobs(asset, processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT)
    # Then the ladder is the probed file's (never an upscale of what the metadata claimed)
    assert hls_heights({"settings": plan["jobs"]["full"]["settings"]}) == expected


@pytest.mark.parametrize(
    ("probe", "field"),
    [
        ("h264", "probe"),
        ({"video": []}, "probe.rekognition.ok"),
        ({"rekognition": {"ok": "yes"}}, "probe.rekognition.ok"),
    ],
)
def test_a_malformed_probe_report_is_rejected_by_name(
    committed_asset, catalog, lambda_context, probe, field
):
    # Given the plan step with a probe report that is not the probe's
    # When planned
    with pytest.raises(InvalidInput) as raised:
        handler({"asset": committed_asset, "probe": probe}, lambda_context)
    # Then the error names the field and nothing changed in the catalog
    assert field in str(raised.value)
    assert catalog.get_asset(committed_asset["asset_id"])["status"] == "INGESTED"


def test_a_repeated_create_job_for_the_same_asset_and_run_names_the_same_job(
    committed_asset, catalog, lambda_context
):
    # Given the Map's plan step for one asset, as the state machine invokes it (with the run)
    event = {"asset": committed_asset, "execution": "weekly-2025-01-06T06-00-00Z"}

    # When it plans the asset twice in that run (a retried step), and once in another run
    first = handler(event, lambda_context)
    again = handler(event, lambda_context)
    other_run = handler({**event, "execution": "manual-rerun-1"}, lambda_context)

    # Then CreateJob gets one idempotency token per asset, job and run: a retry whose answer
    # was lost returns the job already created instead of starting a second paid one
    first, again, other_run = (plan["jobs"]["proxy"] for plan in (first, again, other_run))
    token = first["client_request_token"]
    assert again["client_request_token"] == token
    assert other_run["client_request_token"] != token
    assert committed_asset["asset_id"] in token
    # and it is what MediaConvert accepts: a string of at most 64 ASCII characters
    member = CREATE_JOB.members["ClientRequestToken"]
    assert member.type_name == "string" and member.metadata.get("idempotencyToken") is True
    assert "64 ASCII characters" in member.documentation
    assert len(token) <= 64 and token.isascii()
    assert validate(create_job_request(first), CREATE_JOB) == []


def test_a_long_run_name_still_gives_a_valid_token():
    # Given the longest asset id and execution name the pipeline produces (80 characters)
    asset = ingested_asset(asset_id="a-forty-character-source-name-xxxxxxxxxx-" + "f" * 20)
    plan = build_plan(
        PlanAsset.parse({"asset": asset, "execution": "x" * 80}),
        processed_bucket=PROCESSED_BUCKET,
        deployment=DEPLOYMENT,
    )
    # Then the token is shortened with a digest, still unique to both
    token = plan["client_request_token"]
    assert len(token) <= 64 and token.isascii()
    assert (
        token
        != build_plan(
            PlanAsset.parse({"asset": asset, "execution": "x" * 79 + "y"}),
            processed_bucket=PROCESSED_BUCKET,
            deployment=DEPLOYMENT,
        )["client_request_token"]
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"key": ""}, "key"),
        ({"asset_id": None}, "asset_id"),
        ({"height": "1080"}, "height"),
        ({"duration_s": -3}, "duration_s"),
    ],
)
def test_bad_asset_is_rejected_before_the_catalog_changes(
    committed_asset, catalog, lambda_context, overrides, field
):
    # Given an asset with one bad field
    # When planned
    with pytest.raises(InvalidInput) as raised:
        handler({**committed_asset, **overrides}, lambda_context)
    # Then the error names the field and the asset was not marked PROCESSING
    assert field in str(raised.value)
    assert catalog.get_asset(committed_asset["asset_id"])["status"] == "INGESTED"


def test_ogg_theora_is_refused_before_mediaconvert_is_paid(committed_asset, lambda_context):
    # Given an Ogg Theora file (MediaConvert cannot decode it)
    asset = {**committed_asset, "key": RAW_KEY.replace(".webm", ".ogv")}
    # When planned
    with pytest.raises(UnsupportedSource, match="Ogg Theora"):
        handler(asset, lambda_context)


def test_asset_missing_from_catalog_fails(catalog, lambda_context):
    # Given an asset that ingest never committed
    # When planned
    with pytest.raises(CatalogError, match="not in the catalog"):
        handler(ingested_asset(), lambda_context)
