"""The stories renderer on real decoded output: small frames, short narrations, real codecs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from lambdas.stories.render import (
    RenderError,
    Shot,
    Timeline,
    check_still,
    join,
    narration_duration,
    render_video,
)

W, H, FPS = 256, 144, 15
COLOURS = [(210, 40, 40), (40, 200, 50), (40, 60, 210), (220, 200, 40)]
SHADE = 1 - 0.4 * 4 / 24  # the stripes' share of a fixture's mean colour


def still(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (480, 360)) -> Path:
    """A solid colour with thin darker stripes (so zooming shows) that keep its mean colour."""
    width, height = size
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = colour
    pixels[np.arange(height) % 24 < 4] = (np.array(colour) * 0.6).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path, quality=92)
    return path


def tone(
    path: Path, seconds: float, *, rate: int = 48000, layout: str = "mono", codec: str = "aac"
) -> Path:
    """A 440 Hz sine, encoded with ``codec`` into ``path`` (its extension picks the container)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        context = stream.codec_context
        resampler = av.AudioResampler(
            format=context.format.name,
            layout=layout,
            rate=rate,
            frame_size=context.frame_size or None,
        )
        channels = 1 if layout == "mono" else 2
        total = round(seconds * rate)
        t = np.arange(total) / rate
        wave = np.tile((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (channels, 1))
        source = av.AudioFrame.from_ndarray(wave, format="fltp", layout=layout)
        source.sample_rate, source.pts = rate, 0
        for frame in [*resampler.resample(source), *resampler.resample(None)]:
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stories")
    found = {f"image{i}": still(folder / f"image{i}.jpg", c) for i, c in enumerate(COLOURS)}
    found["narration"] = tone(folder / "narration.m4a", 3.0)
    found["mp3"] = tone(
        folder / "narration.mp3", 2.0, rate=44100, layout="stereo", codec="libmp3lame"
    )
    found["wav"] = tone(
        folder / "narration.wav", 2.0, rate=44100, layout="stereo", codec="pcm_s16le"
    )
    found["folder"] = folder
    return found


def timeline(media: dict[str, Path], duration: float, *, shots: int = 3, **overrides) -> Timeline:
    bounds = [duration * i / shots for i in range(shots)] + [duration]
    made = tuple(
        Shot(
            name=f"segment {i + 1} (images/image{i}.jpg)",
            image=media[f"image{i}"],
            start_s=bounds[i],
            end_s=bounds[i + 1],
            zoom="in" if i % 2 == 0 else "out",
        )
        for i in range(shots)
    )
    return Timeline(width=W, height=H, fps=FPS, duration_s=duration, shots=made, **overrides)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.float32) for f in container.decode(video=0)]


def packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def mean(frame: np.ndarray) -> np.ndarray:
    return frame.reshape(-1, 3).mean(axis=0)


def closest(frame: np.ndarray) -> int:
    """Which fixture image a frame shows, by its mean colour (the stripes darken it a little)."""
    shown = mean(frame)
    expected = [np.array(c) * SHADE for c in COLOURS]
    return int(np.argmin([np.abs(shown - e).sum() for e in expected]))


@pytest.fixture(scope="module")
def one_render(media: dict[str, Path]) -> dict:
    duration = narration_duration(media["narration"])
    story = timeline(media, duration)
    folder = media["folder"]
    chunk = render_video(story, folder / "whole.mp4")
    joined = join([chunk.path], media["narration"], folder / "final.mp4", timeline=story)
    return {"timeline": story, "chunk": chunk, "joined": joined, "frames": decoded(joined.path)}


def test_the_video_lasts_as_long_as_the_narration_at_the_size_and_rate_asked(media, one_render):
    story, joined = one_render["timeline"], one_render["joined"]
    duration = narration_duration(media["narration"])
    assert abs(duration - 3.0) < 0.05
    with av.open(str(joined.path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.width, video.height) == (W, H)
        assert video.average_rate == FPS
        assert video.codec_context.name == "h264"
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == 48000
        assert abs((container.duration or 0) / av.time_base - duration) <= 1 / FPS
        audio_s = sum(f.samples for f in container.decode(audio=0)) / 48000
    assert abs(audio_s - duration) <= 1 / FPS
    assert (
        len(one_render["frames"]) == round(duration * FPS) == story.frame_count() == joined.frames
    )
    assert abs(joined.duration_s - duration) <= 1 / FPS
    assert joined.bytes == joined.path.stat().st_size and len(joined.sha256) == 64
    with joined.path.open("rb") as head:  # faststart: the moov atom before the media data
        start = head.read(4096)
    assert start.find(b"moov") != -1 and (
        start.find(b"mdat") == -1 or start.find(b"moov") < start.find(b"mdat")
    )


def test_first_and_last_frames_show_only_their_images_and_a_crossfade_blends(one_render):
    story, frames = one_render["timeline"], one_render["frames"]
    assert closest(frames[0]) == 0
    assert closest(frames[-1]) == 2
    first, second = np.array(COLOURS[0], float), np.array(COLOURS[1], float)
    assert np.abs(mean(frames[0]) - first * SHADE).max() < 12
    boundary = round(story.shots[0].end_s * FPS)  # the middle of the first crossfade
    middle = mean(frames[boundary])
    halfway = (first + second) / 2 * SHADE
    assert np.abs(middle - halfway).max() < 30, (middle, halfway)
    for channel in range(3):  # strictly between the two images, not either one
        low, high = sorted((first[channel], second[channel]))
        if high - low > 100:
            assert low + 30 < middle[channel] < high - 30
    # away from the crossfade, the images are pure
    assert closest(frames[boundary - 6]) == 0 and closest(frames[boundary + 6]) == 1


def period(frame: np.ndarray) -> float:
    """The stripes' spacing in output pixels (autocorrelation of the central columns' mean,
    its first peak refined by a parabola): larger when the camera is closer."""
    h, w = frame.shape[:2]
    profile = frame[:, w // 4 : 3 * w // 4].mean(axis=(1, 2))
    profile = profile - profile.mean()
    corr = np.correlate(profile, profile, "full")[h - 1 :]
    lag = int(np.argmax(corr < 0))  # past the first zero crossing
    lag += int(np.argmax(corr[lag : h // 2]))
    a, b, c = corr[lag - 1], corr[lag], corr[lag + 1]
    return lag + 0.5 * (a - c) / (a - 2 * b + c)


def test_the_camera_moves_in_on_one_shot_and_out_on_the_next(one_render):
    story, frames = one_render["timeline"], one_render["frames"]
    end_first = round(story.shots[0].end_s * FPS) - 4  # before the crossfade
    begin_second, end_second = end_first + 8, round(story.shots[1].end_s * FPS) - 4
    # successive frames of a shot differ, and more the further apart they are
    base = frames[0]
    diffs = [np.abs(frames[i] - base).mean() for i in (2, 6, end_first)]
    assert diffs[0] > 0.3 and diffs[0] < diffs[1] < diffs[2]
    # "in": the stripes spread as the camera closes in; "out": they draw together
    closing = [period(frames[i]) for i in (0, end_first // 2, end_first)]
    assert closing[0] < closing[1] < closing[2]
    assert 1.1 < closing[2] / closing[0] < 1.25  # (most of the 1.25 zoom, eased, by then)
    opening = [
        period(frames[i]) for i in (begin_second, (begin_second + end_second) // 2, end_second)
    ]
    assert opening[0] > opening[1] > opening[2]


def test_a_caption_changes_the_band_and_not_the_top_of_the_frame(media, one_render, tmp_path):
    story = one_render["timeline"]
    captioned = Timeline(
        width=story.width,
        height=story.height,
        fps=story.fps,
        duration_s=story.duration_s,
        shots=(
            Shot(
                **{
                    **story.shots[0].__dict__,
                    "caption": "A caption long enough to wrap onto two lines here",
                }
            ),
            *story.shots[1:],
        ),
    )
    chunk = render_video(captioned, tmp_path / "captioned.mp4")
    with_caption, without = decoded(chunk.path), decoded(one_render["chunk"].path)
    frame = 7  # inside the first shot, away from the crossfade
    difference = np.abs(with_caption[frame] - without[frame]).mean(axis=2)
    assert difference[: H * 2 // 5].mean() < 3  # (the encoder's noise, no more)
    assert difference[H * 3 // 5 :].mean() > 15
    # the band is dark behind white text: the bottom got darker on average, with bright pixels
    bottom = with_caption[frame][H * 3 // 5 :]
    assert bottom.mean() < without[frame][H * 3 // 5 :].mean()
    assert (bottom.min(axis=2) > 200).sum() > 50
    # the caption fades with its shot: in the second shot, no caption
    later = round(story.shots[1].start_s * FPS) + 8
    assert np.abs(with_caption[later] - without[later]).mean() < 3


def test_chunks_rendered_apart_join_by_copying_packets_into_one_render(media, one_render, tmp_path):
    story = one_render["timeline"]
    total = story.frame_count()
    split = 17  # (mid-shot, not on a GOP boundary)
    first = render_video(story, tmp_path / "c0.mp4", first_frame=0, frame_count=split)
    second = render_video(story, tmp_path / "c1.mp4", first_frame=split, frame_count=total - split)
    assert (first.first_frame, first.frames, second.first_frame, second.frames) == (
        0,
        split,
        split,
        total - split,
    )
    joined = join(
        [first.path, second.path], media["narration"], tmp_path / "joined.mp4", timeline=story
    )
    assert packets(joined.path) == packets(first.path) + packets(second.path)  # no re-encode
    frames, whole = decoded(joined.path), one_render["frames"]
    assert len(frames) == len(whole) == total
    worst = max(np.abs(a - b).mean() for a, b in zip(frames, whole, strict=True))
    assert worst < 3.0
    assert [closest(f) for f in frames] == [closest(f) for f in whole]
    # B-frames across the join: the frames around it decode in order, each its own picture
    with av.open(str(joined.path)) as container:
        stamps = [f.pts for f in container.decode(video=0)]
    assert stamps == sorted(stamps) and len(set(stamps)) == total


def test_join_refuses_chunks_of_another_size_or_missing_frames(media, one_render, tmp_path):
    story = one_render["timeline"]
    total = story.frame_count()
    first = render_video(story, tmp_path / "c0.mp4", first_frame=0, frame_count=20)
    wider = Timeline(width=320, height=180, fps=FPS, duration_s=story.duration_s, shots=story.shots)
    other = render_video(wider, tmp_path / "c1.mp4", first_frame=20, frame_count=total - 20)
    with pytest.raises(
        RenderError, match=r"chunk 1 \(c1.mp4\): 320x180, not the timeline's 256x144"
    ):
        join([first.path, other.path], media["narration"], tmp_path / "x.mp4", timeline=story)
    with pytest.raises(RenderError, match=rf"chunks: frames 20..{total - 1} are missing"):
        join([first.path], media["narration"], tmp_path / "x.mp4", timeline=story)
    last = render_video(story, tmp_path / "c2.mp4", first_frame=30, frame_count=total - 30)
    with pytest.raises(
        RenderError, match=r"chunk 1 \(c2.mp4\): starts at frame 30; frames 20..29 are missing"
    ):
        join([first.path, last.path], media["narration"], tmp_path / "x.mp4", timeline=story)
    with pytest.raises(RenderError, match="chunks: none"):
        join([], media["narration"], tmp_path / "x.mp4", timeline=story)


@pytest.mark.parametrize(("name", "channels", "rate"), [("mp3", 2, 44100), ("wav", 2, 44100)])
def test_other_narrations_are_encoded_to_aac_as_the_source(media, tmp_path, name, channels, rate):
    duration = narration_duration(media[name])
    assert abs(duration - 2.0) < 0.06
    story = timeline(media, duration, shots=2)
    chunk = render_video(story, tmp_path / "v.mp4")
    joined = join([chunk.path], media[name], tmp_path / "final.mp4", timeline=story)
    with av.open(str(joined.path)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert (audio.codec_context.channels, audio.codec_context.sample_rate) == (channels, rate)
        assert abs((container.duration or 0) / av.time_base - duration) <= 1 / FPS
        assert 100_000 < audio.bit_rate < 200_000


def test_check_still_reads_the_upright_size(tmp_path):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: stored 400x300, shown 300x400
    Image.new("RGB", (400, 300), (10, 20, 30)).save(path, exif=exif)
    assert check_still(path, "segment 1 (images/turned.jpg)") == (300, 400)
    png = tmp_path / "plain.png"
    Image.new("RGBA", (64, 48), (1, 2, 3, 100)).save(png)
    assert check_still(png, "segment 2 (images/plain.png)") == (64, 48)


def test_images_that_cannot_be_drawn_are_refused_naming_the_shot(media, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture\n")
    with pytest.raises(
        RenderError, match=r"segment 3 \(images/notes.png\): not an image Pillow can read"
    ):
        check_still(text, "segment 3 (images/notes.png)")
    source = still(tmp_path / "whole.jpg", (90, 90, 90), (640, 480)).read_bytes()
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(source[: len(source) // 2])
    with pytest.raises(
        RenderError, match=r"segment 4 \(images/cut.jpg\): the image file is truncated"
    ):
        check_still(truncated, "segment 4 (images/cut.jpg)")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 9000)).save(bomb)  # 108 MP, a few kB on disk
    assert bomb.stat().st_size < 100_000
    with pytest.raises(RenderError, match=r"segment 5 \(images/bomb.png\): .*decompression bomb"):
        check_still(bomb, "segment 5 (images/bomb.png)")
    # and when a render meets one, the error names the shot too
    story = timeline(media, 2.0, shots=2)
    broken = Timeline(
        width=W, height=H, fps=FPS, duration_s=2.0,
        shots=(story.shots[0], Shot("segment 2 (images/notes.png)", text, 1.0, 2.0)),
    )  # fmt: skip
    with pytest.raises(RenderError, match=r"segment 2 \(images/notes.png\): not an image"):
        render_video(broken, tmp_path / "never.mp4")
    bombed = Timeline(
        width=W, height=H, fps=FPS, duration_s=2.0,
        shots=(Shot("segment 1 (images/bomb.png)", bomb, 0.0, 2.0),),
    )  # fmt: skip
    with pytest.raises(RenderError, match=r"segment 1 \(images/bomb.png\): .*decompression bomb"):
        render_video(bombed, tmp_path / "never.mp4")


def test_a_chunk_opens_only_the_images_it_shows(media, tmp_path):
    story = timeline(media, 3.0)
    elsewhere = Timeline(
        width=W, height=H, fps=FPS, duration_s=3.0,
        shots=(story.shots[0], story.shots[1], Shot(story.shots[2].name, Path("/nonexistent/c.jpg"), 2.0, 3.0)),
    )  # fmt: skip
    chunk = render_video(elsewhere, tmp_path / "c.mp4", first_frame=0, frame_count=15)
    assert chunk.frames == 15 and len(decoded(chunk.path)) == 15
    with pytest.raises(
        RenderError, match=r"segment 3 \(images/image2.jpg\): the image file is missing"
    ):
        render_video(elsewhere, tmp_path / "c.mp4", first_frame=15, frame_count=30)


def test_narrations_that_cannot_be_heard_are_refused(media, tmp_path):
    with pytest.raises(RenderError, match="narration: the file is missing"):
        narration_duration(tmp_path / "absent.m4a")
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(RenderError, match="narration: "):
        narration_duration(noise)
    story = timeline(media, 1.0, shots=1)
    silent = render_video(story, tmp_path / "video_only.mp4").path
    with pytest.raises(RenderError, match="narration: the file has no audio stream"):
        narration_duration(silent)
    with pytest.raises(RenderError, match="narration: the file has no audio stream"):
        join([silent], silent, tmp_path / "x.mp4", timeline=story)


def test_timelines_with_gaps_overlaps_or_overruns_are_refused(media):
    image = media["image0"]

    def make(*spans: tuple[float, float], duration: float = 3.0, **extra) -> Timeline:
        shots = tuple(
            Shot(f"segment {i + 1} (images/s{i}.jpg)", image, a, b)
            for i, (a, b) in enumerate(spans)
        )
        return Timeline(width=W, height=H, fps=FPS, duration_s=duration, shots=shots, **extra)

    with pytest.raises(
        RenderError,
        match=r"segment 2 \(images/s1.jpg\): starts at 1.5 s, not where the shot before ends \(1 s\)",
    ):
        make((0, 1), (1.5, 3))
    with pytest.raises(RenderError, match=r"segment 2 \(images/s1.jpg\): starts at 0.5 s"):
        make((0, 1), (0.5, 3))
    with pytest.raises(
        RenderError, match=r"segment 1 \(images/s0.jpg\): starts at 0.2 s, not at 0 s"
    ):
        make((0.2, 3))
    with pytest.raises(
        RenderError,
        match=r"segment 2 \(images/s1.jpg\): ends at 3.5 s, past the timeline's duration",
    ):
        make((0, 1), (1, 3.5))
    with pytest.raises(
        RenderError, match=r"segment 2 \(images/s1.jpg\): ends at 2.5 s, not at the timeline's end"
    ):
        make((0, 1), (1, 2.5))
    with pytest.raises(RenderError, match="timeline: zoom_ratio"):
        make((0, 3), zoom_ratio=3.0)
    with pytest.raises(RenderError, match="timeline: width must be even"):
        Timeline(width=255, height=H, fps=FPS, duration_s=1.0, shots=(Shot("s", image, 0, 1),))
    assert make((0, 1), (1, 3)).frame_count() == 45


def test_a_crossfade_never_exceeds_half_of_a_short_shot(media, tmp_path):
    story = Timeline(
        width=W, height=H, fps=FPS, duration_s=2.0, transition_s=1.5,
        shots=(
            Shot("segment 1", media["image0"], 0.0, 0.6),
            Shot("segment 2", media["image1"], 0.6, 2.0),
        ),
    )  # fmt: skip
    frames = decoded(render_video(story, tmp_path / "short.mp4").path)
    # the fade lasts at most 0.3 s around 0.6 s: frames 0-3 pure first image, 14+ pure second
    assert [closest(f) for f in frames[:4]] == [0, 0, 0, 0]
    assert all(closest(f) == 1 for f in frames[14:])
    assert np.abs(mean(frames[0]) - np.array(COLOURS[0]) * SHADE).max() < 12


def test_a_1080p_render_decodes_at_1080p(media, tmp_path):
    big = still(tmp_path / "big.jpg", (120, 80, 200), (2400, 1600))
    story = Timeline(
        width=1920, height=1080, fps=24, duration_s=1.0,
        shots=(Shot("segment 1 (images/big.jpg)", big, 0.0, 1.0, focus=(0.2, 0.8)),),
    )  # fmt: skip
    chunk = render_video(story, tmp_path / "hd.mp4")
    with av.open(str(chunk.path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1920, 1080)
        assert stream.time_base is not None and stream.average_rate == Fraction(24)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 24
    assert all(f.shape == (1080, 1920, 3) for f in frames)
    assert np.abs(mean(frames[12].astype(np.float32)) - np.array((120, 80, 200)) * SHADE).max() < 12
