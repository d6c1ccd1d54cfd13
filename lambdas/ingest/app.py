"""Wiring: from a parsed event and injected AWS clients to a ``RunReport``.

Kept apart from ``handler.py`` so tests, the local run and the benchmark can call the same path
with their own clients, clock and sleep, without Powertools' Lambda context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import requests

from lambdas.ingest.adapters import AwsClients, S3SearchCache, SecretReader
from lambdas.ingest.budget import TimeBudget
from lambdas.ingest.events import SearchRequest, parse_event
from lambdas.ingest.service import Ingestor, RunReport
from lambdas.ingest.settings import Settings
from lambdas.ingest.sources import Source, SourceContext, create_source
from lambdas.shared.campaign_config import CampaignConfigStore
from lambdas.shared.catalog import Catalog


def process(
    event: object,
    *,
    settings: Settings,
    clients: AwsClients,
    time_left: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.time,
    session_factory: Callable[[], requests.Session] = requests.Session,
) -> RunReport:
    config_store = CampaignConfigStore(settings.config_parameter, client=clients.ssm)
    request = parse_event(event, config_store.load)
    budget = TimeBudget(time_left)
    ingestor = Ingestor(
        settings=settings,
        s3=clients.s3,
        catalog=Catalog(settings.catalog_table, resource=clients.dynamodb),
        budget=budget,
    )
    if not isinstance(request, SearchRequest):
        return ingestor.ingest_upload(
            request.bucket,
            request.key,
            request.campaign,
            version_id=request.version_id,
            etag=request.etag,
        )
    context = SourceContext(
        settings=settings,
        read_secret=SecretReader(clients.secretsmanager),
        cache=S3SearchCache(clients.s3, settings.raw_bucket, clock=clock),
        sleep=sleep,
        clock=clock,
        session_factory=session_factory,
        budget=budget,
    )
    factories: list[tuple[str, Callable[[], Source]]] = [
        (name, partial(create_source, name, context)) for name in settings.sources
    ]
    return ingestor.run_campaign(
        request.campaign, request.target, factories, image_target=request.image_target
    )
