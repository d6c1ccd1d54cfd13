"""Plan the MediaConvert jobs for one asset, from the JSON in ``job_settings/``.

Encoding choices are data (``job_settings/*.json``, validated against botocore's MediaConvert
model in tests); this module only fills in what depends on the asset: the input file, the
destinations, the HLS ladder for the source height and the heights that must never exceed the
source.

Analysis starts as soon as something Rekognition Video can read exists. The probe (the step
before) says whether the source itself is such a file (H.264 in MP4/MOV within Rekognition's
limits); the plan turns that into one of two shapes, and the state machine's Choice follows
``analysis.input``:

* ``source``: one ``full`` job (proxy, HLS ladder, thumbnails) runs in parallel with the three
  analyses of the source object itself;
* ``proxy``: a short ``proxy`` job (the MP4 proxy only) first, then the ``renditions`` job (HLS
  ladder and thumbnails) in parallel with the analyses of that proxy.

Each job is ``{settings, user_metadata, client_request_token}``; the state machine runs
``MediaConvertCreateJob`` (``.sync``) with them. The user metadata names this deployment (so
EventBridge rules and the console see only our jobs) and which of the jobs it is. Splitting
costs nothing extra: MediaConvert bills per output minute, and the outputs are the same.

``client_request_token`` is derived from the asset, the job and the run (the execution name the
state machine passes as ``execution``): a CreateJob retried after its answer was lost (a timeout, a
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
from lambdas.transcode.names import (
    ANALYSE_PROXY,
    ANALYSE_SOURCE,
    FULL_JOB,
    PROXY_JOB,
    RENDITIONS_JOB,
)
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


# The part of the token naming the job; the full job keeps the name it always had.
_TOKEN_JOB = {FULL_JOB: "transcode", PROXY_JOB: "proxy", RENDITIONS_JOB: "renditions"}


def client_request_token(asset_id: str, attempt: str | None, job: str = FULL_JOB) -> str:
    """CreateJob's idempotency token: one per asset, job and attempt (the run that plans it)."""
    return fit(
        f"{asset_id}-{_TOKEN_JOB[job]}-{attempt or 'direct'}",
        _CLIENT_TOKEN_UNSAFE,
        CLIENT_TOKEN_MAX,
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
    # The probe's Rekognition decision: (readable as it is, why). None: no probe report came
    # (a direct invocation), so the proxy is analysed, which Rekognition can always read.
    rekognition: tuple[bool, str] | None = None

    @classmethod
    def parse(cls, event: object) -> PlanAsset:
        """The state machine sends ``{"asset": {...}, "execution": "<name>", "probe": {...}}``;
        a bare asset (a direct invocation) is accepted too and plans a ``direct`` attempt.

        The probe's report, when given, is what the file really is: its displayed height
        replaces the source metadata's for the ladder, and its Rekognition decision chooses
        what is analysed."""
        attempt: str | None = None
        probed: tuple[int | None, tuple[bool, str]] | None = None
        if isinstance(event, Mapping) and isinstance(event.get("asset"), Mapping):
            if event.get("probe") is not None:
                probed = _probed(event["probe"])
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
        # 0 means "unknown" in some source metadata; treat it like a missing height.
        source_height = int(height) if height else None
        if probed is not None and probed[0] is not None:
            source_height = probed[0]
        return cls(
            asset_id=event["asset_id"],
            campaign=event["campaign"],
            bucket=event["bucket"],
            key=event["key"],
            height=source_height,
            duration_s=_optional_number(event, "duration_s"),
            attempt=attempt,
            rekognition=None if probed is None else probed[1],
        )


def _probed(report: object) -> tuple[int | None, tuple[bool, str]]:
    """The displayed height of the first video stream and the Rekognition decision, from the
    probe's report (``lambdas/probe/media.py``: ``Probe.to_dict()``)."""
    if not isinstance(report, Mapping):
        raise InvalidInput("probe: must be the probe's report object")
    decision = report.get("rekognition")
    if not isinstance(decision, Mapping) or not isinstance(decision.get("ok"), bool):
        raise InvalidInput("probe.rekognition.ok: must be the probe's true/false decision")
    reason = decision.get("reason")
    streams = report.get("video")
    height: int | None = None
    if isinstance(streams, list) and streams and isinstance(streams[0], Mapping):
        stream = streams[0]
        side = "width" if stream.get("rotation") in (90, 270, -90) else "height"
        value = stream.get(side)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            height = value
    return height, (decision["ok"], reason if isinstance(reason, str) else "")


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
    """The whole transcode as one job (settings, user metadata, token) and the output keys for
    one asset (pure); ``build_jobs`` groups its outputs into the jobs the state machine runs."""
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


def _job(plan: Mapping[str, Any], asset: PlanAsset, job: str, groups: list[Any]) -> dict[str, Any]:
    settings = copy.deepcopy(plan["settings"])
    settings["OutputGroups"] = copy.deepcopy(groups)
    return {
        "settings": settings,
        "user_metadata": {**plan["user_metadata"], "job": job},
        "client_request_token": client_request_token(asset.asset_id, asset.attempt, job),
    }


def build_jobs(asset: PlanAsset, *, processed_bucket: str, deployment: str) -> dict[str, Any]:
    """What the state machine runs for one asset: the jobs, what is analysed, the output keys.

    The outputs and their settings are exactly ``build_plan``'s; only how they are grouped into
    jobs, and so when the analysis can start, depends on the probe's Rekognition decision.
    """
    plan = build_plan(asset, processed_bucket=processed_bucket, deployment=deployment)
    proxy, hls, thumbnails = plan["settings"]["OutputGroups"]
    readable, reason = asset.rekognition or (False, "no probe report: the proxy is analysed")
    if readable:
        jobs = {FULL_JOB: _job(plan, asset, FULL_JOB, [proxy, hls, thumbnails])}
        video = {"bucket": asset.bucket, "key": asset.key}
    else:
        jobs = {
            PROXY_JOB: _job(plan, asset, PROXY_JOB, [proxy]),
            RENDITIONS_JOB: _job(plan, asset, RENDITIONS_JOB, [hls, thumbnails]),
        }
        video = {"bucket": processed_bucket, "key": plan["outputs"]["mp4_key"]}
    return {
        "analysis": {
            "input": ANALYSE_SOURCE if readable else ANALYSE_PROXY,
            "video": video,
            "reason": reason,
        },
        "jobs": jobs,
        "outputs": plan["outputs"],
    }


_dependencies = Dependencies(PlanSettings, lambda settings: Catalog(settings.catalog_table))


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    asset = PlanAsset.parse(event)
    settings, catalog = _dependencies()
    plan = build_jobs(
        asset, processed_bucket=settings.processed_bucket, deployment=settings.deployment
    )
    # Only after the plan is known to be good: a rejected asset never shows as PROCESSING.
    catalog.set_status(asset.asset_id, "PROCESSING")
    hls = next(
        group
        for job in plan["jobs"].values()
        for group in job["settings"]["OutputGroups"]
        if group["OutputGroupSettings"]["Type"] == "HLS_GROUP_SETTINGS"
    )
    logger.info(
        "planned transcode",
        extra={
            "asset_id": asset.asset_id,
            "source_height": asset.height,
            "hls_rungs": [output["NameModifier"].lstrip("_") for output in hls["Outputs"]],
            "jobs": sorted(plan["jobs"]),
            "analysis": plan["analysis"],
            "outputs": plan["outputs"],
        },
    )
    metrics.add_metadata(key="asset_id", value=asset.asset_id)
    metrics.add_metric(name="TranscodeJobsPlanned", unit=MetricUnit.Count, value=1)
    return plan
