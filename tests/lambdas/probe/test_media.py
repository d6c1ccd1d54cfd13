"""The probe on the local world's real fixture media, served by moto S3 through S3RangeReader."""

from __future__ import annotations

import io
import json
import re
from fractions import Fraction
from functools import cache

import av
import pytest
from PIL import Image

from lambdas.probe.media import MEDIACONVERT_VIDEO_INPUTS, Probe, probe
from lambdas.probe.reader import ObjectGone, ReadBudgetExceeded, S3RangeReader
from localworld.media import (
    COMMONS_OGV,
    COMMONS_WEBM,
    PIXABAY_MP4_360,
    UPLOAD_ROTATED,
    audio_only_m4a,
    render,
    text_as_mp4,
    truncated_mp4,
    zero_length,
)
from tests.lambdas.conftest import client

LIMIT_S = 3600.0


def _put(bucket: str, key: str, data: bytes) -> S3RangeReader:
    s3 = client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    head = s3.head_object(Bucket=bucket, Key=key)
    return S3RangeReader(
        s3, bucket, key, version_id=head.get("VersionId"), size=head["ContentLength"]
    )


def _probe(
    bucket: str, key: str, data: bytes, limit: float = LIMIT_S
) -> tuple[Probe, S3RangeReader]:
    reader = _put(bucket, key, data)
    report = probe(reader, size_bytes=reader.size, name=key, max_duration_s=limit)
    json.dumps(report.to_dict())  # the Lambda returns it: must be JSON-safe
    return report, reader


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    out, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        out.append((data[offset + 4 : offset + 8], offset, size))
        offset += size
    return out


@cache
def moov_last_padded(padding: int = 48 * 1024 * 1024) -> bytes:
    """The Pixabay MP4 (moov after mdat) with a big ``free`` box before moov: a 48 MiB file
    whose index is at the very end, as a long camera file without faststart is."""
    data = render(PIXABAY_MP4_360)
    kinds = {kind: (offset, size) for kind, offset, size in _boxes(data)}
    moov_at = kinds[b"moov"][0]
    assert kinds[b"mdat"][0] < moov_at
    free = (padding + 8).to_bytes(4, "big") + b"free" + bytes(padding)
    return data[:moov_at] + free + data[moov_at:]


@cache
def long_webm(repeats: int = 30) -> bytes:
    """The Commons WebM's packets copied ``repeats`` times (4 minutes), 1 s clusters and cues,
    as FFmpeg writes long WebM files: no re-encoding, so it is fast."""
    source = render(COMMONS_WEBM)
    out_buffer = io.BytesIO()
    with (
        av.open(io.BytesIO(source)) as src,
        av.open(
            out_buffer,
            "w",
            format="webm",
            options={"cluster_time_limit": "1000", "fflags": "+bitexact"},
        ) as out,
    ):
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        packets = [p for p in src.demux() if p.size]
        period = Fraction(src.duration, av.time_base) + Fraction(1, 25)
        for lap in range(repeats):
            for packet in packets:
                shift = int(lap * period / packet.time_base)
                clone = av.Packet(bytes(packet))
                clone.pts, clone.dts = (packet.pts or 0) + shift, (packet.dts or 0) + shift
                clone.duration, clone.time_base = packet.duration, packet.time_base
                clone.is_keyframe = packet.is_keyframe
                clone.stream = streams[packet.stream.index]
                out.mux(clone)
    return out_buffer.getvalue()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_mp4_h264_is_fine_for_both_services(raw_bucket):
    report, reader = _probe(raw_bucket, "pixabay/forest.mp4", render(PIXABAY_MP4_360))
    assert report.refusal is None
    assert (report.container, report.format_name) == ("mp4", "mov,mp4,m4a,3gp,3g2,mj2")
    assert report.duration_s == pytest.approx(7.6, abs=0.05)
    assert report.bit_rate and report.size_bytes == reader.size
    (video,) = report.video
    assert (video.codec, video.profile, video.width, video.height) == ("h264", "High", 640, 360)
    assert (video.frame_rate, video.pix_fmt, video.bit_depth, video.rotation) == (
        25.0,
        "yuv420p",
        8,
        0,
    )
    assert video.level == 30 and video.hdr is None
    (audio,) = report.audio
    assert (audio.codec, audio.channels, audio.sample_rate) == ("aac", 2, 48_000)
    assert report.mediaconvert.ok and report.rekognition.ok


def test_webm_vp9_needs_a_transcode_for_rekognition(raw_bucket):
    report, _ = _probe(raw_bucket, "commons/tram.webm", render(COMMONS_WEBM))
    assert report.refusal is None
    assert report.container == "webm"
    assert [(v.codec, v.profile) for v in report.video] == [("vp9", "Profile 0")]
    assert [a.codec for a in report.audio] == ["opus"]
    assert report.mediaconvert.ok
    assert not report.rekognition.ok
    assert "VP9" in report.rekognition.reason and "WebM" in report.rekognition.reason


def test_ogg_is_not_a_mediaconvert_video_input(raw_bucket):
    report, _ = _probe(raw_bucket, "commons/ferry.ogv", render(COMMONS_OGV))
    assert report.refusal is None and report.container == "ogg"
    assert not report.mediaconvert.ok and "Ogg" in report.mediaconvert.reason
    assert not report.rekognition.ok
    assert "ogg" not in MEDIACONVERT_VIDEO_INPUTS
    assert all("theora" not in codecs for codecs in MEDIACONVERT_VIDEO_INPUTS.values())


def test_rotated_phone_upload(raw_bucket):
    report, _ = _probe(raw_bucket, "uploads/phone.mp4", render(UPLOAD_ROTATED))
    assert report.refusal is None
    assert report.video[0].rotation == 90
    assert (report.video[0].width, report.video[0].height) == (640, 360)


def test_huge_file_with_moov_at_the_end_reads_a_few_blocks(raw_bucket):
    data = moov_last_padded()
    report, reader = _probe(raw_bucket, "camera/long.mp4", data)
    assert report.refusal is None and report.rekognition.ok
    assert len(data) > 48 * 1024 * 1024
    assert reader.bytes_read <= 1024 * 1024  # head and tail blocks of a 48 MiB file
    assert reader.requests <= 4


def test_long_webm_reads_a_fraction(raw_bucket):
    data = long_webm()
    report, reader = _probe(raw_bucket, "commons/long.webm", data)
    assert report.refusal is None
    assert report.duration_s == pytest.approx(30 * 8.048, abs=0.1)
    assert len(data) > 3_500_000
    assert reader.bytes_read <= 1024 * 1024
    assert reader.bytes_read < len(data) / 3


def test_audio_only_is_refused(raw_bucket):
    report, _ = _probe(raw_bucket, "uploads/memo.m4a", audio_only_m4a())
    assert report.refusal and report.refusal.startswith("no video stream")
    assert not report.mediaconvert.ok and not report.rekognition.ok
    assert [a.codec for a in report.audio] == ["aac"]


@pytest.mark.parametrize(
    ("key", "make", "expected"),
    [
        ("cdn/error.mp4", text_as_mp4, "not a media file"),
        ("uploads/empty.mp4", zero_length, "empty file: 0 bytes"),
        ("pixabay/cut.mp4", truncated_mp4, "truncated"),
        ("uploads/still.png", _png, "no video stream: a still image (png)"),
    ],
)
def test_unusable_files_are_refused(raw_bucket, key, make, expected):
    report, reader = _probe(raw_bucket, key, make())
    assert report.refusal is not None and expected in report.refusal
    assert not report.mediaconvert.ok and not report.rekognition.ok
    assert reader.bytes_read <= reader.size


def test_truncated_webm_is_refused(raw_bucket):
    data = long_webm()
    report, reader = _probe(raw_bucket, "commons/cut.webm", data[: len(data) // 2])
    assert report.refusal is not None and report.refusal.startswith("truncated media file")
    assert reader.bytes_read < len(data) / 4


def test_truncated_faststart_mp4_is_refused(raw_bucket, tmp_path):
    source = render(PIXABAY_MP4_360)
    target = tmp_path / "faststart.mp4"  # faststart rewrites the file: a real path, not a buffer
    with (
        av.open(io.BytesIO(source)) as src,
        av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = target.read_bytes()
    assert [kind for kind, _, _ in _boxes(data)].index(b"moov") < 2
    report, _ = _probe(raw_bucket, "pixabay/cut-faststart.mp4", data[: len(data) * 2 // 3])
    assert report.refusal is not None
    assert report.refusal.startswith("truncated media file: frame data at byte")


def test_longer_than_the_limit_is_refused(raw_bucket):
    report, _ = _probe(raw_bucket, "pixabay/forest.mp4", render(PIXABAY_MP4_360), limit=5)
    assert report.refusal == "longer than the limit: 7.6 s > 5 s (max_duration_s)"


def test_object_deleted_between_head_and_read(raw_bucket):
    reader = _put(raw_bucket, "uploads/gone.mp4", render(PIXABAY_MP4_360))
    client("s3").delete_object(Bucket=raw_bucket, Key="uploads/gone.mp4")
    with pytest.raises(ObjectGone, match=re.escape("uploads/gone.mp4")):
        probe(reader, size_bytes=reader.size, name="uploads/gone.mp4", max_duration_s=LIMIT_S)


def test_budget_overrun_raises(raw_bucket):
    s3 = client("s3")
    data = moov_last_padded()
    s3.put_object(Bucket=raw_bucket, Key="camera/long.mp4", Body=data)
    reader = S3RangeReader(
        s3, raw_bucket, "camera/long.mp4", version_id=None, size=len(data), max_bytes=300 * 1024
    )
    with pytest.raises(ReadBudgetExceeded, match=re.escape("camera/long.mp4")):
        probe(reader, size_bytes=len(data), name="camera/long.mp4", max_duration_s=LIMIT_S)


def test_hdr_transfer_is_reported():
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.codec_context.color_trc = 16  # SMPTE ST 2084 (PQ)
        stream.codec_context.color_primaries = 9  # BT.2020
        for index in range(3):
            frame = av.VideoFrame(64, 64, "yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = buffer.getvalue()
    report = probe(io.BytesIO(data), size_bytes=len(data), name="hdr.mp4", max_duration_s=LIMIT_S)
    video = report.video[0]
    assert (video.color_transfer, video.color_primaries, video.hdr) == ("smpte2084", "bt2020", "PQ")
