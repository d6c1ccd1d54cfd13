"""Service-level objectives: what the pipeline promises per asset, its error budget, and alarms
that fire when the budget burns too fast.

Two objectives, from ``slo`` in the configuration (``SloObjectives``):

* **Time to labels.** ``latency_percent`` % (95) of the assets in scope get their labels within
  ``time_to_labels_minutes`` (30) of being recorded; in scope are images and clips up to
  ``clip_minutes_max`` (10). Measured from ``TimeToLabelsSeconds`` (``scope=objective``) with
  CloudWatch's percentile rank ``PR(:<threshold>)``: the share of assets at or under the
  threshold, so the bad share is ``100 - PR``.
* **Availability.** ``availability_percent`` % (99) of the assets end processed or refused with a
  reason; the bad events are ``AssetOutcome`` ``outcome=failed``.

Each objective's error budget is what it allows to go wrong (5 %, 1 %). The burn rate of a
window is the window's bad share divided by the budget: 1 spends the budget exactly over the
objective's window (``window_days``). Alarms follow the multiwindow, multi-burn-rate recipe of
Google's SRE workbook: a **fast** burn (14.4 over 1 h, confirmed over 5 min: 2 % of a 30-day
budget in an hour) and a **slow** burn (6 over 6 h, confirmed over 30 min: 5 % in six hours).
Each is a composite alarm of its long and short window, so a burst that has already stopped
does not page; its description starts ``SLO burn`` and it notifies the alerts topic.

No assets in a window means no data, which is not a breach (an idle pipeline keeps its budget).

Why hand-written: cdk-monitoring-constructs has no error-budget or burn-rate construct, and
CloudWatch's own SLOs (Application Signals) need its agent or services it discovers; these
objectives are over custom metrics of our own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.functions import METRICS_NAMESPACE
from constructs_lib.props import require
from lambdas.shared.slo import OUTCOMES, SLO_SERVICE


@dataclass(frozen=True)
class BurnWindow:
    """One burn-rate alarm: the long window decides, the short one confirms it still burns."""

    long_minutes: int
    short_minutes: int
    burn_rate: float

    def __post_init__(self) -> None:
        require(self.long_minutes > self.short_minutes >= 5, "slo.burn", "long > short >= 5 min")
        require(
            self.long_minutes % 5 == 0 and self.short_minutes % 5 == 0,
            "slo.burn",
            "windows are whole multiples of 5 minutes",
        )
        require(self.burn_rate > 1, "slo.burn.burn_rate", "must be above 1")


@dataclass(frozen=True)
class SloObjectives:
    """Configuration field ``slo``: the objectives and their burn-rate alarms."""

    time_to_labels_minutes: int = 30
    latency_percent: float = 95.0
    clip_minutes_max: int = 10
    availability_percent: float = 99.0
    window_days: int = 28
    fast: BurnWindow = field(default_factory=lambda: BurnWindow(60, 5, 14.4))
    slow: BurnWindow = field(default_factory=lambda: BurnWindow(360, 30, 6.0))

    def __post_init__(self) -> None:
        require(
            1 <= self.time_to_labels_minutes <= 24 * 60,
            "slo.time_to_labels_minutes",
            f"must be 1..1440, got {self.time_to_labels_minutes!r}",
        )
        require(
            1 <= self.clip_minutes_max <= 600,
            "slo.clip_minutes_max",
            f"must be 1..600, got {self.clip_minutes_max!r}",
        )
        for name in ("latency_percent", "availability_percent"):
            value = getattr(self, name)
            require(
                50 <= value < 100,
                f"slo.{name}",
                f"must be at least 50 and below 100, got {value!r}",
            )
        require(
            1 <= self.window_days <= 90,
            "slo.window_days",
            f"must be 1..90, got {self.window_days!r}",
        )

    @property
    def threshold_s(self) -> int:
        return self.time_to_labels_minutes * 60

    @property
    def latency_budget(self) -> float:
        return 1 - self.latency_percent / 100

    @property
    def availability_budget(self) -> float:
        return 1 - self.availability_percent / 100


def time_to_labels(
    statistic: str, period: cdk.Duration, *, scope: str = "objective"
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name="TimeToLabelsSeconds",
        dimensions_map={"service": SLO_SERVICE, "scope": scope},
        statistic=statistic,
        period=period,
    )


def outcomes(period: cdk.Duration) -> dict[str, cloudwatch.Metric]:
    return {
        outcome: cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="AssetOutcome",
            dimensions_map={"service": SLO_SERVICE, "outcome": outcome},
            statistic="Sum",
            period=period,
        )
        for outcome in OUTCOMES
    }


class ServiceLevelObjectives(Construct):
    """The burn-rate alarms (``alarms``: composites, ``windows``: their parts) and the widgets
    the dashboard shows (``widgets``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        objectives: SloObjectives,
        alerts: EncryptedTopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.objectives = objectives
        action = cw_actions.SnsAction(alerts.topic)
        alerts.grant_publish_to_service("cloudwatch.amazonaws.com")
        self.alarms: list[cloudwatch.CompositeAlarm] = []
        self.windows: list[cloudwatch.Alarm] = []
        o = objectives
        for speed, burn in (("Fast", o.fast), ("Slow", o.slow)):
            for name, what, bad_share, budget in (
                (
                    "TimeToLabels",
                    f"{o.latency_percent:g} % of assets labelled within "
                    f"{o.time_to_labels_minutes} min (images and clips up to "
                    f"{o.clip_minutes_max} min)",
                    self.latency_bad_share,
                    o.latency_budget,
                ),
                (
                    "Availability",
                    f"{o.availability_percent:g} % of assets processed or refused with a reason",
                    self.availability_bad_share,
                    o.availability_budget,
                ),
            ):
                parts = []
                for window, minutes in (("Long", burn.long_minutes), ("Short", burn.short_minutes)):
                    rate = cloudwatch.MathExpression(
                        expression=f"bad / {budget:.6g}",
                        using_metrics={"bad": bad_share(cdk.Duration.minutes(minutes))},
                        period=cdk.Duration.minutes(minutes),
                        label=f"{name} burn rate ({minutes} min)",
                    )
                    parts.append(
                        rate.create_alarm(
                            self,
                            f"{name}{speed}Burn{window}",
                            alarm_description=(
                                f"SLO burn ({speed.lower()}, {window.lower()} window of "
                                f"{minutes} min): {what}; burning the error budget at "
                                f"{burn.burn_rate:g}x or faster (part of {name}{speed}Burn)"
                            ),
                            threshold=burn.burn_rate,
                            evaluation_periods=1,
                            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                        )
                    )
                self.windows += parts
                composite = cloudwatch.CompositeAlarm(
                    self,
                    f"{name}{speed}Burn",
                    alarm_rule=cloudwatch.AlarmRule.all_of(*parts),
                    alarm_description=(
                        f"SLO burn ({speed.lower()}): {what}. The error budget "
                        f"({100 * budget:g} % over {o.window_days} days) is burning at "
                        f"{burn.burn_rate:g}x or faster over {burn.long_minutes} min and "
                        f"still over the last {burn.short_minutes} min. "
                        + (
                            "Look at the failed assets' causes (catalog, run summaries)."
                            if name == "Availability"
                            else "Look at the Step Functions executions' durations and queues."
                        )
                    ),
                )
                composite.add_alarm_action(action)
                self.alarms.append(composite)
        self.widgets = self._widgets()

    def latency_bad_share(self, period: cdk.Duration) -> cloudwatch.IMetric:
        """The share (0-1) of in-scope assets over the threshold in ``period``."""
        rank = time_to_labels(f"PR(:{self.objectives.threshold_s})", period)
        return cloudwatch.MathExpression(
            expression="(100 - rank) / 100", using_metrics={"rank": rank}, period=period
        )

    def availability_bad_share(self, period: cdk.Duration) -> cloudwatch.IMetric:
        """The share (0-1) of assets that failed in ``period`` (no assets: no data)."""
        m = outcomes(period)
        return cloudwatch.MathExpression(
            expression="failed / (processed + refused + failed)",
            using_metrics={
                "processed": m["processed"],
                "refused": m["refused"],
                "failed": m["failed"],
            },
            period=period,
        )

    def _widgets(self) -> list[cloudwatch.IWidget]:
        o = self.objectives
        window = cdk.Duration.days(o.window_days)
        hour = cdk.Duration.hours(1)
        latency_bad = self.latency_bad_share(window)
        availability_bad = self.availability_bad_share(window)

        def remaining(
            bad: cloudwatch.IMetric, budget: float, key: str, label: str
        ) -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(
                expression=f"100 * (1 - {key} / {budget:.6g})",
                using_metrics={key: bad},
                period=window,
                label=label,
            )

        return [
            cloudwatch.TextWidget(
                markdown=(
                    "## Service-level objectives\n"
                    f"**Time to labels:** {o.latency_percent:g} % of assets within "
                    f"{o.time_to_labels_minutes} min (images, clips up to "
                    f"{o.clip_minutes_max} min). **Availability:** "
                    f"{o.availability_percent:g} % processed or refused with a reason. Error "
                    f"budgets over {o.window_days} days; burn-rate alarms (`SLO burn`) notify the "
                    "alerts topic."
                ),
                width=24,
                height=2,
            ),
            cloudwatch.SingleValueWidget(
                title=f"Error budget left ({o.window_days} days, %)",
                metrics=[
                    remaining(latency_bad, o.latency_budget, "latency", "time to labels"),
                    remaining(availability_bad, o.availability_budget, "failures", "availability"),
                ],
                width=8,
                height=5,
            ),
            cloudwatch.GraphWidget(
                title=f"Time to labels (p{o.latency_percent:g}, seconds)",
                left=[
                    time_to_labels(f"p{o.latency_percent:g}", hour).with_(label="in objective"),
                    time_to_labels(f"p{o.latency_percent:g}", hour, scope="beyond").with_(
                        label=f"clips over {o.clip_minutes_max} min"
                    ),
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=o.threshold_s, label="objective")
                ],
                width=8,
                height=5,
            ),
            cloudwatch.GraphWidget(
                title="Asset outcomes",
                left=[m.with_(label=name, period=hour) for name, m in outcomes(hour).items()],
                stacked=True,
                width=8,
                height=5,
            ),
        ]
