"""The function's configuration, read once from its environment (set by the CDK construct)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.ingest.errors import IngestConfigurationError

DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
# Rekognition Video rejects anything longer than 6 hours.
DEFAULT_MAX_DURATION_S = 6 * 3600
DEFAULT_SOURCES = ("commons", "pixabay")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SOURCE_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


@dataclass(frozen=True)
class Settings:
    raw_bucket: str
    catalog_table: str
    config_parameter: str
    contact_email: str
    pixabay_secret_arn: str | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_duration_s: int = DEFAULT_MAX_DURATION_S
    sources: tuple[str, ...] = DEFAULT_SOURCES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Fail with every missing or malformed variable named, so a bad deploy is obvious."""
        env = os.environ if env is None else env
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        def positive_int(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be a whole number, got {raw!r}")
                return default
            if value <= 0:
                problems.append(f"{name} must be positive, got {value}")
            return value

        raw_bucket = required("RAW_BUCKET")
        table = required("CATALOG_TABLE")
        parameter = required("CONFIG_PARAMETER")
        contact = required("CONTACT_EMAIL")
        if contact and not _EMAIL_RE.match(contact):
            problems.append(f"CONTACT_EMAIL must be an e-mail address, got {contact!r}")
        sources = (
            tuple(
                name.strip().lower() for name in env.get("SOURCES", "").split(",") if name.strip()
            )
            or DEFAULT_SOURCES
        )
        bad = [name for name in sources if not _SOURCE_RE.match(name)]
        if bad:
            problems.append(f"SOURCES has invalid names {bad}")
        settings = cls(
            raw_bucket=raw_bucket,
            catalog_table=table,
            config_parameter=parameter,
            contact_email=contact,
            pixabay_secret_arn=env.get("PIXABAY_SECRET_ARN", "").strip() or None,
            max_file_bytes=positive_int("MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES),
            max_duration_s=positive_int("MAX_DURATION_S", DEFAULT_MAX_DURATION_S),
            sources=tuple(dict.fromkeys(sources)),
        )
        if problems:
            raise IngestConfigurationError("ingest configuration: " + "; ".join(problems))
        return settings
