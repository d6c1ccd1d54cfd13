"""The Rekognition Image stand-in, reached by the images unit's own client through moto."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.validate import ParamValidator
from moto import mock_aws
from PIL import Image

from lambdas.images.analysis import RekognitionImage
from lambdas.shared.rekognition import RekognitionLimitExceeded, RekognitionRequestRejected
from localworld import rekognition_image
from localworld.media import SCENES, draw_frame
from localworld.rekognition_image import RekognitionImageStandIn

BUCKET = "media-processed-test"
MODEL = boto3.session.Session()._session.get_service_model("rekognition")


def picture(scene: str, fmt: str = "JPEG", size: tuple[int, int] = (640, 360)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(draw_frame(SCENES[scene], size[0], size[1], 0.0)).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, RekognitionImageStandIn]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)

        def read(bucket: str, key: str) -> bytes | None:
            try:
                return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            except s3.exceptions.NoSuchKey:
                return None

        service = RekognitionImageStandIn(read_object=read)
        rekognition_image.install()
        rekognition_image.activate(service)
        try:
            yield s3, service
        finally:
            rekognition_image.activate(None)


def client() -> Any:
    return boto3.client("rekognition", region_name="us-east-1")


def test_answers_have_the_services_shapes(world):
    s3, _ = world
    s3.put_object(Bucket=BUCKET, Key="bar.jpg", Body=picture("bar"))
    image = {"S3Object": {"Bucket": BUCKET, "Name": "bar.jpg"}}
    calls = {
        "DetectLabels": client().detect_labels(
            Image=image, Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"]
        ),
        "DetectModerationLabels": client().detect_moderation_labels(Image=image),
        "DetectText": client().detect_text(Image=image),
    }
    for operation, response in calls.items():
        answer = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        report = ParamValidator().validate(answer, MODEL.operation_model(operation).output_shape)
        assert not report.has_errors(), (operation, report.generate_report())


def test_the_images_analysis_reads_the_scene_its_object_and_its_colours(world):
    # Given a picture of the bar scene (purple backdrop, a golden object low down)
    s3, service = world
    s3.put_object(Bucket=BUCKET, Key="bar.jpg", Body=picture("bar"))

    # When the images unit analyses it through its own client
    found = RekognitionImage(client()).analyze(BUCKET, "bar.jpg")

    # Then the labels are the scene's, the object's box is where it was drawn
    labels = found["labels"]
    assert [label["name"] for label in labels["labels"]] == ["Person", "Glass", "Pub"]
    [instance] = labels["labels"][0]["instances"]
    box = instance["bounding_box"]
    assert box["Left"] == pytest.approx(0.1, abs=0.02) and box["Top"] == pytest.approx(
        0.55, abs=0.02
    )
    assert box["Width"] == pytest.approx(0.2, abs=0.02) and box["Height"] == pytest.approx(
        0.25, abs=0.02
    )
    # And the colours and quality are measured: mostly purple, the object gold in front
    top = labels["dominant_colors"][0]
    assert top["simplified_color"] == "purple" and top["pixel_percent"] > 50
    assert labels["foreground"]["dominant_colors"][0]["simplified_color"] in ("orange", "yellow")
    assert 0 < labels["quality"]["brightness"] < 60 and labels["quality"]["contrast"] > 0
    # And the scene's moderation labels, and no text
    assert {m["name"] for m in found["moderation"]["labels"]} == {"Alcohol", "Drinking"}
    assert found["text"]["lines"] == []
    assert [operation for operation, _ in service.calls] == [
        "DetectLabels",
        "DetectModerationLabels",
        "DetectText",
    ]


def test_max_labels_and_min_confidence_apply(world):
    s3, _ = world
    s3.put_object(Bucket=BUCKET, Key="tram.jpg", Body=picture("tram"))
    image = {"S3Object": {"Bucket": BUCKET, "Name": "tram.jpg"}}
    assert len(client().detect_labels(Image=image, MaxLabels=2)["Labels"]) == 2
    every = client().detect_labels(Image=image, MinConfidence=0)["Labels"]
    threshold = sorted(label["Confidence"] for label in every)[len(every) // 2]
    strict = client().detect_labels(Image=image, MinConfidence=threshold)["Labels"]
    assert 0 < len(strict) < len(every)
    assert all(label["Confidence"] >= threshold for label in strict)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "InvalidS3ObjectException"),
        (b"not an image at all", "InvalidImageFormatException"),
        (picture("sea", "WEBP"), "InvalidImageFormatException"),
        (picture("sea", "PNG", (120, 60)), "InvalidParameterException"),
        (b"\xff" * (15 * 1024 * 1024 + 1), "ImageTooLargeException"),
    ],
    ids=["missing", "not-an-image", "webp", "too-small", "too-large"],
)
def test_what_the_image_apis_refuse_is_refused_with_their_codes(world, body, code):
    s3, _ = world
    if body is not None:
        s3.put_object(Bucket=BUCKET, Key="x", Body=body)
    with pytest.raises(RekognitionRequestRejected, match=f"DetectLabels failed with {code}"):
        RekognitionImage(client()).analyze(BUCKET, "x")


def test_a_throttled_call_is_the_limit_error_the_workflow_retries(world):
    s3, service = world
    s3.put_object(Bucket=BUCKET, Key="sea.png", Body=picture("sea", "PNG"))
    service.throttle("DetectModerationLabels", times=1)
    analysis = RekognitionImage(
        boto3.client(
            "rekognition",
            region_name="us-east-1",
            # (one attempt: the SDK's own retry would spend the fault)
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
    )
    with pytest.raises(RekognitionLimitExceeded, match="ThrottlingException"):
        analysis.analyze(BUCKET, "sea.png")
    # (the fault is spent: the next call answers)
    assert analysis.analyze(BUCKET, "sea.png")["labels"]["labels"][0]["name"] == "Water"


def test_quality_follows_the_pixels():
    flat = np.full((100, 100, 3), 128, np.uint8)
    edges = flat.copy()
    edges[:, ::2] = 0
    dull, sharp = rekognition_image._quality(flat), rekognition_image._quality(edges)
    assert dull["Sharpness"] == 0 and dull["Contrast"] == 0
    assert dull["Brightness"] == pytest.approx(50.2, abs=0.1)
    assert sharp["Sharpness"] > 50 and sharp["Contrast"] > 30
