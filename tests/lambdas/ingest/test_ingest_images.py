"""Images through the ingest Lambda: campaign searches (Commons bitmaps, Pixabay photos) and
uploads, into ``image/`` of the raw zone, with moto for AWS and the local sources' answers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from unittest import mock

import boto3
import pytest

from lambdas.shared.catalog import Catalog
from lambdas.shared.errors import InvalidInput
from lambdas.shared.media_types import MAX_IMAGE_PIXELS
from localworld import sources as local
from localworld.sources import COMMONS_IMAGES, PIXABAY_IMAGES, SourceFixtures
from tests.lambdas.ingest.support import run

TS = r"\d{8}_\d{6}"


@pytest.fixture
def served(ingest_env, pixabay_secret: str) -> Iterator[SourceFixtures]:
    """The local Commons and Pixabay, with the secret holding the key they accept."""
    boto3.client("secretsmanager").put_secret_value(
        SecretId=pixabay_secret, SecretString=json.dumps({"api_key": local.PIXABAY_KEY})
    )
    fixtures = SourceFixtures()
    with fixtures.mock():
        yield fixtures


def _calls(fixtures: SourceFixtures, fragment: str) -> list[str]:
    return [url for url in fixtures.requests if fragment in url]


def test_a_campaign_run_with_an_image_batch_lands_images_beside_the_clips(served, lake):
    # When a travel run asks for one clip and two images
    output = run({"campaign": "travel", "batch_sizes": {"video": 1, "image": 2}})

    # Then the clip came first, then one image from each source, taking turns
    assert [(a["media_type"], a["source"]) for a in output["assets"]] == [
        ("video", "commons"),
        ("image", "commons"),
        ("image", "pixabay"),
    ]
    _clip, tram, beach = output["assets"]
    # filed under image/ with the same layout as video/
    assert re.fullmatch(rf"image/commons/travel/{TS}/Tram_28_on_Rua_da_Conceicao\.jpg", tram["key"])
    assert re.fullmatch(
        rf"image/pixabay/travel/{TS}/pixabay_7345125_beach_sea_travel\.jpg", beach["key"]
    )
    commons_image, pixabay_image = COMMONS_IMAGES["travel"][0], PIXABAY_IMAGES["travel"][0]
    assert lake.body(tram["key"]) == commons_image.body
    assert lake.body(beach["key"]) == pixabay_image.body
    assert lake.head(tram["key"])["ContentType"] == "image/jpeg"
    assert (tram["width"], tram["height"]) == (1600, 1200)
    # with their credits: Commons' licence and author, Pixabay's own licence (never CC)
    tram_credit = lake.json(tram["key"].replace(".jpg", "_attribution.json"))
    assert (tram_credit["license"], tram_credit["author"]) == ("CC BY-SA 4.0", "Ana Sousa")
    assert tram_credit["sha1"] == lake.head(tram["key"])["Metadata"]["checksum"]
    beach_credit = lake.json(beach["key"].replace(".jpg", "_attribution.json"))
    assert beach_credit["license"] == "Pixabay Content License"
    assert (
        beach_credit["credit_line"]
        == "Image by Engin_Akyurt from Pixabay (Pixabay Content License)"
    )
    # and the catalog records each as an image
    catalog = Catalog(lake.table, resource=lake.dynamodb)
    assert catalog.get_asset(tram["asset_id"])["type"] == "image"
    assert catalog.get_asset(_clip["asset_id"])["type"] == "video"
    # The searches asked for bitmaps and photos
    [bitmaps] = _calls(served, "filetype%3Abitmap")
    assert "prop=imageinfo" in bitmaps and "iiprop=url%7Csize%7Cmime" in bitmaps
    [photos] = [u for u in _calls(served, "pixabay.com/api/?") if "image_type=photo" in u]
    assert photos


def test_no_image_batch_asked_means_no_image_search(served):
    # When a run gives only a video batch (image defaults to 0)
    output = run({"campaign": "travel", "batch_sizes": {"video": 1}})
    # Then only clips landed, and neither source was asked for images
    assert {a["media_type"] for a in output["assets"]} == {"video"}
    assert not _calls(served, "filetype%3Abitmap")
    assert not _calls(served, "image_type=photo")


def test_pixabay_photo_answers_are_cached_apart_for_24_hours(served, lake):
    # Given a run that searched Pixabay photos for travel
    run({"campaign": "travel", "batch_sizes": {"video": 1, "image": 2}})
    cached = [
        k
        for k in lake.object_keys(include_cache=True)
        if k.startswith("scratch/cache/pixabay-images/")
    ]
    assert len(cached) == 1
    # When a second run asks again (everything found is already ingested)
    output = run({"campaign": "travel", "batch_sizes": {"video": 1, "image": 2}})
    # Then the photo search was answered from the cache, not by Pixabay
    assert len([u for u in _calls(served, "pixabay.com/api/?") if "image_type" in u]) == 1
    assert output["skipped"].get("already_ingested", 0) >= 2


def test_a_commons_image_over_the_pixel_limit_is_skipped_before_any_download(served, lake):
    # Given Commons offers a 12,000 x 9,000 travel image (108 MP, over the 100 MP decode limit)
    huge = dataclasses.replace(
        COMMONS_IMAGES["travel"][0], still=local.Still("tram", 12_000, 9_000)
    )
    page = local.commons_image_page(COMMONS_IMAGES["travel"][0], 1)
    page["imageinfo"][0].update(width=huge.still.width, height=huge.still.height)
    original = local.commons_image_page
    with mock.patch.object(
        local, "commons_image_page", lambda image, i: page if i == 1 else original(image, i)
    ):
        output = run({"campaign": "travel", "batch_sizes": {"video": 1, "image": 1}})
    # Then it is skipped as too large, and its file was never requested
    assert MAX_IMAGE_PIXELS < 12_000 * 9_000
    assert output["skipped"].get("too_large") == 1
    assert not _calls(served, "Tram_28_on_Rua_da_Conceicao.jpg")
    # and the batch was filled by the next hit instead
    assert [(a["media_type"], a["source"]) for a in output["assets"]][1:] == [("image", "commons")]


def put_upload(lake, key: str, body: bytes, content_type: str) -> None:  # type: ignore[no-untyped-def]
    lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=body, ContentType=content_type)


def test_an_uploaded_photo_is_registered_as_an_image(ingest_env, http, lake):
    # Given a photo a person dropped under uploads/
    body = COMMONS_IMAGES["tech"][0].body
    put_upload(lake, "uploads/team a/Workbench.JPG", body, "image/jpeg")

    # When its upload event arrives
    output = run({"upload": {"bucket": lake.bucket, "key": "uploads/team a/Workbench.JPG"}})

    # Then it is an image asset under image/upload/
    [asset] = output["assets"]
    assert asset["media_type"] == "image"
    assert re.fullmatch(rf"image/upload/uploads/{TS}/Workbench\.jpg", asset["key"]), asset["key"]
    assert lake.body(asset["key"]) == body
    assert lake.head(asset["key"])["ContentType"] == "image/jpeg"
    catalog = Catalog(ingest_env.catalog_table, resource=lake.dynamodb)
    assert catalog.get_asset(asset["asset_id"])["type"] == "image"


@pytest.mark.parametrize(
    ("key", "content_type", "message"),
    [
        pytest.param(
            "uploads/photo.jpg",
            "video/mp4",
            "content type 'video/mp4' is not an image type, and the name says .jpg",
            id="a photo name with a video type",
        ),
        pytest.param(
            "uploads/vector.svg",
            "image/svg+xml",
            ".svg is not a video or image file",
            id="a vector image",
        ),
    ],
)
def test_an_upload_that_is_not_a_readable_image_is_refused_naming_why(
    ingest_env, http, lake, key: str, content_type: str, message: str
):
    put_upload(lake, key, b"\xff\xd8\xff" + b"\x00" * 64, content_type)
    with pytest.raises(InvalidInput, match=re.escape(message)):
        run({"upload": {"bucket": lake.bucket, "key": key}})
    assert [k for k in lake.object_keys() if not k.startswith("uploads/")] == []
