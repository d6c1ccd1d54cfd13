"""A Rekognition Image stand-in for moto: DetectLabels, DetectModerationLabels and DetectText.

moto answers ``DetectLabels`` and ``DetectText`` with one fixed sample, whatever the image.
``install()`` replaces those (and adds ``DetectModerationLabels``) on moto's
``RekognitionResponse``, backed by ``RekognitionImageStandIn``, which looks at the image:

* Each request is checked against botocore's model (``InvalidParameterException``), then the
  S3 object against the image APIs' documented limits, with the service's error codes:
  missing object ``InvalidS3ObjectException``, over 15 MB ``ImageTooLargeException``, not a
  JPEG or PNG ``InvalidImageFormatException``; smaller than 80 px on a side is answered
  ``InvalidParameterException`` (the limit is documented, the code for it is this stand-in's
  guess).
* ``ImageProperties`` are measured from the pixels: ``Quality`` (brightness: mean luma,
  contrast: luma spread, sharpness: mean gradient, each on Rekognition's 0-100 scale),
  ``DominantColors`` (Pillow's median-cut palette of the image grouped by nearest CSS colour,
  at most ``MaxDominantColors``, each with its hex code, CSS name, the nearest simplified
  colour and its share of the pixels). Foreground and background are the object's box and the rest.
* Labels and moderation labels are **synthetic but not random**, as the video stand-in's: the
  image is classified by the scene drawn in it (the nearest base colour of
  ``localworld.media.SCENES``) and reports that scene's labels with deterministic confidences;
  the first label's ``Instances`` carry the object's box measured in the pixels. ``MaxLabels``
  and ``MinConfidence`` apply. No model runs: a label is only as true as the scene table.
* ``DetectText`` finds no text: the fixtures draw none and no OCR runs here (not faithful for
  an image with text).

Faults: ``throttle(operation, times, code)`` as in the video stand-in.
"""

# ruff: noqa: PLW0603

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import boto3
import numpy as np
from botocore.validate import ParamValidator
from PIL import Image, UnidentifiedImageError

from localworld.faults import FaultQueue
from localworld.media import SCENES, classify
from localworld.rekognition import (
    FAULT_MESSAGES,
    FAULT_STATUS,
    RekognitionError,
    _digest,
    moto_actions,
    object_box,
)

OPERATIONS = ("DetectLabels", "DetectModerationLabels", "DetectText")
MAX_OBJECT_BYTES = 15 * 1024 * 1024
MIN_SIDE = 80
READABLE = ("JPEG", "PNG")
LABEL_MODEL, MODERATION_MODEL, TEXT_MODEL = "3.0", "7.0", "3.0"
DEFAULT_MIN_CONFIDENCE = 55.0
DEFAULT_DOMINANT_COLOURS = 10
# A few CSS colour names and Rekognition's simplified colours, nearest by RGB distance.
CSS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128),
    "silver": (192, 192, 192), "red": (255, 0, 0), "maroon": (128, 0, 0),
    "orange": (255, 165, 0), "gold": (255, 215, 0), "yellow": (255, 255, 0),
    "olive": (128, 128, 0), "green": (0, 128, 0), "lime": (0, 255, 0), "teal": (0, 128, 128),
    "steelblue": (70, 130, 180), "blue": (0, 0, 255), "navy": (0, 0, 128),
    "purple": (128, 0, 128), "pink": (255, 192, 203), "brown": (165, 42, 42),
    "goldenrod": (218, 165, 32), "whitesmoke": (245, 245, 245), "dimgray": (105, 105, 105),
}  # fmt: skip
SIMPLIFIED = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
    "red": (220, 30, 30), "orange": (240, 140, 20), "yellow": (230, 210, 40),
    "green": (40, 160, 60), "blue": (30, 80, 200), "purple": (130, 50, 160),
    "pink": (240, 150, 190), "brown": (130, 80, 40),
}  # fmt: skip
ERROR_MESSAGES = {
    "InvalidS3ObjectException": "Unable to get object metadata from S3. Check object key, "
    "region and/or access permissions.",
    "ImageTooLargeException": "Image size is too large.",
    "InvalidImageFormatException": "Request has unsupported image format",
    "InvalidParameterException": "Request has invalid parameters",
}


def _nearest(rgb: tuple[int, int, int], table: dict[str, tuple[int, int, int]]) -> str:
    return min(
        table, key=lambda name: sum((a - b) ** 2 for a, b in zip(rgb, table[name], strict=True))
    )


def _quality(pixels: np.ndarray) -> dict[str, float]:
    """Brightness, contrast and sharpness (0-100) of an RGB array, from its Rec. 601 luma."""
    if pixels.size == 0:
        return {"Brightness": 0.0, "Sharpness": 0.0, "Contrast": 0.0}
    luma = pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gradient = 0.0
    if min(luma.shape) > 1:
        gradient = float(
            np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()
        )
    return {
        "Brightness": round(float(luma.mean()) / 255 * 100, 4),
        "Sharpness": round(min(100.0, gradient / 255 * 100 * 8), 4),
        "Contrast": round(min(100.0, float(luma.std()) / 127.5 * 100), 4),
    }


def _colours(image: Image.Image, count: int) -> list[dict[str, Any]]:
    """The image's dominant colours: a median-cut palette of the pixels, its entries grouped
    by their nearest CSS colour (a gradient is one colour, as Rekognition reports it), the
    group's mean as its value, by share of the pixels."""
    if image.width == 0 or image.height == 0:
        return []
    small = image.convert("RGB")
    small.thumbnail((256, 256))
    palette_image = small.quantize(colors=32, method=Image.Quantize.MEDIANCUT)
    palette = palette_image.getpalette() or []
    groups: dict[str, list[tuple[int, tuple[int, int, int]]]] = {}
    for n, entry in palette_image.getcolors() or []:
        index = int(entry)  # type: ignore[arg-type]  # (a "P" image's colours are indexes)
        rgb = (int(palette[index * 3]), int(palette[index * 3 + 1]), int(palette[index * 3 + 2]))
        groups.setdefault(_nearest(rgb, CSS), []).append((n, rgb))
    total = sum(n for members in groups.values() for n, _ in members) or 1
    found: list[dict[str, Any]] = []
    for name, members in groups.items():
        pixels = sum(n for n, _ in members)
        red, green, blue = (round(sum(n * rgb[i] for n, rgb in members) / pixels) for i in range(3))
        found.append(
            {
                "Red": red,
                "Blue": blue,
                "Green": green,
                "HexCode": f"#{red:02x}{green:02x}{blue:02x}",
                "CSSColor": name,
                "SimplifiedColor": _nearest((red, green, blue), SIMPLIFIED),
                "PixelPercent": round(pixels / total * 100, 4),
            }
        )
    found.sort(key=lambda colour: -float(colour["PixelPercent"]))
    return found[: max(1, count)]


class RekognitionImageStandIn:
    def __init__(self, *, read_object: Callable[[str, str], bytes | None]) -> None:
        # (bucket, key) -> the object's bytes, or None when it does not exist.
        self.read_object = read_object
        self.faults = FaultQueue(
            operations=OPERATIONS,
            status=FAULT_STATUS,
            messages=FAULT_MESSAGES,
            error=RekognitionError,
            service="Rekognition Image",
        )
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._model = boto3.session.Session()._session.get_service_model("rekognition")

    def throttle(self, operation: str, times: int = 1, code: str = "ThrottlingException") -> None:
        """The next ``times`` calls of ``operation`` fail with ``code`` (see FAULT_STATUS)."""
        self.faults.add(operation, times, code)

    def reset_faults(self) -> None:
        self.faults.clear()

    def _image(self, operation: str, params: dict[str, Any]) -> tuple[Image.Image, str]:
        shape = self._model.operation_model(operation).input_shape
        if shape is None:
            raise RekognitionError("InvalidParameterException", f"{operation} takes no input")
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise RekognitionError("InvalidParameterException", report.generate_report())
        self.faults.raise_next(operation)
        source = params["Image"]
        if "S3Object" not in source:
            raise RekognitionError(
                "InvalidParameterException", "the stand-in reads S3 objects only"
            )
        bucket, key = source["S3Object"]["Bucket"], source["S3Object"]["Name"]
        body = self.read_object(bucket, key)
        if body is None:
            code = "InvalidS3ObjectException"
            raise RekognitionError(code, ERROR_MESSAGES[code])
        if len(body) > MAX_OBJECT_BYTES:
            raise RekognitionError(
                "ImageTooLargeException", ERROR_MESSAGES["ImageTooLargeException"]
            )
        try:
            image = Image.open(io.BytesIO(body))
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            code = "InvalidImageFormatException"
            raise RekognitionError(code, ERROR_MESSAGES[code]) from err
        if image.format not in READABLE:
            code = "InvalidImageFormatException"
            raise RekognitionError(code, ERROR_MESSAGES[code])
        if min(image.size) < MIN_SIDE:
            code = "InvalidParameterException"
            raise RekognitionError(code, ERROR_MESSAGES[code])
        with self._lock:
            self.calls.append((operation, params))
        return image.convert("RGB"), key

    def detect(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        image, key = self._image(operation, params)
        pixels = np.asarray(image)
        scene_name = classify(pixels.reshape(-1, 3).mean(axis=0))
        scene = SCENES.get(scene_name or "")
        minimum = float(params.get("MinConfidence", DEFAULT_MIN_CONFIDENCE))
        if operation == "DetectText":
            return {"TextDetections": [], "TextModelVersion": TEXT_MODEL}
        if operation == "DetectModerationLabels":
            labels = [
                {
                    "Confidence": confidence,
                    "Name": name,
                    "ParentName": parent,
                    "TaxonomyLevel": level,
                }
                for name, parent, level in (scene.moderation if scene else ())
                if (confidence := round(82.0 - (_digest(key, name) % 50) / 10, 3)) >= minimum
            ]
            return {"ModerationLabels": labels, "ModerationModelVersion": MODERATION_MODEL}
        return self._labels(params, image, scene_name=scene_name, key=key, minimum=minimum)

    def _labels(
        self,
        params: dict[str, Any],
        image: Image.Image,
        *,
        scene_name: str | None,
        key: str,
        minimum: float,
    ) -> dict[str, Any]:
        pixels = np.asarray(image)
        features = params.get("Features") or ["GENERAL_LABELS"]
        box = object_box(pixels, scene_name) if scene_name else None
        answer: dict[str, Any] = {"LabelModelVersion": LABEL_MODEL, "Labels": []}
        if "GENERAL_LABELS" in features and scene_name:
            labels = []
            for rank, (name, parents, categories) in enumerate(SCENES[scene_name].labels):
                confidence = round(99.2 - rank * 4.5 - (_digest(key, name) % 40) / 10, 3)
                if confidence < minimum:
                    continue
                instances = (
                    [{"BoundingBox": box, "Confidence": confidence, "DominantColors": []}]
                    if rank == 0 and box
                    else []
                )
                labels.append(
                    {
                        "Name": name,
                        "Confidence": confidence,
                        "Instances": instances,
                        "Parents": [{"Name": p} for p in parents],
                        "Aliases": [],
                        "Categories": [{"Name": c} for c in categories],
                    }
                )
            answer["Labels"] = labels[: int(params.get("MaxLabels", len(labels)) or len(labels))]
        if "IMAGE_PROPERTIES" in features:
            settings = (params.get("Settings") or {}).get("ImageProperties") or {}
            count = int(settings.get("MaxDominantColors", DEFAULT_DOMINANT_COLOURS))
            answer["ImageProperties"] = self._properties(image, pixels, box, count)
        return answer

    def _properties(
        self, image: Image.Image, pixels: np.ndarray, box: dict[str, float] | None, count: int
    ) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "Quality": _quality(pixels),
            "DominantColors": _colours(image, count),
        }
        if box:
            height, width = pixels.shape[:2]
            left, top = int(box["Left"] * width), int(box["Top"] * height)
            right = left + max(1, int(box["Width"] * width))
            bottom = top + max(1, int(box["Height"] * height))
            inside = pixels[top:bottom, left:right]
            mask = np.ones(pixels.shape[:2], bool)
            mask[top:bottom, left:right] = False
            properties["Foreground"] = {
                "Quality": {k: v for k, v in _quality(inside).items() if k != "Contrast"},
                "DominantColors": _colours(image.crop((left, top, right, bottom)), count),
            }
            properties["Background"] = {
                "Quality": {
                    k: v for k, v in _quality(pixels[mask][None, ...]).items() if k != "Contrast"
                },
                "DominantColors": _colours(Image.fromarray(pixels[mask][None, ...]), count),
            }
        return properties


_STATE: dict[str, RekognitionImageStandIn | None] = {"service": None}
_INSTALLED = False


def activate(service: RekognitionImageStandIn | None) -> None:
    _STATE["service"] = service


def install() -> None:
    """Put the three image operations on moto's Rekognition responses (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return

    def serve() -> Callable[[str, dict[str, Any]], Any] | None:
        service = _STATE["service"]
        return service.detect if service is not None else None

    moto_actions(OPERATIONS, serve)
    _INSTALLED = True
