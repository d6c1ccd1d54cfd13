"""Step 3a: plan the MediaConvert job for one asset, from the JSON in ``job_settings/``.

Encoding choices are data (``job_settings/*.json``, validated against botocore's MediaConvert
model in tests); this module only fills in what depends on the asset: the input file, the
destinations, the HLS ladder for the source height and the heights that must never exceed the
source.
The state machine then runs ``MediaConvertCreateJob`` (``.sync``) with ``Settings.$=$.settings``,
``UserMetadata.$=$.user_metadata`` and ``ClientRequestToken.$=$.client_request_token``; the user
metadata names this deployment so EventBridge rules and the console see only our jobs.

``client_request_token`` is derived from the asset and the run (the execution name the state
machine passes as ``execution``): a CreateJob retried after its answer was lost (a timeout, a
throttled or failed response the task retries) names the same job, and MediaConvert returns it
instead of starting a second paid one. MediaConvert honours a token for one minute after the
job was created; a later run of the same asset is another attempt and gets another token.

Output names are fixed and predictable, under the asset's rendition folder::

    <folder>/<stem>/mp4/proxy.mp4                   analysis proxy (H.264/AAC) for Rekognition
    <folder>/<stem>/hls/index.m3u8                  HLS multivariant playlist (+ index_<h>p.m3u8)
    <folder>/<stem>/thumbnails/thumb.0000000.jpg    one frame every 10 s
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.catalog import Catalog
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, require_strings, shown
from lambdas.shared.keys import AssetKeys
from lambdas.shared.tokens import fit
from lambdas.transcode.settings import PlanSettings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

SETTINGS_DIR = Path(__file__).with_name("job_settings")
PROXY_BASENAME = "proxy"
HLS_BASENAME = "index"
THUMBNAIL_BASENAME = "thumb"
# MediaConvert reads rotation metadata only from QuickTime-family containers.
QUICKTIME_SUFFIXES = frozenset({".mp4", ".m4v", ".mov"})
# MediaConvert cannot decode Ogg Theora; ingest should have taken the WebM derivative instead.
UNSUPPORTED_SUFFIXES = frozenset({".ogv", ".ogg"})
MIN_OUTPUT_HEIGHT = 32  # MediaConvert's minimum frame height
# A capped top rung is added only when it is clearly larger than the rung below it.
MIN_RUNG_STEP = 1.15
# MediaConvert's ClientRequestToken: "any string that includes up to 64 ASCII characters"
# (botocore's model: a string marked idempotencyToken); kept to a conservative charset.
CLIENT_TOKEN_MAX = 64
_CLIENT_TOKEN_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
MAX_EXECUTION_NAME = 80  # Step Functions execution names are 1..80 characters


def client_request_token(asset_id: str, attempt: str | None) -> str:
    """CreateJob's idempotency token: one per asset and attempt (the run that plans it)."""
    return fit(
        f"{asset_id}-transcode-{attempt or 'direct'}", _CLIENT_TOKEN_UNSAFE, CLIENT_TOKEN_MAX
    )


class UnsupportedSource(ValueError):
    """MediaConvert cannot read this source; creating the job would only fail later, at a cost."""


@functools.cache
def _read_settings(name: str) -> str:
    return (SETTINGS_DIR / name).read_text(encoding="utf-8")


def load_settings(name: str) -> dict[str, Any]:
    """A fresh copy of one settings file, so a plan can never alter the cached data."""
    data = json.loads(_read_settings(name))
    if not isinstance(data, dict):
        raise ValueError(f"job_settings/{name} must hold a JSON object")
    return copy.deepcopy(data)


def _optional_number(event: Mapping[str, Any], name: str) -> float | None:
    value = event.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name}: must be a number, got {shown(value)}")
    if value < 0:
        raise InvalidInput(f"{name}: must not be negative, got {shown(value)}")
    return float(value)


@dataclass(frozen=True)
class PlanAsset:
    """The fields of an ingested asset this step needs."""

    asset_id: str
    campaign: str
    bucket: str
    key: str
    height: int | None
    duration_s: float | None
    attempt: str | None = None

    @classmethod
    def parse(cls, event: object) -> PlanAsset:
        """The state machine sends ``{"asset": {...}, "execution": "<name>"}``; a bare asset
        (a direct invocation) is accepted too and plans a ``direct`` attempt."""
        attempt: str | None = None
        if isinstance(event, Mapping) and isinstance(event.get("asset"), Mapping):
            execution = event.get("execution")
            if execution is not None and (
                not isinstance(execution, str)
                or not execution
                or len(execution) > MAX_EXECUTION_NAME
            ):
                raise InvalidInput(
                    f"execution: must be an execution name of 1-{MAX_EXECUTION_NAME} characters"
                )
            attempt, event = execution, event["asset"]
        if not isinstance(event, Mapping):
            raise InvalidInput("transcode plan input must be an ingested asset object")
        require_strings(event, ("asset_id", "campaign", "bucket", "key"))
        height = _optional_number(event, "height")
        return cls(
            asset_id=event["asset_id"],
            campaign=event["campaign"],
            bucket=event["bucket"],
            key=event["key"],
            # 0 means "unknown" in some source metadata; treat it like a missing height.
            height=int(height) if height else None,
            duration_s=_optional_number(event, "duration_s"),
            attempt=attempt,
        )


def even_height(height: float) -> int:
    """H.264 needs even dimensions; never below MediaConvert's minimum."""
    value = int(height)
    return max(MIN_OUTPUT_HEIGHT, value - value % 2)


def ladder_for(source_height: int | None, ladder: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The HLS rungs for a source, as ``(rung name, output height)``; never upscales.

    Rungs above the source are dropped; when the source sits clearly between two rungs, the
    first dropped rung is kept but capped at the source height (a 1000p source gets 1000p, not
    a 1080p upscale); a source smaller than the lowest rung gets that rung at its own height.
    """
    rungs: Mapping[str, Any] = ladder["rungs"]

    def height_of(name: str) -> int:
        return int(rungs[name]["VideoDescription"]["Height"])

    if source_height is None:
        return [(name, height_of(name)) for name in ladder["unknown_source_height"]]
    names: list[str] = []
    for rule in ladder["ladders"]:
        limit = rule["max_source_height"]
        if limit is None or source_height <= limit:
            names = list(rule["rungs"])
            break
    kept = [(name, height_of(name)) for name in names if height_of(name) <= source_height]
    dropped = [name for name in names if height_of(name) > source_height]
    if dropped:
        capped = even_height(source_height)
        top = kept[-1][1] if kept else 0
        if not kept or capped >= top * MIN_RUNG_STEP:
            kept.append((dropped[0], capped))
    return kept


def _cap_height(output: dict[str, Any], source_height: int | None) -> None:
    video = output["VideoDescription"]
    if source_height is not None and video["Height"] > source_height:
        video["Height"] = even_height(source_height)


def _output_key(prefix: str, basename: str, output: Mapping[str, Any], extension: str) -> str:
    return f"{prefix}{basename}{output.get('NameModifier', '')}.{extension}"


def build_plan(asset: PlanAsset, *, processed_bucket: str, deployment: str) -> dict[str, Any]:
    """The MediaConvert job settings, user metadata and output keys for one asset (pure)."""
    suffix = PurePosixPath(asset.key).suffix.lower()
    if suffix in UNSUPPORTED_SUFFIXES:
        raise UnsupportedSource(
            f"{asset.key}: MediaConvert cannot read Ogg Theora ({suffix}); "
            "ingest the WebM derivative instead"
        )
    keys = AssetKeys(asset.key)

    def destination(prefix: str, basename: str) -> str:
        return f"s3://{processed_bucket}/{prefix}{basename}"

    settings = load_settings("job.json")
    source = settings["Inputs"][0]
    source["FileInput"] = f"s3://{asset.bucket}/{asset.key}"
    if suffix in QUICKTIME_SUFFIXES:
        source.setdefault("VideoSelector", {})["Rotate"] = "AUTO"

    proxy = load_settings("mp4_proxy.json")
    proxy["OutputGroupSettings"]["FileGroupSettings"]["Destination"] = destination(
        keys.mp4_prefix, PROXY_BASENAME
    )
    proxy_output = proxy["Outputs"][0]
    _cap_height(proxy_output, asset.height)

    ladder = load_settings("hls_ladder.json")
    rungs = ladder_for(asset.height, ladder)
    hls = load_settings("hls_group.json")
    hls["OutputGroupSettings"]["HlsGroupSettings"]["Destination"] = destination(
        keys.hls_prefix, HLS_BASENAME
    )
    for name, height in rungs:
        output = copy.deepcopy(ladder["rungs"][name])
        output["VideoDescription"]["Height"] = height
        output["NameModifier"] = f"_{height}p"
        hls["Outputs"].append(output)

    thumbnails = load_settings("thumbnails.json")
    thumbnails["OutputGroupSettings"]["FileGroupSettings"]["Destination"] = destination(
        keys.thumbnails_prefix, THUMBNAIL_BASENAME
    )
    _cap_height(thumbnails["Outputs"][0], asset.height)

    settings["OutputGroups"] = [proxy, hls, thumbnails]
    return {
        "client_request_token": client_request_token(asset.asset_id, asset.attempt),
        "settings": settings,
        "user_metadata": {
            "deployment": deployment,
            "asset_id": asset.asset_id,
            "campaign": asset.campaign,
        },
        "outputs": {
            "mp4_key": _output_key(
                keys.mp4_prefix, PROXY_BASENAME, proxy_output, proxy_output["Extension"]
            ),
            "hls_manifest_key": f"{keys.hls_prefix}{HLS_BASENAME}.m3u8",
            "thumbnails_prefix": keys.thumbnails_prefix,
        },
    }


_dependencies = Dependencies(PlanSettings, lambda settings: Catalog(settings.catalog_table))


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    asset = PlanAsset.parse(event)
    settings, catalog = _dependencies()
    plan = build_plan(
        asset, processed_bucket=settings.processed_bucket, deployment=settings.deployment
    )
    # Only after the plan is known to be good: a rejected asset never shows as PROCESSING.
    catalog.set_status(asset.asset_id, "PROCESSING")
    rungs = [
        output["NameModifier"].lstrip("_")
        for output in plan["settings"]["OutputGroups"][1]["Outputs"]
    ]
    logger.info(
        "planned transcode",
        extra={
            "asset_id": asset.asset_id,
            "source_height": asset.height,
            "hls_rungs": rungs,
            "outputs": plan["outputs"],
        },
    )
    metrics.add_metadata(key="asset_id", value=asset.asset_id)
    metrics.add_metric(name="TranscodeJobsPlanned", unit=MetricUnit.Count, value=1)
    return plan
