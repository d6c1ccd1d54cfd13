"""What the summary handler reads from its environment (``constructs_lib/notify.py`` fills it)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import Settings


@dataclass(frozen=True)
class SummarySettings(Settings):
    alerts_topic_arn: str
    # Names the deployment in every subject line, so two environments' mails are told apart.
    deployment: str = "media-pipeline"
