"""The per-asset cost estimate that feeds the dashboard's cost widgets."""

from __future__ import annotations

import json

import pytest

from lambdas.finalize.cost import UnitPrices, estimate_image_usd, estimate_usd

PRICES = {
    "rekognition_per_minute_per_feature": 0.10,
    "mediaconvert_per_normalized_minute": 0.0075,
    "stepfunctions_per_transition": 0.000025,
    "lambda_per_gb_second": 0.0000166667,
    "transcribe_per_minute": 0.024,
    "rekognition_image_per_call": 0.001,
}


def test_a_ten_minute_clip_is_dominated_by_rekognition():
    # Given list prices, When a 10-minute clip is estimated,
    prices = UnitPrices.parse(PRICES)
    assert prices is not None
    usd = estimate_usd(600, prices)
    # Then analysis (10 min x 3 features x $0.10 = $3.00) plus transcode ($0.75) and overhead.
    assert usd == pytest.approx(3.0 + 0.75 + 13 * 0.000025 + 21 * 0.0000166667, abs=1e-6)


def test_a_partial_minute_is_billed_as_a_whole_minute():
    prices = UnitPrices(**PRICES)
    assert estimate_usd(61, prices) == estimate_usd(120, prices)


def test_no_prices_means_no_estimate_and_missing_price_is_named():
    assert UnitPrices.parse({}) is None
    partial = {k: v for k, v in PRICES.items() if k != "lambda_per_gb_second"}
    with pytest.raises(ValueError, match="lambda_per_gb_second"):
        UnitPrices.parse(partial)


def test_finalize_publishes_the_estimate_per_campaign(capsys):
    from lambdas.finalize import handler as finalize

    usd = finalize.publish_cost(600, campaign="travel", prices=UnitPrices(**PRICES))
    finalize.metrics.flush_metrics()
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    per_campaign = [e for e in emitted if e.get("campaign") == "travel"]
    assert per_campaign and per_campaign[0]["EstimatedCostUSD"] == [usd]
    dims = per_campaign[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    assert sorted(dims) == ["campaign", "service"]


def test_a_reprocess_is_billed_for_the_analyses_it_ran_and_no_transcode():
    prices = UnitPrices(**PRICES)
    overhead = 13 * 0.000025 + 21 * 0.0000166667
    one = estimate_usd(600, prices, features=1, transcoded=False)
    assert one == pytest.approx(10 * 0.10 + overhead, abs=1e-6)
    assert estimate_usd(600, prices, features=3, transcoded=False) == pytest.approx(
        3.0 + overhead, abs=1e-6
    )


def test_a_transcription_is_billed_per_second_with_a_fifteen_second_minimum():
    prices = UnitPrices(**PRICES)
    base = estimate_usd(600, prices)
    assert estimate_usd(600, prices, transcribed_s=600) == pytest.approx(base + 10 * 0.024)
    assert estimate_usd(600, prices, transcribed_s=4) == pytest.approx(base + 0.25 * 0.024)


def test_an_image_costs_its_three_rekognition_calls_and_a_little_orchestration():
    # 3 x $0.001 (DetectLabels, DetectModerationLabels, DetectText), 6 transitions, 8 GB-s
    usd = estimate_image_usd(UnitPrices(**PRICES), calls=3)
    assert usd == round(3 * 0.001 + 6 * 0.000025 + 8.0 * 0.0000166667, 6)
    assert 0.003 < usd < 0.0035
