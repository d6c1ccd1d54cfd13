"""Media sources behind one small interface.

A source is a module in this package with a ``create(context) -> Source`` function; the
``SOURCES`` environment variable lists which modules a deployment uses. Adding a third source is
one new module: no registry to edit, no change to the service or the handler.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import requests

from lambdas.ingest import values
from lambdas.ingest.budget import NO_DEADLINE, TimeBudget
from lambdas.ingest.errors import IngestConfigurationError
from lambdas.ingest.http import Download, HostPolicy, HttpClient
from lambdas.ingest.models import Candidate, Rejected
from lambdas.ingest.settings import Settings
from lambdas.ingest.values import INVALID_METADATA, InvalidValue

AGENT_NAME = "media-pipeline-ingest/1.0"
_MODULE_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
# A hit whose data trips over one of these while being read is skipped, not the whole search.
HIT_ERRORS = (InvalidValue, LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


class SearchCache(Protocol):
    def get(self, key: str) -> object:
        """A fresh cached payload, or None."""
        ...

    def put(self, key: str, payload: object) -> None: ...


@runtime_checkable
class Source(Protocol):
    """What the ingest service needs from a source: a name, hits, and a way to fetch a hit."""

    name: str
    # What the source can search for (``video``, ``image``).
    media_types: tuple[str, ...]

    def search(
        self, campaign: str, limit: int, media_type: str = "video"
    ) -> Iterator[Candidate | Rejected]:
        """Hits of ``media_type`` for a campaign, best first, lazily (pages are fetched as they
        are consumed).

        ``limit`` is how many new files the run wants in total; sources size pages with it.
        """
        ...

    def open(self, candidate: Candidate) -> Download:
        """Start downloading a candidate, following redirects only to the source's media hosts."""
        ...


@dataclass(frozen=True)
class SourceContext:
    """Everything a source may need, injected so tests and the benchmark can swap any of it."""

    settings: Settings
    read_secret: Callable[[str], str]
    cache: SearchCache
    sleep: Callable[[float], None] | None
    clock: Callable[[], float]
    session_factory: Callable[[], requests.Session] = requests.Session
    budget: TimeBudget = NO_DEADLINE

    @property
    def user_agent(self) -> str:
        """Wikimedia's policy: tool name/version, contact, library/version."""
        return (
            f"{AGENT_NAME} ({self.settings.contact_email}) python-requests/{requests.__version__}"
        )

    def http_client(self, source: str) -> HttpClient:
        return HttpClient(
            source=source,
            user_agent=self.user_agent,
            session=self.session_factory(),
            sleep=self.sleep,
            budget=self.budget,
        )


class HttpSource:
    """Base for sources that download over HTTP(S) from a fixed set of media hosts."""

    name: str = ""
    media_policy: HostPolicy = HostPolicy.of()

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def open(self, candidate: Candidate) -> Download:
        return self.http.open_stream(candidate.download_url, policy=self.media_policy)


def read_hit(
    source: str, source_id: str, label: str, parse: Callable[[], Candidate | Rejected]
) -> Candidate | Rejected:
    """``parse()``, or the hit's rejection with the reason: bad data in a hit never ends the search.

    ``label`` names the hit in the rejection as a person finds it in the source.
    """
    try:
        return parse()
    except InvalidValue as err:
        return Rejected(source, source_id, INVALID_METADATA, f"{label}: {err}")
    except HIT_ERRORS as err:
        return Rejected(
            source,
            source_id,
            INVALID_METADATA,
            f"{label}: unreadable hit ({type(err).__name__}: {values.shorten(str(err), 80)})",
        )


def create_source(name: str, context: SourceContext) -> Source:
    """Import ``lambdas.ingest.sources.<name>`` and build its source.

    Raises ``SourceNotConfigured`` (from the module) when credentials are missing.
    """
    if not _MODULE_RE.match(name) or name.startswith("_"):
        raise IngestConfigurationError(f"source name {name!r} is not a valid module name")
    module_name = f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise IngestConfigurationError(
            f"unknown source {name!r}: no module lambdas/ingest/sources/{name}.py"
        ) from err
    factory = getattr(module, "create", None)
    if not callable(factory):
        raise IngestConfigurationError(f"source module {name!r} has no create(context) function")
    source = factory(context)
    if not isinstance(source, Source):
        raise IngestConfigurationError(f"source module {name!r} did not build a Source")
    return source
