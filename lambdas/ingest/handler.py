"""Lambda entry point of the ingest step (``lambdas.ingest.handler.handler``).

Thin on purpose: read the environment, build AWS clients, delegate to ``app.process``, publish
metrics and return the small output document. ``InvalidInput`` and ``SourceUnavailable``
propagate with those class names, which the state machine's Catch/Retry match on.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.ingest.adapters import AwsClients
from lambdas.ingest.app import process
from lambdas.ingest.service import RunReport
from lambdas.ingest.settings import Settings
from lambdas.shared.entry import Powertools
from lambdas.shared.metrics import add_metric_with_dimensions

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


@functools.cache
def aws_clients() -> AwsClients:
    """Created on the first invocation and reused while the container is warm."""
    return AwsClients.create()


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="IngestRuns", unit=MetricUnit.Count, value=1)
    try:
        report = process(
            event,
            settings=Settings.from_env(),
            clients=aws_clients(),
            time_left=lambda: context.get_remaining_time_in_millis() / 1000.0,
        )
    except Exception as err:
        # Re-raised with its class name, which the state machine's Catch matches on.
        metrics.add_metric(name="IngestRunsFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "ingest failed", extra={"error_type": type(err).__name__, "error": str(err)[:1000]}
        )
        raise
    publish_metrics(report)
    output = report.to_output()
    logger.info(
        "ingest finished",
        extra={
            "campaign": output["campaign"],
            "new_assets": len(output["assets"]),
            "skipped": output["skipped"],
            "errors": len(report.errors),
        },
    )
    return output


def publish_metrics(report: RunReport) -> None:
    """Per-source counts need their own dimensions, so each goes out as a single EMF metric."""
    per_source = Counter(asset.source for asset in report.assets)
    for source, count in sorted(per_source.items()):
        add_metric_with_dimensions(
            metrics, name="AssetsIngested", unit=MetricUnit.Count, value=count, source=source
        )
    for source, total in sorted(report.bytes_by_source().items()):
        add_metric_with_dimensions(
            metrics, name="BytesIngested", unit=MetricUnit.Bytes, value=total, source=source
        )
    for (source, reason), count in sorted(report.skipped_by_source().items()):
        add_metric_with_dimensions(
            metrics,
            name="AssetsSkipped",
            unit=MetricUnit.Count,
            value=count,
            source=source,
            reason=reason,
        )
    for source in sorted(report.failed_sources):
        add_metric_with_dimensions(
            metrics, name="SourceFailures", unit=MetricUnit.Count, value=1, source=source
        )
