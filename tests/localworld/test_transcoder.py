"""The local transcoder runs the plan Lambda's real MediaConvert settings and writes playable media.

Inputs are generated here with PyAV: 6 s of 640x360 at 25 fps in three coloured thirds (red,
green, blue) with a moving white square, as H.264/AAC MP4 and VP9/Opus WebM; a 1 s clip coded
640x360 with a display matrix that turns it a quarter counter-clockwise; an audio-only file.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from lambdas.transcode.plan import PlanAsset, build_plan
from localworld import transcoder
from localworld.transcoder import TranscodeError, transcode

FOLDER = "video/commons/travel/20260101_000000"
FPS = 25
SECONDS = 6
# Limited-range BT.601 Y, U, V of red, green and blue.
THIRDS_YUV = [(81, 90, 240), (145, 54, 34), (41, 240, 110)]


def _yuv_frame(width: int, height: int, yuv: tuple[int, int, int], square_x: int) -> av.VideoFrame:
    planes = [np.full((height, width), yuv[0], np.uint8)]
    planes += [np.full((height // 2, width // 2), value, np.uint8) for value in yuv[1:]]
    planes[0][0:40, square_x : square_x + 40] = 235
    for chroma in planes[1:]:
        chroma[0:20, square_x // 2 : square_x // 2 + 20] = 128
    data = np.concatenate([plane.ravel() for plane in planes]).reshape(height * 3 // 2, width)
    return av.VideoFrame.from_ndarray(data, format="yuv420p")


def write_clip(
    path: Path,
    *,
    seconds: float = SECONDS,
    width: int = 640,
    height: int = 360,
    video: str | None = "libx264",
    audio: str | None = "aac",
    rotation: int | None = None,
    moving: bool = True,
) -> Path:
    """A clip in thirds of red, green and blue, with a white square (moving, or still top-left)."""
    options = {"movflags": "+faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as container:
        frames = round(seconds * FPS)
        if video is not None:
            fast = {"preset": "ultrafast"} if video == "libx264" else {"deadline": "realtime"}
            if video != "libx264":
                fast["cpu-used"] = "8"
            stream = container.add_stream(video, rate=FPS, options=fast)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if rotation is not None:
                stream.set_display_rotation(rotation)
        if audio is not None:
            sound = container.add_stream(
                audio, rate=48000, options={"aac_coder": "fast"} if audio == "aac" else {}
            )
            sound.layout = "stereo"
        if video is not None:
            for index in range(frames):
                third = min(2, index * 3 // frames)
                square_x = (index * 8) % (width - 40) if moving else 0
                frame = _yuv_frame(width, height, THIRDS_YUV[third], square_x)
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        if audio is not None:
            rng = np.random.default_rng(7)
            size = sound.codec_context.frame_size or 960
            total = round(seconds * 48000)
            for start in range(0, total, size):
                count = min(size, total - start)
                tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(start, start + count) / 48000)
                samples = (tone + 0.05 * rng.standard_normal(count)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(
                    np.stack([samples, samples]), format="fltp", layout="stereo"
                )
                chunk.sample_rate, chunk.pts = 48000, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def remux(source: Path, target: Path, *, faststart: bool) -> Path:
    """The same packets in another layout (``moov`` first or last)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(source)) as src, av.open(str(target), "w", options=options) as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return target


def top_level_boxes(path: Path) -> list[bytes]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        boxes.append(data[offset + 4 : offset + 8])
        offset += int.from_bytes(data[offset : offset + 4], "big")
    return boxes


def plan_for(name: str, *, height: int = 360, duration_s: float = SECONDS) -> dict:
    asset = PlanAsset(
        asset_id="a1",
        campaign="travel",
        bucket="raw",
        key=f"{FOLDER}/{name}",
        height=height,
        duration_s=duration_s,
    )
    return build_plan(asset, processed_bucket="proc", deployment="dev")


@dataclass
class Job:
    plan: dict
    details: list[dict]
    files: dict[str, tuple[bytes, str]]  # key in the processed bucket -> (body, content type)
    folder: Path  # the written files, by key, to decode from disk

    def path(self, key: str) -> Path:
        return self.folder / key


def run_job(settings: dict, source: Path, out: Path, *, plan: dict | None = None) -> Job:
    files: dict[str, tuple[bytes, str]] = {}

    def write(uri: str, local: Path, content_type: str) -> None:
        assert uri.startswith("s3://proc/"), uri
        key = uri.removeprefix("s3://proc/")
        assert key not in files, f"{key} written twice"
        files[key] = (local.read_bytes(), content_type)
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        (out / key).write_bytes(files[key][0])

    details = transcode(settings, source, input_uri=f"s3://raw/{FOLDER}/{source.name}", write=write)
    return Job(plan=plan or {}, details=details, files=files, folder=out)


def hls_prefix(plan: dict) -> str:
    return plan["outputs"]["hls_manifest_key"].removesuffix("index.m3u8")


def rung_modifiers(plan: dict) -> list[str]:
    return [output["NameModifier"] for output in plan["settings"]["OutputGroups"][1]["Outputs"]]


def parse_master(text: str) -> list[tuple[dict[str, str], str]]:
    lines = text.splitlines()
    variants = []
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = {}
            for part in _split_attributes(line.removeprefix("#EXT-X-STREAM-INF:")):
                name, value = part.split("=", 1)
                attributes[name] = value.strip('"')
            variants.append((attributes, lines[index + 1]))
    return variants


def _split_attributes(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def parse_media_playlist(text: str) -> list[tuple[str, float]]:
    segments, seconds = [], 0.0
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            seconds = float(line.removeprefix("#EXTINF:").split(",")[0])
        elif line and not line.startswith("#"):
            segments.append((line, seconds))
    return segments


def decode_video(path: Path) -> tuple[list[np.ndarray], av.video.stream.VideoStream, dict]:
    """Every frame as RGB, the stream, and facts about the file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        facts = {
            "rate": stream.average_rate,
            "profile": stream.codec_context.profile,
            "audio": [
                (a.codec_context.name, a.rate, a.layout.name) for a in container.streams.audio
            ],
        }
    return frames, stream, facts


def dominant_colour(pixels: np.ndarray) -> str:
    means = pixels.reshape(-1, 3).mean(axis=0)
    return ["red", "green", "blue"][int(np.argmax(means))]


# -- fixtures: inputs generated once, each job run once --------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    clip = write_clip(folder / "clip.mp4")
    return {
        "mp4": clip,
        "mp4_moov_last": remux(clip, folder / "moov_last.mp4", faststart=False),
        "webm": write_clip(folder / "clip.webm", video="libvpx-vp9", audio="libopus"),
        "rotated": write_clip(folder / "rotated.mp4", seconds=1, rotation=90, moving=False),
        "audio_only": write_clip(folder / "audio.mp4", seconds=1, video=None),
    }


@pytest.fixture(scope="module")
def mp4_job(inputs, tmp_path_factory) -> Job:
    plan = plan_for("clip.mp4")
    return run_job(plan["settings"], inputs["mp4"], tmp_path_factory.mktemp("mp4"), plan=plan)


@pytest.fixture(scope="module")
def webm_job(inputs, tmp_path_factory) -> Job:
    plan = plan_for("clip.webm")
    return run_job(plan["settings"], inputs["webm"], tmp_path_factory.mktemp("webm"), plan=plan)


def thumbnails_only(plan: dict, *, every_s: int) -> dict:
    settings = copy.deepcopy(plan["settings"])
    group = settings["OutputGroups"][2]
    capture = group["Outputs"][0]["VideoDescription"]["CodecSettings"]["FrameCaptureSettings"]
    capture["FramerateDenominator"] = every_s
    settings["OutputGroups"] = [group]
    return settings


# -- a real job, MP4 and WebM sources --------------------------------------------------------------
@pytest.mark.parametrize("job_name", ["mp4_job", "webm_job"])
def test_every_output_the_plan_names_is_written_under_mediaconvert_names(job_name, request):
    # Given the plan Lambda's settings for a 6 s 640x360 source
    # When the job runs
    job: Job = request.getfixturevalue(job_name)
    outputs = job.plan["outputs"]
    # Then exactly MediaConvert's files are written, under the keys the pipeline expects
    prefix = hls_prefix(job.plan)
    expected = {
        outputs["mp4_key"]: "video/mp4",
        outputs["hls_manifest_key"]: "application/vnd.apple.mpegurl",
        f"{outputs['thumbnails_prefix']}thumb.0000000.jpg": "image/jpeg",
    }
    for modifier in rung_modifiers(job.plan):
        expected[f"{prefix}index{modifier}.m3u8"] = "application/vnd.apple.mpegurl"
        expected[f"{prefix}index{modifier}_00001.ts"] = "video/MP2T"
    assert {key: kind for key, (_, kind) in job.files.items()} == expected
    # And the multivariant playlist comes after everything it names
    order = list(job.files)
    hls_files = [key for key in order if key.startswith(prefix)]
    assert hls_files[-1] == outputs["hls_manifest_key"]


@pytest.mark.parametrize("job_name", ["mp4_job", "webm_job"])
def test_the_proxy_plays_at_the_source_size_rate_and_length_with_aac_audio(job_name, request):
    job: Job = request.getfixturevalue(job_name)
    path = job.path(job.plan["outputs"]["mp4_key"])
    # Given the proxy MediaConvert would write; When it is decoded
    frames, stream, facts = decode_video(path)
    # Then it is 640x360 H.264 at 25 fps, 6 s (within a frame), with AAC 48 kHz stereo
    assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 640, 360)
    assert facts["rate"] == FPS
    assert abs(len(frames) - SECONDS * FPS) <= 1
    assert facts["audio"] == [("aac", 48000, "stereo")]
    # And it is the source: red, then green, then blue
    assert [dominant_colour(frames[i]) for i in (25, 75, 125)] == ["red", "green", "blue"]
    # And the moov box comes first (MoovPlacement PROGRESSIVE_DOWNLOAD), for progressive playback
    boxes = top_level_boxes(path)
    assert boxes.index(b"moov") < boxes.index(b"mdat")


def test_hls_variants_decode_segment_by_segment_and_add_up_to_the_clip(mp4_job):
    job = mp4_job
    prefix = hls_prefix(job.plan)
    master = job.files[job.plan["outputs"]["hls_manifest_key"]][0].decode()
    # Given the multivariant playlist
    assert master.splitlines()[:3] == ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    variants = parse_master(master)
    # Then it lists every rung of the plan, by relative name
    assert [uri for _, uri in variants] == [f"index{m}.m3u8" for m in rung_modifiers(job.plan)]
    for attributes, uri in variants:
        playlist = job.files[prefix + uri][0].decode()
        segments = parse_media_playlist(playlist)
        # And each variant is a VOD playlist whose EXTINF add up to the clip's length
        assert "#EXT-X-ENDLIST" in playlist and "#EXT-X-PLAYLIST-TYPE:VOD" in playlist
        assert abs(sum(seconds for _, seconds in segments) - SECONDS) <= 0.1
        total_frames = 0
        for name, _ in segments:
            assert "/" not in name
            # And every segment decodes on its own, starting on a keyframe
            with av.open(str(job.path(prefix + name))) as segment:
                decoded = list(segment.decode(video=0))
                stream = segment.streams.video[0]
                size = (stream.width, stream.height)
                profile = stream.codec_context.profile
            assert decoded and decoded[0].key_frame
            total_frames += len(decoded)
        assert abs(total_frames - SECONDS * FPS) <= 1
        # And the master describes what was really encoded
        assert attributes["RESOLUTION"] == f"{size[0]}x{size[1]}"
        assert attributes["FRAME-RATE"] == "25.000"
        video_codec, audio_codec = attributes["CODECS"].split(",")
        assert audio_codec == "mp4a.40.2"
        assert video_codec.startswith({"Main": "avc1.4d", "High": "avc1.64"}[profile])
        assert int(attributes["BANDWIDTH"]) >= int(attributes["AVERAGE-BANDWIDTH"]) > 0


def test_hls_segments_follow_segment_length(inputs, tmp_path):
    # Given a 6 s source and 2 s segments (the plan's GOP is 2 s, so every segment is whole GOPs)
    plan = plan_for("clip.mp4")
    settings = copy.deepcopy(plan["settings"])
    hls = settings["OutputGroups"][1]
    hls["OutputGroupSettings"]["HlsGroupSettings"]["SegmentLength"] = 2
    settings["OutputGroups"] = [hls]
    # When the job runs
    job = run_job(settings, inputs["mp4"], tmp_path, plan=plan)
    # Then there are three segments of 2 s, numbered from 00001
    playlist = job.files[hls_prefix(plan) + "index_360p.m3u8"][0].decode()
    segments = parse_media_playlist(playlist)
    assert [name for name, _ in segments] == [f"index_360p_{n:05d}.ts" for n in (1, 2, 3)]
    assert [round(seconds, 2) for _, seconds in segments] == [2.0, 2.0, 2.0]
    assert "#EXT-X-TARGETDURATION:2" in playlist


def segment_starts(job: Job, prefix: str, playlist: str) -> list[float]:
    """Where each segment's video starts on its MPEG-TS clock (the AAC audio starts one priming
    frame, 1024 samples, before it)."""
    starts = []
    for name, _ in parse_media_playlist(playlist):
        with av.open(str(job.path(prefix + name))) as segment:
            video = segment.streams.video[0]
            assert video.start_time is not None and video.time_base is not None
            starts.append(float(video.start_time * video.time_base))
    return starts


def test_hls_segments_start_at_mediaconverts_automatic_pts_offset(mp4_job):
    # Given the plan's rungs, whose M3u8Settings leave PtsOffsetMode at its default (AUTO)
    prefix = hls_prefix(mp4_job.plan)
    playlist = mp4_job.files[f"{prefix}index_360p.m3u8"][0].decode()
    # When the segments are read; Then the first starts at MediaConvert's minimum of 2 s, and
    # the next ones follow on the same clock (what a player's captions are mapped against)
    starts = segment_starts(mp4_job, prefix, playlist)
    assert starts[0] == pytest.approx(float(transcoder.AUTO_PTS_OFFSET_S), abs=0.001)
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("mode", "offset", "expected_s"), [("SECONDS", 5, 5.0), ("MILLISECONDS", 250, 0.25)]
)
def test_hls_segments_start_at_the_pts_offset_the_settings_give(
    mode, offset, expected_s, inputs, tmp_path
):
    # Given one rung whose M3u8Settings set the PTS offset by hand
    plan = plan_for("clip.mp4")
    settings = copy.deepcopy(plan["settings"])
    hls = settings["OutputGroups"][1]
    hls["Outputs"] = hls["Outputs"][:1]
    hls["Outputs"][0]["ContainerSettings"]["M3u8Settings"] = {
        "PtsOffsetMode": mode,
        "PtsOffset": offset,
    }
    settings["OutputGroups"] = [hls]
    # When the job runs
    job = run_job(settings, inputs["mp4"], tmp_path, plan=plan)
    # Then its first segment starts there
    prefix = hls_prefix(plan)
    playlist = job.files[f"{prefix}index_360p.m3u8"][0].decode()
    assert segment_starts(job, prefix, playlist)[0] == pytest.approx(expected_s, abs=0.001)


def test_output_group_details_are_what_get_job_answers(mp4_job):
    # Given the finished job; Then GetJob's OutputGroupDetails, one entry per output, real values
    sizes = {"WidthInPx": 640, "HeightInPx": 360}
    assert mp4_job.details == [
        {"OutputDetails": [{"DurationInMs": 6000, "VideoDetails": sizes}]},
        {"OutputDetails": [{"DurationInMs": 6000, "VideoDetails": sizes}]},
        {"OutputDetails": [{"DurationInMs": 6000, "VideoDetails": sizes}]},
    ]


def test_thumbnails_are_real_jpeg_frames(mp4_job):
    prefix = mp4_job.plan["outputs"]["thumbnails_prefix"]
    thumbs = sorted(key for key in mp4_job.files if key.startswith(prefix))
    # Given one frame every 10 s, at most 60: floor(6 s / 10 s) + 1 = one capture, at t=0
    assert thumbs == [f"{prefix}thumb.0000000.jpg"]
    image = Image.open(io.BytesIO(mp4_job.files[thumbs[0]][0]))
    # Then it is a 640x360 JPEG of the first frame: red, with the white square
    assert (image.format, image.size) == ("JPEG", (640, 360))
    pixels = np.asarray(image.convert("RGB"))
    assert dominant_colour(pixels) == "red"
    assert pixels.std() > 10  # not a uniform placeholder


def test_thumbnail_count_and_timing_follow_the_capture_rate(inputs, tmp_path):
    # Given a capture every 2 s over a 6 s clip
    plan = plan_for("clip.mp4")
    job = run_job(thumbnails_only(plan, every_s=2), inputs["mp4"], tmp_path, plan=plan)
    prefix = plan["outputs"]["thumbnails_prefix"]
    thumbs = sorted(job.files)
    # Then floor(6 * 1/2) + 1 = 4 captures, at 0, 2, 4 and 6 s
    assert thumbs == [f"{prefix}thumb.{n:07d}.jpg" for n in range(math.floor(SECONDS / 2) + 1)]
    colours = [
        dominant_colour(np.asarray(Image.open(io.BytesIO(job.files[key][0])).convert("RGB")))
        for key in thumbs
    ]
    assert colours == ["red", "green", "blue", "blue"]
    # And MaxCaptures caps them
    settings = thumbnails_only(plan, every_s=1)
    capture = settings["OutputGroups"][0]["Outputs"][0]["VideoDescription"]["CodecSettings"]
    capture["FrameCaptureSettings"]["MaxCaptures"] = 3
    capped = run_job(settings, inputs["mp4"], tmp_path / "capped", plan=plan)
    assert len(capped.files) == 3


# -- rotation -------------------------------------------------------------------------------------
def test_rotate_auto_makes_a_rotated_phone_clip_upright(inputs, tmp_path):
    # Given a clip coded 640x360 whose display matrix turns it a quarter counter-clockwise,
    # with a white square in the coded top-left corner, and a plan with Rotate AUTO (MP4 key)
    plan = plan_for("rotated.mp4", height=640, duration_s=1.0)
    assert plan["settings"]["Inputs"][0]["VideoSelector"]["Rotate"] == "AUTO"
    # When the job runs
    job = run_job(plan["settings"], inputs["rotated"], tmp_path, plan=plan)
    frames, stream, _ = decode_video(job.path(plan["outputs"]["mp4_key"]))
    # Then the proxy is portrait, 360x640, and the square is where a viewer saw it: bottom-left
    assert (stream.width, stream.height) == (360, 640)
    first = frames[0].mean(axis=2)
    assert first[-30:, :30].mean() > 200 > first[:30, :30].mean()
    # And every output is portrait, sized by the upright aspect ratio
    assert [d["OutputDetails"][0]["VideoDetails"] for d in job.details] == [
        {"WidthInPx": 360, "HeightInPx": 640},
        {"WidthInPx": 202, "HeightInPx": 360},
        {"WidthInPx": 202, "HeightInPx": 360},
    ]


def test_without_rotate_auto_frames_stay_as_coded(inputs, tmp_path):
    # Given the same rotated clip, and settings without VideoSelector.Rotate
    plan = plan_for("rotated.mp4", height=640, duration_s=1.0)
    settings = thumbnails_only(plan, every_s=10)
    del settings["Inputs"][0]["VideoSelector"]["Rotate"]
    # When the job runs; Then the capture is landscape, as coded, square in the top-left
    job = run_job(settings, inputs["rotated"], tmp_path, plan=plan)
    ((body, _),) = job.files.values()
    image = np.asarray(Image.open(io.BytesIO(body)).convert("L"))
    assert image.shape == (360, 640)
    assert image[:30, :30].mean() > 200 > image[-30:, :30].mean()


# -- inputs MediaConvert cannot read --------------------------------------------------------------
def _empty(inputs: dict[str, Path], folder: Path) -> Path:
    (folder / "empty.mp4").write_bytes(b"")
    return folder / "empty.mp4"


def _text(inputs: dict[str, Path], folder: Path) -> Path:
    (folder / "notes.mp4").write_text("not a video\n" * 100, encoding="utf-8")
    return folder / "notes.mp4"


def _cut(name: str, fraction: Fraction, target: str) -> Callable[[dict[str, Path], Path], Path]:
    def make(inputs: dict[str, Path], folder: Path) -> Path:
        data = inputs[name].read_bytes()
        (folder / target).write_bytes(data[: int(len(data) * fraction)])
        return folder / target

    return make


@dataclass(frozen=True)
class BadInput:
    name: str
    make: Callable[[dict[str, Path], Path], Path]
    message: str  # with {uri} and {size}


TRUNCATED = (
    "Demuxer: [ReadPacketData File read failed - end of file hit at length [{size}]. "
    "Is file truncated?]"
)
NO_PARSER = (
    "Unable to open input file [{uri}]: [Failed probe/open: [No parser found for container]]"
)
NO_VIDEO = "Unable to open input file [{uri}]: [Failed probe/open: [Can't find a video stream]]"
BAD_INPUTS = [
    BadInput("zero-length", _empty, NO_PARSER),
    BadInput("text file", _text, NO_PARSER),
    BadInput("no video stream", lambda inputs, _: inputs["audio_only"], NO_VIDEO),
    BadInput("moov last, cut in half", _cut("mp4_moov_last", Fraction(1, 2), "cut.mp4"), TRUNCATED),
    BadInput("faststart, mdat cut at 90%", _cut("mp4", Fraction(9, 10), "cut.mp4"), TRUNCATED),
    BadInput("WebM cut in half", _cut("webm", Fraction(1, 2), "cut.webm"), TRUNCATED),
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[bad.name for bad in BAD_INPUTS])
def test_unreadable_inputs_fail_like_mediaconvert_and_write_nothing(bad, inputs, tmp_path):
    # Given an input MediaConvert cannot read
    source = bad.make(inputs, tmp_path)
    uri = f"s3://raw/{FOLDER}/{source.name}"
    written = []
    plan = plan_for(source.name)
    # When the job runs
    with pytest.raises(TranscodeError) as failure:
        transcode(plan["settings"], source, input_uri=uri, write=lambda *a: written.append(a))
    # Then it ends as MediaConvert's job ERROR 1010, in MediaConvert's words, having written nothing
    assert failure.value.error_code == 1010
    assert failure.value.message == bad.message.format(uri=uri, size=source.stat().st_size)
    assert written == []


def test_inputs_are_what_the_truncation_cases_claim(inputs):
    # The two MP4 layouts really differ: moov first (faststart) and moov last
    assert top_level_boxes(inputs["mp4"]).index(b"moov") < top_level_boxes(inputs["mp4"]).index(
        b"mdat"
    )
    boxes = top_level_boxes(inputs["mp4_moov_last"])
    assert boxes.index(b"moov") > boxes.index(b"mdat")
