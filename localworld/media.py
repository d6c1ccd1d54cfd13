"""Real fixture media for the local world, and what a stand-in service reads from a video file.

Two parts, both test and demo infrastructure (no product code imports this module):

1. **Scenes and clip specs.** A ``Scene`` is a picture with a distinctive colour and the labels
   Rekognition would see in it; a ``ClipSpec`` strings scenes together (hard cuts between them) in
   a container and codecs. ``render(spec)`` encodes the clip with PyAV (FFmpeg in-process),
   deterministically, and caches the file on disk. The catalogue constants (``COMMONS_WEBM``,
   ``PIXABAY_MP4_360``, ``UPLOAD_ROTATED``, ...) are the files the local Commons, Pixabay and upload
   sources serve; ``truncated_mp4()``, ``text_as_mp4()``, ``zero_length()`` and
   ``audio_only_m4a()`` are the broken or unusable inputs.
2. **Analysis.** ``probe(path)`` is what MediaConvert's input probe and Rekognition's
   ``VideoMetadata`` read (container, codec, size, rotation, frame rate, duration, audio), raising
   ``MediaError`` with a ``kind`` for empty, non-media, audio-only and truncated files.
   ``analyze(path)`` decodes every frame once and finds the shots (hard cuts), the black stretches
   and the scene each shot shows, so the Rekognition stand-in answers from the pictures themselves.

Shots and black frames, as Rekognition reports them: a cut into a black stretch and the cut out
of it are both shot boundaries, so a black stretch between two scenes is a shot of its own here
(``Shot.scene`` is ``None``) *and* a ``Span`` in ``black_spans`` (Rekognition's ``BlackFrames``
technical cue). Timestamps are those of the decoded frames, relative to the first frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from lambdas.probe.media import (
    clockwise_rotation,
    container_short_name,
    data_past_end,
    ffmpeg_message,
    looks_like_media,
)

# --------------------------------------------------------------------------------------------
# 1. Scenes and clip specs
# --------------------------------------------------------------------------------------------

RGB = tuple[int, int, int]
# (name, parents, categories): the shape of a Rekognition ``Label``.
LabelSpec = tuple[str, tuple[str, ...], tuple[str, ...]]
# (name, parent name, taxonomy level): the shape of a Rekognition ``ModerationLabel``.
ModerationSpec = tuple[str, str, int]

Container = Literal["mp4", "mov", "webm", "ogg"]
VideoCodec = Literal["h264", "vp9", "vp8"]
AudioCodec = Literal["aac", "opus", "vorbis"]
# What the audio track carries: the continuous tone, the tone in speech-like bursts with silences
# between them, or digital silence.
AudioPattern = Literal["tone", "speech", "silence"]
MediaErrorKind = Literal["empty", "not_media", "no_video", "truncated", "undecodable"]

SAMPLE_RATE = 48_000
BLACK = "black"
# Bump when the drawing, the tone or the encoder settings change: it is part of the cache key.
RENDER_REVISION = 3
_AUDIO_PATTERNS: tuple[str, ...] = ("tone", "speech", "silence")
_ISO_639_2 = re.compile(r"[a-z]{3}")
# ClipSpec's optional audio fields and their defaults: left out of the cache key at the default.
_OPTIONAL_AUDIO: dict[str, object] = {"audio_pattern": "tone", "audio_language": None}
SPEECH_LEAD_S = 0.3
SPEECH_RAMP_S = 0.005


@dataclass(frozen=True)
class Scene:
    """A picture: a base colour (a vertical gradient around it), a moving object, what it shows.

    ``labels`` and ``moderation`` are what Rekognition would detect in the scene; the ``black``
    scene is black frames and shows nothing.
    """

    name: str
    rgb: RGB
    accent: RGB = (0, 0, 0)
    labels: tuple[LabelSpec, ...] = ()
    moderation: tuple[ModerationSpec, ...] = ()

    @property
    def is_black(self) -> bool:
        return self.rgb == (0, 0, 0)


_VEHICLE = ("Vehicle", "Transportation")
_VEHICLES = ("Vehicles and Automotive",)
_NATURE = ("Nature and Outdoors",)
_BUILDINGS = ("Buildings and Architecture",)
_TECH = ("Technology and Computing",)

# Base colours are far apart (every pair differs by 45+ per channel on average, black by 60+), so
# a hard cut is a big jump in the mean absolute frame difference and ``classify`` is unambiguous.
SCENES: dict[str, Scene] = {
    scene.name: scene
    for scene in (
        Scene(
            "tram",
            (200, 170, 30),
            (60, 60, 70),
            (
                ("Tram", _VEHICLE, _VEHICLES),
                ("Street", ("Road", "City", "Urban"), ("Transport and Logistics",)),
                ("City", ("Urban", "Outdoors"), _BUILDINGS),
                ("Person", (), ("Person Description",)),
            ),
        ),
        Scene(
            "sea",
            (20, 80, 190),
            (235, 235, 235),
            (
                ("Water", (), _NATURE),
                ("Sea", ("Water", "Outdoors", "Nature"), _NATURE),
                ("Boat", _VEHICLE, _VEHICLES),
                ("Sky", ("Outdoors", "Nature"), _NATURE),
            ),
        ),
        Scene(
            "forest",
            (30, 120, 40),
            (90, 60, 30),
            (
                ("Tree", ("Plant",), ("Plants and Flowers",)),
                ("Plant", (), ("Plants and Flowers",)),
                ("Forest", ("Land", "Nature", "Outdoors", "Tree", "Vegetation"), _NATURE),
            ),
        ),
        Scene(
            "desk",
            (140, 140, 150),
            (30, 30, 35),
            (
                ("Computer", ("Electronics",), _TECH),
                ("Electronics", (), _TECH),
                ("Keyboard", ("Computer", "Computer Hardware", "Electronics", "Hardware"), _TECH),
            ),
        ),
        Scene(
            "city",
            (190, 70, 60),
            (220, 220, 200),
            (
                ("Building", ("Architecture",), _BUILDINGS),
                ("City", ("Urban", "Outdoors"), _BUILDINGS),
                ("Car", _VEHICLE, _VEHICLES),
            ),
        ),
        Scene(
            "bar",
            (110, 40, 120),
            (240, 190, 60),
            (
                ("Person", (), ("Person Description",)),
                ("Glass", (), ("Food and Beverage",)),
                ("Pub", ("Bar Counter", "Indoors"), ("Travel and Tourism",)),
            ),
            (("Alcohol", "", 1), ("Drinking", "Alcohol", 2)),
        ),
        Scene(BLACK, (0, 0, 0)),
    )
}

_MUXERS: dict[str, str] = {"mp4": "mp4", "mov": "mov", "webm": "webm", "ogg": "ogg"}
_EXTENSIONS: dict[str, str] = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "ogg": ".ogv"}
_CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "ogg": "video/ogg",
}
# Which codecs each container carries here (no Theora: this FFmpeg build has no Theora encoder).
_ALLOWED: dict[str, tuple[frozenset[str], frozenset[str | None]]] = {
    "mp4": (frozenset({"h264"}), frozenset({"aac", None})),
    "mov": (frozenset({"h264"}), frozenset({"aac", None})),
    "webm": (frozenset({"vp9", "vp8"}), frozenset({"opus", "vorbis", None})),
    "ogg": (frozenset({"vp8"}), frozenset({"vorbis", "opus", None})),
}
_VIDEO_ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    # threads=1 and fixed settings make the output byte-for-byte reproducible.
    "h264": ("libx264", {"preset": "superfast", "crf": "23", "threads": "1"}),
    "vp9": (
        "libvpx-vp9",
        {"deadline": "realtime", "cpu-used": "8", "threads": "1", "row-mt": "0", "crf": "32"},
    ),
    # VP8 realtime picks its speed from the wall clock when cpu-used > 0; negative fixes it.
    "vp8": ("libvpx", {"deadline": "realtime", "cpu-used": "-8", "threads": "1", "crf": "10"}),
}
_VIDEO_BITRATES: dict[str, int] = {"h264": 0, "vp9": 600_000, "vp8": 600_000}
_AUDIO_ENCODERS: dict[str, tuple[str, dict[str, str], int]] = {
    "aac": ("aac", {"aac_coder": "fast"}, 96_000),
    "opus": ("libopus", {}, 64_000),
    # FFmpeg's native Vorbis encoder is flagged experimental (libvorbis is not in this build).
    "vorbis": ("vorbis", {"strict": "experimental"}, 0),
}


@dataclass(frozen=True)
class ClipSpec:
    """A clip to render: scenes in order (hard cuts between them), container, codecs, size.

    Scene lengths are whole frames, so every cut falls exactly on a frame boundary. ``rotation``
    is the clockwise rotation a player applies, as phones record it (the legacy ``rotate`` tag),
    written as the track's display matrix; it is supported in MP4 and MOV only.
    """

    name: str
    container: Container
    video_codec: VideoCodec
    audio_codec: AudioCodec | None
    width: int
    height: int
    fps: int
    scenes: tuple[tuple[str, float], ...]
    tone_hz: float = 440.0
    rotation: int = 0
    # Optional audio, for transcription (the defaults leave a clip, its bytes and its cache key
    # as they were): ``speech`` plays the tone only during ``speech_spans_s`` (on 0.4-1.5 s, off
    # 0.4-1.0 s, deterministic by the clip's name), ``silence`` is digital silence.
    audio_pattern: AudioPattern = "tone"
    # The audio stream's ``language`` tag, ISO 639-2 ("por", "eng"); None: untagged.
    audio_language: str | None = None

    def __post_init__(self) -> None:
        videos, audios = _ALLOWED.get(self.container, (frozenset(), frozenset()))
        if self.video_codec not in videos or self.audio_codec not in audios:
            raise ValueError(
                f"{self.name}: {self.container} cannot carry {self.video_codec}/{self.audio_codec}"
            )
        if self.width % 2 or self.height % 2 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"{self.name}: width and height must be even and positive (4:2:0)")
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"{self.name}: rotation must be 0, 90, 180 or 270")
        if self.rotation and self.container not in ("mp4", "mov"):
            raise ValueError(f"{self.name}: rotation is written in MP4/MOV track headers only")
        if not self.scenes:
            raise ValueError(f"{self.name}: a clip needs at least one scene")
        if self.audio_pattern not in _AUDIO_PATTERNS:
            raise ValueError(f"{self.name}: audio_pattern must be one of {_AUDIO_PATTERNS}")
        if (self.audio_pattern != "tone" or self.audio_language) and self.audio_codec is None:
            raise ValueError(f"{self.name}: an audio pattern or language needs an audio codec")
        if self.audio_language is not None and not _ISO_639_2.fullmatch(self.audio_language):
            raise ValueError(f"{self.name}: audio_language must be an ISO 639-2 code ('por')")
        names = [name for name, _ in self.scenes]
        if any(a == b for a, b in itertools.pairwise(names)):
            raise ValueError(f"{self.name}: two adjacent scenes are the same (no cut between them)")
        for scene, seconds in self.scenes:
            if scene not in SCENES:
                raise ValueError(f"{self.name}: unknown scene {scene!r}")
            frames = seconds * self.fps
            if frames < 1 or abs(frames - round(frames)) > 1e-6:
                raise ValueError(f"{self.name}: scene {scene!r} must last whole frames (1/fps)")

    @property
    def scene_frames(self) -> tuple[int, ...]:
        return tuple(round(seconds * self.fps) for _, seconds in self.scenes)

    @property
    def frame_count(self) -> int:
        return sum(self.scene_frames)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    @property
    def timeline(self) -> tuple[tuple[str, float, float], ...]:
        """Ground truth: (scene, start s, end s) per scene, the end exclusive."""
        out: list[tuple[str, float, float]] = []
        start = 0
        for (scene, _), frames in zip(self.scenes, self.scene_frames, strict=True):
            out.append((scene, start / self.fps, (start + frames) / self.fps))
            start += frames
        return tuple(out)

    @property
    def cut_times_s(self) -> tuple[float, ...]:
        """Ground truth: the start of every scene after the first (the hard cuts)."""
        return tuple(start for _, start, _ in self.timeline[1:])

    @property
    def black_spans_s(self) -> tuple[tuple[float, float], ...]:
        """Ground truth: (start s, end s) of each black stretch, the end exclusive."""
        return tuple((start, end) for name, start, end in self.timeline if SCENES[name].is_black)

    @property
    def speech_spans_s(self) -> tuple[tuple[float, float], ...]:
        """Ground truth: (start s, end s) of each burst of sound, the end exclusive: the whole
        clip for the tone, the bursts for ``speech``, none for silence or no audio track."""
        if self.audio_codec is None or self.audio_pattern == "silence":
            return ()
        if self.audio_pattern == "tone":
            return ((0.0, self.duration_s),)
        return speech_spans(self.name, self.duration_s)

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.container]

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self.container]

    @property
    def filename(self) -> str:
        return f"{self.name}{self.extension}"


@cache
def _backdrop(scene_name: str, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The scene's base colour as a vertical gradient (brighter at the top, mean about the base)."""
    scene = SCENES[scene_name]
    gain = np.linspace(1.2, 0.8, height, dtype=np.float32)[:, None, None]
    rgb = np.asarray(scene.rgb, dtype=np.float32)[None, None, :]
    image = np.clip(np.broadcast_to(gain * rgb, (height, width, 3)), 0, 255).astype(np.uint8)
    # A small static accent square top right (a sign, a sun, a lamp): a second shape per scene.
    image[round(0.12 * height) : round(0.28 * height), round(0.8 * width) : round(0.9 * width)] = (
        scene.accent
    )
    image.setflags(write=False)
    return image


def draw_frame(scene: Scene, width: int, height: int, t_s: float) -> npt.NDArray[np.uint8]:
    """One RGB frame of ``scene``, ``t_s`` seconds into it (height x width x 3, uint8).

    A gradient of the base colour, a small static accent square top right and an accent-coloured
    object (a fifth of the width, a quarter of the height) drifting right at 8 % of the width per
    second: frames differ, slowly.
    """
    if scene.is_black:
        return np.zeros((height, width, 3), dtype=np.uint8)
    image = _backdrop(scene.name, width, height).copy()
    x0, y0, obj_w, obj_h = _object_box(width, height, t_s)
    image[y0 : y0 + obj_h, x0 : x0 + obj_w] = scene.accent
    return image


def _object_box(width: int, height: int, t_s: float) -> tuple[int, int, int, int]:
    obj_w, obj_h = max(2, width // 5), max(2, height // 4)
    return round(min(0.1 + 0.08 * t_s, 0.75) * width), round(0.55 * height), obj_w, obj_h


def _to_yuv420p(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """RGB to planar 4:2:0 (FFmpeg's default BT.601 limited range), as PyAV lays it out."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return np.ascontiguousarray(frame.reformat(format="yuv420p").to_ndarray())


@cache
def _backdrop_yuv(scene_name: str, width: int, height: int) -> npt.NDArray[np.uint8]:
    planes = _to_yuv420p(_backdrop(scene_name, width, height))
    planes.setflags(write=False)
    return planes


@cache
def _accent_yuv(scene_name: str) -> tuple[int, int, int]:
    solid = np.empty((16, 16, 3), dtype=np.uint8)
    solid[:, :] = SCENES[scene_name].accent
    flat = _to_yuv420p(solid).reshape(-1)
    return int(flat[0]), int(flat[256]), int(flat[256 + 64])


def _draw_yuv(scene: Scene, width: int, height: int, t_s: float) -> npt.NDArray[np.uint8]:
    """``draw_frame`` straight into yuv420p planes (no per-frame colour conversion)."""
    if scene.is_black:
        planes = np.empty((height * 3 // 2, width), dtype=np.uint8)
        flat = planes.reshape(-1)
        flat[: width * height] = 16
        flat[width * height :] = 128
        return planes
    planes = _backdrop_yuv(scene.name, width, height).copy()
    x0, y0, obj_w, obj_h = _object_box(width, height, t_s)
    # Chroma is subsampled by two: align the box to even pixels so every plane agrees.
    x0, y0, x1, y1 = x0 & ~1, y0 & ~1, (x0 + obj_w) & ~1, (y0 + obj_h) & ~1
    y_value, u_value, v_value = _accent_yuv(scene.name)
    flat = planes.reshape(-1)
    luma_plane = flat[: width * height].reshape(height, width)
    quarter = width * height // 4
    u_plane = flat[width * height : width * height + quarter].reshape(height // 2, width // 2)
    v_plane = flat[width * height + quarter :].reshape(height // 2, width // 2)
    luma_plane[y0:y1, x0:x1] = y_value
    u_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = u_value
    v_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = v_value
    return planes


def _frames(spec: ClipSpec) -> Iterator[npt.NDArray[np.uint8]]:
    for (name, _), count in zip(spec.scenes, spec.scene_frames, strict=True):
        for index in range(count):
            yield _draw_yuv(SCENES[name], spec.width, spec.height, index / spec.fps)


def _tone(tone_hz: float, start: int, count: int) -> npt.NDArray[np.float32]:
    """Stereo sine (planar float), the right channel a quarter period behind the left."""
    t = np.arange(start, start + count, dtype=np.float64) / SAMPLE_RATE
    left = 0.2 * np.sin(2 * np.pi * tone_hz * t)
    right = 0.2 * np.sin(2 * np.pi * tone_hz * t - np.pi / 2)
    return np.stack([left, right]).astype(np.float32)


def speech_spans(name: str, duration_s: float) -> tuple[tuple[float, float], ...]:
    """Speech-like bursts for a clip: after ``SPEECH_LEAD_S`` of silence, sound for 0.4-1.5 s,
    silence for 0.4-1.0 s, and so on, each length from a digest of the name and the burst's
    number; the last burst ends at least 0.2 s before the end. Edges fall on samples."""
    spans: list[tuple[float, float]] = []
    at = SPEECH_LEAD_S
    for number in itertools.count():
        digest = hashlib.sha256(f"{name}\x1fspeech\x1f{number}".encode(), usedforsecurity=False)
        on_byte, off_byte = digest.digest()[:2]
        end = min(at + 0.4 + 1.1 * on_byte / 255, duration_s - 0.2)
        if end - at < 0.4:
            break
        spans.append(
            (round(at * SAMPLE_RATE) / SAMPLE_RATE, round(end * SAMPLE_RATE) / SAMPLE_RATE)
        )
        at = end + 0.4 + 0.6 * off_byte / 255
    return tuple(spans)


def _audio_gain(spec: ClipSpec, start: int, count: int) -> npt.NDArray[np.float64]:
    """Per-sample gain of a ``speech`` or ``silence`` clip (``_burst_gain`` of its spans)."""
    return _burst_gain(spec.speech_spans_s, start, count)


def _burst_gain(
    spans: tuple[tuple[float, float], ...], start: int, count: int
) -> npt.NDArray[np.float64]:
    """1 inside a burst, 0 outside, with a 5 ms raised-cosine ramp inside each burst's edges
    (no clicks for the encoder to smear)."""
    gain = np.zeros(count, dtype=np.float64)
    ramp = round(SPEECH_RAMP_S * SAMPLE_RATE)
    for begin_s, end_s in spans:
        first, stop = round(begin_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE)
        index = np.arange(max(first, start), min(stop, start + count))
        if index.size == 0:
            continue
        edge = np.minimum(index - first, stop - 1 - index)
        shape = np.where(edge < ramp, 0.5 - 0.5 * np.cos(np.pi * edge / ramp), 1.0)
        gain[index - start] = shape
    return gain


def _audio_frame(
    tone_hz: float, start: int, count: int, gain: npt.NDArray[np.float64] | None = None
) -> av.AudioFrame:
    samples = _tone(tone_hz, start, count)
    if gain is not None:
        samples = (samples * gain[None, :]).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = start
    frame.time_base = Fraction(1, SAMPLE_RATE)
    return frame


def _add_audio(out: Any, codec: str) -> Any:
    encoder, options, bitrate = _AUDIO_ENCODERS[codec]
    stream = out.add_stream(encoder, rate=SAMPLE_RATE, layout="stereo", options=dict(options))
    if bitrate:
        stream.bit_rate = bitrate
    return stream


def _encode(spec: ClipSpec, path: Path) -> None:
    # fflags=+bitexact: no random Matroska UIDs or Ogg serial numbers, so output is reproducible.
    with av.open(
        str(path), "w", format=_MUXERS[spec.container], options={"fflags": "+bitexact"}
    ) as out:
        encoder, options = _VIDEO_ENCODERS[spec.video_codec]
        video: Any = out.add_stream(encoder, rate=spec.fps, options=dict(options))
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        video.codec_context.gop_size = 2 * spec.fps  # a keyframe at least every 2 s: seekable
        if _VIDEO_BITRATES[spec.video_codec]:
            video.bit_rate = _VIDEO_BITRATES[spec.video_codec]
        if spec.rotation:
            # PyAV's angle is counter-clockwise; phones' "rotate=90" is 90 degrees clockwise.
            video.set_display_rotation(-spec.rotation)
        audio = _add_audio(out, spec.audio_codec) if spec.audio_codec else None
        if audio is not None and spec.audio_language:
            audio.metadata["language"] = spec.audio_language
        samples_done = 0
        for index, image in enumerate(_frames(spec)):
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, spec.fps)
            out.mux(video.encode(frame))
            if audio is not None:
                target = (index + 1) * SAMPLE_RATE // spec.fps
                count = target - samples_done
                gain = (
                    None if spec.audio_pattern == "tone" else _audio_gain(spec, samples_done, count)
                )
                out.mux(audio.encode(_audio_frame(spec.tone_hz, samples_done, count, gain)))
                samples_done = target
        out.mux(video.encode(None))
        if audio is not None:
            out.mux(audio.encode(None))


def narration(seconds: float, *, tone_hz: float = 220.0, container: str = "ipod") -> bytes:
    """A story's narration: speech-like bursts of a tone, AAC in an M4A (``container="ipod"``),
    exactly ``seconds`` long to the sample, deterministic (bit-exact muxing)."""
    total = round(seconds * SAMPLE_RATE)
    spans = speech_spans(f"narration-{seconds}-{tone_hz}", seconds)
    out_buffer = io.BytesIO()
    with av.open(out_buffer, "w", format=container, options={"fflags": "+bitexact"}) as out:
        stream = _add_audio(out, "aac")
        done = 0
        while done < total:
            count = min(1024, total - done)
            gain = _burst_gain(spans, done, count)
            out.mux(stream.encode(_audio_frame(tone_hz, done, count, gain)))
            done += count
        out.mux(stream.encode(None))
    return out_buffer.getvalue()


def cache_dir() -> Path:
    """Where rendered fixtures live: ``$MEDIA_PIPELINE_FIXTURE_CACHE``, else ``<repo>/.cache/``."""
    configured = os.environ.get("MEDIA_PIPELINE_FIXTURE_CACHE")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / ".cache" / "media-fixtures"


def cache_key(spec: ClipSpec) -> str:
    """The spec, the scenes it draws, the PyAV version and the render revision, hashed."""
    scenes = sorted({name for name, _ in spec.scenes})
    described = dataclasses.asdict(spec)
    for name, default in _OPTIONAL_AUDIO.items():
        if described[name] == default:
            del described[name]  # a clip without the option keeps the key it always had
    payload = {
        "spec": described,
        "scenes": [dataclasses.asdict(SCENES[name]) for name in scenes],
        "av": av.__version__,
        "revision": RENDER_REVISION,
    }
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True).encode(), usedforsecurity=False
    ).hexdigest()[:20]


def render_path(spec: ClipSpec) -> Path:
    """The rendered file for ``spec``, encoding it on first use.

    Written to a temporary file in the cache directory and renamed into place, so a crash never
    leaves half a file and several processes (pytest-xdist workers) may render at once: the last
    rename wins and every writer produced the same bytes.
    """
    directory = cache_dir()
    target = directory / f"{spec.name}-{cache_key(spec)}{spec.extension}"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=directory, prefix=".render-", suffix=spec.extension)
    os.close(handle)
    temp = Path(temp_name)
    try:
        _encode(spec, temp)
        temp.chmod(0o644)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def render(spec: ClipSpec) -> bytes:
    """The encoded clip (from the disk cache when present)."""
    return render_path(spec).read_bytes()


def render_all(specs: Iterable[ClipSpec], workers: int | None = None) -> dict[str, Path]:
    """``render_path`` for several specs, encoding in threads (PyAV releases the GIL to FFmpeg)."""
    unique = list({spec.name: spec for spec in specs}.values())
    count = workers or min(len(unique), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(max_workers=count) as pool:
        paths = list(pool.map(render_path, unique))
    return {spec.name: path for spec, path in zip(unique, paths, strict=True)}


# The catalogue the local sources serve: 25 fps, 8 s or less, 3-4 hard cuts each, each with its
# own scene sequence and tone so clips tell apart by picture and by sound. Each source delivers
# one container and codec pair, so a clip names its source's and only what tells it apart.
Codecs = tuple[Container, VideoCodec, AudioCodec]
_COMMONS_WEBM: Codecs = ("webm", "vp9", "opus")
_MP4: Codecs = ("mp4", "h264", "aac")


def _clip(
    name: str,
    codecs: Codecs,
    scenes: tuple[tuple[str, float], ...],
    tone_hz: float,
    *,
    size: tuple[int, int] = (640, 360),
    rotation: int = 0,
) -> ClipSpec:
    container, video_codec, audio_codec = codecs
    width, height = size
    return ClipSpec(
        name, container, video_codec, audio_codec, width, height, 25, scenes, tone_hz, rotation
    )


COMMONS_WEBM = _clip(
    "commons-tram-28-alfama",
    _COMMONS_WEBM,
    (("city", 2.0), ("tram", 2.6), (BLACK, 0.8), ("sea", 2.0), ("tram", 0.6)),
    440.0,
)
# Commons' originals are often Ogg Theora; this build of FFmpeg has no Theora encoder, so the
# ``.ogv`` is an Ogg container with VP8 video and Vorbis audio (FFmpeg's Ogg muxer takes VP8).
# Ingest never downloads it: it takes the transcoded WebM derivative below.
COMMONS_OGV = _clip(
    "commons-ferry-tagus",
    ("ogg", "vp8", "vorbis"),
    (("sea", 2.4), ("city", 1.6), ("forest", 2.0), ("tram", 1.2)),
    523.25,
)
# Commons' WebM VP9 transcode of COMMONS_OGV: the same scenes and tone.
COMMONS_OGV_DERIVATIVE = dataclasses.replace(
    COMMONS_OGV,
    name="commons-ferry-tagus-360p",
    container="webm",
    video_codec="vp9",
    audio_codec="opus",
)
PIXABAY_MP4_360 = _clip(
    "pixabay-forest-river",
    _MP4,
    (("forest", 2.0), ("sea", 1.6), (BLACK, 0.6), ("forest", 1.8), ("desk", 1.6)),
    330.0,
)
PIXABAY_MP4_240 = _clip(
    "pixabay-beach-town",
    _MP4,
    (("sea", 1.6), ("city", 1.4), ("tram", 1.6), ("forest", 1.2), ("bar", 1.2)),
    294.0,
    size=(426, 240),
)
# A phone upload: coded landscape 640x360, shown portrait (rotate 90 clockwise).
UPLOAD_ROTATED = _clip(
    "upload-phone-evening",
    _MP4,
    (("bar", 2.0), ("desk", 1.6), ("city", 1.4), ("forest", 1.0)),
    392.0,
    rotation=90,
)
FIXTURES: tuple[ClipSpec, ...] = (
    COMMONS_WEBM,
    COMMONS_OGV,
    COMMONS_OGV_DERIVATIVE,
    PIXABAY_MP4_360,
    PIXABAY_MP4_240,
    UPLOAD_ROTATED,
)
# Short clips for transcription (no source serves them; an end-to-end test uploads them): speech-
# like bursts of tone tagged Portuguese and English, digital silence, and no audio track at all.
_SPEECH_SCENES: tuple[tuple[str, float], ...] = (("tram", 2.0), ("sea", 2.0))
SPEECH_PT_MP4 = ClipSpec(
    "speech-alfama-pt", *_MP4, 426, 240, 25, _SPEECH_SCENES, 247.0,
    audio_pattern="speech", audio_language="por",
)  # fmt: skip
SPEECH_EN_MP4 = ClipSpec(
    "speech-harbour-en", *_MP4, 426, 240, 25, (("city", 2.0), ("forest", 2.0)), 262.0,
    audio_pattern="speech", audio_language="eng",
)  # fmt: skip
SILENT_MP4 = ClipSpec(
    "silent-desk", *_MP4, 426, 240, 25, (("desk", 2.0), ("bar", 2.0)), 277.0,
    audio_pattern="silence",
)  # fmt: skip
NO_AUDIO_MP4 = ClipSpec(
    "mute-forest", "mp4", "h264", None, 426, 240, 25, (("forest", 2.0), ("city", 2.0)), 294.0
)
TRANSCRIPTION_FIXTURES: tuple[ClipSpec, ...] = (
    SPEECH_PT_MP4,
    SPEECH_EN_MP4,
    SILENT_MP4,
    NO_AUDIO_MP4,
)


def _top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """ISO-BMFF top-level boxes as (type, offset, size), as far as they can be read."""
    boxes: list[tuple[bytes, int, int]] = []
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if size == 1 and offset + 16 <= len(data):
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            break
        boxes.append((kind, offset, size))
        offset += size
    return boxes


@cache
def truncated_mp4() -> bytes:
    """A real MP4 cut to half its length: ``moov`` is written last, so the index is gone."""
    body = render(PIXABAY_MP4_240)
    kinds = [kind for kind, _, _ in _top_level_boxes(body)]
    if kinds.index(b"moov") < kinds.index(b"mdat"):  # pragma: no cover - guards the fixture
        raise AssertionError("expected moov after mdat (no faststart)")
    return body[: len(body) // 2]


def text_as_mp4() -> bytes:
    """What a CDN's error page saved as ``.mp4`` looks like: UTF-8 text."""
    return (
        "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\n"
        "<body><h1>403 Forbidden</h1><p>Zugriff verweigert – the request was blocked.</p>"
        "</body></html>\n"
    ).encode()


def zero_length() -> bytes:
    """An upload that never got its bytes."""
    return b""


@cache
def audio_only_m4a(tone_hz: float = 262.0, seconds: float = 2.0) -> bytes:
    """An AAC tone in an MP4 container without a video track (someone uploaded a voice memo)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as out:
        audio = _add_audio(out, "aac")
        total = round(seconds * SAMPLE_RATE)
        for start in range(0, total, 4800):
            out.mux(audio.encode(_audio_frame(tone_hz, start, min(4800, total - start))))
        out.mux(audio.encode(None))
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# 2. Analysis
# --------------------------------------------------------------------------------------------

# On a 0-255 scale, over frames downscaled to ANALYSIS_SIZE. Scenes differ by 45+ per channel, a
# drifting object changes a frame by ~1, lossy re-encoding at another size by ~2-4.
CUT_THRESHOLD = 20.0
BLACK_LUMA = 16.0
MIN_SHOT_FRAMES = 3  # a second candidate cut this close to the last one is the same cut, smeared
ANALYSIS_SIZE = (64, 36)
_TRUNCATION_SLACK_S = 0.5
_LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


class MediaError(Exception):
    """A file a media service cannot use; ``kind`` says why, ``reason`` says it to a person."""

    def __init__(self, kind: MediaErrorKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: MediaErrorKind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[type[MediaError], tuple[MediaErrorKind, str]]:
        return (MediaError, (self.kind, self.reason))


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    channels: int
    sample_rate: int


@dataclass(frozen=True)
class VideoInfo:
    """What a probe of the file reports (the first video stream, the first audio stream).

    ``width``/``height`` are coded; ``rotation`` is the clockwise display rotation in degrees;
    ``duration_s`` is the video stream's, from its packets (first frame to end of last frame).
    """

    format_name: str
    container: str
    video_codec: str
    width: int
    height: int
    rotation: int
    fps: float
    duration_s: float
    frame_count: int
    bitrate: int
    size_bytes: int
    pix_fmt: str
    audio: AudioInfo | None

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height


@dataclass(frozen=True)
class Shot:
    """A run of frames between hard cuts; ``end_*`` is the last frame (inclusive)."""

    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    duration_s: float
    scene: str | None

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame + 1


@dataclass(frozen=True)
class Span:
    """A run of black frames; ``end_*`` is the last black frame (inclusive)."""

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    duration_s: float


@dataclass(frozen=True)
class VideoAnalysis:
    info: VideoInfo
    frames: int
    shots: tuple[Shot, ...]
    black_spans: tuple[Span, ...]
    frame_times_s: tuple[float, ...] = field(repr=False)
    frame_scenes: tuple[str | None, ...] = field(repr=False)

    def shot_at(self, seconds: float) -> Shot | None:
        """The shot showing at ``seconds`` (None past the end)."""
        for shot in self.shots:
            if shot.start_s <= seconds < shot.start_s + shot.duration_s:
                return shot
        return None

    def scene_at(self, seconds: float) -> str | None:
        shot = self.shot_at(seconds)
        return shot.scene if shot else None


# Container naming, the "is this media at all" test, the truncation test on the index and the
# rotation of a decoded frame are the Lambda probe's (lambdas/probe/media.py): one definition
# for what the stand-ins and the real pipeline's probe decide. This probe differs in reading the
# whole file (every packet), as MediaConvert and Rekognition do.
_looks_like_media = looks_like_media
_short_container = container_short_name
_ffmpeg_message = ffmpeg_message


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    size = path.stat().st_size
    if size == 0:
        raise MediaError("empty", "empty file: 0 bytes")
    with path.open("rb") as handle:
        head = handle.read(64)
    try:
        container = av.open(str(path), "r")
    except av.FFmpegError as error:
        if _looks_like_media(head):
            raise MediaError(
                "truncated", f"truncated media file: {_ffmpeg_message(error)}"
            ) from error
        raise MediaError("not_media", f"not a media file: {_ffmpeg_message(error)}") from error
    try:
        yield container
    finally:
        container.close()


@dataclass
class _VideoPackets:
    count: int = 0
    first: int | None = None
    end: int | None = None
    rotation: int = 0
    pix_fmt: str = ""


def _describe_streams(container: Any) -> str:
    return ", ".join(f"{s.type} {s.codec_context.name}" for s in container.streams) or "none"


def _check_streams(container: Any, size: int) -> Any:
    """The first video stream, once the file is known to hold media with a video track."""
    if not container.streams.video and not container.streams.audio:
        raise MediaError(
            "not_media",
            f"not a media file: FFmpeg reads it as {container.format.name}"
            f" (streams: {_describe_streams(container)})",
        )
    if not container.streams.video:
        raise MediaError("no_video", f"no video stream (streams: {_describe_streams(container)})")
    video = container.streams.video[0]
    past = data_past_end(video, size)
    if past is not None:
        raise MediaError(
            "truncated", f"truncated media file: frame data at byte {past} past the end ({size})"
        )
    return video


def _scan_packets(container: Any, video: Any) -> _VideoPackets:
    """Every video packet's timing (demux only), and the first frame decoded for its rotation."""
    seen = _VideoPackets(pix_fmt=video.codec_context.pix_fmt or "")
    decoded = False
    try:
        for packet in container.demux(video):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or stamp is None:
                continue
            seen.count += 1
            seen.first = stamp if seen.first is None else min(seen.first, stamp)
            stop = stamp + (packet.duration or 0)
            seen.end = stop if seen.end is None else max(seen.end, stop)
            if not decoded:
                decoded = _read_first_frame(video, packet, seen)
    except av.FFmpegError as error:
        raise MediaError("truncated", f"truncated media file: {_ffmpeg_message(error)}") from error
    return seen


def _read_first_frame(video: Any, packet: Any, seen: _VideoPackets) -> bool:
    try:
        frames = video.decode(packet)
    except av.FFmpegError as error:
        raise MediaError(
            "undecodable", f"cannot decode {video.codec_context.name}: {_ffmpeg_message(error)}"
        ) from error
    for frame in frames:
        seen.rotation = clockwise_rotation(frame)
        seen.pix_fmt = frame.format.name
        return True
    return False


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read the container, the streams and every video packet (no full decode)."""
    source = Path(path)
    size = source.stat().st_size
    with source.open("rb") as handle:
        head = handle.read(64)
    with _open(source) as container:
        video = _check_streams(container, size)
        seen = _scan_packets(container, video)
        if seen.count == 0 or seen.first is None or seen.end is None:
            raise MediaError("truncated", "truncated media file: no video frames can be read")
        time_base = video.time_base or Fraction(1, 1000)
        duration = float((seen.end - seen.first) * time_base)
        rate = video.average_rate or video.guessed_rate or video.base_rate
        fps = float(rate) if rate else (seen.count / duration if duration else 0.0)
        if fps and math.isclose(duration, (seen.count - 1) / fps, abs_tol=1e-6):
            duration = seen.count / fps  # the last packet carried no duration
        if video.duration:
            declared = float(video.duration * time_base)
        else:
            declared = (container.duration or 0) / av.time_base
        if declared - duration > _TRUNCATION_SLACK_S:
            raise MediaError(
                "truncated",
                f"truncated media file: declares {declared:.2f} s, frames end at {duration:.2f} s",
            )
        audio = None
        if container.streams.audio:
            context = container.streams.audio[0].codec_context
            audio = AudioInfo(context.name, context.channels, context.sample_rate)
        return VideoInfo(
            format_name=container.format.name,
            container=_short_container(container.format.name, head),
            video_codec=video.codec_context.name,
            width=video.codec_context.width,
            height=video.codec_context.height,
            rotation=seen.rotation,
            fps=fps,
            duration_s=duration,
            frame_count=seen.count,
            bitrate=int(container.bit_rate or (size * 8 / duration if duration else 0)),
            size_bytes=size,
            pix_fmt=seen.pix_fmt,
            audio=audio,
        )


def luma(rgb: npt.ArrayLike) -> float:
    """Rec. 601 luma of a mean RGB colour (0-255)."""
    return float(np.dot(np.asarray(rgb, dtype=np.float32), _LUMA))


def classify(rgb: npt.ArrayLike) -> str | None:
    """The scene whose base colour is nearest to ``rgb`` (a frame's mean colour); None if black."""
    colour = np.asarray(rgb, dtype=np.float32)
    if luma(colour) < BLACK_LUMA:
        return None
    best = min(
        (scene for scene in SCENES.values() if not scene.is_black),
        key=lambda scene: float(np.sum((colour - np.asarray(scene.rgb, np.float32)) ** 2)),
    )
    return best.name


def _decode_small(path: Path, info: VideoInfo) -> tuple[npt.NDArray[np.float32], list[float]]:
    width, height = ANALYSIS_SIZE
    images: list[npt.NDArray[np.uint8]] = []
    times: list[float] = []
    reformatter = VideoReformatter()  # one scaler for every frame (a new one per frame is slow)
    with _open(path) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        try:
            for frame in container.decode(video):
                small = reformatter.reformat(
                    frame, width=width, height=height, format="rgb24", interpolation="AREA"
                )
                images.append(np.asarray(small.to_ndarray(), dtype=np.uint8))
                stamp = frame.time
                times.append(float(stamp) if stamp is not None else len(times) / info.fps)
        except av.FFmpegError as error:
            kind: MediaErrorKind = "truncated" if images else "undecodable"
            raise MediaError(kind, f"decoding stopped: {_ffmpeg_message(error)}") from error
    if not images:
        raise MediaError("undecodable", f"no {info.video_codec} frame could be decoded")
    if len(images) < info.frame_count - 1:
        raise MediaError(
            "truncated", f"decoding stopped at frame {len(images)} of {info.frame_count}"
        )
    if info.fps and any(b <= a for a, b in itertools.pairwise(times)):
        times = [index / info.fps for index in range(len(times))]  # no usable timestamps
    origin = times[0]
    return np.stack(images).astype(np.float32), [t - origin for t in times]


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, value in enumerate(mask.tolist()):
        if value and start is None:
            start = index
        elif not value and start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def _analyze_file(path: Path) -> VideoAnalysis:
    info = probe(path)
    frames, times = _decode_small(path, info)
    count = len(frames)
    frame_s = 1 / info.fps if info.fps else 0.0
    means = frames.mean(axis=(1, 2))
    lumas = means @ _LUMA
    diffs = np.abs(frames[1:] - frames[:-1]).mean(axis=(1, 2, 3))
    cuts: list[int] = []
    for index in (np.nonzero(diffs > CUT_THRESHOLD)[0] + 1).tolist():
        if cuts and index - cuts[-1] < MIN_SHOT_FRAMES:
            continue
        cuts.append(index)
    bounds = [0, *cuts, count]
    shots = tuple(
        Shot(
            index=number,
            start_frame=start,
            end_frame=stop - 1,
            start_s=times[start],
            end_s=times[stop - 1],
            duration_s=times[stop - 1] - times[start] + frame_s,
            scene=classify(means[(start + stop - 1) // 2]),
        )
        for number, (start, stop) in enumerate(itertools.pairwise(bounds))
    )
    spans = tuple(
        Span(
            start_frame=start,
            end_frame=stop,
            start_s=times[start],
            end_s=times[stop],
            duration_s=times[stop] - times[start] + frame_s,
        )
        for start, stop in _runs(lumas < BLACK_LUMA)
    )
    scenes = tuple(shot.scene for shot in shots for _ in range(shot.frames))
    return VideoAnalysis(
        info=info,
        frames=count,
        shots=shots,
        black_spans=spans,
        frame_times_s=tuple(times),
        frame_scenes=scenes,
    )


_ANALYSES: OrderedDict[str, VideoAnalysis] = OrderedDict()
_ANALYSES_LOCK = threading.Lock()
_ANALYSES_MAX = 32


def _sha256(path: Path) -> str:
    digest = hashlib.sha256(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def analyze(path: str | os.PathLike[str]) -> VideoAnalysis:
    """Shots, black stretches and scenes of the video at ``path``, cached by file content.

    Label, moderation and segment detection all read the same proxy: it is decoded once.
    """
    source = Path(path)
    key = _sha256(source)
    with _ANALYSES_LOCK:
        if key in _ANALYSES:
            _ANALYSES.move_to_end(key)
            return _ANALYSES[key]
    result = _analyze_file(source)
    with _ANALYSES_LOCK:
        _ANALYSES[key] = result
        while len(_ANALYSES) > _ANALYSES_MAX:
            _ANALYSES.popitem(last=False)
    return result


def clear_analysis_cache() -> None:
    with _ANALYSES_LOCK:
        _ANALYSES.clear()


def frame_at(path: str | os.PathLike[str], seconds: float) -> npt.NDArray[np.uint8]:
    """The decoded RGB frame showing at ``seconds`` (coded orientation), as a frame capture."""
    with _open(Path(path)) as container:
        video = container.streams.video[0]
        container.seek(max(0, int(seconds * av.time_base)), backward=True)
        chosen = None
        for frame in container.decode(video):
            if chosen is not None and frame.time is not None and frame.time > seconds + 1e-6:
                break
            chosen = frame
        if chosen is None:
            raise MediaError("undecodable", f"no frame at {seconds:.3f} s")
        return chosen.to_ndarray(format="rgb24")


def frame_number(seconds: float, fps: float) -> int:
    """The frame showing at ``seconds`` (frame 0 starts at 0 s)."""
    return math.floor(seconds * fps + 1e-6)


def smpte(seconds: float, fps: float) -> str:
    """SMPTE timecode as Rekognition writes it: ``HH:MM:SS:FF``, drop-frame ``HH:MM:SS;FF``.

    Integer rates are non-drop-frame; 29.97 and 59.94 use drop-frame counting (two or four frame
    numbers skipped each minute except every tenth), as Rekognition does for NTSC rates.
    """
    nominal = round(fps)
    frames = frame_number(seconds, fps)
    drop = not math.isclose(fps, nominal) and nominal in (30, 60)
    if drop:
        skipped = 2 * nominal // 30
        per_ten_minutes = nominal * 600 - skipped * 9
        per_minute = nominal * 60 - skipped
        tens, rest = divmod(frames, per_ten_minutes)
        extra = skipped * (tens * 9)
        if rest > skipped:
            extra += skipped * ((rest - skipped) // per_minute)
        frames += extra
    ff = frames % nominal
    total_s = frames // nominal
    separator = ";" if drop else ":"
    return f"{total_s // 3600:02d}:{total_s // 60 % 60:02d}:{total_s % 60:02d}{separator}{ff:02d}"


def smpte_ms(millis: int, fps: float) -> str:
    """``smpte`` for a Rekognition timestamp in milliseconds."""
    return smpte(millis / 1000, fps)
