"""What the resolve handler reads from its environment (``constructs_lib/resolve.py`` fills it)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import Settings


@dataclass(frozen=True)
class ResolveSettings(Settings):
    config_parameter: str
    # Uploads are accepted only from this bucket (unset: any bucket, as in the handler tests).
    raw_bucket: str | None = None
