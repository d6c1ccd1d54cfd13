"""What the stories handlers read from their environment (``constructs_lib/stories.py`` fills it).

Limits are the project's own (``stories`` in the environment's configuration): a manifest and a
narration are read whole, so both are bounded before they are read.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.media_types import MAX_IMAGE_BYTES
from lambdas.shared.settings import Settings, at_least, between, setting

KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True)
class StoriesSettings(Settings):
    """Every stories function reads and writes the project bucket; nothing else in common."""

    label = "stories"
    projects_bucket: str = setting()


@dataclass(frozen=True)
class PlanSettings(StoriesSettings):
    max_manifest_bytes: int = setting(default=256 * KIB, check=between(1 * KIB, 1 * MIB))
    max_segments: int = setting(default=500, check=between(1, 5000))
    max_duration_s: int = setting(default=1800, check=between(1, 4 * 3600))
    max_audio_bytes: int = setting(default=200 * MIB, check=at_least(1 * KIB))
    max_image_bytes: int = setting(default=MAX_IMAGE_BYTES, check=at_least(1 * KIB))
    # Frames per chunk: each is one render invocation (a Map iteration), well within 15 min.
    chunk_seconds: int = setting(default=60, check=between(5, 600))


@dataclass(frozen=True)
class JoinSettings(StoriesSettings):
    # Where a story goes when its manifest asks for it to be labelled: an upload of the raw
    # bucket (under uploads/stories/, which the upload trigger starts the pipeline for).
    raw_bucket: str = setting()


@dataclass(frozen=True)
class StarterSettings(StoriesSettings):
    # The stories state machine; a Ref would make the machine and its starter depend on each
    # other only if the machine invoked it, which it does not.
    state_machine_arn: str = setting()
