"""Stories through the whole local world: a project made with the jobs API, its files uploaded
with the presigned URLs over HTTP, its manifest last; the manifest's arrival starts the stories
state machine (plan, a Map of chunk renders, join), and the final video, decoded, is what was
asked for. With ``send_to_pipeline`` the story then travels the media pipeline as an upload.

Chunks are cut every 5 s here (``CHUNK_SECONDS``), so the 7 s story renders in two parallel
chunks that the join copies together without re-encoding.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import av
import numpy as np
import pytest
import requests
from PIL import Image

from lambdas.shared.story_manifest import final_record_key, final_video_key
from localworld import World, WorldOptions
from localworld.media import narration
from localworld.sources import Still
from tests.conftest import SynthesizedApp

NARRATION_S = 7.0
FPS = 25
STILLS = {
    "images/tram.jpg": Still("tram", 1600, 1200),
    "images/desk.jpg": Still("desk", 1400, 1050),
    "images/forest.png": Still("forest", 900, 600, "PNG"),
}
MANIFEST: dict[str, Any] = {
    "title": "Three places",
    "audio": "audio.m4a",
    "output": {"width": 640, "height": 360, "fps": FPS},
    "transition_s": 0.4,
    "segments": [
        {"image": "images/tram.jpg", "duration_s": 2.5, "caption": "Lisbon, morning"},
        {"image": "images/desk.jpg", "duration_s": 2.0, "focus": {"x": 0.3, "y": 0.6}},
        {"image": "images/forest.png", "zoom": "out"},
    ],
    "send_to_pipeline": True,
    "author": "Story desk",
    "license": "CC BY 4.0",
}


@pytest.fixture(scope="module")
def world(synthesized: SynthesizedApp) -> Iterator[World]:
    options = WorldOptions(
        env="Dev",
        server_port=0,
        function_environment={"lambdas.stories.plan.handler": {"CHUNK_SECONDS": "5"}},
    )
    with World(synthesized.templates, options) as local:
        yield local


def _stories(world: World) -> list[dict[str, Any]]:
    sfn = world.client("stepfunctions")
    return list(sfn.list_executions(stateMachineArn=world.stories_state_machine_arn)["executions"])


def _mean(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def _nearest(frame: np.ndarray) -> str:
    """Which project image a decoded frame shows, by its mean colour."""
    means = {
        name: _mean(np.asarray(Image.open(io.BytesIO(still.body)).convert("RGB")))
        for name, still in STILLS.items()
    }
    colour = _mean(frame)
    return min(means, key=lambda name: float(np.linalg.norm(means[name] - colour)))


def _put(upload: dict[str, Any], body: bytes) -> None:
    answer = requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30)
    assert answer.status_code == 200, (upload["key"], answer.status_code, answer.text)


def test_a_story_made_through_the_api_renders_from_its_manifest_and_enters_the_pipeline(
    world: World,
) -> None:
    # Given an editor creates a project through the jobs API
    editor = world.api_user("story-editor")
    status, made = world.call_api(
        editor, "POST", "/projects", body={"manifest": MANIFEST, "project_id": "three-places"}
    )
    assert status == 201, made
    files = {name: still.body for name, still in STILLS.items()} | {
        "audio.m4a": narration(NARRATION_S)
    }
    # When the images and the narration are PUT with their URLs, and the manifest last
    for upload in made["uploads"]:
        _put(upload, files[upload["name"]])
    world.drain_events()
    assert _stories(world) == []  # nothing starts before the manifest arrives
    _put(made["manifest_upload"], json.dumps(MANIFEST).encode())
    world.drain_events()

    # Then its arrival started one render, which succeeded in two chunks
    [execution] = _stories(world)
    assert execution["name"].startswith("story-three-places-")
    run = world.wait(execution["executionArn"], timeout_s=240)
    assert run.status == "SUCCEEDED", run.cause
    renders = [
        e for e in run.history
        if e["type"] == "TaskStateEntered"
        and e["stateEnteredEventDetails"]["name"] == "Render chunk"
    ]  # fmt: skip
    assert len(renders) == 2

    # and the final video is what was asked: its narration's length, size and frame rate
    s3 = world.client("s3")
    bucket = world.projects_bucket
    body = s3.get_object(Bucket=bucket, Key=final_video_key("three-places"))["Body"].read()
    with av.open(io.BytesIO(body)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (640, 360)
        assert video.average_rate == FPS
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert abs(len(frames) / FPS - NARRATION_S) <= 1 / FPS
    # the first frame shows the first image, the last frame the last one
    assert _nearest(frames[0]) == "images/tram.jpg"
    assert _nearest(frames[len(frames) // 2 - 6]) == "images/desk.jpg"
    assert _nearest(frames[-1]) == "images/forest.png"

    # and its record names the checksum, the rendered timeline and where each focus came from
    record = json.loads(
        s3.get_object(Bucket=bucket, Key=final_record_key("three-places"))["Body"].read()
    )
    assert record["video"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert record["video"]["frames"] == len(frames)
    sources = [segment["focus_source"] for segment in record["segments"]]
    assert sources[1] == "manifest"
    # the stand-in finds the tram scene's object and its box
    assert sources[0].startswith("rekognition:"), sources
    assert record["chunks"] == 2
    # nothing of the run's work is left
    left = s3.list_objects_v2(Bucket=bucket, Prefix="projects/three-places/work/")
    assert left.get("KeyCount", 0) == 0

    # and the API shows the project rendered, with a link that serves the video
    status, view = world.call_api(editor, "GET", "/projects/three-places")
    assert status == 200 and view["status"] == "SUCCEEDED", view
    assert abs(view["duration_s"] - NARRATION_S) <= 1 / FPS
    assert requests.get(view["video_url"], timeout=30).content == body

    # When S3 announces the story's upload to the raw bucket (the world announces only what
    # arrives over HTTP; the join copies in-process), the pipeline takes it as an upload
    upload = record["pipeline"]["upload"]
    assert (
        view["pipeline_upload"] == upload["key"] == "uploads/stories/three-places_final_video.mp4"
    )
    head = s3.head_object(Bucket=upload["bucket"], Key=upload["key"])
    assert head["Metadata"] == {
        "story": "three-places",
        "author": "Story desk",
        "license": "CC BY 4.0",
    }
    event = world.object_created_event(
        upload["bucket"],
        upload["key"],
        size=int(head["ContentLength"]),
        etag=str(head["ETag"]),
        version_id=head.get("VersionId"),
        reason="CopyObject",
    )
    [started] = world.deliver_event(event)
    assert started["error"] is None, started
    labelled = world.wait(world.execution_arn(started["payload"]["name"]), timeout_s=240)
    assert labelled.status == "SUCCEEDED", labelled.cause
    assert labelled.output["processed"] == 1, labelled.output
    [asset] = [a for a in world.assets() if a["key"].endswith("three-places_final_video.mp4")]
    assert asset["status"] == "PROCESSED"
    assert abs(float(asset["duration_s"]) - NARRATION_S) <= 0.1


def _drop_project(world: World, project_id: str, files: dict[str, bytes], manifest: dict) -> Any:
    started = world.drop_project(project_id, files, manifest)
    assert started["started"] is True, started
    return world.wait(started["execution_arn"], timeout_s=120)


@pytest.mark.parametrize(
    ("project_id", "files", "manifest", "named"),
    [
        (
            "missing-image",
            {"images/a.jpg": STILLS["images/tram.jpg"].body, "audio.m4a": narration(3.0)},
            {
                "audio": "audio.m4a",
                "segments": [
                    {"image": "images/a.jpg", "duration_s": 1.5},
                    {"image": "images/gone.jpg"},
                ],
            },
            "segment 2 (images/gone.jpg): s3://",
        ),
        (
            "text-image",
            {"images/a.png": b"this is text, not a PNG", "audio.m4a": narration(3.0)},
            {"audio": "audio.m4a", "segments": [{"image": "images/a.png"}]},
            "segment 1 (images/a.png)",
        ),
        (
            "bad-narration",
            {"images/a.jpg": STILLS["images/tram.jpg"].body, "audio.mp3": b"\x00" * 4096},
            {"audio": "audio.mp3", "segments": [{"image": "images/a.jpg"}]},
            "audio (audio.mp3)",
        ),
        (
            "too-long",
            {"images/a.jpg": STILLS["images/tram.jpg"].body, "audio.m4a": narration(3.0)},
            {"audio": "audio.m4a", "segments": [{"image": "images/a.jpg", "duration_s": 9}]},
            "ends at 9 s, past the end of the narration",
        ),
        (
            "unknown-field",
            {"images/a.jpg": STILLS["images/tram.jpg"].body, "audio.m4a": narration(3.0)},
            {"audio": "audio.m4a", "segments": [{"image": "images/a.jpg"}], "colour": "red"},
            "colour: is not a manifest field",
        ),
    ],
)
def test_a_bad_project_fails_naming_what_is_wrong_and_leaves_no_video(
    world: World, project_id: str, files: dict[str, bytes], manifest: dict, named: str
) -> None:
    run = _drop_project(world, project_id, files, manifest)
    assert run.status == "FAILED"
    assert named in (run.cause or ""), run.cause
    s3 = world.client("s3")
    status = json.loads(
        s3.get_object(Bucket=world.projects_bucket, Key=f"projects/{project_id}/status.json")[
            "Body"
        ].read()
    )
    assert status["status"] == "FAILED" and named in status["reason"]
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=world.projects_bucket).get("Contents", [])
        if project_id in o["Key"]
    ]
    assert final_video_key(project_id) not in keys
    assert not [k for k in keys if "/work/" in k]
