"""The images handler against moto's S3: renditions written beside the asset, refusals clean."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from lambdas.images.handler import render_asset
from lambdas.images.settings import ImagesSettings
from lambdas.shared.assets import step_asset
from lambdas.shared.errors import InvalidInput, Unprocessable
from tests.lambdas.conftest import client
from tests.lambdas.images import fixtures

RAW, PROCESSED = "media-raw-test", "media-processed-test"
KEY = "image/upload/uploads/20261203_060000/harbour.jpg"
PREFIX = "image/upload/uploads/20261203_060000/harbour/images/harbour_"


@pytest.fixture
def s3(aws_mock: None) -> Any:
    s3 = client("s3")
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return s3


def settings(max_source_bytes: int = 50 * 1024 * 1024) -> ImagesSettings:
    return ImagesSettings(processed_bucket=PROCESSED, max_source_bytes=max_source_bytes)


def asset(key: str = KEY) -> dict[str, str]:
    return {"bucket": RAW, "key": key, "asset_id": "upload-0123456789abcdef0123"}


def processed_keys(s3: Any) -> list[str]:
    """The processed bucket's current objects (a deleted rendition is a delete marker)."""
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=PROCESSED).get("Contents", []))


def test_a_photo_gets_every_rendition_beside_its_other_outputs(s3):
    # Given a phone photo uploaded to the raw zone
    s3.put_object(Bucket=RAW, Key=KEY, Body=fixtures.phone_photo())

    # When the images step runs
    result = render_asset(asset(), settings(), s3)

    # Then each size in each format is in the processed zone under predictable names
    expected = {
        f"{PREFIX}{size}.{ext}" for size in ("small", "medium") for ext in ("webp", "avif", "jpg")
    }
    assert set(processed_keys(s3)) == expected
    assert {r["key"] for r in result["renditions"]} == expected
    for rendition in result["renditions"]:
        head = s3.head_object(Bucket=PROCESSED, Key=rendition["key"])
        assert head["ContentType"] == rendition["mime_type"]
        assert head["ContentLength"] == rendition["bytes"]
        assert head["CacheControl"] == "public, max-age=86400"
        body = s3.get_object(Bucket=PROCESSED, Key=rendition["key"])["Body"]
        with Image.open(body) as image:
            assert image.size == (rendition["width"], rendition["height"]) and not image.getexif()
    # And the record says what the photo is (GPS kept in the record, never in a rendition)
    facts = result["image"]
    assert (facts["format"], facts["display_width"], facts["display_height"]) == ("JPEG", 480, 640)
    assert facts["camera"] == "Canon EOS R6" and facts["gps"]["latitude"] == pytest.approx(
        48.8584, abs=1e-4
    )
    # And Rekognition reads the largest JPEG
    assert result["analysis_input"] == {
        "bucket": PROCESSED,
        "key": f"{PREFIX}medium.jpg",
        "width": 480,
        "height": 640,
        "format": "JPEG",
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fixtures.truncated_jpeg(), "cannot be decoded"),
        (fixtures.text_as_png(), "not an image"),
        # Rendered (every size), then refused: no rendition fits Rekognition
        (fixtures.sliver_png(), "at least 80 px on each side"),
    ],
    ids=["truncated", "text", "sliver"],
)
def test_a_refused_image_names_the_reason_and_leaves_nothing_behind(s3, body, reason):
    s3.put_object(Bucket=RAW, Key=KEY, Body=body)
    with pytest.raises(Unprocessable, match=reason) as refused:
        render_asset(asset(), settings(), s3)
    assert KEY in str(refused.value)
    assert processed_keys(s3) == []


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(s3):
    s3.put_object(Bucket=RAW, Key=KEY, Body=fixtures.phone_photo())
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    try:
        with pytest.raises(Unprocessable, match="more than the 0 MiB this pipeline reads"):
            render_asset(asset(), settings(max_source_bytes=1024), s3)
    finally:
        s3.meta.events.unregister("before-call.s3.*")
    assert calls == ["HeadObject"]


def test_an_image_deleted_before_it_is_read_is_refused_as_gone(s3):
    with pytest.raises(Unprocessable, match="no longer exists"):
        render_asset(asset(), settings(), s3)


def test_a_write_that_fails_half_way_removes_what_was_written(s3, monkeypatch):
    # Given S3 refusing the fourth rendition write
    s3.put_object(Bucket=RAW, Key=KEY, Body=fixtures.phone_photo())
    original = s3.put_object
    count = {"puts": 0}

    def flaky_put(**kwargs: Any) -> Any:
        count["puts"] += 1
        if count["puts"] == 4:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Slow down"}}, "PutObject")
        return original(**kwargs)

    monkeypatch.setattr(s3, "put_object", flaky_put)
    # When the images step runs; Then S3's error surfaces (the workflow retries it) and the
    # three renditions written before it are gone
    with pytest.raises(ClientError, match="SlowDown"):
        render_asset(asset(), settings(), s3)
    assert count["puts"] == 4
    assert processed_keys(s3) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, 'images input must be {"asset": {...}}'),
        ({"asset": {"bucket": RAW, "key": KEY}}, "asset.asset_id"),
    ],
)
def test_a_malformed_input_names_what_is_missing(event, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        step_asset(event, "images")
