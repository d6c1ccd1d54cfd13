"""What the analysis handlers read from their environment (filled by their construct)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import CatalogSettings, between, setting

DEFAULT_MIN_LABEL_CONFIDENCE = 70.0
# Moderation errs on the side of flagging: a reviewer can dismiss a flag, not find a missed one.
DEFAULT_MIN_MODERATION_CONFIDENCE = 50.0


@dataclass(frozen=True)
class StartSettings(CatalogSettings):
    """The start function also names the topic and role Rekognition notifies through."""

    rekognition_topic_arn: str = setting()
    rekognition_role_arn: str = setting()
    min_label_confidence: float = setting(
        default=DEFAULT_MIN_LABEL_CONFIDENCE, check=between(0, 100)
    )
    min_moderation_confidence: float = setting(
        default=DEFAULT_MIN_MODERATION_CONFIDENCE, check=between(0, 100)
    )

    def min_confidence(self, feature: str) -> float | None:
        return {
            "labels": self.min_label_confidence,
            "moderation": self.min_moderation_confidence,
        }.get(feature)
