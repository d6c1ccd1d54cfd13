"""The stories renderer: Ken Burns frames from stills, streamed into H.264, joined with narration.

Lambda has no ``ffmpeg`` binary (and a layer with one would carry a second FFmpeg next to
PyAV's), so the render is written here on the libraries the media layer already has: PyAV
(FFmpeg's libraries: libswscale, libx264, the AAC encoder and the MP4 muxer), Pillow and
NumPy. Doing it by hand is also what lets a long story be cut into chunks rendered by separate
invocations: every frame is a pure function of its index (the camera's path, the crossfade's
weight and the caption's band are computed from the frame's time, never from the frame
before), so chunks rendered anywhere, in any order, join into what one render would draw.

Why it is drawn the way it is:

* Each image is decoded once per shot (a JPEG at a reduced DCT scale, Pillow's ``draft``, which
  still covers the output: a 12 MP portrait is ready for 720p in 0.11 s here, 0.40 s decoded
  whole), turned
  upright (EXIF), flattened to 8-bit RGB, and pre-scaled once to what the closest crop of the
  shot needs at output size (about the output size times ``zoom_ratio`` on the covering side),
  only over the part of the image the camera visits. It is then converted once to the
  encoder's own pixels (BT.709 limited-range YUV 4:2:0), so no frame pays for a colour
  conversion: the per-frame work is a resize of three planes.
* The per-frame resize is libswscale's (SIMD, through PyAV's reformatter; Pillow's resampler
  costs several times more here, as much CPU as the encoder), one plane at a time from a view
  of the pre-scaled plane. It scales a whole-pixel window; the camera's remaining sub-pixel
  offset is applied afterwards with a bilinear shift (two ``Image.blend`` of crops one pixel
  apart), and the window's size is the one of a few tried whose whole-pixel ratio is closest
  to the camera's scale, so the frame's edges sit within a few hundredths of a pixel (at worst
  about 0.2) of where the camera puts them. FFmpeg's own ``zoompan`` rounds its crop to whole
  pixels, which is the jitter a slow pan shows; this renderer's motion is continuous.
  swscale runs with one thread per context: each frame has its own size, so its context is
  made anew every frame, and creating swscale's thread pool each time cost more than the
  scaling itself (6.6 against 1.6 ms a 720p frame).
* The camera eases in and out (smoothstep) over the whole time a shot is visible, its halves of
  the crossfades included, and zooms geometrically (the crop shrinks by the same ratio every
  frame, which the eye reads as a steady zoom).
* Crossfades blend the two shots' finished planes (captions included, so a caption fades with
  its shot); a caption's band is drawn once per shot and pasted over only the band's rows.
* At most two decoded shots are held at once (the current one and the next, loaded while the
  current one still shows); frames are composed by a small thread pool (libswscale and
  Pillow's pixel operations run outside the GIL) into a bounded queue in front of the
  encoder, so memory follows one frame size and two images, never the number or length of
  the shots.

Encoder: libx264 ``preset=veryfast``, ``crf=21``, yuv420p (BT.709, limited range, tagged), a
fixed GOP of 2 s (``g``, no scene-cut keyframes, closed GOPs), frame threads (the ffmpeg CLI's
default; PyAV's default for encoders is slice threads, which make each encode call wait for its
frame and leave a core idle) and x264's automatic thread count. ``veryfast`` because a render
invocation's time is the cost: slow Ken Burns motion is what x264's cheaper motion search
handles well (``medium`` encodes 720p at 37 fps on two vCPUs here, ``veryfast`` at 62), and
CRF 21 is visually clean for photographs at 720p and 1080p. The settings are fixed, not tuned
per chunk, so every chunk's parameter sets (SPS/PPS, in the MP4's extradata) are identical and
the chunks concatenate by copying packets; each chunk starts with an IDR frame and closed GOPs
never refer across it, so B-frames are safe at the joins (the tests decode a joined video to
prove it).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import threading
import warnings
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from lambdas.shared.media_types import MAX_IMAGE_PIXELS
from lambdas.shared.memory import release_memory

try:  # HEIC/HEIF (phones' photos); the media layer and requirements-dev.txt both pin it
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover
    pass

# Deliberately the pipeline's limit (Pillow's default is 89 MP with only a warning): a larger
# image is a decompression bomb here, refused from its header before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# -- encoder settings (benchmarks/stories.py gives FFmpeg exactly these) ------------------------
PRESET = "veryfast"
CRF = 21
GOP_SECONDS = 2
PIX_FMT = "yuv420p"
X264_PARAMS = "scenecut=0:open-gop=0"
AUDIO_BITRATE = {1: 128_000, 2: 160_000}
AUDIO_RATES = (32_000, 44_100, 48_000)
AUDIO_DEFAULT_RATE = 48_000
# Frames composed ahead of the encoder (each ~1.4 MB at 720p, 3 MB at 1080p) and the threads
# composing them: two vCPUs in Lambda, shared with x264's own threads.
QUEUE_FRAMES = 4
WORKERS = 2
CONTIGUITY_TOLERANCE_S = 1e-6
# swscale's per-frame resize (of at most 1.25x, a pre-scaled source): bilinear is as sharp as
# bicubic at such ratios and a third cheaper.
INTERPOLATION = "BILINEAR"
# Output sizes tried per axis for the whole-pixel window closest to the camera's scale.
WINDOW_TRIES = 24
CHUNK_TAG = re.compile(r"^stories-chunk first_frame=(\d+) frames=(\d+) total=(\d+)$")

# BT.709 limited range, as 3x4 matrices for Pillow's ``convert("RGB", matrix)`` (one C pass).
_KR, _KB = 0.2126, 0.0722
_KG = 1 - _KR - _KB
_YS, _CS = 219 / 255, 224 / 255
_TO_YUV = (
    _KR * _YS, _KG * _YS, _KB * _YS, 16.0,
    -_KR / (2 * (1 - _KB)) * _CS, -_KG / (2 * (1 - _KB)) * _CS, 0.5 * _CS, 128.0,
    0.5 * _CS, -_KG / (2 * (1 - _KR)) * _CS, -_KB / (2 * (1 - _KR)) * _CS, 128.0,
)  # fmt: skip
_BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
_MPEG_RANGE = 1  # AVCOL_RANGE_MPEG (limited)
_BAND_ALPHA = 150  # the caption band's opacity (of 255)


class RenderError(ValueError):
    """What was wrong with a project's input, naming it (a shot, the narration, a chunk)."""


@dataclass(frozen=True)
class Shot:
    name: str
    image: Path
    start_s: float
    end_s: float
    focus: tuple[float, float] = (0.5, 0.5)
    zoom: Literal["in", "out"] = "in"
    caption: str | None = None


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    fps: int
    duration_s: float
    shots: tuple[Shot, ...]
    transition_s: float = 0.5
    zoom_ratio: float = 1.25

    def __post_init__(self) -> None:
        for field_name, value in (("width", self.width), ("height", self.height)):
            if value < 16 or value % 2:
                raise RenderError(f"timeline: {field_name} must be even and at least 16")
        if not 1 <= self.fps <= 120:
            raise RenderError(f"timeline: fps must be 1..120, not {self.fps}")
        if not self.duration_s > 0 or not math.isfinite(self.duration_s):
            raise RenderError(f"timeline: duration_s must be positive, not {self.duration_s}")
        if not 1.0 <= self.zoom_ratio <= 2.0:
            raise RenderError(f"timeline: zoom_ratio must be 1.0..2.0, not {self.zoom_ratio}")
        if not self.transition_s >= 0:
            raise RenderError(f"timeline: transition_s must be >= 0, not {self.transition_s}")
        if not self.shots:
            raise RenderError("timeline: no shots")
        if self.frame_count() < 1:
            raise RenderError(f"timeline: duration_s {self.duration_s} is shorter than a frame")
        self._check_shots()

    def _check_shots(self) -> None:
        """Sorted and contiguous from 0 to the duration; each message names the shot."""
        expected = 0.0
        for shot in self.shots:
            if abs(shot.start_s - expected) > CONTIGUITY_TOLERANCE_S:
                where = (
                    "at 0 s" if expected == 0 else f"where the shot before ends ({expected:g} s)"
                )
                raise RenderError(f"{shot.name}: starts at {shot.start_s:g} s, not {where}")
            if not shot.end_s > shot.start_s:
                raise RenderError(f"{shot.name}: ends at {shot.end_s:g} s, not after its start")
            if shot.end_s > self.duration_s + CONTIGUITY_TOLERANCE_S:
                raise RenderError(
                    f"{shot.name}: ends at {shot.end_s:g} s, past the timeline's duration "
                    f"({self.duration_s:g} s)"
                )
            fx, fy = shot.focus
            if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
                raise RenderError(f"{shot.name}: focus must be within 0..1, not {shot.focus}")
            if shot.zoom not in ("in", "out"):
                raise RenderError(f'{shot.name}: zoom must be "in" or "out", not {shot.zoom!r}')
            expected = shot.end_s
        last = self.shots[-1]
        if abs(last.end_s - self.duration_s) > CONTIGUITY_TOLERANCE_S:
            raise RenderError(
                f"{last.name}: ends at {last.end_s:g} s, not at the timeline's end "
                f"({self.duration_s:g} s)"
            )

    def frame_count(self) -> int:
        return round(self.duration_s * self.fps)


@dataclass(frozen=True)
class RenderedChunk:
    path: Path
    first_frame: int
    frames: int
    bytes: int


@dataclass(frozen=True)
class JoinedVideo:
    path: Path
    frames: int
    duration_s: float
    bytes: int
    sha256: str


def encoder_options(fps: int) -> dict[str, str]:
    """libx264's options as PyAV (and ``ffmpeg -x264-params``) take them: fixed for every chunk."""
    return {
        "preset": PRESET,
        "crf": str(CRF),
        "g": str(GOP_SECONDS * fps),
        "x264-params": f"keyint={GOP_SECONDS * fps}:{X264_PARAMS}",
    }


# -- the schedule: which shots a frame shows, with which weight, where the camera is ---------------
def _smoothstep(p: float) -> float:
    p = min(1.0, max(0.0, p))
    return p * p * (3 - 2 * p)


class _Schedule:
    """Times of the timeline, per shot: the crossfade at each boundary (clamped to half of
    either neighbour) and the span a shot is visible, halves of its crossfades included."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        shots = timeline.shots
        self.starts = [s.start_s for s in shots]
        self.fades = [
            min(
                timeline.transition_s,
                (shots[k].end_s - shots[k].start_s) / 2,
                (shots[k + 1].end_s - shots[k + 1].start_s) / 2,
            )
            for k in range(len(shots) - 1)
        ]
        self.visible = []
        for k, shot in enumerate(shots):
            begin = 0.0 if k == 0 else shot.start_s - self.fades[k - 1] / 2
            end = timeline.duration_s if k == len(shots) - 1 else shot.end_s + self.fades[k] / 2
            self.visible.append((begin, end))

    def layers(self, index: int) -> list[tuple[int, float]]:
        """``(shot, weight)`` for frame ``index``: one shot, or two mid-crossfade (weights sum
        to 1; the later shot's weight rises across the window ``[b - T/2, b + T/2)``)."""
        fps = self.timeline.fps
        t = index / fps
        k = max(0, min(len(self.starts) - 1, bisect_right(self.starts, t) - 1))
        last = len(self.starts) - 1
        if k < last and self.fades[k] > 0:
            boundary = self.timeline.shots[k].end_s
            window = boundary - self.fades[k] / 2
            if t >= window:
                alpha = min(1.0, max(0.0, (t - window + 0.5 / fps) / self.fades[k]))
                return [(k, 1 - alpha), (k + 1, alpha)]
        if k > 0 and self.fades[k - 1] > 0:
            window = self.timeline.shots[k].start_s - self.fades[k - 1] / 2
            if t < window + self.fades[k - 1]:
                alpha = min(1.0, max(0.0, (t - window + 0.5 / fps) / self.fades[k - 1]))
                return [(k - 1, 1 - alpha), (k, alpha)]
        return [(k, 1.0)]

    def progress(self, k: int, index: int) -> float:
        """The camera's eased progress (0..1) along shot ``k``'s path at frame ``index``."""
        begin, end = self.visible[k]
        span = max(end - begin, 1e-9)
        return _smoothstep((index / self.timeline.fps - begin) / span)

    def first_frame_of(self, k: int) -> int:
        return max(0, math.ceil(self.visible[k][0] * self.timeline.fps - 1e-9))


# -- one shot's pixels, prepared once -------------------------------------------------------------
@dataclass(frozen=True)
class _Crop:
    cx: float
    cy: float
    w: float
    h: float

    def lerp(self, other: _Crop, e: float) -> _Crop:
        """Centre moved linearly, size geometrically (a steady zoom)."""
        ratio = other.w / self.w
        scale = ratio**e
        return _Crop(
            self.cx + (other.cx - self.cx) * e,
            self.cy + (other.cy - self.cy) * e,
            self.w * scale,
            self.h * scale,
        )


@dataclass
class _Band:
    """A caption's band, in the frame's planes: where it goes, its pixels and its coverage."""

    top: int
    y: Image.Image
    u: Image.Image
    v: Image.Image
    alpha: Image.Image
    alpha_half: Image.Image


@dataclass
class _Prepared:
    """A shot ready to draw: its pre-scaled YUV planes and the camera's start and end crops
    (in the luma plane's pixels)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    start: _Crop
    end: _Crop
    band: _Band | None


def _open_checked(path: Path, name: str) -> Image.Image:
    """Pillow's lazy open (header only), with the bomb limit an error naming the shot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise RenderError(
            f"{name}: more than {MAX_IMAGE_PIXELS // 1_000_000} MP (a decompression bomb)"
        ) from err
    except FileNotFoundError as err:
        raise RenderError(f"{name}: the image file is missing") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise RenderError(f"{name}: not an image Pillow can read") from err
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise RenderError(f"{name}: the image is {width}x{height} pixels")
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise RenderError(
            f"{name}: {width}x{height} is more than {MAX_IMAGE_PIXELS // 1_000_000} MP "
            "(a decompression bomb)"
        )
    return image


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF is no orientation, not a refusal
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def check_still(path: Path, name: str) -> tuple[int, int]:
    """The upright size of an image, refusing what the render could not draw.

    The header gives the format and size (and so refuses a bomb before any pixel is decoded);
    ``verify`` walks a PNG's chunks and their CRCs. A JPEG's header says nothing of whether its
    entropy-coded data is whole, so a JPEG is also decoded at the 1/8 DCT scale: every byte of
    the scan is read at a small fraction of a full decode's cost, and a truncated upload is
    refused here rather than in a render chunk minutes later. Other formats are checked again
    when their shot is drawn (a ``RenderError`` naming it).
    """
    image = _open_checked(path, name)
    with image:
        width, height = image.size
        turned = _orientation(image) in (5, 6, 7, 8)
        kind = image.format
    try:
        with Image.open(path) as again:
            again.verify()
        if kind == "JPEG":
            with Image.open(path) as small:
                small.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                small.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise RenderError(f"{name}: the image file is truncated or corrupt ({err})") from err
    return (height, width) if turned else (width, height)


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit and float greyscale scaled (not clipped), palettes expanded, CMYK and
    the rest converted, transparency flattened on black (the letterbox colour of a video)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image)
        top = float(values.max(initial=0))
        if image.mode.startswith("I;16") or (image.mode == "I" and 255 < top < 65536):
            scaled: np.ndarray = values.astype(np.uint32) >> 8
        else:
            low = float(min(values.min(initial=0), 0))
            scaled = (values.astype(np.float64) - low) / ((top - low) or 1.0) * 255
        image = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (0, 0, 0))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def _covering(width: float, height: float, aspect: float) -> tuple[float, float]:
    """The largest crop of the output's aspect that fits a ``width`` x ``height`` image."""
    if width / height > aspect:
        return height * aspect, height
    return width, width / aspect


def _path(
    shot: Shot, width: float, height: float, aspect: float, zoom: float
) -> tuple[_Crop, _Crop]:
    """Start and end crops of the camera in an upright image of ``width`` x ``height``."""
    cw, ch = _covering(width, height, aspect)
    whole = _Crop(width / 2, height / 2, cw, ch)
    ew, eh = cw / zoom, ch / zoom
    fx, fy = shot.focus
    cx = min(max(fx * width, ew / 2), width - ew / 2)
    cy = min(max(fy * height, eh / 2), height - eh / 2)
    close = _Crop(cx, cy, ew, eh)
    return (whole, close) if shot.zoom == "in" else (close, whole)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: Any, draw: ImageDraw.ImageDraw, width: float) -> list[str]:
    """Greedy word wrap to ``width`` pixels; a word wider than that is cut where it fits."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while len(line) > 1 and draw.textlength(line, font=font) > width:
                fit = len(line) - 1
                while fit > 1 and draw.textlength(line[:fit], font=font) > width:
                    fit -= 1
                lines.append(line[:fit])
                line = line[fit:]
        if line:
            lines.append(line)
    return lines or [text.strip()]


def _band(caption: str, width: int, height: int) -> _Band:
    """The caption drawn once: white text, centred, on a translucent black band near the
    bottom, converted to the frame's planes with its coverage (alpha) per plane."""
    size = max(10, round(height * 0.045))
    font = _font(size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines = _wrap(caption, font, probe, width * 0.88)
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (size, size // 4)
    line_height = round((ascent + descent) * 1.15)
    pad = round(size * 0.5)
    band_height = _even(len(lines) * line_height + 2 * pad)
    top = _even(height - round(height * 0.05) - band_height)
    top = max(0, min(top, height - band_height))
    band = Image.new("RGBA", (width, band_height), (0, 0, 0, _BAND_ALPHA))
    draw = ImageDraw.Draw(band)
    for row, line in enumerate(lines):
        draw.text(
            (width / 2, pad + row * line_height + line_height / 2),
            line,
            font=font,
            fill=(255, 255, 255, 255),
            anchor="mm",
        )
    yuv = band.convert("RGB").convert("RGB", matrix=_TO_YUV)
    half = yuv.reduce(2)
    alpha = band.getchannel("A")
    return _Band(
        top, yuv.getchannel(0), half.getchannel(1), half.getchannel(2), alpha, alpha.reduce(2)
    )


def _prepare(shot: Shot, timeline: Timeline) -> _Prepared:
    """Decode, turn, flatten, crop to the camera's reach, pre-scale and convert one shot."""
    width, height = timeline.width, timeline.height
    aspect, zoom = width / height, timeline.zoom_ratio
    image = _open_checked(shot.image, shot.name)
    try:
        with image:
            stored_w, stored_h = image.size
            orientation = _orientation(image)
            upright_w, upright_h = (
                (stored_h, stored_w) if orientation in (5, 6, 7, 8) else (stored_w, stored_h)
            )
            cover_w, _ = _covering(upright_w, upright_h, aspect)
            # Pixels the closest crop needs: the covering crop at output width times the zoom.
            scale = min(1.0, width * zoom / cover_w)
            if image.format == "JPEG":
                # The DCT scale giving at least 90 % of what the closest crop needs: a 3000 px
                # wide portrait for 720p needs 1600 px, and 1/2 scale (1500) decodes far faster
                # than the whole photo, for a 7 % upscale at the closest crop only.
                need = (math.ceil(stored_w * scale * 0.9), math.ceil(stored_h * scale * 0.9))
                image.draft("RGB", need)
            image.seek(0)
            image.load()
            turned = ImageOps.exif_transpose(image)
            rgb = _to_rgb(turned)
    except RenderError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise RenderError(f"{shot.name}: the image's pixels cannot be decoded ({err})") from err
    loaded_w, loaded_h = rgb.size
    start, end = _path(shot, loaded_w, loaded_h, aspect, zoom)
    # The region the camera visits (the crop's edges are monotonic between its ends), with a
    # few pixels for the resampler's reach, pre-scaled so its closest crop is ~1:1 at output.
    margin = 4 / scale
    x0 = max(0.0, min(start.cx - start.w / 2, end.cx - end.w / 2) - margin)
    y0 = max(0.0, min(start.cy - start.h / 2, end.cy - end.h / 2) - margin)
    x1 = min(float(loaded_w), max(start.cx + start.w / 2, end.cx + end.w / 2) + margin)
    y1 = min(float(loaded_h), max(start.cy + start.h / 2, end.cy + end.h / 2) + margin)
    closest_w = min(start.w, end.w)
    factor = min(1.0, width / closest_w) if closest_w > 0 else 1.0
    out_w, out_h = _even((x1 - x0) * factor), _even((y1 - y0) * factor)
    # (bicubic: for reductions of at most 2x, as sharp as Lanczos to the eye, and cheaper)
    region = rgb.resize((out_w, out_h), Image.Resampling.BICUBIC, box=(x0, y0, x1, y1))
    del rgb, turned
    kx, ky = out_w / (x1 - x0), out_h / (y1 - y0)

    def moved(crop: _Crop) -> _Crop:
        return _Crop((crop.cx - x0) * kx, (crop.cy - y0) * ky, crop.w * kx, crop.h * ky)

    yuv = region.convert("RGB", matrix=_TO_YUV)
    del region
    half = yuv.reduce(2)
    planes = (
        np.asarray(yuv.getchannel(0)),
        np.asarray(half.getchannel(1)),
        np.asarray(half.getchannel(2)),
    )
    band = _band(shot.caption, width, height) if shot.caption else None
    return _Prepared(*planes, moved(start), moved(end), band)


# -- drawing a frame -----------------------------------------------------------------------------
_local = threading.local()


def _reformatter(plane: int) -> VideoReformatter:
    """One per thread and plane: swscale contexts are not shared between threads."""
    found: list[VideoReformatter] | None = getattr(_local, "reformatters", None)
    if found is None:
        found = _local.reformatters = [VideoReformatter() for _ in range(3)]
    return found[plane]


def _window(
    start: float, length: float, scale: float, limit: int, least: int
) -> tuple[int, int, int]:
    """A whole-pixel source window (within ``limit``) around ``[start, start + length)`` with a
    margin for the shift, and an output size of at least ``least``: of the window sizes tried,
    the one whose whole-pixel ratio is closest to the camera's ``scale`` (source px per output
    px), so the frame's edges sit within a few hundredths of a pixel of the camera's."""
    reach = 2 * max(scale, 1.0) + 2
    low = max(0, math.floor(start - reach))
    high = min(limit, math.ceil(start + length + reach))
    first_out = max(least, round((high - low) / scale))
    best: tuple[float, int, int, int] | None = None
    for out in range(first_out, first_out + WINDOW_TRIES):
        size = round(out * scale)
        if size > limit:
            break
        lo = min(max(0, round((low + high - size) / 2)), limit - size)
        error = abs(size / out - scale)
        if best is None or error < best[0]:
            best = (error, lo, size, out)
    if best is None:  # the whole axis is the window (a crop spanning the image)
        size = high - low
        return low, size, max(least - 2, round(size / scale))
    return best[1], best[2], best[3]


def _shift(
    plane: Image.Image, u: float, v: float, size: tuple[int, int], limit: tuple[int, int]
) -> Image.Image:
    """``size`` pixels of ``plane`` (whose valid part is ``limit``) from the fractional
    ``(u, v)``: a bilinear shift, two blends of crops one pixel apart."""
    width, height = size
    u = min(max(u, 0.0), float(limit[0] - width))
    v = min(max(v, 0.0), float(limit[1] - height))
    iu, iv = math.floor(u), math.floor(v)
    fu = u - iu if iu + width < limit[0] else 0.0
    fv = v - iv if iv + height < limit[1] else 0.0
    extra = 1 if fv > 1 / 512 else 0
    rows = plane.crop((iu, iv, iu + width, iv + height + extra))
    if fu > 1 / 512:
        right = plane.crop((iu + 1, iv, iu + 1 + width, iv + height + extra))
        rows = Image.blend(rows, right, fu)
    if not extra:
        return rows
    return Image.blend(rows.crop((0, 0, width, height)), rows.crop((0, 1, width, height + 1)), fv)


def _draw_shot(prepared: _Prepared, e: float, width: int, height: int) -> list[Image.Image]:
    """One shot's Y, U and V planes at eased progress ``e``."""
    crop = prepared.start.lerp(prepared.end, e)
    scale_x, scale_y = crop.w / width, crop.h / height
    result = []
    for index, array in enumerate((prepared.y, prepared.u, prepared.v)):
        sub = 1 if index == 0 else 2
        w, h = width // sub, height // sub
        cx, cy = crop.cx / sub, crop.cy / sub
        rows, cols = array.shape
        x_first, x_size, out_w = _window(cx - crop.w / sub / 2, crop.w / sub, scale_x, cols, w + 2)
        y_first, y_size, out_h = _window(cy - crop.h / sub / 2, crop.h / sub, scale_y, rows, h + 2)
        # Each plane is scaled from a view of its pre-scaled plane (no copy). One swscale
        # thread: the frames are already drawn in parallel, and swscale's threads would be
        # created anew with every context (each frame has its own size), which costs more
        # than the scaling itself.
        view = array[y_first : y_first + y_size, x_first : x_first + x_size]
        scaled = _reformatter(index).reformat(
            av.VideoFrame.from_numpy_buffer(view, format="gray"),
            width=out_w,
            height=out_h,
            interpolation=INTERPOLATION,
            threads=1,
        )
        plane = scaled.planes[0]
        image = Image.frombuffer("L", (plane.line_size, out_h), plane, "raw", "L", 0, 1)  # type: ignore[arg-type]
        # Output pixels are placed so the frame's centre lands exactly where the camera puts
        # it; the residual difference of scale spreads either side.
        sx, sy = x_size / out_w, y_size / out_h
        u = (cx - x_first + 0.5 * scale_x) / sx - 0.5 - w / 2
        v = (cy - y_first + 0.5 * scale_y) / sy - 0.5 - h / 2
        result.append(_shift(image, u, v, (w, h), (out_w, out_h)))
    if prepared.band is not None:
        band = prepared.band
        result[0].paste(band.y, (0, band.top), band.alpha)
        result[1].paste(band.u, (0, band.top // 2), band.alpha_half)
        result[2].paste(band.v, (0, band.top // 2), band.alpha_half)
    return result


def _compose(
    layers: list[tuple[float, float, Future[_Prepared]]],
    *,
    width: int,
    height: int,
    pts: int,
    time_base: Fraction,
) -> av.VideoFrame:
    """One frame: its shot, or two blended mid-crossfade, as an encoder-ready frame.
    ``layers``: (weight, eased progress, the shot) per shot shown."""
    drawn = []
    for weight, e, prepared in layers:
        drawn.append((weight, _draw_shot(prepared.result(), e, width, height)))
    planes = drawn[0][1]
    if len(drawn) == 2:
        alpha = drawn[1][0]
        planes = [Image.blend(a, b, alpha) for a, b in zip(planes, drawn[1][1], strict=True)]
    frame = av.VideoFrame(width, height, PIX_FMT)
    for image, plane in zip(planes, frame.planes, strict=True):
        if plane.line_size == image.width:
            plane.update(image.tobytes())
        else:
            target = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)  # type: ignore[call-overload]
            target[: image.height, : image.width] = np.asarray(image)
    frame.pts = pts
    frame.time_base = time_base
    return frame


def render_video(
    timeline: Timeline, out: Path, *, first_frame: int = 0, frame_count: int | None = None
) -> RenderedChunk:
    """Video only (no audio): H.264 yuv420p MP4 of frames [first_frame, first_frame+frame_count)
    of the timeline. Every frame is a pure function of its index, so chunks rendered separately
    and joined equal one render. Only the shots visible in those frames are opened."""
    total = timeline.frame_count()
    count = total - first_frame if frame_count is None else frame_count
    if first_frame < 0 or count < 1 or first_frame + count > total:
        raise RenderError(
            f"chunk: frames {first_frame}..{first_frame + count - 1} are not within the "
            f"timeline's 0..{total - 1}"
        )
    schedule = _Schedule(timeline)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _encode_frames(timeline, schedule, out, first_frame, count)
    except BaseException:
        out.unlink(missing_ok=True)  # (never a partial chunk that looks whole)
        raise
    release_memory()
    return RenderedChunk(out, first_frame, count, out.stat().st_size)


def _encode_frames(
    timeline: Timeline, schedule: _Schedule, out: Path, first_frame: int, count: int
) -> None:
    """The frames composed by the pool, in order, into libx264 and the MP4 muxer."""
    total = timeline.frame_count()
    fps, width, height = timeline.fps, timeline.width, timeline.height
    time_base = Fraction(1, fps)
    last_frame = first_frame + count - 1
    with av.open(str(out), "w", format="mp4") as container:
        container.metadata["comment"] = (
            f"stories-chunk first_frame={first_frame} frames={count} total={total}"
        )
        stream = container.add_stream("libx264", rate=fps, options=encoder_options(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, PIX_FMT
        stream.time_base = time_base
        context = stream.codec_context
        context.color_primaries = context.color_trc = context.colorspace = _BT709
        context.color_range = _MPEG_RANGE
        # Frame threads, as the ffmpeg CLI uses: PyAV defaults encoders to slice threads, which
        # make every encode call wait for its frame and leave the cores half idle.
        context.thread_type = "FRAME"
        context.thread_count = 0

        def encode(frame: av.VideoFrame | None) -> None:
            for packet in stream.encode(frame):
                container.mux(packet)

        with ThreadPoolExecutor(WORKERS, thread_name_prefix="story-frame") as pool:
            loaded: dict[int, Future[_Prepared]] = {}
            pending: deque[Future[av.VideoFrame]] = deque()

            def drain() -> None:
                while pending:
                    encode(pending.popleft().result())

            def load(k: int) -> None:
                loaded[k] = pool.submit(_prepare, timeline.shots[k], timeline)

            for index in range(first_frame, last_frame + 1):
                layers = schedule.layers(index)
                wanted = {k for k, _ in layers}
                stale = [k for k in loaded if k < min(wanted)]  # never needed again
                if stale:
                    drain()  # (the frames still drawing them finish first)
                    for k in stale:
                        loaded.pop(k).result()  # re-raises a failed load
                    release_memory()
                for k in sorted(wanted - loaded.keys()):
                    load(k)
                # The next shot loads while this one shows alone, if a frame here needs it.
                following = max(wanted) + 1
                if (
                    len(loaded) < 2
                    and following < len(timeline.shots)
                    and following not in loaded
                    and schedule.first_frame_of(following) <= last_frame
                ):
                    load(following)
                entries = [(w, schedule.progress(k, index), loaded[k]) for k, w in layers]
                pending.append(
                    pool.submit(
                        _compose,
                        entries,
                        width=width,
                        height=height,
                        pts=index - first_frame,
                        time_base=time_base,
                    )
                )
                if len(pending) >= QUEUE_FRAMES:
                    encode(pending.popleft().result())
            drain()
            for future in loaded.values():
                future.result()
            loaded.clear()
        encode(None)


# -- the narration -------------------------------------------------------------------------------
def _open_media(path: Path, what: str) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except FileNotFoundError as err:
        raise RenderError(f"{what}: the file is missing") from err
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise RenderError(f"{what}: not a media file FFmpeg can read ({err})") from err


def narration_duration(path: Path) -> float:
    """Duration of the first audio stream, by decoding it (container durations lie); RenderError
    "narration: ..." if the file is missing, not decodable, or has no audio stream.

    The decoded samples are what the join encodes (an MP3's encoder delay and an M4A's
    priming are already dropped by the decoders), so the video lasts as long as what is heard.
    """
    with _open_media(path, "narration") as container:
        if not container.streams.audio:
            raise RenderError("narration: the file has no audio stream")
        stream = container.streams.audio[0]
        samples, rate = 0, 0
        try:
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
        except (av.error.FFmpegError, ValueError) as err:
            raise RenderError(f"narration: the audio cannot be decoded ({err})") from err
    if samples == 0 or rate <= 0:
        raise RenderError("narration: the audio stream decodes to no sound")
    return samples / rate


class _Samples:
    """Decoded audio cut into the AAC encoder's frames (1024 samples), trimmed or padded with
    silence to exactly ``wanted`` samples; holds at most one frame plus one decoded frame."""

    def __init__(self, stream: av.AudioStream, layout: str, rate: int, wanted: int) -> None:
        self.stream, self.layout, self.rate, self.wanted = stream, layout, rate, wanted
        self.channels = 1 if layout == "mono" else 2
        self.parts: list[np.ndarray] = []
        self.buffered = 0
        self.sent = 0
        self.size = stream.codec_context.frame_size or 1024

    def _frame(self, samples: np.ndarray) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=self.layout
        )
        frame.sample_rate = self.rate
        frame.pts = self.sent
        frame.time_base = Fraction(1, self.rate)
        self.sent += samples.shape[1]
        return frame

    def add(self, samples: np.ndarray) -> Iterator[av.AudioFrame]:
        room = self.wanted - self.sent - self.buffered
        if room <= 0:
            return
        samples = samples[:, :room]
        self.parts.append(samples)
        self.buffered += samples.shape[1]
        if self.buffered < self.size:
            return
        joined = np.concatenate(self.parts, axis=1)
        whole = joined.shape[1] // self.size * self.size
        for start in range(0, whole, self.size):
            yield self._frame(joined[:, start : start + self.size])
        rest = joined[:, whole:]
        self.parts, self.buffered = ([rest] if rest.shape[1] else []), rest.shape[1]

    def finish(self) -> Iterator[av.AudioFrame]:
        missing = self.wanted - self.sent - self.buffered
        if missing > 0:
            yield from self.add(np.zeros((self.channels, missing), np.float32))
        if self.buffered:
            yield self._frame(np.concatenate(self.parts, axis=1))
            self.parts, self.buffered = [], 0


def _audio_packets(
    source: av.container.InputContainer, stream: av.AudioStream, wanted: int
) -> Iterator[av.Packet]:
    layout = "mono" if stream.layout.nb_channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=stream.rate)
    samples = _Samples(stream, layout, stream.rate, wanted)
    try:
        for decoded in source.decode(source.streams.audio[0]):
            for frame in resampler.resample(decoded):
                for ready in samples.add(frame.to_ndarray()):
                    yield from stream.encode(ready)
    except (av.error.FFmpegError, ValueError) as err:
        raise RenderError(f"narration: the audio cannot be decoded ({err})") from err
    for frame in resampler.resample(None):
        for ready in samples.add(frame.to_ndarray()):
            yield from stream.encode(ready)
    for ready in samples.finish():
        yield from stream.encode(ready)
    yield from stream.encode(None)


# -- the join ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ChunkFacts:
    label: str
    path: Path
    first_frame: int
    frames: int
    total: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    extradata: bytes
    time_base: Fraction
    rate: Fraction | None


def _chunk_facts(index: int, path: Path) -> _ChunkFacts:
    label = f"chunk {index} ({path.name})"
    with _open_media(path, label) as container:
        if not container.streams.video:
            raise RenderError(f"{label}: has no video stream")
        stream = container.streams.video[0]
        tag = CHUNK_TAG.match(str(container.metadata.get("comment", "")))
        if tag is None:
            raise RenderError(f"{label}: not a chunk rendered by render_video (no chunk tag)")
        context = stream.codec_context
        first, frames, total = (int(g) for g in tag.groups())
        if stream.frames != frames:
            raise RenderError(
                f"{label}: holds {stream.frames} frames, not the {frames} it was rendered with "
                "(frames are missing)"
            )
        return _ChunkFacts(
            label=label,
            path=path,
            first_frame=first,
            frames=frames,
            total=total,
            codec=context.name,
            width=stream.width,
            height=stream.height,
            pix_fmt=str(stream.format.name if stream.format else context.pix_fmt),
            extradata=bytes(context.extradata or b""),
            time_base=stream.time_base if stream.time_base is not None else Fraction(0),
            rate=Fraction(stream.average_rate) if stream.average_rate else None,
        )


def _check_chunks(found: list[_ChunkFacts], timeline: Timeline) -> None:
    """Refuse chunks that would not concatenate into the timeline's video, naming why."""
    total = timeline.frame_count()
    reference = found[0]
    expected = 0
    for chunk in found:
        if chunk.codec != "h264" or chunk.pix_fmt != PIX_FMT:
            raise RenderError(f"{chunk.label}: {chunk.codec} {chunk.pix_fmt}, not h264 {PIX_FMT}")
        if (chunk.width, chunk.height) != (timeline.width, timeline.height):
            raise RenderError(
                f"{chunk.label}: {chunk.width}x{chunk.height}, not the timeline's "
                f"{timeline.width}x{timeline.height} (sizes differ)"
            )
        if chunk.rate is not None and chunk.rate != timeline.fps:
            raise RenderError(f"{chunk.label}: {chunk.rate} fps, not the timeline's {timeline.fps}")
        if chunk.time_base != reference.time_base:
            raise RenderError(
                f"{chunk.label}: time base {chunk.time_base}, unlike {reference.label}'s "
                f"{reference.time_base}"
            )
        if chunk.extradata != reference.extradata:
            raise RenderError(
                f"{chunk.label}: its H.264 parameter sets (extradata) differ from "
                f"{reference.label}'s: encoded with other settings, it cannot be copied after it"
            )
        if chunk.total != total:
            raise RenderError(
                f"{chunk.label}: rendered for a timeline of {chunk.total} frames, not {total}"
            )
        if chunk.first_frame != expected:
            if chunk.first_frame > expected:
                gap = f"frames {expected}..{chunk.first_frame - 1} are missing"
            else:
                gap = f"it overlaps the chunk before, which ends at frame {expected - 1}"
            raise RenderError(f"{chunk.label}: starts at frame {chunk.first_frame}; {gap}")
        expected += chunk.frames
    if expected != total:
        raise RenderError(f"chunks: frames {expected}..{total - 1} are missing")


def _video_packets(
    found: list[_ChunkFacts], stream: av.VideoStream, fps: int
) -> Iterator[av.Packet]:
    """Every chunk's packets in order, re-timed onto one timeline, their bytes untouched."""
    time_base = Fraction(1, fps)
    offset = 0
    for chunk in found:
        seen: set[int] = set()
        with _open_media(chunk.path, chunk.label) as container:
            source = container.streams.video[0]
            unit = (source.time_base or Fraction(1, fps)) * fps
            for packet in container.demux(source):
                if packet.pts is None or packet.size == 0:
                    continue  # (the demuxer's end-of-stream packet)
                pts = round(packet.pts * unit)
                dts = round(packet.dts * unit) if packet.dts is not None else pts
                seen.add(pts)
                packet.pts, packet.dts, packet.duration = pts + offset, dts + offset, 1
                packet.time_base = time_base
                packet.stream = stream
                yield packet
        if seen != set(range(chunk.frames)):
            raise RenderError(
                f"{chunk.label}: its packets do not cover frames 0..{chunk.frames - 1} "
                "(frames are missing)"
            )
        offset += chunk.frames


def _seconds(packet: av.Packet) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    base = packet.time_base
    return (stamp or 0) * base.numerator / base.denominator if base else 0.0


def _mux(found: list[_ChunkFacts], narration: Path, out: Path, timeline: Timeline) -> None:
    """The chunks' packets and the narration's AAC, interleaved by time, into ``out``."""
    fps = timeline.fps
    with _open_media(narration, "narration") as source:
        if not source.streams.audio:
            raise RenderError("narration: the file has no audio stream")
        heard = source.streams.audio[0]
        channels = heard.codec_context.channels or 2
        rate = heard.codec_context.sample_rate or AUDIO_DEFAULT_RATE
        rate = rate if rate in AUDIO_RATES else AUDIO_DEFAULT_RATE
        layout = "mono" if channels == 1 else "stereo"
        wanted = round(timeline.duration_s * rate)
        with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as output:
            with _open_media(found[0].path, found[0].label) as first:
                video = output.add_stream_from_template(first.streams.video[0])
            video.time_base = Fraction(1, fps)
            audio = output.add_stream("aac", rate=rate, layout=layout)
            audio.bit_rate = AUDIO_BITRATE[1 if layout == "mono" else 2]
            streams: list[Iterator[av.Packet]] = [
                _video_packets(found, video, fps),
                _audio_packets(source, audio, wanted),
            ]
            heads: list[av.Packet | None] = [next(s, None) for s in streams]
            while True:  # interleaved by time, so a player streams the file from its start
                ready = [(i, head) for i, head in enumerate(heads) if head is not None]
                if not ready:
                    break
                which, packet = min(ready, key=lambda item: _seconds(item[1]))
                output.mux(packet)
                heads[which] = next(streams[which], None)


def join(chunks: Sequence[Path], narration: Path, out: Path, *, timeline: Timeline) -> JoinedVideo:
    """Concatenate the chunks' H.264 packets in order without re-encoding, encode the narration
    to AAC trimmed (or padded with silence) to the timeline's duration, and mux both into one
    MP4 with the moov atom at the front, interleaved by time.

    Refuses (``RenderError``) chunks whose codec parameters, extradata, size or time base
    differ, or that leave frames missing. The narration is always re-encoded, whatever its
    codec: an AAC narration could be copied, but not cut at the timeline's end on a sample, and
    one codec path is one thing to test. Mono stays mono (128 kb/s), anything else is stereo
    (160 kb/s), at the source's rate when AAC takes it well (32, 44.1, 48 kHz), else 48 kHz.
    """
    if not chunks:
        raise RenderError("chunks: none to join")
    found = [_chunk_facts(index, Path(path)) for index, path in enumerate(chunks)]
    _check_chunks(found, timeline)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _mux(found, narration, out, timeline)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    # The published checksum of the video (S3 verifies it on upload): integrity, not secrecy.
    digest = hashlib.sha256(usedforsecurity=False)
    with out.open("rb") as written:
        for block in iter(lambda: written.read(1 << 20), b""):
            digest.update(block)
    with av.open(str(out)) as probe:
        duration = (probe.duration or 0) / av.time_base
    return JoinedVideo(
        out, timeline.frame_count(), duration, out.stat().st_size, digest.hexdigest()
    )
