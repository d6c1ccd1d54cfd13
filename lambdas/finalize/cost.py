"""Estimated cost of one asset from unit prices held in the deployment's configuration.

Not a bill: a per-asset estimate that lets operators see what a campaign costs before the
monthly invoice does. Prices arrive in the function's settings (``UNIT_PRICES``, from
``stacks/config.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.shared.settings import SettingsError

# Rekognition bills per started minute of video, per feature.
ANALYSIS_FEATURES = 3
# Transcribe bills per second of audio, with a minimum of 15 seconds per job.
TRANSCRIBE_MIN_S = 15.0
# State transitions per asset, measured by benchmarks/latency.py and orchestration.py on the
# synthesized workflow: at most 10 inside the Map (probe, plan, the choice of what to analyse,
# the proxy job when the source is not Rekognition-readable, the Parallel with the remaining job
# and the three analyses, finalize; 9 for an H.264 MP4 source; the same for a 1-minute and a
# 60-minute clip: no polling) plus 6 per run shared by the batch (2 by default). The optional
# Summarize step (1 transition and a few seconds of a 256 MB function: ~$0.00004) is not
# counted; its ``SummaryCostUSD`` counts the tokens, which the dashboard adds to this estimate.
TRANSITIONS_PER_ASSET = 13
# GB-seconds of Lambda per asset: probe (1 GB for about a second), plan, three starts, three
# callbacks, finalize (upper bound).
LAMBDA_GB_SECONDS_PER_ASSET = 21.0


@dataclass(frozen=True)
class UnitPrices:
    """USD list prices for the estimate (us-east-1, on-demand).

    The same class is the configuration field ``prices`` (``stacks/config.py``), whose values the
    finalize construct passes in ``UNIT_PRICES``, so the two ends cannot disagree on a name.
    """

    rekognition_per_minute_per_feature: float = 0.10
    mediaconvert_per_normalized_minute: float = 0.0075
    stepfunctions_per_transition: float = 0.000025
    lambda_per_gb_second: float = 0.0000166667
    # Batch transcription, tier 1 (billed per second, 15 s at least per job).
    transcribe_per_minute: float = 0.024
    # Rekognition Image, first million images a month, per image per API call.
    rekognition_image_per_call: float = 0.001

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise SettingsError(f"prices.{name}: must be a number >= 0, got {value!r}")

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> UnitPrices | None:
        """None when no prices are configured: the estimate is then simply not emitted."""
        if not data:
            return None
        try:
            return cls(**{name: float(data[name]) for name in cls.__dataclass_fields__})
        except KeyError as err:
            raise ValueError(f"UNIT_PRICES is missing {err.args[0]!r}") from err


# An image's path: choice, render, analyse, finalize and the Map's own states.
IMAGE_TRANSITIONS_PER_ASSET = 6
# The images step at 3,584 MB for about 2 s on a 12 MP photo, plus the small steps.
IMAGE_LAMBDA_GB_SECONDS = 8.0


def estimate_image_usd(prices: UnitPrices, *, calls: int) -> float:
    """Rekognition's image calls + orchestration + compute for one image."""
    return round(
        calls * prices.rekognition_image_per_call
        + IMAGE_TRANSITIONS_PER_ASSET * prices.stepfunctions_per_transition
        + IMAGE_LAMBDA_GB_SECONDS * prices.lambda_per_gb_second,
        6,
    )


def estimate_usd(
    duration_s: float,
    prices: UnitPrices,
    *,
    features: int = ANALYSIS_FEATURES,
    transcoded: bool = True,
    transcribed_s: float = 0.0,
) -> float:
    """Analysis + transcode (SD/HD normalized minutes ~ video minutes x renditions) + speech +
    overhead. A reprocess analyses ``features`` of the three again and transcodes nothing;
    ``transcribed_s`` is the audio a completed transcription was billed for."""
    minutes = math.ceil(max(duration_s, 0.0) / 60)
    analysis = minutes * features * prices.rekognition_per_minute_per_feature
    # MP4 proxy + up to four HLS renditions; MediaConvert normalizes HD at 2x SD minutes.
    transcode = minutes * 5 * 2 * prices.mediaconvert_per_normalized_minute if transcoded else 0.0
    speech = (
        max(transcribed_s, TRANSCRIBE_MIN_S) / 60 * prices.transcribe_per_minute
        if transcribed_s > 0
        else 0.0
    )
    orchestration = TRANSITIONS_PER_ASSET * prices.stepfunctions_per_transition
    compute = LAMBDA_GB_SECONDS_PER_ASSET * prices.lambda_per_gb_second
    return round(analysis + transcode + speech + orchestration + compute, 6)
