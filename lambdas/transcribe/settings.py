"""What the transcribe handlers read from their environment (filled by their construct)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import CatalogSettings, setting

# Transcribe's language identification needs at least two options; one language is passed as
# the job's LanguageCode instead.
MAX_LANGUAGE_OPTIONS = 5


def _languages(value: tuple[str, ...]) -> str | None:
    if not 1 <= len(value) <= MAX_LANGUAGE_OPTIONS:
        return f"must name 1 to {MAX_LANGUAGE_OPTIONS} language codes, got {len(value)}"
    return None


@dataclass(frozen=True)
class StartSettings(CatalogSettings):
    """The start function names its jobs after the deployment and writes into the processed
    bucket, identifying the language among ``languages``."""

    deployment: str = setting()
    processed_bucket: str = setting()
    languages: tuple[str, ...] = setting(check=_languages)
