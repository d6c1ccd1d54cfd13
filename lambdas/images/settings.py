"""What the images handler reads from its environment (``constructs_lib/images.py`` fills it)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.media_types import MAX_IMAGE_BYTES
from lambdas.shared.settings import Settings, at_least, setting


@dataclass(frozen=True)
class ImagesSettings(Settings):
    # Where the renditions are written (beside the asset's other processed outputs).
    processed_bucket: str = setting()
    # The largest source read whole into memory; larger ones are refused before they are read.
    max_source_bytes: int = setting(default=MAX_IMAGE_BYTES, check=at_least(1024))


@dataclass(frozen=True)
class ImageAnalysisSettings(Settings):
    """The analysis step reads only its input: the rendition to analyse names its bucket."""

    label = "image analysis"
