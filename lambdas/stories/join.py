"""Join a story's chunks into its final video, with the narration; publish it.

Input ``{"plan": {"bucket", "key"}, "chunks": [{"index", "key", "frames"}, ...]}`` (the Map's
output). The chunks' H.264 packets are copied in order, not re-encoded (``render.join``), and
the narration is encoded to AAC once, here. Then, in this order:

1. ``videos/<project_id>_final_video.mp4``, with S3's SHA-256 checksum (S3 verifies it on
   arrival; a PutObject either lands whole or not at all);
2. ``videos/<project_id>_final_video.json``: the manifest's version, the timeline as rendered
   (with where each focus point came from), the video's SHA-256, duration, size and frames;
3. when the manifest asks (``send_to_pipeline``), a copy under ``uploads/stories/`` of the raw
   bucket: the upload trigger starts the pipeline for it, as for any dropped file, with the
   manifest's author and licence as the upload's metadata;
4. ``status.json`` SUCCEEDED, and the run's work files removed.

If the record cannot be written, the video version this run wrote is deleted again, so a final
video never stands without its record (the previous render, if any, stays current).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, require_location
from lambdas.shared.keys import UPLOADS_PREFIX
from lambdas.shared.story_manifest import final_record_key, final_video_key
from lambdas.stories.chunk import timeline_of
from lambdas.stories.project import (
    delete_prefix,
    download,
    now,
    read_plan,
    scratch,
    write_status,
)
from lambdas.stories.render import RenderError, join
from lambdas.stories.settings import JoinSettings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics
STORY_UPLOADS_PREFIX = f"{UPLOADS_PREFIX}stories/"
MAX_CHUNK_BYTES = 5 * 1024**3


def _chunks(event: Mapping[str, Any], expected: int) -> list[Mapping[str, Any]]:
    found = event.get("chunks")
    if not isinstance(found, list) or not all(isinstance(c, Mapping) for c in found):
        raise InvalidInput("chunks: must be the render Map's list of rendered chunks")
    ordered = sorted(found, key=lambda c: int(c.get("index", -1)))
    if [int(c.get("index", -1)) for c in ordered] != list(range(expected)):
        raise InvalidInput(f"chunks: expected chunks 0..{expected - 1}, got {len(ordered)}")
    return ordered


def publish(event: Mapping[str, Any], settings: JoinSettings, s3: Any) -> dict[str, Any]:
    bucket, plan_key = require_location(event, "plan")
    plan = read_plan(s3, bucket, plan_key)
    project_id, run = str(plan["project_id"]), str(plan["run"])
    chunks = _chunks(event, len(plan["chunks"]))
    video_key, record_key = final_video_key(project_id), final_record_key(project_id)
    with scratch("join") as folder:
        paths = []
        for chunk in chunks:
            path = folder / f"chunk-{int(chunk['index']):05d}.mp4"
            download(
                s3, bucket, str(chunk["key"]), path, what=f"chunk {chunk['index']}",
                max_bytes=MAX_CHUNK_BYTES,
            )  # fmt: skip
            paths.append(path)
        narration = folder / ("narration" + str(plan["audio"]["key"]).rsplit("/", 1)[-1][5:])
        download(
            s3,
            bucket,
            str(plan["audio"]["key"]),
            narration,
            what="audio",
            max_bytes=MAX_CHUNK_BYTES,
            version_id=plan["audio"].get("version_id"),
        )
        out = folder / "final.mp4"
        try:
            joined = join(paths, narration, out, timeline=timeline_of(plan, {}))
        except RenderError as err:
            raise InvalidInput(f"join: {err}") from err
        for path in paths:
            path.unlink()
        checksum = base64.b64encode(bytes.fromhex(joined.sha256)).decode()
        with out.open("rb") as body:
            written = s3.put_object(
                Bucket=bucket,
                Key=video_key,
                Body=body,
                ContentType="video/mp4",
                ChecksumSHA256=checksum,
                Metadata={"project": project_id, "run": run, "sha256": joined.sha256},
            )
        version = written.get("VersionId")
        record = {
            "project_id": project_id,
            "run": run,
            "title": plan.get("title"),
            "rendered_at": now(),
            "video": {
                "bucket": bucket,
                "key": video_key,
                "version_id": version,
                "sha256": joined.sha256,
                "bytes": joined.bytes,
                "frames": joined.frames,
                "duration_s": round(joined.duration_s, 3),
                **{k: plan["output"][k] for k in ("width", "height", "fps")},
                "codec": "h264",
                "audio_codec": "aac",
            },
            "manifest": plan["manifest"],
            "narration_s": plan["duration_s"],
            "chunks": len(chunks),
            "segments": [
                {
                    k: shot[k]
                    for k in (
                        "name",
                        "image",
                        "start_s",
                        "end_s",
                        "caption",
                        "zoom",
                        "focus",
                        "focus_source",
                    )
                }
                for shot in plan["shots"]
            ],
            "pipeline": None,
        }
        upload: dict[str, Any] | None = None
        try:
            if plan.get("send_to_pipeline"):
                upload_key = f"{STORY_UPLOADS_PREFIX}{project_id}_final_video.mp4"
                metadata = {"story": project_id}
                for name in ("author", "license"):
                    if plan.get(name):
                        metadata[name] = str(plan[name])
                copied = s3.copy_object(
                    Bucket=settings.raw_bucket,
                    Key=upload_key,
                    CopySource={
                        "Bucket": bucket,
                        "Key": video_key,
                        **({"VersionId": version} if version else {}),
                    },
                    ContentType="video/mp4",
                    MetadataDirective="REPLACE",
                    Metadata=metadata,
                )
                upload = {
                    "bucket": settings.raw_bucket,
                    "key": upload_key,
                    "version_id": copied.get("VersionId"),
                }
                record["pipeline"] = {"upload": upload}
            s3.put_object(
                Bucket=bucket,
                Key=record_key,
                Body=json.dumps(record, indent=2).encode(),
                ContentType="application/json",
                # So a failure after this point (the status) takes the record back too.
                Metadata={"project": project_id, "run": run},
            )
        except Exception:
            # A final video never stands without its record: take back the version this run
            # wrote (an earlier render's stays current).
            if version:
                s3.delete_object(Bucket=bucket, Key=video_key, VersionId=version)
            raise
    write_status(
        s3,
        bucket,
        project_id,
        {
            "status": "SUCCEEDED",
            "run": run,
            "video": {"key": video_key, "version_id": version},
            "record": record_key,
            "duration_s": record["video"]["duration_s"],
            "pipeline": record["pipeline"],
        },
    )
    removed = delete_prefix(s3, bucket, plan_key.rsplit("/", 1)[0] + "/")
    metrics.add_metric(name="StoriesRendered", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="StorySecondsRendered", unit=MetricUnit.Seconds, value=joined.duration_s
    )
    logger.info(
        "story published",
        extra={"project_id": project_id, "bytes": joined.bytes, "work_files_removed": removed},
    )
    return {
        "project_id": project_id,
        "video": {"bucket": bucket, "key": video_key, "version_id": version},
        "record": {"bucket": bucket, "key": record_key},
        "sha256": joined.sha256,
        "duration_s": record["video"]["duration_s"],
        "upload": upload,
    }


_dependencies = Dependencies(JoinSettings, lambda _settings: boto3.client("s3"))


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, s3 = _dependencies()
    return publish(event, settings, s3)
