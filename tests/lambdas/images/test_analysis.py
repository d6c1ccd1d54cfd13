"""Rekognition's image APIs behind ``RekognitionImage``: requests and answers checked against
botocore's model (``Stubber`` validates both), errors as the state machine expects them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.images import analysis
from lambdas.images.analysis import RekognitionImage
from lambdas.shared.rekognition import (
    RekognitionLimitExceeded,
    RekognitionRequestRejected,
    RekognitionUnavailable,
)

BUCKET, KEY = "media-processed-test", "image/upload/uploads/20261203_060000/harbour/images/h.jpg"
IMAGE = {"S3Object": {"Bucket": BUCKET, "Name": KEY}}


def colour(hex_code: str, name: str, simple: str, percent: float) -> dict[str, Any]:
    red, green, blue = (int(hex_code[i : i + 2], 16) for i in (1, 3, 5))
    return {
        "Red": red,
        "Green": green,
        "Blue": blue,
        "HexCode": hex_code,
        "CSSColor": name,
        "SimplifiedColor": simple,
        "PixelPercent": percent,
    }


LABELS = {
    "LabelModelVersion": "3.0",
    "Labels": [
        {
            "Name": "Boat",
            "Confidence": 97.1234,
            "Instances": [
                {
                    "BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.3, "Height": 0.25},
                    "Confidence": 96.5,
                    "DominantColors": [colour("#f0f0f0", "whitesmoke", "white", 40.0)],
                }
            ],
            "Parents": [{"Name": "Vehicle"}, {"Name": "Transportation"}],
            "Aliases": [{"Name": "Ship"}],
            "Categories": [{"Name": "Vehicles and Automotive"}],
        },
        {
            "Name": "Harbor",
            "Confidence": 99.2,
            "Instances": [],
            "Parents": [{"Name": "Water"}],
            "Aliases": [],
            "Categories": [{"Name": "Travel and Adventure"}],
        },
    ],
    "ImageProperties": {
        "Quality": {"Brightness": 71.2, "Sharpness": 88.4, "Contrast": 63.0},
        "DominantColors": [
            colour("#1e5aa0", "steelblue", "blue", 45.5),
            colour("#dcdcdc", "gainsboro", "grey", 20.1),
        ],
        "Foreground": {
            "Quality": {"Brightness": 80.0, "Sharpness": 90.0},
            "DominantColors": [colour("#f0f0f0", "whitesmoke", "white", 60.0)],
        },
        "Background": {
            "Quality": {"Brightness": 65.0, "Sharpness": 70.0},
            "DominantColors": [colour("#1e5aa0", "steelblue", "blue", 70.0)],
        },
    },
}
MODERATION = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {"Confidence": 72.5, "Name": "Swimwear", "ParentName": "Suggestive", "TaxonomyLevel": 2},
        {"Confidence": 80.0, "Name": "Suggestive", "ParentName": "", "TaxonomyLevel": 1},
    ],
}
TEXT = {
    "TextModelVersion": "3.0",
    "TextDetections": [
        {
            "DetectedText": "HARBOUR FERRY",
            "Type": "LINE",
            "Id": 0,
            "Confidence": 99.1,
            "Geometry": {
                "BoundingBox": {"Left": 0.4, "Top": 0.1, "Width": 0.2, "Height": 0.05},
                "Polygon": [{"X": 0.4, "Y": 0.1}],
            },
        },
        {
            "DetectedText": "HARBOUR",
            "Type": "WORD",
            "Id": 1,
            "ParentId": 0,
            "Confidence": 99.0,
            "Geometry": {"BoundingBox": {"Left": 0.4, "Top": 0.1, "Width": 0.1, "Height": 0.05}},
        },
        {
            "DetectedText": "FERRY",
            "Type": "WORD",
            "Id": 2,
            "ParentId": 0,
            "Confidence": 99.2,
            "Geometry": {"BoundingBox": {"Left": 0.5, "Top": 0.1, "Width": 0.1, "Height": 0.05}},
        },
    ],
}


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client(
        "rekognition",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber


def expect_all(stubber: Stubber) -> None:
    stubber.add_response(
        "detect_labels",
        LABELS,
        {
            "Image": IMAGE,
            "MaxLabels": analysis.MAX_LABELS + 1,
            "MinConfidence": analysis.MIN_CONFIDENCE,
            "Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"],
            "Settings": {"ImageProperties": {"MaxDominantColors": analysis.MAX_COLOURS}},
        },
    )
    stubber.add_response(
        "detect_moderation_labels",
        MODERATION,
        {"Image": IMAGE, "MinConfidence": analysis.MIN_CONFIDENCE},
    )
    stubber.add_response(
        "detect_text",
        TEXT,
        {"Image": IMAGE, "Filters": {"WordFilter": {"MinConfidence": 80.0}}},
    )


def test_the_three_analyses_become_bounded_sections(stubbed):
    client, stubber = stubbed
    expect_all(stubber)

    found = RekognitionImage(client).analyze(BUCKET, KEY)

    stubber.assert_no_pending_responses()
    labels = found["labels"]
    # Most confident first, with categories, parents, aliases and each instance's box
    assert [label["name"] for label in labels["labels"]] == ["Harbor", "Boat"]
    boat = labels["labels"][1]
    assert boat["confidence"] == 97.12 and boat["aliases"] == ["Ship"]
    assert boat["parents"] == ["Vehicle", "Transportation"]
    assert boat["categories"] == ["Vehicles and Automotive"]
    assert boat["instances"] == [
        {
            "bounding_box": {"Left": 0.1, "Top": 0.2, "Width": 0.3, "Height": 0.25},
            "confidence": 96.5,
            "dominant_colors": [
                {
                    "hex": "#f0f0f0",
                    "css_color": "whitesmoke",
                    "simplified_color": "white",
                    "pixel_percent": 40.0,
                }
            ],
        }
    ]
    assert (labels["label_count"], labels["labels_truncated"]) == (2, False)
    assert labels["quality"] == {"brightness": 71.2, "sharpness": 88.4, "contrast": 63.0}
    assert [c["simplified_color"] for c in labels["dominant_colors"]] == ["blue", "grey"]
    assert labels["foreground"]["quality"] == {"brightness": 80.0, "sharpness": 90.0}
    assert labels["model_version"] == "3.0"
    # Moderation: flagged, most confident first, the top level without a parent
    moderation = found["moderation"]
    assert moderation["flagged"] is True and moderation["model_version"] == "7.0"
    assert [(m["name"], m["parent"]) for m in moderation["labels"]] == [
        ("Suggestive", None),
        ("Swimwear", "Suggestive"),
    ]
    # Text: the lines, their boxes, and how many words they hold
    text = found["text"]
    assert text["text"] == "HARBOUR FERRY"
    assert text["lines"][0]["bounding_box"] == {
        "Left": 0.4,
        "Top": 0.1,
        "Width": 0.2,
        "Height": 0.05,
    }
    assert (text["line_count"], text["word_count"], text["lines_truncated"]) == (1, 2, False)


def test_many_labels_and_instances_are_cut_and_say_so():
    many = {
        "LabelModelVersion": "3.0",
        "Labels": [
            {
                "Name": f"Thing {i}",
                "Confidence": 99.0 - i * 0.5,
                "Instances": [
                    {
                        "BoundingBox": {"Left": 0, "Top": 0, "Width": 0.1, "Height": 0.1},
                        "Confidence": 90,
                    }
                ]
                * (analysis.MAX_INSTANCES + 5),
            }
            for i in range(analysis.MAX_LABELS + 1)
        ],
    }
    section = analysis.labels_section(many)
    assert len(section["labels"]) == analysis.MAX_LABELS and section["labels_truncated"]
    assert section["labels"][0]["name"] == "Thing 0"
    assert len(section["labels"][0]["instances"]) == analysis.MAX_INSTANCES
    assert section["labels"][0]["instances_truncated"] is True
    assert section["quality"] is None and section["dominant_colors"] == []


def test_nothing_found_is_an_empty_answer_not_an_error():
    assert analysis.moderation_section({"ModerationLabels": []})["flagged"] is False
    empty = analysis.text_section({"TextDetections": []})
    assert (empty["text"], empty["lines"], empty["word_count"]) == ("", [], 0)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, RekognitionLimitExceeded),
        ("ProvisionedThroughputExceededException", 400, RekognitionLimitExceeded),
        ("InternalServerError", 500, RekognitionUnavailable),
        ("InvalidImageFormatException", 400, RekognitionRequestRejected),
        ("ImageTooLargeException", 400, RekognitionRequestRejected),
        ("InvalidS3ObjectException", 400, RekognitionRequestRejected),
    ],
)
def test_errors_leave_as_the_typed_errors_the_workflow_retries_or_catches(
    stubbed, code, status, error
):
    client, stubber = stubbed
    stubber.add_client_error(
        "detect_labels", service_error_code=code, service_message="no", http_status_code=status
    )
    with pytest.raises(error, match=f"DetectLabels failed with {code}"):
        RekognitionImage(client).analyze(BUCKET, KEY)
