"""Render one chunk of a story's frames (one iteration of the render Map).

Input ``{"plan": {"bucket", "key"}, "chunk": {"index", "first_frame", "frame_count"}}``. Every
frame is a function of its index alone (``lambdas/stories/render.py``), so chunks render in any
order, in parallel, and join into what one render would have drawn. A chunk downloads only the
images visible in its frames (with a transition's margin on each side), renders its H.264 video
(no audio: the join adds the narration once) and writes it to the run's work prefix; a retry
overwrites the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, require_location
from lambdas.shared.media_types import MAX_IMAGE_BYTES
from lambdas.stories.project import download, read_plan, scratch
from lambdas.stories.render import RenderError, Shot, Timeline, render_video
from lambdas.stories.settings import StoriesSettings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


def timeline_of(plan: Mapping[str, Any], images: Mapping[str, Path]) -> Timeline:
    """The renderer's timeline from a plan; shots whose image is not in ``images`` (not
    visible in this chunk) name a path that is never opened."""
    output = plan["output"]
    return Timeline(
        width=int(output["width"]),
        height=int(output["height"]),
        fps=int(output["fps"]),
        duration_s=float(plan["duration_s"]),
        transition_s=float(plan["transition_s"]),
        zoom_ratio=float(plan["zoom_ratio"]),
        shots=tuple(
            Shot(
                name=str(shot["name"]),
                image=images.get(str(shot["image"]), Path("/nonexistent") / str(shot["image"])),
                start_s=float(shot["start_s"]),
                end_s=float(shot["end_s"]),
                focus=(float(shot["focus"][0]), float(shot["focus"][1])),
                zoom=shot["zoom"],
                caption=shot.get("caption"),
            )
            for shot in plan["shots"]
        ),
    )


def visible(plan: Mapping[str, Any], first_frame: int, frame_count: int) -> list[Mapping[str, Any]]:
    """The shots any frame of the range may show (a whole transition's margin either side)."""
    fps = float(plan["output"]["fps"])
    margin = float(plan["transition_s"]) + 1 / fps
    start, end = first_frame / fps - margin, (first_frame + frame_count) / fps + margin
    return [s for s in plan["shots"] if float(s["start_s"]) < end and float(s["end_s"]) > start]


def render_chunk(event: Mapping[str, Any], settings: StoriesSettings, s3: Any) -> dict[str, Any]:
    bucket, plan_key = require_location(event, "plan")
    chunk = event.get("chunk")
    if not isinstance(chunk, Mapping) or not all(
        isinstance(chunk.get(k), int) for k in ("index", "first_frame", "frame_count")
    ):
        raise InvalidInput('chunk: must be {"index": n, "first_frame": n, "frame_count": n}')
    plan = read_plan(s3, bucket, plan_key)
    index, first, count = int(chunk["index"]), int(chunk["first_frame"]), int(chunk["frame_count"])
    work = plan_key.rsplit("/", 1)[0] + "/"
    with scratch("chunk") as folder:
        images: dict[str, Path] = {}
        for shot in visible(plan, first, count):
            name = str(shot["image"])
            if name in images:
                continue
            local = folder / f"{len(images):04d}{PurePosixPath(name).suffix.lower()}"
            download(
                s3,
                bucket,
                str(shot["key"]),
                local,
                what=str(shot["name"]),
                max_bytes=MAX_IMAGE_BYTES,
                version_id=shot.get("version_id"),
            )
            images[name] = local
        out = folder / "chunk.mp4"
        try:
            rendered = render_video(
                timeline_of(plan, images), out, first_frame=first, frame_count=count
            )
        except RenderError as err:
            raise InvalidInput(f"chunk {index}: {err}") from err
        key = f"{work}chunk-{index:05d}.mp4"
        s3.upload_file(str(out), bucket, key, ExtraArgs={"ContentType": "video/mp4"})
    metrics.add_metric(name="StoryFramesRendered", unit=MetricUnit.Count, value=rendered.frames)
    logger.info(
        "chunk rendered",
        extra={
            "chunk": index,
            "frames": rendered.frames,
            "bytes": rendered.bytes,
            "images": len(images),
        },
    )
    return {"index": index, "key": key, "frames": rendered.frames, "bytes": rendered.bytes}


_dependencies = Dependencies(StoriesSettings, lambda _settings: boto3.client("s3"))


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, s3 = _dependencies()
    return render_chunk(event, settings, s3)
