"""The stories handlers against moto: plan a project, render its chunks, join and publish."""

from __future__ import annotations

import io
import json
from typing import Any

import av
import pytest
from botocore.exceptions import ClientError

from lambdas.shared.projects import read_status
from lambdas.shared.rekognition import RekognitionLimitExceeded
from lambdas.shared.story_manifest import ManifestError
from lambdas.stories.chunk import render_chunk
from lambdas.stories.join import publish
from lambdas.stories.plan import Clients, chunks, plan
from lambdas.stories.settings import JoinSettings, PlanSettings, StoriesSettings
from localworld.media import narration
from localworld.sources import Still
from tests.lambdas.conftest import client

BUCKET, RAW = "projects-test", "raw-test"
STILLS = {
    "images/tram.jpg": Still("tram", 800, 600),
    "images/desk.png": Still("desk", 640, 480, "PNG"),
}
MANIFEST = {
    "title": "Two places",
    "audio": "audio.m4a",
    "output": {"width": 320, "height": 180, "fps": 24},
    "segments": [
        {"image": "images/tram.jpg", "duration_s": 3},
        {"image": "images/desk.png", "focus": {"x": 0.2, "y": 0.8}, "caption": "Desk"},
    ],
    "send_to_pipeline": True,
    "author": "A. Editor",
}
NARRATION_S = 7.0


class Rekognition:
    """DetectLabels' answer shape (botocore's model): a person's box and a larger object's."""

    def __init__(self, error: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def detect_labels(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "DetectLabels")
        return {
            "Labels": [
                {"Name": "Tram", "Confidence": 97.0, "Instances": [
                    {"BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 0.9, "Height": 0.9},
                     "Confidence": 95.0}]},
                {"Name": "Person", "Confidence": 90.0, "Instances": [
                    {"BoundingBox": {"Left": 0.6, "Top": 0.2, "Width": 0.2, "Height": 0.4},
                     "Confidence": 88.0}]},
            ],
            "LabelModelVersion": "3.0",
        }  # fmt: skip


@pytest.fixture
def project(aws_mock) -> Any:
    s3 = client("s3")
    for bucket in (BUCKET, RAW):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for name, still in STILLS.items():
        s3.put_object(Bucket=BUCKET, Key=f"projects/p-one/{name}", Body=still.body)
    s3.put_object(Bucket=BUCKET, Key="projects/p-one/audio.m4a", Body=narration(NARRATION_S))
    put = s3.put_object(
        Bucket=BUCKET, Key="projects/p-one/manifest.json", Body=json.dumps(MANIFEST).encode()
    )
    return {"bucket": BUCKET, "key": "projects/p-one/manifest.json", "version_id": put["VersionId"]}


def _plan(manifest: dict, rekognition: Rekognition, **limits: int) -> dict[str, Any]:
    settings = PlanSettings(projects_bucket=BUCKET, chunk_seconds=5, **limits)
    event = {"project_id": "p-one", "manifest": manifest, "run": "run-1"}
    return plan(event, settings, Clients(client("s3"), rekognition))


def test_chunks_cover_every_frame_once():
    assert chunks(70, 30) == [
        {"index": 0, "first_frame": 0, "frame_count": 30},
        {"index": 1, "first_frame": 30, "frame_count": 30},
        {"index": 2, "first_frame": 60, "frame_count": 10},
    ]


def test_a_project_plans_renders_in_chunks_and_publishes_with_its_record(project):
    s3 = client("s3")
    rekognition = Rekognition()
    planned = _plan(project, rekognition)
    # 7 s at 24 fps in chunks of 5 s: two chunks, and the narration's real length
    assert [c["frame_count"] for c in planned["chunks"]] == [120, 48]
    assert abs(planned["duration_s"] - NARRATION_S) < 0.05
    assert read_status(s3, BUCKET, "p-one")["status"] == "RENDERING"
    document = json.loads(
        s3.get_object(**{"Bucket": BUCKET, "Key": planned["plan"]["key"]})["Body"].read()
    )
    first, second = document["shots"]
    # Rekognition was asked about the segment without a focus only, on the upright JPEG copy;
    # the person wins over the larger tram
    [call] = rekognition.calls
    assert call["Image"]["S3Object"]["Name"] == "projects/p-one/work/run-1/focus/0000.jpg"
    assert first["focus_source"] == "rekognition:Person"
    assert first["focus"] == [0.7, 0.4]
    assert (second["focus"], second["focus_source"]) == ([0.2, 0.8], "manifest")
    assert second["end_s"] == document["duration_s"]

    settings = StoriesSettings(projects_bucket=BUCKET)
    rendered = [
        render_chunk({"plan": planned["plan"], "chunk": chunk}, settings, s3)
        for chunk in planned["chunks"]
    ]
    assert [r["frames"] for r in rendered] == [120, 48]
    published = publish(
        {"plan": planned["plan"], "chunks": list(reversed(rendered))},
        JoinSettings(projects_bucket=BUCKET, raw_bucket=RAW),
        s3,
    )
    video = s3.get_object(Bucket=BUCKET, Key="videos/p-one_final_video.mp4")
    with av.open(io.BytesIO(video["Body"].read())) as container:
        frames = sum(1 for _ in container.decode(video=0))
        assert container.streams.audio[0].codec_context.name == "aac"
    assert frames == 168
    assert video["Metadata"]["run"] == "run-1"
    record = json.loads(
        s3.get_object(Bucket=BUCKET, Key="videos/p-one_final_video.json")["Body"].read()
    )
    assert record["video"]["sha256"] == published["sha256"] == video["Metadata"]["sha256"]
    assert record["video"]["frames"] == 168 and record["chunks"] == 2
    # (the record, like the video, names its run: a later failure of the run takes both back)
    head = s3.head_object(Bucket=BUCKET, Key="videos/p-one_final_video.json")
    assert head["Metadata"]["run"] == "run-1"
    # the story entered the pipeline as an upload, with the manifest's author
    upload = s3.head_object(Bucket=RAW, Key="uploads/stories/p-one_final_video.mp4")
    assert upload["Metadata"] == {"story": "p-one", "author": "A. Editor"}
    assert published["upload"]["key"] == "uploads/stories/p-one_final_video.mp4"
    status = read_status(s3, BUCKET, "p-one")
    assert status["status"] == "SUCCEEDED" and status["video"]["version_id"] == video["VersionId"]
    # and the run's work files are gone
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="projects/p-one/work/")["KeyCount"] == 0


def test_throttling_is_left_to_the_state_machine_and_a_refusal_falls_back_to_the_centre(project):
    with pytest.raises(RekognitionLimitExceeded):
        _plan(project, Rekognition("ThrottlingException"))
    planned = _plan(project, Rekognition("InvalidImageFormatException"))
    s3 = client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=planned["plan"]["key"])["Body"].read())
    assert document["shots"][0]["focus"] == [0.5, 0.5]
    assert document["shots"][0]["focus_source"].startswith("centre (DetectLabels failed with")


def test_plan_limits_name_what_is_over(project):
    with pytest.raises(ManifestError, match=r"narration runs 7\.0 s, longer than the limit of 5 s"):
        _plan(project, Rekognition(), max_duration_s=5)
    with pytest.raises(ManifestError, match="2 segments, at most 1"):
        _plan(project, Rekognition(), max_segments=1)


def test_a_manifest_from_elsewhere_is_refused(project):
    with pytest.raises(Exception, match="manifest: expected s3://projects-test/projects/p-one"):
        _plan({**project, "key": "projects/other/manifest.json"}, Rekognition())


def test_a_record_that_cannot_be_written_takes_the_video_back(project, monkeypatch):
    s3 = client("s3")
    planned = _plan(project, Rekognition())
    settings = StoriesSettings(projects_bucket=BUCKET)
    rendered = [
        render_chunk({"plan": planned["plan"], "chunk": c}, settings, s3) for c in planned["chunks"]
    ]
    real_put = s3.put_object

    def failing_put(**params: Any) -> Any:
        if params["Key"].endswith("_final_video.json"):
            raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "PutObject")
        return real_put(**params)

    monkeypatch.setattr(s3, "put_object", failing_put)
    with pytest.raises(ClientError):
        publish(
            {"plan": planned["plan"], "chunks": rendered},
            JoinSettings(projects_bucket=BUCKET, raw_bucket=RAW),
            s3,
        )
    monkeypatch.undo()
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="videos/").get("Versions", [])
    assert versions == []
