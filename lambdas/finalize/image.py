"""The image path's last step: ``<stem>_labels.json`` for an image, then the catalog.

The same envelope as a clip's document (asset, licence and attribution from the ingest sidecar,
``summary`` with the top labels and moderation, ``renditions``, ``delivery``, ``processing``),
with ``media_type: "image"`` and the image's own sections: ``image`` (what the images step read
of the file: format, dimensions, colour mode, ICC profile, bit depth, frames, EXIF camera, lens,
capture time, orientation and GPS), labels with their instances' bounding boxes, dominant
colours and image quality, and the text Rekognition read. Its JSON Schema is published beside
this module (``image_labels.schema.json``) and every document the tests and the local world
write is validated against it.

The catalog then moves the asset to PROCESSED with ``type=image``, what the dashboard shows
(the smallest JPEG as its thumbnail, the medium one to view), and indexes its top labels, so
search by label finds images and clips alike.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.finalize.cost import UnitPrices, estimate_image_usd
from lambdas.finalize.handler import (
    RETURNED_TOP_LABELS,
    RUN_KINDS,
    Storage,
    _unindex_stale,
    asset_section,
    rights,
)
from lambdas.finalize.settings import FinalizeSettings
from lambdas.shared.assets import step_asset
from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput, shown
from lambdas.shared.keys import AssetKeys
from lambdas.shared.media_types import IMAGE
from lambdas.shared.metrics import add_metric_with_dimensions
from lambdas.shared.slo import publish_outcome, publish_time_to_labels, time_to_labels_s

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

# image-1.0: the first image document (the video documents are 2.x; both are "labels.json").
SCHEMA_VERSION = "image-1.0"
# Rekognition calls per image (DetectLabels, DetectModerationLabels, DetectText).
IMAGE_CALLS = 3
# The rendition the dashboard's gallery shows, and the one it opens.
THUMBNAIL = ("small", "JPEG")
VIEW = ("medium", "JPEG")


def _section(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = event.get(name)
    if not isinstance(value, Mapping):
        raise InvalidInput(f"image finalize input: {name} must be an object, got {shown(value)}")
    return value


def _rendition_key(renditions: Sequence[Mapping[str, Any]], size: str, fmt: str) -> str | None:
    """That rendition's key; else the largest JPEG no larger than it (a small source has no
    medium); else None."""
    order = ("small", "medium", "large")
    wanted = order.index(size) if size in order else len(order)
    found = [
        r for r in renditions if r.get("format") == fmt and order.index(str(r["size"])) <= wanted
    ]
    found.sort(key=lambda r: order.index(str(r["size"])))
    return str(found[-1]["key"]) if found else None


def _top_labels(labels: list[Mapping[str, Any]], min_confidence: float, top: int) -> list[Any]:
    return [
        {"name": label["name"], "max_confidence": label["confidence"]}
        for label in labels
        if float(label["confidence"]) >= min_confidence
    ][:top]


def finalize_image(
    event: Mapping[str, Any],
    *,
    settings: FinalizeSettings,
    storage: Storage,
    catalog: Catalog,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write the image's labels.json and record it PROCESSED; the document."""
    asset = step_asset(event, "image finalize")
    rendered, analysis = _section(event, "image"), _section(event, "analysis")
    run = event.get("run") if isinstance(event.get("run"), Mapping) else None
    if run is not None and run.get("kind") not in RUN_KINDS:
        raise InvalidInput(f"run.kind must be one of {RUN_KINDS}, got {shown(run.get('kind'))}")
    asset_id = str(asset["asset_id"])
    keys = AssetKeys(str(asset["key"]))
    sidecar_uri = f"s3://{asset['bucket']}/{keys.attribution}"
    sidecar = storage.read_json(str(asset["bucket"]), keys.attribution)
    record = None if sidecar and sidecar.get("license") else catalog.get_asset(asset_id)
    credit = rights(asset_id, sidecar, record, sidecar_uri)

    labels, moderation, text = analysis["labels"], analysis["moderation"], analysis["text"]
    top = _top_labels(labels["labels"], settings.min_label_confidence, settings.top_labels)
    renditions = [dict(r) for r in rendered["renditions"]]
    thumbnail_key = _rendition_key(renditions, *THUMBNAIL)
    view_key = _rendition_key(renditions, *VIEW)
    generated_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = settings.delivery_base_url
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "media_type": IMAGE,
        "generated_at": generated_at,
        "asset": asset_section(asset_id, asset, credit),
        "license": credit["license"],
        "attribution": credit["attribution"],
        "image": {**dict(rendered["image"]), "source_bytes": rendered.get("source_bytes")},
        "summary": {
            "top_labels": top,
            "label_count": labels["label_count"],
            "min_label_confidence": settings.min_label_confidence,
            "labels": labels["labels"],
            "labels_truncated": labels["labels_truncated"],
            "dominant_colors": labels["dominant_colors"],
            "quality": labels["quality"],
            "foreground": labels["foreground"],
            "background": labels["background"],
            "moderation": moderation,
            "text": text,
        },
        "delivery": (
            {
                "base_url": base,
                "thumbnail_url": f"{base}/{quote(thumbnail_key)}" if thumbnail_key else None,
                "image_url": f"{base}/{quote(view_key)}" if view_key else None,
            }
            if base
            else None
        ),
        "renditions": {
            "bucket": settings.processed_bucket,
            "thumbnail_key": thumbnail_key,
            "view_key": view_key,
            "items": renditions,
        },
        "processing": {
            "analysed": dict(analysis.get("input") or {}),
            "models": {
                "labels": labels.get("model_version"),
                "moderation": moderation.get("model_version"),
                "text": text.get("model_version"),
            },
            "run": dict(run) if run else None,
        },
    }
    version_id = storage.write_json(settings.processed_bucket, keys.labels, document)

    names = [label["name"] for label in top]
    previous = record if record is not None else catalog.get_asset(asset_id)
    _unindex_stale(catalog, asset_id, previous or {}, names, [])
    facts = rendered["image"]
    attributes: dict[str, Any] = {
        "type": IMAGE,
        "labels_key": keys.labels,
        "top_labels": names,
        "moderation_flagged": bool(moderation["flagged"]),
        "width": int(facts["display_width"]),
        "height": int(facts["display_height"]),
        "image_format": str(facts["format"]),
        "image_key": view_key,
        "thumbnail_key": thumbnail_key,
        "renditions_bytes": sum(int(r["bytes"]) for r in renditions),
    }
    if facts.get("captured_at"):
        attributes["captured_at"] = str(facts["captured_at"])
    if text.get("text"):
        attributes["text_lines"] = int(text["line_count"])
    catalog.set_status(
        asset_id, "PROCESSED", attributes={k: v for k, v in attributes.items() if v is not None}
    )
    catalog.index_labels(asset, {label["name"]: float(label["max_confidence"]) for label in top})
    if run:
        catalog.add_result_version(
            asset_id,
            {
                "generated_at": generated_at,
                "run": str(run["name"]),
                "kind": str(run["kind"]),
                "labels_key": keys.labels,
                "labels_version_id": version_id,
                "top_labels": names[:RETURNED_TOP_LABELS],
                "analysed_input": "rendition",
                "label_count": labels["label_count"],
                "moderation_flagged": bool(moderation["flagged"]),
                "features": ["labels", "moderation", "text"],
            },
        )
    return document


def _reprocess(event: Mapping[str, Any]) -> bool:
    """A reprocess run is no new asset: it reports no service-level metrics."""
    run = event.get("run")
    return isinstance(run, Mapping) and run.get("kind") == "reprocess"


@functools.cache
def _dependencies() -> tuple[FinalizeSettings, Storage, Catalog]:
    settings = FinalizeSettings.from_env()
    return settings, Storage(), Catalog(settings.catalog_table)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, storage, catalog = _dependencies()
    document = finalize_image(event, settings=settings, storage=storage, catalog=catalog)
    asset = document["asset"]
    summary = document["summary"]
    metrics.add_metadata(key="asset_id", value=asset["asset_id"])
    metrics.add_metric(name="AssetsProcessed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ImagesProcessed", unit=MetricUnit.Count, value=1)
    if not _reprocess(event):
        publish_outcome("processed")
        elapsed = time_to_labels_s((catalog.get_asset(asset["asset_id"]) or {}).get("created_at"))
        if elapsed is not None:
            publish_time_to_labels(elapsed, in_objective=True)  # images are always in scope
    metrics.add_metric(name="LabelsFound", unit=MetricUnit.Count, value=summary["label_count"])
    metrics.add_metric(
        name="ModerationFlags", unit=MetricUnit.Count, value=len(summary["moderation"]["labels"])
    )
    prices = UnitPrices.parse(settings.unit_prices)
    if prices is not None:
        usd = estimate_image_usd(prices, calls=IMAGE_CALLS)
        metrics.add_metric(name="EstimatedCostUSD", unit=MetricUnit.Count, value=usd)
        add_metric_with_dimensions(
            metrics,
            name="EstimatedCostUSD",
            unit=MetricUnit.Count,
            value=usd,
            campaign=str(asset["campaign"]),
        )
    top = [label["name"] for label in summary["top_labels"]]
    logger.info("image finalized", extra={"asset_id": asset["asset_id"], "top_labels": top[:5]})
    return {
        "asset_id": asset["asset_id"],
        "status": "PROCESSED",
        "media_type": IMAGE,
        "labels_key": AssetKeys(str(asset["raw_key"])).labels,
        "top_labels": top[:RETURNED_TOP_LABELS],
    }
