"""What the probe handler reads from its environment (``constructs_lib/probe.py`` fills it)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import Settings, at_least, between, setting

# Rekognition Video's limit, and so the pipeline's: a longer clip could never be analysed.
MAX_DURATION_S = 6 * 3600


@dataclass(frozen=True)
class ProbeSettings(Settings):
    # Longer clips are refused before any paid job (the ingest limit, the same value).
    max_duration_s: int = setting(check=between(1, MAX_DURATION_S))
    # The most a probe may read of one object: headers, an index, a frame or two (not the file).
    max_read_bytes: int = setting(default=32 * 1024 * 1024, check=at_least(1024 * 1024))
