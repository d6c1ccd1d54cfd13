"""Plan a story: the first step of a render, where everything that can be refused is refused.

Input ``{"project_id", "manifest": {"bucket", "key", "version_id"?}}`` (the starter's, from the
manifest's arrival) and the run's name. It reads that manifest version, the narration (decoded
once for its real duration) and every image's header (a missing image, one that is not an
image, a decompression bomb), places the segments on the narration's timeline, finds a focus
point for each segment without one (``lambdas/stories/focus.py``), and cuts the frames into
chunks that the render Map draws in parallel. Nothing is rendered before all of that holds, so a
bad project fails in seconds with a message naming the segment or field, and leaves no video.

The plan is written to the run's work prefix (a Map item carries only its chunk, and a
500-segment timeline would crowd Step Functions' 256 KB state); the output is small.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, require_location
from lambdas.shared.story_manifest import (
    Manifest,
    ManifestError,
    check_project_id,
    parse,
    timeline,
    work_prefix,
)
from lambdas.stories import focus as focusing
from lambdas.stories.project import (
    download,
    head,
    now,
    project_key,
    scratch,
    write_status,
)
from lambdas.stories.render import RenderError, check_still, narration_duration
from lambdas.stories.settings import PlanSettings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


@dataclass(frozen=True)
class Clients:
    s3: Any
    rekognition: Any


def chunks(frame_count: int, frames_per_chunk: int) -> list[dict[str, int]]:
    """Consecutive frame ranges of at most ``frames_per_chunk``; the last takes the rest."""
    return [
        {
            "index": n,
            "first_frame": first,
            "frame_count": min(frames_per_chunk, frame_count - first),
        }
        for n, first in enumerate(range(0, frame_count, frames_per_chunk))
    ]


def _manifest(
    event: Mapping[str, Any], settings: PlanSettings, s3: Any
) -> tuple[str, Manifest, str | None]:
    project_id = check_project_id(event.get("project_id"))
    bucket, key = require_location(event, "manifest")
    where = event["manifest"]  # (a mapping: require_location checked it)
    if bucket != settings.projects_bucket or key != project_key(project_id, "manifest.json"):
        raise InvalidInput(
            f"manifest: expected s3://{settings.projects_bucket}/"
            f"{project_key(project_id, 'manifest.json')}"
        )
    version = where.get("version_id") if isinstance(where.get("version_id"), str) else None
    found = head(s3, bucket, key, version_id=version)
    if found is None:
        raise ManifestError(f"manifest: s3://{bucket}/{key} is missing")
    size = int(found.get("ContentLength", 0))
    if size > settings.max_manifest_bytes:
        raise ManifestError(
            f"manifest: {size} bytes is over the limit of {settings.max_manifest_bytes}"
        )
    body = s3.get_object(
        Bucket=bucket,
        Key=key,
        **({"VersionId": found["VersionId"]} if found.get("VersionId") else {}),
    )["Body"].read()
    manifest = parse(
        body, max_bytes=settings.max_manifest_bytes, max_segments=settings.max_segments
    )
    return project_id, manifest, found.get("VersionId")


def plan(event: Mapping[str, Any], settings: PlanSettings, clients: Clients) -> dict[str, Any]:
    s3, bucket = clients.s3, settings.projects_bucket
    run = event.get("run")
    if not isinstance(run, str) or not run:
        raise InvalidInput("run: must name the execution")
    project_id, manifest, manifest_version = _manifest(event, settings, s3)
    work = work_prefix(project_id, run)
    write_status(s3, bucket, project_id, {"status": "RENDERING", "run": run, "started_at": now()})
    with scratch("plan") as folder:
        narration = folder / PurePosixPath(manifest.audio).name
        audio_head = download(
            s3,
            bucket,
            project_key(project_id, manifest.audio),
            narration,
            what=f"audio ({manifest.audio})",
            max_bytes=settings.max_audio_bytes,
        )
        try:
            duration = narration_duration(narration)
        except RenderError as err:
            raise ManifestError(f"audio ({manifest.audio}): {err}") from err
        narration.unlink()
        if duration > settings.max_duration_s:
            raise ManifestError(
                f"audio ({manifest.audio}): the narration runs {duration:.1f} s, longer than "
                f"the limit of {settings.max_duration_s} s"
            )
        shots = timeline(manifest, duration)
        images: dict[str, dict[str, Any]] = {}
        for shot in shots:
            if shot.image in images:
                continue
            local = folder / f"image{PurePosixPath(shot.image).suffix.lower()}"
            found = download(
                s3,
                bucket,
                project_key(project_id, shot.image),
                local,
                what=shot.name,
                max_bytes=settings.max_image_bytes,
            )
            try:
                width, height = check_still(local, shot.name)
            except RenderError as err:
                raise ManifestError(str(err)) from err
            record: dict[str, Any] = {
                "key": project_key(project_id, shot.image),
                "version_id": found.get("VersionId"),
                "width": width,
                "height": height,
            }
            if any(s.image == shot.image and s.focus is None for s in shots):
                copy = f"{work}focus/{len(images):04d}.jpg"
                s3.put_object(
                    Bucket=bucket,
                    Key=copy,
                    Body=focusing.analysis_copy(str(local)),
                    ContentType="image/jpeg",
                )
                found_focus = focusing.detect(clients.rekognition, bucket, copy)
                record["focus"] = [found_focus.x, found_focus.y]
                record["focus_source"] = found_focus.source
            images[shot.image] = record
            local.unlink()
    fps = manifest.output.fps
    frame_count = round(duration * fps)
    cut = chunks(frame_count, settings.chunk_seconds * fps)
    planned = {
        "project_id": project_id,
        "run": run,
        "title": manifest.title,
        "manifest": {
            "key": project_key(project_id, "manifest.json"),
            "version_id": manifest_version,
        },
        "audio": {
            "key": project_key(project_id, manifest.audio),
            "version_id": audio_head.get("VersionId"),
        },
        "output": manifest.output.model_dump(),
        "transition_s": manifest.transition_s,
        "zoom_ratio": manifest.zoom_ratio,
        "duration_s": duration,
        "frame_count": frame_count,
        "send_to_pipeline": manifest.send_to_pipeline,
        "author": manifest.author,
        "license": manifest.license,
        "shots": [
            {
                "name": shot.name,
                "image": shot.image,
                "key": images[shot.image]["key"],
                "version_id": images[shot.image]["version_id"],
                "start_s": shot.start_s,
                "end_s": shot.end_s,
                "caption": shot.caption,
                "zoom": shot.zoom,
                "focus": list(shot.focus) if shot.focus else images[shot.image]["focus"],
                "focus_source": "manifest" if shot.focus else images[shot.image]["focus_source"],
            }
            for shot in shots
        ],
        "chunks": cut,
    }
    plan_key = f"{work}plan.json"
    s3.put_object(
        Bucket=bucket,
        Key=plan_key,
        Body=json.dumps(planned).encode(),
        ContentType="application/json",
    )
    metrics.add_metric(name="StoriesPlanned", unit=MetricUnit.Count, value=1)
    logger.info(
        "story planned",
        extra={
            "project_id": project_id,
            "segments": len(shots),
            "duration_s": round(duration, 3),
            "chunks": len(cut),
        },
    )
    return {
        "project_id": project_id,
        "plan": {"bucket": bucket, "key": plan_key},
        "chunks": cut,
        "duration_s": round(duration, 3),
        "frame_count": frame_count,
        "segments": len(shots),
    }


def _clients(_settings: PlanSettings) -> Clients:
    # Few SDK retries for Rekognition: the state machine owns backoff for throttling.
    return Clients(
        boto3.client("s3"),
        boto3.client("rekognition", config=Config(retries={"mode": "standard", "max_attempts": 3})),
    )


_dependencies = Dependencies(PlanSettings, _clients)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, clients = _dependencies()
    return plan(event, settings, clients)
