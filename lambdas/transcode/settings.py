"""What the plan handler reads from its environment (``constructs_lib/transcode.py`` fills it).

(MediaConvert's job settings are data in ``job_settings/``; this is the function's configuration.)
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import CatalogSettings


@dataclass(frozen=True)
class PlanSettings(CatalogSettings):
    processed_bucket: str
    # Written into each job's user metadata, so EventBridge rules see only this deployment's jobs.
    deployment: str
