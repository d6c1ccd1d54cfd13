"""The story manifest: its published schema, its checks, and where each segment lands in time."""

from __future__ import annotations

import json

import jsonschema
import pytest

from lambdas.shared.story_manifest import (
    SCHEMA_PATH,
    ManifestError,
    parse,
    project_of_manifest_key,
    schema,
    timeline,
)

LIMITS = {"max_bytes": 64 * 1024, "max_segments": 10}


def _manifest(**fields) -> dict:
    document = {
        "audio": "audio.m4a",
        "segments": [
            {"image": "images/a.jpg", "duration_s": 3},
            {"image": "images/b.png", "caption": "The harbour"},
        ],
    }
    document.update(fields)
    return document


def _parse(document: dict):
    return parse(json.dumps(document).encode(), **LIMITS)


def test_the_published_schema_is_the_models_and_accepts_what_they_accept():
    assert json.loads(SCHEMA_PATH.read_text()) == schema(), (
        "regenerate it: python -m lambdas.shared.story_manifest"
    )
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(_manifest(), schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_manifest(unknown=1), schema())


def test_defaults_are_720p_at_30_fps_with_half_second_crossfades():
    manifest = _parse(_manifest())
    assert (manifest.output.width, manifest.output.height, manifest.output.fps) == (1280, 720, 30)
    assert manifest.transition_s == 0.5
    assert manifest.send_to_pipeline is False


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (_manifest(segments=[{"image": "images/a.jpg", "duraton_s": 3}]), "segments[0].duraton_s"),
        (_manifest(extra=True), "extra: is not a manifest field"),
        (_manifest(segments=[{"image": "images/../../a.jpg"}]), "segments[0].image"),
        (_manifest(segments=[{"image": "images/sub/a.jpg"}]), "segments[0].image"),
        (_manifest(segments=[{"image": "images/a.svg"}]), "not a known image type"),
        (_manifest(segments=[{"image": "images/a.jpg", "start_s": -1}]), "segments[0].start_s"),
        (_manifest(segments=[{"image": "images/a.jpg", "duration_s": 0.05}]), "at least 0.2"),
        (_manifest(segments=[]), "segments"),
        (_manifest(audio="../audio.mp3"), "audio"),
        (_manifest(output={"width": 1281, "height": 720}), "output.width"),
        (_manifest(output={"width": 1920, "height": 1920}), "larger than 1080p"),
        (_manifest(output={"fps": 29}), "output.fps"),
        (_manifest(segments=[{"image": "images/a.jpg", "focus": {"x": 1.5, "y": 0}}]), "focus.x"),
    ],
)
def test_a_bad_manifest_names_the_field(document, named):
    with pytest.raises(ManifestError, match=named.replace("[", r"\[").replace("]", r"\]")):
        _parse(document)


def test_size_json_and_segment_limits():
    with pytest.raises(ManifestError, match="over the limit of 100"):
        parse(b" " * 101, max_bytes=100, max_segments=10)
    with pytest.raises(ManifestError, match="not JSON"):
        parse(b"{nope", **LIMITS)
    with pytest.raises(ManifestError, match="must be a JSON object"):
        parse(b"[]", **LIMITS)
    many = _manifest(segments=[{"image": "images/a.jpg"}] * 11)
    with pytest.raises(ManifestError, match="11 segments, at most 10"):
        _parse(many)


def test_segments_follow_each_other_and_the_last_runs_to_the_narrations_end():
    manifest = _parse(
        _manifest(
            segments=[
                {"image": "images/a.jpg", "duration_s": 2.5},
                {"image": "images/b.jpg", "duration_s": "until_next"},
                {"image": "images/c.jpg", "start_s": 6, "duration_s": 2},
                {"image": "images/d.jpg", "duration_s": 1},
            ]
        )
    )
    shots = timeline(manifest, 9.0)
    assert [(s.start_s, s.end_s) for s in shots] == [(0, 2.5), (2.5, 6), (6, 8), (8, 9.0)]
    assert shots[1].name == "segment 2 (images/b.jpg)"


@pytest.mark.parametrize(
    ("segments", "narration", "message"),
    [
        ([{"image": "images/a.jpg", "start_s": 1}], 5, "segment 1 (images/a.jpg): the first"),
        (
            [{"image": "images/a.jpg", "duration_s": 3}, {"image": "images/b.jpg", "start_s": 2}],
            5,
            "segment 2 (images/b.jpg): starts at 2 s, before",
        ),
        (
            [{"image": "images/a.jpg", "duration_s": 3}, {"image": "images/b.jpg", "start_s": 4}],
            5,
            "segment 2 (images/b.jpg): starts at 4 s, leaving a gap",
        ),
        (
            [{"image": "images/a.jpg", "duration_s": 8}, {"image": "images/b.jpg"}],
            5,
            "segment 1 (images/a.jpg): ends at 8 s, past the end of the narration",
        ),
        (
            [{"image": "images/a.jpg"}, {"image": "images/b.jpg"}],
            5,
            'segment 1 (images/a.jpg): duration_s "until_next" needs',
        ),
        (
            [{"image": "images/a.jpg", "duration_s": 4.9}, {"image": "images/b.jpg"}],
            5,
            "segment 2 (images/b.jpg): lasts 0.100 s",
        ),
    ],
)
def test_times_that_do_not_fit_name_the_segment(segments, narration, message):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        timeline(_parse(_manifest(segments=segments)), narration)


def test_only_a_projects_manifest_key_names_a_project():
    assert project_of_manifest_key("projects/harbour-1/manifest.json") == "harbour-1"
    for key in (
        "projects/harbour-1/sub/manifest.json",
        "projects/Harbour/manifest.json",
        "projects/../manifest.json",
        "uploads/x/manifest.json",
        "projects/ab/manifest.json",
    ):
        with pytest.raises(ManifestError):
            project_of_manifest_key(key)
