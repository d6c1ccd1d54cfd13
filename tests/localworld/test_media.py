"""The local world's fixture media: real encoded clips, and what the stand-ins read from them."""

from __future__ import annotations

import dataclasses
import itertools
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from localworld import media
from localworld.media import (
    BLACK,
    COMMONS_OGV,
    COMMONS_OGV_DERIVATIVE,
    COMMONS_WEBM,
    FIXTURES,
    PIXABAY_MP4_240,
    PIXABAY_MP4_360,
    SCENES,
    UPLOAD_ROTATED,
    ClipSpec,
    MediaError,
)

IDS = [spec.name for spec in FIXTURES]
EXPECTED_AUDIO = {"aac": "aac", "opus": "opus", "vorbis": "vorbis"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, Path]:
    """Every catalogue clip, rendered once (or read from the fixture cache)."""
    return media.render_all(FIXTURES)


def frame_s(spec: ClipSpec) -> float:
    return 1 / spec.fps


def write(tmp_path: Path, name: str, body: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


# --- the catalogue ---------------------------------------------------------------------------


def test_catalogue_clips_are_5_to_15_s_with_3_to_4_cuts_and_some_black():
    # Given the fixture catalogue
    # Then each clip is short, cut 3-4 times, and tells apart from the others by picture and tone
    for spec in FIXTURES:
        assert 5 <= spec.duration_s <= 15, spec.name
        assert 3 <= len(spec.cut_times_s) <= 4, spec.name
        assert spec.width <= 640 and spec.height <= 360 and spec.fps == 25
    assert any(spec.black_spans_s for spec in FIXTURES)
    distinct = {spec.name: (spec.scenes, spec.tone_hz) for spec in FIXTURES}
    assert distinct[COMMONS_OGV.name] == distinct[COMMONS_OGV_DERIVATIVE.name]
    del distinct[COMMONS_OGV_DERIVATIVE.name]
    assert len(set(distinct.values())) == len(distinct)


def test_scene_colours_are_far_apart_and_drawn_frames_classify_as_their_scene():
    # Given every pair of scenes
    for a, b in itertools.combinations(SCENES.values(), 2):
        # Then their base colours differ by well over the cut threshold
        gap = np.abs(np.subtract(a.rgb, b.rgb)).mean()
        assert gap > 2 * media.CUT_THRESHOLD, (a.name, b.name, gap)
    # When a frame of each scene is drawn, Then its mean colour classifies as that scene
    for scene in SCENES.values():
        frame = media.draw_frame(scene, 640, 360, 1.5)
        expected = None if scene.name == BLACK else scene.name
        assert media.classify(frame.reshape(-1, 3).mean(axis=0)) == expected


def test_a_scene_that_shows_a_drink_carries_moderation_labels_in_rekognitions_shape():
    # Given the bar scene
    bar = SCENES["bar"]
    # Then it shows Alcohol (level 1) and Drinking under it (level 2); other scenes are clean
    assert ("Alcohol", "", 1) in bar.moderation
    assert ("Drinking", "Alcohol", 2) in bar.moderation
    assert all(not s.moderation for s in SCENES.values() if s.name != "bar")
    tram = {name: (parents, categories) for name, parents, categories in SCENES["tram"].labels}
    assert tram["Tram"] == (("Vehicle", "Transportation"), ("Vehicles and Automotive",))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scenes": (("sea", 1.01), ("city", 1.0))}, "whole frames"),
        ({"scenes": (("sea", 1.0), ("sea", 1.0))}, "adjacent"),
        ({"scenes": (("lava", 1.0),)}, "unknown scene"),
        ({"width": 425}, "even"),
        ({"container": "webm", "video_codec": "vp9", "audio_codec": "opus"}, "MP4/MOV"),
        ({"video_codec": "vp9"}, "cannot carry"),
    ],
)
def test_a_spec_that_cannot_be_rendered_faithfully_is_refused(change, message):
    # Given the rotated upload's spec, When one field is made impossible, Then it is refused
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(UPLOAD_ROTATED, **change)


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", FIXTURES, ids=IDS)
def test_each_fixture_decodes_with_its_declared_container_codec_size_rate_and_audio(spec, rendered):
    # Given a rendered clip
    path = rendered[spec.name]
    # When PyAV opens and decodes it
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video))
        assert video.codec_context.name == spec.video_codec
        assert (video.codec_context.width, video.codec_context.height) == (spec.width, spec.height)
        assert video.guessed_rate == Fraction(spec.fps)
        assert audio.codec_context.name == EXPECTED_AUDIO[spec.audio_codec]
        assert (audio.codec_context.channels, audio.codec_context.sample_rate) == (2, 48_000)
    # Then every frame is there, and the probe reports what the spec declares
    assert frames == spec.frame_count
    info = media.probe(path)
    assert info.container == spec.container
    assert info.video_codec == spec.video_codec
    assert (info.width, info.height, info.fps, info.pix_fmt) == (
        spec.width,
        spec.height,
        spec.fps,
        "yuv420p",
    )
    assert info.duration_s == pytest.approx(spec.duration_s, abs=frame_s(spec))
    assert info.frame_count == spec.frame_count
    assert info.size_bytes == path.stat().st_size and info.bitrate > 0
    assert info.audio == media.AudioInfo(EXPECTED_AUDIO[spec.audio_codec], 2, 48_000)
    assert path.suffix == spec.extension


def test_ffmpeg_names_the_containers_as_a_probe_prints_them(rendered):
    # Given an MP4, a WebM and an Ogg clip, When probed, Then FFmpeg's demuxer names come back
    assert media.probe(rendered[PIXABAY_MP4_360.name]).format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert media.probe(rendered[COMMONS_WEBM.name]).format_name == "matroska,webm"
    assert media.probe(rendered[COMMONS_OGV.name]).format_name == "ogg"
    assert COMMONS_OGV.extension == ".ogv" and COMMONS_OGV.content_type == "video/ogg"


def test_the_phone_upload_reads_back_rotated_90_degrees_clockwise(rendered):
    # Given the phone upload, coded landscape with a display matrix
    info = media.probe(rendered[UPLOAD_ROTATED.name])
    # Then the probe reads the rotation back, and the picture is shown portrait
    assert info.rotation == 90
    assert (info.width, info.height) == (640, 360)
    assert (info.display_width, info.display_height) == (360, 640)
    # And PyAV's decoded frame carries the same display matrix (counter-clockwise -90)
    with av.open(str(rendered[UPLOAD_ROTATED.name])) as container:
        assert next(container.decode(video=0)).rotation == -90
    # And the other clips are not rotated
    assert media.probe(rendered[PIXABAY_MP4_360.name]).rotation == 0


def test_render_is_deterministic_and_reads_the_cache(tmp_path, monkeypatch):
    # Given tiny clips of each encoder family, rendered into two empty cache directories
    scenes = (("sea", 0.4), ("city", 0.4))
    tiny = [
        ClipSpec("tiny-h264", "mp4", "h264", "aac", 160, 90, 25, scenes, 300.0, 90),
        ClipSpec("tiny-vp9", "webm", "vp9", "opus", 160, 90, 25, scenes, 310.0),
        ClipSpec("tiny-vp8", "ogg", "vp8", "vorbis", 160, 90, 25, scenes, 320.0),
    ]
    bodies = []
    for name in ("a", "b"):
        monkeypatch.setenv("MEDIA_PIPELINE_FIXTURE_CACHE", str(tmp_path / name))
        bodies.append([media.render(spec) for spec in tiny])
    # Then the same spec gives the same bytes
    assert bodies[0] == bodies[1]
    assert all(len(body) > 1000 for body in bodies[0])
    # And the cache holds one complete file per spec, nothing half-written
    assert sorted(p.name.split("-")[1] for p in (tmp_path / "b").iterdir()) == [
        "h264",
        "vp8",
        "vp9",
    ]

    # When rendering again with the encoder disabled, Then the cached bytes come back
    def refuse(spec, path):
        raise AssertionError("encoded again")

    monkeypatch.setattr(media, "_encode", refuse)
    assert [media.render(spec) for spec in tiny] == bodies[1]
    # And another spec (a different tone) is a different cache entry
    with pytest.raises(AssertionError, match="encoded again"):
        media.render(dataclasses.replace(tiny[0], tone_hz=301.0))


def test_a_failed_render_leaves_no_file_in_the_cache(tmp_path, monkeypatch):
    # Given an encoder that dies halfway through
    monkeypatch.setenv("MEDIA_PIPELINE_FIXTURE_CACHE", str(tmp_path))

    def crash(spec, path):
        path.write_bytes(b"half a file")
        raise RuntimeError("killed")

    monkeypatch.setattr(media, "_encode", crash)
    # When rendering, Then the error surfaces and the cache directory stays empty
    with pytest.raises(RuntimeError, match="killed"):
        media.render(PIXABAY_MP4_240)
    assert list(tmp_path.iterdir()) == []


# --- analysis ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", FIXTURES, ids=IDS)
def test_analyze_finds_the_hard_cuts_and_the_scene_of_each_shot(spec, rendered):
    # Given a rendered clip, When it is analysed
    analysis = media.analyze(rendered[spec.name])
    # Then it finds one shot per scene, starting within a frame of each ground-truth cut
    assert analysis.frames == spec.frame_count
    cuts = [shot.start_s for shot in analysis.shots[1:]]
    assert cuts == pytest.approx(spec.cut_times_s, abs=frame_s(spec))
    # And each shot names the scene that was drawn (black stretches name none)
    expected = [None if name == BLACK else name for name, _ in spec.scenes]
    assert [shot.scene for shot in analysis.shots] == expected
    # And shots tile the clip: frame numbers are contiguous and the last shot ends the clip
    assert analysis.shots[0].start_frame == 0
    for before, after in itertools.pairwise(analysis.shots):
        assert after.start_frame == before.end_frame + 1
    last = analysis.shots[-1]
    assert last.end_frame == spec.frame_count - 1
    assert last.start_s + last.duration_s == pytest.approx(spec.duration_s, abs=frame_s(spec))


@pytest.mark.parametrize("spec", FIXTURES, ids=IDS)
def test_analyze_finds_the_black_stretches(spec, rendered):
    # Given a rendered clip, When it is analysed
    analysis = media.analyze(rendered[spec.name])
    # Then its black spans match the ground truth within a frame (none where none was drawn)
    found = [(span.start_s, span.start_s + span.duration_s) for span in analysis.black_spans]
    assert len(found) == len(spec.black_spans_s)
    for (start, end), (want_start, want_end) in zip(found, spec.black_spans_s, strict=True):
        assert start == pytest.approx(want_start, abs=frame_s(spec))
        assert end == pytest.approx(want_end, abs=frame_s(spec))


def test_the_commons_clip_has_a_black_stretch_between_two_scenes(rendered):
    # Given the Commons WebM (tram, then black, then sea), When it is analysed
    analysis = media.analyze(rendered[COMMONS_WEBM.name])
    # Then the black stretch is its own shot, and a black-frames span of the same frames
    (span,) = analysis.black_spans
    black_shot = next(shot for shot in analysis.shots if shot.scene is None)
    assert (black_shot.start_frame, black_shot.end_frame) == (span.start_frame, span.end_frame)
    assert (span.start_frame, span.end_frame) == (115, 134)
    assert analysis.scene_at(span.start_s - 0.1) == "tram"
    assert analysis.scene_at(span.end_s + 0.1) == "sea"


def test_analysis_survives_a_lossy_reencode_at_another_size(rendered, tmp_path):
    # Given the 640x360 Pixabay clip re-encoded small and at a low quality, as a proxy would be
    source, target = rendered[PIXABAY_MP4_360.name], tmp_path / "proxy.mp4"
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "38", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for index, frame in enumerate(inp.decode(video=0)):
            small = frame.reformat(width=320, height=180)
            small.pts, small.time_base = index, Fraction(1, 25)
            out.mux(stream.encode(small))
        out.mux(stream.encode(None))
    # When it is analysed, Then the cuts and scenes are those of the original
    analysis = media.analyze(target)
    cuts = [shot.start_s for shot in analysis.shots[1:]]
    assert cuts == pytest.approx(PIXABAY_MP4_360.cut_times_s, abs=1 / 25)
    assert [s.scene for s in analysis.shots] == ["forest", "sea", None, "forest", "desk"]


def test_three_jobs_on_the_same_proxy_decode_it_once(rendered, tmp_path):
    # Given the same bytes under two paths
    original = rendered[PIXABAY_MP4_240.name]
    copy = write(tmp_path, "copy.mp4", original.read_bytes())
    # When both are analysed, Then the second answer is the cached first one
    assert media.analyze(copy) is media.analyze(original)


@pytest.mark.parametrize("spec", [COMMONS_WEBM, UPLOAD_ROTATED], ids=lambda s: s.name)
def test_a_frame_capture_is_a_picture_not_a_flat_colour(spec, rendered):
    # Given the middle of each non-black shot
    analysis = media.analyze(rendered[spec.name])
    for shot in analysis.shots:
        if shot.scene is None:
            continue
        # When the frame there is captured, as a thumbnail would be
        image = media.frame_at(rendered[spec.name], (shot.start_s + shot.end_s) / 2)
        # Then it has the clip's size, shows its scene and has detail (gradient and object)
        assert image.shape == (spec.height, spec.width, 3)
        assert media.classify(image.reshape(-1, 3).mean(axis=0)) == shot.scene
        assert image.std() > 15


# --- broken inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        (media.zero_length, "empty", "empty"),
        (media.text_as_mp4, "not_media", "not a media file: Invalid data"),
        (media.truncated_mp4, "truncated", "truncated"),
        (media.audio_only_m4a, "no_video", "no video stream (streams: audio aac)"),
    ],
    ids=["zero-length", "text", "truncated-mp4", "audio-only"],
)
def test_unusable_inputs_raise_a_media_error_a_reader_understands(tmp_path, body, kind, reason):
    # Given a broken or unusable upload
    path = write(tmp_path, "upload.mp4", body())
    # When it is probed or analysed, Then both say what is wrong with it
    for read in (media.probe, media.analyze):
        with pytest.raises(MediaError) as raised:
            read(path)
        assert raised.value.kind == kind
        assert raised.value.reason.startswith(reason)
        assert str(raised.value) == raised.value.reason


def test_the_truncated_mp4_is_half_a_real_file_with_its_index_lost():
    # Given the truncated MP4, Then it is half of a real clip, which kept its index at the end
    whole = media.render(PIXABAY_MP4_240)
    cut = media.truncated_mp4()
    assert whole.startswith(cut) and len(cut) == len(whole) // 2
    assert b"moov" not in cut and b"moov" in whole[len(cut) :]


def test_a_webm_cut_short_is_truncated_not_shorter(rendered, tmp_path):
    # Given the Commons WebM with its second half lost (its header declares 8 s)
    body = rendered[COMMONS_WEBM.name].read_bytes()
    path = write(tmp_path, "cut.webm", body[: len(body) // 2])
    # When probed, Then it is reported truncated rather than as a shorter clip
    with pytest.raises(MediaError) as raised:
        media.probe(path)
    assert raised.value.kind == "truncated"
    assert re.search(r"declares 8\.0\d s, frames end at 4\.\d\d s", raised.value.reason)


# --- timecodes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "fps", "timecode"),
    [
        (0.0, 25, "00:00:00:00"),
        (4.6, 25, "00:00:04:15"),
        (3723.96, 25, "01:02:03:24"),
        (59.0, 30, "00:00:59:00"),
        (1800 / (30000 / 1001), 30000 / 1001, "00:01:00;02"),
        (17982 / (30000 / 1001), 30000 / 1001, "00:10:00;00"),
    ],
)
def test_smpte_timecodes_are_in_rekognitions_shape(seconds, fps, timecode):
    # Given a time and a frame rate, When formatted, Then it is HH:MM:SS:FF (drop-frame ;FF)
    assert media.smpte(seconds, fps) == timecode


def test_smpte_from_milliseconds_matches_seconds():
    # Given a Rekognition timestamp in milliseconds, Then it formats as the same instant
    assert media.smpte_ms(5400, 25) == media.smpte(5.4, 25) == "00:00:05:10"
