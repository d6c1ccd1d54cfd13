"""What the dead-letter analyzer reads from its environment
(``constructs_lib/dead_letter_analysis.py`` fills it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.shared.settings import Settings


@dataclass(frozen=True)
class AnalyzerSettings(Settings):
    # {queue name: {url, arn, kind, describes, via, target}}: the same registry the redrive
    # reads from the monitoring stack's DeadLetterQueues output.
    queues: dict[str, Any]
    processed_bucket: str
    alerts_topic_arn: str
    deployment: str = "media-pipeline"
