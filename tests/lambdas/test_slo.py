"""The service-level metrics' own rules (``lambdas/shared/slo.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lambdas.shared.slo import (
    outcome_of_failure,
    publish_outcome,
    publish_time_to_labels,
    time_to_labels_s,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created_at", "seconds"),
    [
        ("2026-12-03T11:30:00+00:00", 1800.0),
        ("2026-12-03T11:59:00Z", 60.0),
        ("2026-12-03T11:59:30", 30.0),  # no zone: the catalog writes UTC
        ("2026-12-03T12:00:05+00:00", None),  # a clock ahead of this one: no figure, not < 0
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_time_to_labels_is_measured_from_the_catalog_record(created_at, seconds):
    assert time_to_labels_s(created_at, NOW) == seconds


def test_only_the_pipeline_s_own_refusal_is_a_good_outcome():
    assert outcome_of_failure({"Error": "Unprocessable", "Cause": "empty file"}) == "refused"
    assert outcome_of_failure({"Error": "InvalidInput"}) == "failed"
    assert outcome_of_failure(None) == "failed"


def test_the_metrics_carry_the_slo_service_whatever_function_emits_them(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "finalize-image")
    publish_outcome("refused")
    publish_time_to_labels(42.0, in_objective=False)
    outcome, latency = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (outcome["service"], outcome["outcome"]) == ("slo", "refused")
    assert (latency["service"], latency["scope"], latency["TimeToLabelsSeconds"]) == (
        "slo",
        "beyond",
        [42.0],
    )
    with pytest.raises(ValueError, match="outcome must be one of"):
        publish_outcome("lost")
