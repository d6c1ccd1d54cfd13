"""Captions in the HLS presentation: the VTT check and the playlist edits, on real playlist text."""

from __future__ import annotations

import io
import posixpath

import av
import pytest

from lambdas.finalize.captions import (
    CaptionError,
    captions_vtt_key,
    check_vtt,
    first_pts,
    media_playlist,
    relative,
    resolve,
    subtitles_key,
    uris,
    with_subtitles,
    with_timestamp_map,
    without_subtitles,
)
from tests.lambdas.pipeline.builders import ts_segment

# The shape MediaConvert (and the local transcoder) writes: a header, then tag + URI per rung.
MULTIVARIANT = (
    "#EXTM3U\n"
    "#EXT-X-VERSION:3\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.4d401f,mp4a.40.2",'
    "RESOLUTION=640x360,FRAME-RATE=30.000\n"
    "clip_360.m3u8\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=2900000,AVERAGE-BANDWIDTH=2400000,CODECS="avc1.4d401f,mp4a.40.2",'
    "RESOLUTION=1280x720,FRAME-RATE=30.000\n"
    "clip_720.m3u8\n"
)
PLAYLIST_KEY = "video/upload/uploads/20261201_080000/hls/clip.m3u8"
VTT_KEY = "video/upload/uploads/20261201_080000/speech/job.vtt"
VTT = b"WEBVTT\n\n0\n00:00:00.500 --> 00:00:01.900\nAll aboard.\n\n1\n00:00:02.000 --> 00:00:04.250\nNext stop.\n"


def test_a_transcribe_vtt_has_its_cues_counted_and_its_end():
    cues = check_vtt(VTT)
    assert (cues.count, cues.end_s) == (2, 4.25)
    # Hours, a BOM, CRLF line ends and cue settings are all WebVTT
    long = "\ufeffWEBVTT\r\n\r\n01:02:03.000 --> 01:02:04.500 align:start\r\nHi\r\n".encode()
    assert check_vtt(long).end_s == pytest.approx(3724.5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "does not start with WEBVTT"),
        (b"1\n00:00:00,500 --> 00:00:01,900\nSRT, not VTT\n", "does not start with WEBVTT"),
        (b"WEBVTT\n\n00:00:00,500 --> 00:00:01,900\nx\n", r"line 3 .* not a cue timing"),
        (b"WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nx\n", "line 3 .* ends before it starts"),
        (b"WEBVTT\n\n", "has no cues"),
        (b"WEBVTT\n\n\xff\xfe\n", "not UTF-8"),
    ],
)
def test_a_vtt_that_does_not_parse_is_refused_naming_why(body, message):
    with pytest.raises(CaptionError, match=message):
        check_vtt(body)


def test_the_subtitle_playlist_sits_beside_the_multivariant_one_and_names_the_vtt_relatively():
    key = subtitles_key(PLAYLIST_KEY, "en-US")
    assert key == "video/upload/uploads/20261201_080000/hls/clip_captions_en-US.m3u8"
    text = media_playlist(key, VTT_KEY, 9.6)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "#EXT-X-ENDLIST"
    assert "#EXT-X-TARGETDURATION:10" in lines and "#EXTINF:9.600," in lines
    # The URI resolves (RFC 3986, as a player resolves it) to the VTT Transcribe wrote
    uri = lines[lines.index("#EXTINF:9.600,") + 1]
    assert uri == "../speech/job.vtt"
    assert posixpath.normpath(posixpath.join(posixpath.dirname(key), uri)) == VTT_KEY
    assert relative(PLAYLIST_KEY, key) == "clip_captions_en-US.m3u8"


def test_every_variant_names_the_one_subtitles_group_and_other_lines_are_kept():
    updated = with_subtitles(
        MULTIVARIANT, uri="clip_captions_en-US.m3u8", language="en-US", name="en-US"
    )
    lines = updated.splitlines()
    media = [line for line in lines if line.startswith("#EXT-X-MEDIA:")]
    assert media == [
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="en-US",LANGUAGE="en-US",DEFAULT=YES,'
        'AUTOSELECT=YES,FORCED=NO,URI="clip_captions_en-US.m3u8"'
    ]
    # Before the first variant (a group is declared before a variant names it)
    assert lines.index(media[0]) < min(
        i for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:")
    )
    variants = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(variants) == 2 and all(v.endswith(',SUBTITLES="subs"') for v in variants)
    # Everything MediaConvert wrote is still there, byte for byte
    assert [line for line in lines if not line.startswith("#EXT-X-MEDIA:")] == [
        line + ',SUBTITLES="subs"' if line.startswith("#EXT-X-STREAM-INF:") else line
        for line in MULTIVARIANT.splitlines()
    ]


def test_applying_it_again_replaces_the_group_and_removing_it_restores_the_original():
    once = with_subtitles(MULTIVARIANT, uri="a.m3u8", language="en-US", name="en-US")
    twice = with_subtitles(once, uri="b.m3u8", language="pt-PT", name="pt-PT")
    assert twice.count("#EXT-X-MEDIA:") == 1 and 'URI="b.m3u8"' in twice
    assert twice.count('SUBTITLES="subs"') == 2
    assert without_subtitles(twice) == MULTIVARIANT
    assert without_subtitles(MULTIVARIANT) == MULTIVARIANT


def test_quotes_and_line_breaks_cannot_escape_an_attribute():
    updated = with_subtitles(MULTIVARIANT, uri='x".m3u8', language="en\nUS", name='a"b')
    media = next(line for line in updated.splitlines() if line.startswith("#EXT-X-MEDIA:"))
    assert 'NAME="ab"' in media and 'LANGUAGE="enUS"' in media and 'URI="x.m3u8"' in media


@pytest.mark.parametrize(
    ("playlist", "message"),
    [
        ("<html>not a playlist</html>", "does not start with #EXTM3U"),
        ("#EXTM3U\n#EXT-X-VERSION:3\n", "lists no variant streams"),
    ],
)
def test_a_playlist_that_is_not_a_multivariant_one_is_refused(playlist, message):
    with pytest.raises(CaptionError, match=message):
        with_subtitles(playlist, uri="c.m3u8", language="en-US", name="en-US")


def test_the_first_timestamp_of_a_real_segment_is_what_ffmpeg_reads():
    segment = ts_segment(start_s=2.0)
    with av.open(io.BytesIO(segment)) as container:
        starts = [
            int(s.start_time)
            for s in container.streams
            if s.type in ("audio", "video") and s.start_time is not None
        ]
    assert len(starts) == 2
    pts = first_pts(segment)
    assert pts == min(starts)
    assert 1.9 <= pts / 90000 < 2.5  # (AAC priming starts audio a bit early)
    # A start cut short of the other stream's first packet reads that stream's time, no earlier
    assert first_pts(segment[: 188 * 8]) == max(starts)


@pytest.mark.parametrize(
    "body", [b"", b"\x00" * 188 * 4, b"#EXTM3U\n" + b" " * 400, ts_segment()[:188]]
)
def test_what_is_not_a_transport_stream_with_a_timestamp_has_no_first_pts(body):
    assert first_pts(body) is None


def test_the_presentations_vtt_maps_cue_zero_to_the_first_timestamp():
    mapped = with_timestamp_map(VTT, 183000)
    lines = mapped.splitlines()
    assert lines[:2] == ["WEBVTT", "X-TIMESTAMP-MAP=MPEGTS:183000,LOCAL:00:00:00.000"]
    assert check_vtt(mapped.encode()) == check_vtt(VTT)  # the cues are untouched
    assert with_timestamp_map(mapped.encode(), 9) == mapped  # a map already there is kept
    key = captions_vtt_key(subtitles_key(PLAYLIST_KEY, "en-US"))
    assert key == "video/upload/uploads/20261201_080000/hls/clip_captions_en-US.vtt"


def test_playlist_uris_resolve_to_keys_and_absolute_ones_are_refused():
    assert uris(MULTIVARIANT) == ["clip_360.m3u8", "clip_720.m3u8"]
    assert resolve(PLAYLIST_KEY, "clip_360.m3u8").endswith("/hls/clip_360.m3u8")
    assert resolve(PLAYLIST_KEY, "../speech/job.vtt") == VTT_KEY
    for uri in ("https://cdn.example/x.ts", "/abs.ts", "seg.ts?token=1"):
        with pytest.raises(CaptionError, match="not a key relative to it"):
            resolve(PLAYLIST_KEY, uri)
