"""Metrics broken down by a dimension of their own (per source, per campaign...).

A dimension added to a unit's ``Metrics`` object applies to every metric of the invocation, so a
breakdown has to go out as a separate EMF document. It keeps the unit's default dimensions, so
the breakdown sits beside the unit's other metrics in CloudWatch.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric


def add_metric_with_dimensions(
    metrics: Metrics, *, name: str, unit: MetricUnit, value: float, **dimensions: str
) -> None:
    """Keyword-only, like Powertools' ``add_metric``: ``name="..."`` is how a test finds every
    metric a unit emits to check the CloudWatch dashboard against it."""
    with single_metric(
        name=name, unit=unit, value=value, default_dimensions=metrics.default_dimensions
    ) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)
