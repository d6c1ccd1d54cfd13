"""POST /projects and GET /projects/{id}: a story project's uploads, status and final video."""

from __future__ import annotations

import json

import requests

from lambdas.shared.projects import write_status
from tests.lambdas.api.conftest import ALICE, BOB, PROJECTS_BUCKET

MANIFEST = {
    "title": "Harbour morning",
    "audio": "audio.m4a",
    "output": {"width": 1280, "height": 720, "fps": 30},
    "segments": [
        {"image": "images/01.jpg", "duration_s": 4, "caption": "Dawn"},
        {"image": "images/02.png", "focus": {"x": 0.3, "y": 0.4}, "zoom": "out"},
        {"image": "images/01.jpg"},
    ],
}


def _status(s3, project_id: str) -> dict:
    body = s3.get_object(Bucket=PROJECTS_BUCKET, Key=f"projects/{project_id}/status.json")
    return json.loads(body["Body"].read())


def test_a_project_answers_one_signed_put_per_file_and_the_manifest_last(api, s3):
    answer = api.call("POST", "/projects", body={"manifest": MANIFEST, "project_id": "harbour-1"})
    assert answer.status == 201, answer.body
    body = answer.body
    assert body["project_id"] == "harbour-1"
    assert body["status"] == "WAITING_FOR_UPLOADS"
    # Each image once (01.jpg is used twice), then the narration; the manifest apart.
    assert [(u["name"], u["headers"]["Content-Type"]) for u in body["uploads"]] == [
        ("images/01.jpg", "image/jpeg"),
        ("images/02.png", "image/png"),
        ("audio.m4a", "audio/mp4"),
    ]
    manifest_upload = body["manifest_upload"]
    assert manifest_upload["key"] == "projects/harbour-1/manifest.json"
    assert manifest_upload["headers"] == {"Content-Type": "application/json"}
    for upload in [*body["uploads"], manifest_upload]:
        assert upload["method"] == "PUT"
        assert upload["key"].startswith("projects/harbour-1/")
        assert f"{PROJECTS_BUCKET}" in upload["url"] and "X-Amz-Signature=" in upload["url"]
    status = _status(s3, "harbour-1")
    assert status["status"] == "WAITING_FOR_UPLOADS"
    assert status["owner"] == ALICE.owner


def test_a_project_id_is_made_when_none_is_given_and_taken_ids_are_refused(api):
    made = api.call("POST", "/projects", body={"manifest": MANIFEST})
    assert made.status == 201
    project_id = made.body["project_id"]
    assert project_id.startswith("p-") and len(project_id) == 22
    again = api.call("POST", "/projects", body={"manifest": MANIFEST, "project_id": project_id})
    assert again.status == 409
    assert project_id in again.body["message"]


def test_a_bad_manifest_is_refused_with_the_field_named(api, s3):
    cases = {
        "manifest.segments[0].duraton_s": {
            **MANIFEST,
            "segments": [{"image": "images/a.jpg", "duraton_s": 3}],
        },
        "manifest.segments[0].image": {**MANIFEST, "segments": [{"image": "../etc/passwd.jpg"}]},
        "manifest.audio": {**MANIFEST, "audio": "narration.exe"},
        "manifest.output": {**MANIFEST, "output": {"width": 1920, "height": 1920, "fps": 30}},
    }
    for field, manifest in cases.items():
        answer = api.call("POST", "/projects", body={"manifest": manifest})
        assert answer.status == 400, (field, answer.body)
        assert field in answer.body["message"], (field, answer.body["message"])
    bad_id = api.call("POST", "/projects", body={"manifest": MANIFEST, "project_id": "a/b"})
    assert bad_id.status == 400 and "project_id" in bad_id.body["message"]
    # Nothing was created for any of them.
    assert s3.list_objects_v2(Bucket=PROJECTS_BUCKET).get("KeyCount", 0) == 0


def test_the_signed_put_accepts_the_file_through_s3(api, s3):
    body = api.call("POST", "/projects", body={"manifest": MANIFEST, "project_id": "put-1"}).body
    upload = body["uploads"][0]
    # moto's mock intercepts requests' calls to the signed URL as it does botocore's.
    answer = requests.put(upload["url"], data=b"\xff\xd8jpeg", headers=upload["headers"], timeout=5)
    assert answer.status_code == 200, answer.text
    got = s3.get_object(Bucket=PROJECTS_BUCKET, Key=upload["key"])
    assert got["Body"].read() == b"\xff\xd8jpeg"
    assert got["ContentType"] == "image/jpeg"


def test_get_project_shows_its_render_to_its_owner_only(api, s3):
    api.call("POST", "/projects", body={"manifest": MANIFEST, "project_id": "harbour-2"})
    waiting = api.call("GET", "/projects/harbour-2")
    assert waiting.status == 200
    assert waiting.body["status"] == "WAITING_FOR_UPLOADS" and waiting.body["video_url"] is None
    assert api.call("GET", "/projects/harbour-2", caller=BOB).status == 404
    assert api.call("GET", "/projects/nope-404").status == 404

    written = s3.put_object(
        Bucket=PROJECTS_BUCKET, Key="videos/harbour-2_final_video.mp4", Body=b"mp4"
    )
    write_status(
        s3,
        PROJECTS_BUCKET,
        "harbour-2",
        {
            "status": "SUCCEEDED",
            "video": {
                "key": "videos/harbour-2_final_video.mp4",
                "version_id": written["VersionId"],
            },
            "duration_s": 12.5,
            "pipeline": {"upload": {"key": "uploads/stories/harbour-2_final_video.mp4"}},
        },
    )
    done = api.call("GET", "/projects/harbour-2").body
    assert done["status"] == "SUCCEEDED"
    assert done["duration_s"] == 12.5
    assert done["pipeline_upload"] == "uploads/stories/harbour-2_final_video.mp4"
    assert "videos/harbour-2_final_video.mp4" in done["video_url"]
    assert f"versionId={written['VersionId']}" in done["video_url"]
    # The render's writes kept who owns the project.
    assert _status(s3, "harbour-2")["owner"] == ALICE.owner

    write_status(s3, PROJECTS_BUCKET, "harbour-2", {"status": "FAILED", "reason": "segment 2"})
    failed = api.call("GET", "/projects/harbour-2").body
    assert failed["status"] == "FAILED" and failed["reason"] == "segment 2"
    assert failed["video_url"] is None
