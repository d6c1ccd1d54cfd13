"""The service-level metrics every asset produces: how long it took to get its labels, and how
it ended.

They go out under a ``service`` of their own (``SLO_SERVICE``), not the emitting function's: the
video and image finalizers and mark-failed all report them, and each objective's alarm reads
one metric, whichever function emitted it. (Powertools adds the function's ``service`` to every
metric unless the metric already has one.) ``constructs_lib/slo.py`` builds the objectives,
their error budgets and burn-rate alarms on exactly these names and dimensions.

* ``TimeToLabelsSeconds`` (``scope``): from the asset's record in the catalog (``created_at``,
  the moment ingest stored it) to its labels document. ``scope=objective`` for what the latency
  objective covers (images, and clips up to the configured length), ``scope=beyond`` for the
  longer clips, which take longer by nature and are watched, not promised.
* ``AssetOutcome`` (``outcome``): ``processed``, ``refused`` (the pipeline declined the file and
  said why: ``Unprocessable``) or ``failed`` (anything else: the availability objective's bad
  events).

A reprocess is no new asset and reports neither.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit, single_metric

SLO_SERVICE = "slo"
OUTCOMES = ("processed", "refused", "failed")
SCOPES = ("objective", "beyond")
# The error name the probe and the images unit refuse a file with (lambdas/shared/errors.py).
REFUSAL_ERROR = "Unprocessable"


def publish_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    with single_metric(name="AssetOutcome", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="service", value=SLO_SERVICE)
        metric.add_dimension(name="outcome", value=outcome)


def outcome_of_failure(error: object) -> str:
    """``refused`` for the pipeline's own refusal of a file, ``failed`` for anything else."""
    name = error.get("Error") if isinstance(error, dict) else None
    return "refused" if name == REFUSAL_ERROR else "failed"


def time_to_labels_s(created_at: object, now: datetime | None = None) -> float | None:
    """Seconds since ``created_at`` (ISO 8601); None when the record has no usable time."""
    if not isinstance(created_at, str) or not created_at:
        return None
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    elapsed = ((now or datetime.now(UTC)) - created).total_seconds()
    return elapsed if elapsed >= 0 else None


def publish_time_to_labels(seconds: float, *, in_objective: bool) -> None:
    with single_metric(
        name="TimeToLabelsSeconds", unit=MetricUnit.Seconds, value=seconds
    ) as metric:
        metric.add_dimension(name="service", value=SLO_SERVICE)
        metric.add_dimension(name="scope", value="objective" if in_objective else "beyond")
