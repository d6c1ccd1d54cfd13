"""Rekognition's image APIs on one rendition: labels (with dominant colours and image quality),
moderation and text, normalised into bounded sections for labels.json.

The calls are synchronous (an image needs no job); the rendition comes from
``render.for_analysis``, which already keeps within the APIs' limits (JPEG or PNG, at most
15 MB, at least 80 px a side). Errors leave as the video analysis's typed errors
(``lambdas/shared/rekognition.py``: ``translate``), so the workflow's Retry and Catch treat both
paths alike: throttling is ``RekognitionLimitExceeded`` (retried with backoff by the state
machine, the SDK trying only three times), a service fault ``RekognitionUnavailable``, and an
image Rekognition refuses (``InvalidImageFormatException``, ``ImageTooLargeException``, an
unreadable object) ``RekognitionRequestRejected``, permanent for the asset.

Bounds: at most ``MAX_LABELS`` labels with ``MAX_INSTANCES`` boxes each, ``MAX_COLOURS``
dominant colours, ``MAX_TEXT_LINES`` lines of text; a section says when it was cut.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared.rekognition import RekognitionUnavailable, translate

MIN_CONFIDENCE = 60.0
MAX_LABELS = 50
MAX_INSTANCES = 20
MAX_COLOURS = 10
MAX_TEXT_LINES = 100
MIN_TEXT_CONFIDENCE = 80.0


def _box(box: Mapping[str, Any] | None) -> dict[str, float] | None:
    if not box:
        return None
    return {
        side: round(float(box.get(side, 0.0)), 4) for side in ("Left", "Top", "Width", "Height")
    }


def _colours(colours: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "hex": str(c.get("HexCode", "")),
            "css_color": c.get("CSSColor"),
            "simplified_color": c.get("SimplifiedColor"),
            "pixel_percent": round(float(c.get("PixelPercent", 0.0)), 2),
        }
        for c in (colours or [])[:MAX_COLOURS]
    ]


def _quality(quality: Mapping[str, Any] | None) -> dict[str, float] | None:
    if not quality:
        return None
    return {
        name.lower(): round(float(quality[name]), 2)
        for name in ("Brightness", "Sharpness", "Contrast")
        if name in quality
    }


def labels_section(response: Mapping[str, Any]) -> dict[str, Any]:
    """DetectLabels' answer as labels.json keeps it: most confident first, bounded."""
    found = sorted(response.get("Labels", []), key=lambda label: -float(label["Confidence"]))
    labels = []
    for label in found[:MAX_LABELS]:
        instances = label.get("Instances", [])
        labels.append(
            {
                "name": label["Name"],
                "confidence": round(float(label["Confidence"]), 2),
                "categories": [c["Name"] for c in label.get("Categories", [])],
                "parents": [p["Name"] for p in label.get("Parents", [])],
                "aliases": [a["Name"] for a in label.get("Aliases", [])],
                "instances": [
                    {
                        "bounding_box": _box(i.get("BoundingBox")),
                        "confidence": round(float(i.get("Confidence", 0.0)), 2),
                        "dominant_colors": _colours(i.get("DominantColors")),
                    }
                    for i in instances[:MAX_INSTANCES]
                ],
                "instances_truncated": len(instances) > MAX_INSTANCES,
            }
        )
    properties = response.get("ImageProperties") or {}
    return {
        "model_version": response.get("LabelModelVersion"),
        "labels": labels,
        "label_count": len(found),
        "labels_truncated": len(found) > MAX_LABELS,
        "dominant_colors": _colours(properties.get("DominantColors")),
        "quality": _quality(properties.get("Quality")),
        "foreground": {
            "quality": _quality((properties.get("Foreground") or {}).get("Quality")),
            "dominant_colors": _colours((properties.get("Foreground") or {}).get("DominantColors")),
        },
        "background": {
            "quality": _quality((properties.get("Background") or {}).get("Quality")),
            "dominant_colors": _colours((properties.get("Background") or {}).get("DominantColors")),
        },
    }


def moderation_section(response: Mapping[str, Any]) -> dict[str, Any]:
    labels = sorted(
        response.get("ModerationLabels", []), key=lambda label: -float(label["Confidence"])
    )
    return {
        "model_version": response.get("ModerationModelVersion"),
        "flagged": bool(labels),
        "labels": [
            {
                "name": label["Name"],
                "parent": label.get("ParentName") or None,
                "confidence": round(float(label["Confidence"]), 2),
                "taxonomy_level": label.get("TaxonomyLevel"),
            }
            for label in labels
        ],
    }


def text_section(response: Mapping[str, Any]) -> dict[str, Any]:
    """Lines of text (Rekognition also answers each word; lines carry them, in reading order)."""
    detections = response.get("TextDetections", [])
    lines = [d for d in detections if d.get("Type") == "LINE"]
    words = [d for d in detections if d.get("Type") == "WORD"]
    kept = lines[:MAX_TEXT_LINES]
    return {
        "model_version": response.get("TextModelVersion"),
        "text": "\n".join(str(line["DetectedText"]) for line in kept),
        "lines": [
            {
                "text": line["DetectedText"],
                "confidence": round(float(line.get("Confidence", 0.0)), 2),
                "bounding_box": _box((line.get("Geometry") or {}).get("BoundingBox")),
            }
            for line in kept
        ],
        "line_count": len(lines),
        "word_count": len(words),
        "lines_truncated": len(lines) > MAX_TEXT_LINES,
    }


class RekognitionImage:
    """The three image analyses of one S3 object; botocore errors leave as typed errors."""

    def __init__(self, client: BaseClient | None = None) -> None:
        # Few SDK retries: the state machine owns backoff for throttling, with jitter.
        self._client: Any = client or boto3.client(
            "rekognition", config=Config(retries={"mode": "standard", "max_attempts": 3})
        )

    def _call(self, api: str, call: Callable[..., Any], **params: Any) -> dict[str, Any]:
        try:
            return dict(call(**params))
        except ClientError as err:
            raise translate(err, api) from err
        except BotoCoreError as err:
            raise RekognitionUnavailable(f"{api} failed: {err}") from err

    def analyze(
        self, bucket: str, key: str, *, min_confidence: float = MIN_CONFIDENCE
    ) -> dict[str, Any]:
        """``labels``, ``moderation`` and ``text`` sections for the image at ``bucket``/``key``."""
        image = {"S3Object": {"Bucket": bucket, "Name": key}}
        labels = self._call(
            "DetectLabels",
            self._client.detect_labels,
            Image=image,
            MaxLabels=MAX_LABELS + 1,  # one more than kept, so a cut can be told
            MinConfidence=min_confidence,
            Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"],
            Settings={"ImageProperties": {"MaxDominantColors": MAX_COLOURS}},
        )
        moderation = self._call(
            "DetectModerationLabels",
            self._client.detect_moderation_labels,
            Image=image,
            MinConfidence=min_confidence,
        )
        text = self._call(
            "DetectText",
            self._client.detect_text,
            Image=image,
            Filters={"WordFilter": {"MinConfidence": MIN_TEXT_CONFIDENCE}},
        )
        return {
            "labels": labels_section(labels),
            "moderation": moderation_section(moderation),
            "text": text_section(text),
        }
