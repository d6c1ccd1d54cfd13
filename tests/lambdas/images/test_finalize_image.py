"""Finalize image against moto: a real render's record and Rekognition-shaped sections in, the
image's labels.json (checked against its published schema) and its catalog record out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.finalize.handler import AttributionMissing, Storage
from lambdas.finalize.image import finalize_image
from lambdas.finalize.settings import FinalizeSettings
from lambdas.images.analysis import labels_section, moderation_section, text_section
from lambdas.images.handler import render_asset
from lambdas.images.settings import ImagesSettings
from lambdas.shared.catalog import Catalog, label_key
from lambdas.shared.keys import AssetKeys
from localworld.world import labels_schema
from tests.lambdas.conftest import client
from tests.lambdas.images import fixtures

RAW, PROCESSED = "media-raw-test", "media-processed-test"
KEY = "image/commons/travel/20261203_060000/Harbour.jpg"
ASSET_ID = "commons-0123456789abcdef0123"


def _label(name: str, confidence: float, box: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "Name": name,
        "Confidence": confidence,
        "Instances": [{"BoundingBox": box, "Confidence": confidence}] if box else [],
        "Parents": [],
        "Aliases": [],
        "Categories": [{"Name": "Travel"}],
    }


def _analysis(names: list[tuple[str, float]]) -> dict[str, Any]:
    box = {"Left": 0.1, "Top": 0.2, "Width": 0.5, "Height": 0.4}
    labels = labels_section(
        {
            "Labels": [_label(name, c, box if i == 0 else None) for i, (name, c) in enumerate(names)],
            "LabelModelVersion": "3.0",
            "ImageProperties": {
                "Quality": {"Brightness": 61.2, "Sharpness": 80.1, "Contrast": 70.0},
                "DominantColors": [
                    {"HexCode": "#1E1EDC", "CSSColor": "blue", "SimplifiedColor": "blue",
                     "PixelPercent": 42.5},
                ],
            },
        }
    )  # fmt: skip
    return {
        "labels": labels,
        "moderation": moderation_section({"ModerationLabels": [], "ModerationModelVersion": "7.0"}),
        "text": text_section({"TextDetections": [], "TextModelVersion": "3.0"}),
        "input": {"bucket": PROCESSED, "key": "x.jpg", "width": 640, "height": 480},
    }


@pytest.fixture
def world(aws_mock: None, catalog_table: str) -> tuple[Any, Catalog]:
    s3 = client("s3")
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    catalog = Catalog(catalog_table)
    catalog.claim("commons", "42", "abc", ASSET_ID)
    catalog.commit_asset(
        {"asset_id": ASSET_ID, "source": "commons", "source_id": "42", "campaign": "travel",
         "checksum": "abc", "bucket": RAW, "key": KEY, "type": "image"}
    )  # fmt: skip
    s3.put_object(Bucket=RAW, Key=KEY, Body=fixtures.phone_photo())
    return s3, catalog


def _event(s3: Any, names: list[tuple[str, float]], run: str = "first") -> dict[str, Any]:
    asset = {"bucket": RAW, "key": KEY, "asset_id": ASSET_ID, "source": "commons",
             "campaign": "travel"}  # fmt: skip
    rendered = render_asset(asset, ImagesSettings(processed_bucket=PROCESSED), s3)
    return {
        "asset": asset,
        "image": rendered,
        "analysis": _analysis(names),
        "run": {"name": run, "kind": "pipeline"},
    }


def _settings(catalog_table: str) -> FinalizeSettings:
    return FinalizeSettings(catalog_table=catalog_table, processed_bucket=PROCESSED)


def _credit(s3: Any) -> None:
    s3.put_object(
        Bucket=RAW,
        Key=AssetKeys(KEY).attribution,
        Body=json.dumps(
            {"license": "CC BY-SA 4.0", "license_url": "https://creativecommons.org/licenses/by-sa/4.0",
             "title": "Harbour", "author": "Ana Sousa", "source_page_url": "https://commons.wikimedia.org/wiki/File:Harbour.jpg",
             "credit_line": "Harbour by Ana Sousa, CC BY-SA 4.0, via Wikimedia Commons"}
        ),
    )  # fmt: skip


def test_an_image_document_follows_its_schema_and_the_catalog_records_the_image(
    world, catalog_table
):
    s3, catalog = world
    _credit(s3)
    document = finalize_image(
        _event(s3, [("Boat", 97.5), ("Harbor", 91.0), ("Sky", 55.0)]),
        settings=_settings(catalog_table),
        storage=Storage(s3),
        catalog=catalog,
    )

    # The document as written is the one returned, and it matches the published schema
    stored = json.loads(s3.get_object(Bucket=PROCESSED, Key=AssetKeys(KEY).labels)["Body"].read())
    assert stored == json.loads(json.dumps(document))
    errors = [f"{list(e.path)}: {e.message}" for e in labels_schema("image").iter_errors(stored)]
    assert errors == []
    # with the credit from the sidecar, the labels over the confidence floor (70) on top, and
    # the image's EXIF facts as the images step read them (the phone photo is rotated)
    assert stored["license"]["name"] == "CC BY-SA 4.0"
    assert stored["attribution"]["author"] == "Ana Sousa"
    assert [t["name"] for t in stored["summary"]["top_labels"]] == ["Boat", "Harbor"]
    assert stored["summary"]["labels"][0]["instances"][0]["bounding_box"]["Width"] == 0.5
    assert stored["image"]["camera"] == "Canon EOS R6"
    assert stored["image"]["orientation"] == 6
    # and the catalog knows it as an image, searchable by its labels
    record = catalog.get_asset(ASSET_ID)
    assert record is not None
    assert (record["status"], record["type"], record["top_labels"]) == (
        "PROCESSED",
        "image",
        ["Boat", "Harbor"],
    )
    assert record["thumbnail_key"].endswith("_small.jpg")
    assert record["image_key"].endswith("_medium.jpg")
    boats = catalog.table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": label_key("Boat")}
    )["Items"]
    assert [item["asset_id"] for item in boats] == [ASSET_ID]


def test_a_second_run_takes_labels_it_no_longer_finds_out_of_the_index(world, catalog_table):
    s3, catalog = world
    _credit(s3)
    settings = _settings(catalog_table)
    finalize_image(
        _event(s3, [("Boat", 97.5), ("Harbor", 91.0)]), settings=settings, storage=Storage(s3),
        catalog=catalog,
    )  # fmt: skip
    finalize_image(
        _event(s3, [("Boat", 96.0), ("Pier", 88.0)], run="second"),
        settings=settings,
        storage=Storage(s3),
        catalog=catalog,
    )

    def indexed(label: str) -> list[str]:
        items = catalog.table.query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": label_key(label)}
        )["Items"]
        return [item["asset_id"] for item in items]

    assert (indexed("Boat"), indexed("Pier"), indexed("Harbor")) == ([ASSET_ID], [ASSET_ID], [])


def test_an_image_without_a_licence_is_not_published(world, catalog_table):
    # Given no attribution sidecar and a catalog record without a licence
    s3, catalog = world
    with pytest.raises(AttributionMissing, match="has no license"):
        finalize_image(
            _event(s3, [("Boat", 97.5)]),
            settings=_settings(catalog_table),
            storage=Storage(s3),
            catalog=catalog,
        )
    # Then no labels.json was written and the asset was not marked processed
    assert "Contents" not in s3.list_objects_v2(Bucket=PROCESSED, Prefix=AssetKeys(KEY).labels)
    record = catalog.get_asset(ASSET_ID)
    assert record is not None and record["status"] == "INGESTED"
