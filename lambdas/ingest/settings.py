"""What the ingest handler reads from its environment (``constructs_lib/ingest.py`` fills it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdas.ingest.errors import IngestConfigurationError
from lambdas.shared.settings import CatalogSettings, at_least, setting

DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
# Rekognition Video rejects anything longer than 6 hours.
DEFAULT_MAX_DURATION_S = 6 * 3600
DEFAULT_SOURCES = ("commons", "pixabay")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SOURCE_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def _email(value: str) -> str | None:
    return None if _EMAIL_RE.match(value) else "must be an e-mail address"


def _source_names(value: tuple[str, ...]) -> str | None:
    bad = [name for name in value if not _SOURCE_RE.match(name)]
    return f"has invalid names {bad}" if bad else None


@dataclass(frozen=True)
class Settings(CatalogSettings):
    error = IngestConfigurationError

    raw_bucket: str
    config_parameter: str
    contact_email: str = setting(check=_email)
    pixabay_secret_arn: str | None = None
    max_file_bytes: int = setting(default=DEFAULT_MAX_FILE_BYTES, check=at_least(1))
    max_duration_s: int = setting(default=DEFAULT_MAX_DURATION_S, check=at_least(1))
    sources: tuple[str, ...] = setting(default=DEFAULT_SOURCES, check=_source_names)
