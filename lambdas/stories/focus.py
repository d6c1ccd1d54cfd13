"""Where a segment without a focus point pans to: what Rekognition finds the image is about.

DetectLabels (the images unit's analysis API, one call per image) answers with the boxes of the
objects it labels; the focus is the centre of the largest face or person, else of the largest
labelled object, else the image's centre. Rekognition reads a JPEG or PNG of at most 15 MB and
applies no EXIF orientation, so it is given an upright 1280 px JPEG copy the plan writes under
the run's work prefix (removed when the run ends), whatever the project's image is (a HEIC or a
40 MB TIFF included). DetectFaces is not called: DetectLabels' ``Face``/``Person`` instances
serve, at one call per image instead of two.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image, ImageOps

from lambdas.shared.rekognition import RekognitionLimitExceeded, RekognitionUnavailable, translate

ANALYSIS_SIDE = 1280
PEOPLE = frozenset({"Face", "Person", "Human", "Adult", "Child", "Man", "Woman"})
MIN_CONFIDENCE = 60.0
CENTRE = (0.5, 0.5)


@dataclass(frozen=True)
class Focus:
    x: float
    y: float
    # "manifest", "rekognition:<Label>" or "centre" (with why, when Rekognition could not help).
    source: str


def analysis_copy(path: str) -> bytes:
    """An upright JPEG of at most ``ANALYSIS_SIDE`` px on its long side, for DetectLabels."""
    with Image.open(path) as opened:
        opened.draft("RGB", (ANALYSIS_SIDE, ANALYSIS_SIDE))
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def largest_box(labels: list[Mapping[str, Any]]) -> tuple[str, Mapping[str, float]] | None:
    """The largest instance box of a face or person, else of any label."""
    best: tuple[bool, float, str, Mapping[str, float]] | None = None
    for label in labels:
        name = str(label.get("Name", ""))
        for instance in label.get("Instances") or []:
            box = instance.get("BoundingBox") or {}
            if float(instance.get("Confidence", 0.0)) < MIN_CONFIDENCE or not box:
                continue
            area = float(box.get("Width", 0.0)) * float(box.get("Height", 0.0))
            rank = (name in PEOPLE, area, name, box)
            if best is None or rank[:2] > best[:2]:
                best = rank
    return None if best is None else (best[2], best[3])


def focus_from_labels(labels: list[Mapping[str, Any]]) -> Focus:
    found = largest_box(labels)
    if found is None:
        return Focus(*CENTRE, "centre (Rekognition found no object with a box)")
    name, box = found
    x = float(box.get("Left", 0.0)) + float(box.get("Width", 0.0)) / 2
    y = float(box.get("Top", 0.0)) + float(box.get("Height", 0.0)) / 2
    return Focus(
        round(min(max(x, 0.0), 1.0), 4), round(min(max(y, 0.0), 1.0), 4), f"rekognition:{name}"
    )


def detect(client: Any, bucket: str, key: str) -> Focus:
    """DetectLabels on the analysis copy at ``bucket``/``key``. Throttling leaves as the typed
    errors the state machine retries; a refusal of this image falls back to the centre."""
    try:
        answer = client.detect_labels(
            Image={"S3Object": {"Bucket": bucket, "Name": key}},
            MaxLabels=20,
            MinConfidence=MIN_CONFIDENCE,
            Features=["GENERAL_LABELS"],
        )
    except ClientError as err:
        typed = translate(err, "DetectLabels")
        if isinstance(typed, RekognitionLimitExceeded | RekognitionUnavailable):
            raise typed from err
        return Focus(*CENTRE, f"centre ({typed})")
    except BotoCoreError as err:
        raise RekognitionUnavailable(f"DetectLabels failed: {err}") from err
    return focus_from_labels(list(answer.get("Labels") or []))
