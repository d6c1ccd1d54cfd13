"""A story project's manifest: what a person (or the jobs API) asks to be rendered.

The manifest is the last file of a project to arrive (``projects/<project_id>/manifest.json``);
its arrival starts the render. It is a published JSON Schema (``story_manifest.schema.json``,
made from these models: ``python -m lambdas.shared.story_manifest`` writes it, and a test
keeps the two equal), so a browser or an editor can check a manifest before uploading it.
pydantic (already in the shared layer for the jobs API) checks the shape and the limits, and
refuses unknown fields (a typo such as ``"duraton_s"`` would otherwise pass silently and render
something else); ``timeline`` then checks what a schema cannot: that the segments follow each
other without gaps or overlaps and end within the narration. It lives in ``shared`` because the
jobs API checks a manifest too. Every message names the segment or the field.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lambdas.shared.errors import InvalidInput, bounded, shown
from lambdas.shared.media_types import image_type_of

SCHEMA_VERSION: Literal["1.0"] = "1.0"
SCHEMA_PATH = Path(__file__).with_name("story_manifest.schema.json")
PROJECTS_PREFIX = "projects/"
VIDEOS_PREFIX = "videos/"
MANIFEST_NAME = "manifest.json"
# A project id is one path segment: lowercase letters, digits and dashes, so it is safe in a key,
# an execution name and a file name alike.
PROJECT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_IMAGE_NAME_RE = re.compile(r"^images/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/opus",
}
AUDIO_EXTENSIONS = tuple(AUDIO_TYPES)
FRAME_RATES = (24, 25, 30, 50, 60)
# 1080p (landscape or portrait) is the largest output; sides are even (yuv420p).
MAX_SIDE, MIN_SIDE = 1920, 160
MAX_OUTPUT_PIXELS = 1920 * 1080
MAX_CAPTION_CHARS = 200
MIN_SHOT_S = 0.2
# Tolerance for times that land between frames (a narration of 59.98 s, segments to 60 s).
FRAME_TOLERANCE_S = 1 / 24


class ManifestError(InvalidInput):
    """The manifest is wrong; the message names the segment or field. Retrying cannot help."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Focus(_Strict):
    """Where the camera moves towards, as a fraction of the upright image (0,0 top left)."""

    x: Annotated[float, Field(ge=0.0, le=1.0)]
    y: Annotated[float, Field(ge=0.0, le=1.0)]


class Segment(_Strict):
    image: Annotated[
        str,
        Field(
            description="The image's key in the project, images/<name> with a known image "
            "extension (JPEG, PNG, WebP, AVIF, HEIC, TIFF, GIF)",
            max_length=135,
        ),
    ]
    start_s: Annotated[
        float | None,
        Field(ge=0.0, description="When it appears; absent: where the segment before it ends"),
    ] = None
    duration_s: Annotated[
        float | Literal["until_next"],
        Field(
            description='Seconds, or "until_next": until the next segment starts (the last '
            "one: until the narration ends)"
        ),
    ] = "until_next"
    caption: Annotated[str | None, Field(max_length=MAX_CAPTION_CHARS)] = None
    focus: Annotated[
        Focus | None,
        Field(
            description="Where to pan to; absent: the largest face or object Rekognition "
            "finds, else the centre"
        ),
    ] = None
    zoom: Literal["in", "out"] = "in"

    @field_validator("image")
    @classmethod
    def _image_key(cls, value: str) -> str:
        if not _IMAGE_NAME_RE.match(value) or ".." in value:
            raise ValueError(
                "must be images/<name> (letters, digits, '.', '_', '-'; no folders or '..')"
            )
        if image_type_of(PurePosixPath(value).name) is None:
            raise ValueError("is not a known image type (JPEG, PNG, WebP, AVIF, HEIC, TIFF, GIF)")
        return value

    @field_validator("duration_s")
    @classmethod
    def _duration(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and value < MIN_SHOT_S:
            raise ValueError(f"must be at least {MIN_SHOT_S} s")
        return value


class Output(_Strict):
    width: Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=2)] = 1280
    height: Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=2)] = 720
    fps: Literal[24, 25, 30, 50, 60] = 30


class Manifest(_Strict):
    """A Ken Burns story: images in time with a narration."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    title: Annotated[str | None, Field(max_length=200)] = None
    audio: Annotated[
        str,
        Field(description="The narration's key in the project: audio.<ext>", max_length=16),
    ]
    output: Output = Output()
    transition_s: Annotated[float, Field(ge=0.0, le=3.0)] = 0.5
    zoom_ratio: Annotated[float, Field(ge=1.0, le=2.0)] = 1.25
    segments: Annotated[list[Segment], Field(min_length=1)]
    send_to_pipeline: Annotated[
        bool,
        Field(description="Also label the rendered video: it enters the pipeline as an upload"),
    ] = False
    author: Annotated[str | None, Field(max_length=200)] = None
    license: Annotated[str | None, Field(max_length=200)] = None

    @field_validator("audio")
    @classmethod
    def _audio_key(cls, value: str) -> str:
        stem, dot, extension = value.partition(".")
        if stem != "audio" or not dot or f".{extension.lower()}" not in AUDIO_EXTENSIONS:
            raise ValueError(f"must be audio.<ext> with <ext> one of {list(AUDIO_EXTENSIONS)}")
        return value

    @field_validator("output")
    @classmethod
    def _output_size(cls, value: Output) -> Output:
        if value.width * value.height > MAX_OUTPUT_PIXELS:
            raise ValueError(
                f"{value.width}x{value.height} is larger than 1080p ({MAX_OUTPUT_PIXELS} pixels)"
            )
        return value


def _where(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not item.startswith(("function-", "literal[")) and item not in ("float", "str"):
            parts.append(f".{item}" if parts else item)
    return "".join(parts) or "manifest"


def parse(body: bytes, *, max_bytes: int, max_segments: int) -> Manifest:
    """The manifest, or ``ManifestError`` naming the first problems (field by field)."""
    if len(body) > max_bytes:
        raise ManifestError(f"manifest: {len(body)} bytes is over the limit of {max_bytes}")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"manifest: not JSON ({err})") from err
    if not isinstance(data, dict):
        raise ManifestError("manifest: must be a JSON object")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as err:
        problems = []
        for item in err.errors()[:5]:
            where = _where(tuple(item["loc"]))
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = "is not a manifest field"
            problems.append(f"{where}: {message}")
        raise ManifestError("manifest: " + "; ".join(problems)) from err
    if len(manifest.segments) > max_segments:
        raise ManifestError(
            f"manifest.segments: {len(manifest.segments)} segments, at most {max_segments}"
        )
    return manifest


@dataclass(frozen=True)
class PlannedShot:
    """One segment placed on the timeline (seconds), as the renderer takes it."""

    index: int
    image: str
    start_s: float
    end_s: float
    caption: str | None
    focus: tuple[float, float] | None
    zoom: Literal["in", "out"]

    @property
    def name(self) -> str:
        return segment_name(self.index, self.image)


def segment_name(index: int, image: str) -> str:
    """How messages name a segment: its number as a person counts (from 1) and its image."""
    return f"segment {index + 1} ({image})"


def timeline(manifest: Manifest, narration_s: float) -> tuple[PlannedShot, ...]:
    """Each segment's start and end, contiguous from 0 to the narration's end.

    A segment starts where the one before ends unless it says when; saying so may not leave a
    gap or overlap. ``until_next`` runs to the next segment's start (the last: the narration's
    end). A last segment that ends before the narration holds its image to the end, so the
    video always lasts as long as its narration; one that ends after it is refused.
    """
    segments = manifest.segments
    shots: list[PlannedShot] = []
    previous_end = 0.0
    for index, segment in enumerate(segments):
        name = segment_name(index, segment.image)
        start = previous_end if segment.start_s is None else segment.start_s
        if index == 0 and start > FRAME_TOLERANCE_S:
            raise ManifestError(f"{name}: the first segment must start at 0 s, not {start:g} s")
        if start < previous_end - FRAME_TOLERANCE_S:
            raise ManifestError(
                f"{name}: starts at {start:g} s, before the segment before it ends "
                f"({previous_end:g} s); segments may not overlap"
            )
        if start > previous_end + FRAME_TOLERANCE_S:
            raise ManifestError(
                f"{name}: starts at {start:g} s, leaving a gap after {previous_end:g} s; "
                'give the segment before it duration_s "until_next"'
            )
        start = previous_end
        last = index == len(segments) - 1
        if segment.duration_s == "until_next":
            if last:
                end = narration_s
            else:
                following = segments[index + 1].start_s
                if following is None:
                    raise ManifestError(
                        f'{name}: duration_s "until_next" needs the next segment\'s start_s'
                    )
                end = following
        else:
            end = start + float(segment.duration_s)
        if end > narration_s + FRAME_TOLERANCE_S:
            raise ManifestError(
                f"{name}: ends at {end:g} s, past the end of the narration ({narration_s:.3f} s)"
            )
        end = min(end, narration_s)
        if last:
            end = narration_s
        if end - start < MIN_SHOT_S:
            raise ManifestError(
                f"{name}: lasts {max(end - start, 0.0):.3f} s, at least {MIN_SHOT_S} s is needed"
            )
        focus = None if segment.focus is None else (segment.focus.x, segment.focus.y)
        shots.append(
            PlannedShot(index, segment.image, start, end, segment.caption, focus, segment.zoom)
        )
        previous_end = end
    return tuple(shots)


def check_project_id(value: object) -> str:
    if not isinstance(value, str) or not PROJECT_ID_RE.match(value):
        raise ManifestError(
            f"project id {shown(value)} must be 3-63 lowercase letters, digits and dashes "
            "(one path segment)"
        )
    return value


def project_of_manifest_key(key: str) -> str:
    """``projects/<project_id>/manifest.json`` -> ``project_id``; anything else is refused."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != PROJECTS_PREFIX or parts[2] != MANIFEST_NAME:
        raise ManifestError(
            f"key {shown(key)} is not a manifest: projects/<project_id>/manifest.json"
        )
    return check_project_id(parts[1])


def project_key(project_id: str, name: str) -> str:
    return f"{PROJECTS_PREFIX}{project_id}/{name}"


def final_video_key(project_id: str) -> str:
    return f"{VIDEOS_PREFIX}{project_id}_final_video.mp4"


def final_record_key(project_id: str) -> str:
    return f"{VIDEOS_PREFIX}{project_id}_final_video.json"


def status_key(project_id: str) -> str:
    return f"{PROJECTS_PREFIX}{project_id}/status.json"


def work_prefix(project_id: str, run: str) -> str:
    """Where one run's intermediate files go (its plan and chunks), removed when it ends."""
    return f"{PROJECTS_PREFIX}{project_id}/work/{run}/"


def schema() -> dict[str, Any]:
    document = Manifest.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://schemas.media-pipeline.example/story-manifest-1.0.json",
        **document,
    }


def message_of(err: BaseException) -> str:
    return bounded(str(err))


if __name__ == "__main__":
    SCHEMA_PATH.write_text(json.dumps(schema(), indent=2, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
