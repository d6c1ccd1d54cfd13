"""The image path's analysis step: Rekognition's image APIs on the rendition the images step
chose (``analysis_input``), as bounded labels.json sections.

Input ``{"asset": {...}, "input": {"bucket", "key", ...}}``; output the ``labels``,
``moderation`` and ``text`` sections (``lambdas/images/analysis.py``) with the object they
describe. A step of its own, after the renditions are written, so the state machine's Retry on
Rekognition's throttling (the same errors and backoff as the video analysis) repeats only the
calls, never the rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.images.analysis import RekognitionImage
from lambdas.images.settings import ImageAnalysisSettings
from lambdas.shared.assets import step_asset
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, require_strings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


def analyse(event: Mapping[str, Any], rekognition: RekognitionImage) -> dict[str, Any]:
    asset = step_asset(event, "image analysis")
    target = event.get("input")
    if not isinstance(target, Mapping):
        raise InvalidInput('image analysis input must name the rendition: {"input": {...}}')
    require_strings(target, ("bucket", "key"), "input.")
    sections = rekognition.analyze(str(target["bucket"]), str(target["key"]))
    logger.info(
        "image analysed",
        extra={
            "asset_id": asset["asset_id"],
            "labels": sections["labels"]["label_count"],
            "moderation_flagged": sections["moderation"]["flagged"],
            "text_lines": sections["text"]["line_count"],
        },
    )
    return {
        **sections,
        "input": {
            name: target[name]
            for name in ("bucket", "key", "width", "height", "format")
            if name in target
        },
    }


_dependencies = Dependencies(ImageAnalysisSettings, lambda _settings: RekognitionImage())


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _settings, rekognition = _dependencies()
    result = analyse(event, rekognition)
    metrics.add_metric(name="ImagesAnalysed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="ImageLabelsFound", unit=MetricUnit.Count, value=result["labels"]["label_count"]
    )
    return result
