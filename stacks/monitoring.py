"""Monitoring: failure notices, alarms, the dashboard and cost controls of one deployment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.dead_letter_analysis import ANALYZER, DeadLetterAnalysis
from constructs_lib.dead_letters import DeadLetterRoute
from constructs_lib.discord import DiscordAlerts
from constructs_lib.functions import log_group
from constructs_lib.keys import ServiceKey
from constructs_lib.macie import UploadsScan
from constructs_lib.monitoring import (
    AlarmThresholds,
    CostControls,
    FailureNotices,
    PipelineAlarms,
    PipelineDashboard,
    SlackAlerts,
    Watched,
)
from constructs_lib.slo import ServiceLevelObjectives
from stacks.config import EnvironmentConfig
from stacks.pipeline import PipelineStack
from stacks.stateful import StatefulStack


class MonitoringStack(cdk.Stack):
    """Reads the pipeline's metrics; the alerts topic itself lives with the pipeline.

    The topic is in the pipeline stack because the workflow publishes run summaries to it; keeping
    it there avoids a dependency cycle (monitoring watches the pipeline, not the other way round).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stateful: StatefulStack,
        pipeline: PipelineStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        watched = Watched(pipeline.workflow, pipeline.units, pipeline.alerts, config.deployment_tag)
        # The monitoring stack's own key: its dead-letter queue, and Macie's job log group.
        self.key = ServiceKey(
            self,
            "Key",
            description="Encrypts the media pipeline monitoring's dead-letter queue and logs",
            retain=False,
        )
        self.key.allow_log_groups()
        notices = FailureNotices(self, "FailureNotices", watched, key=self.key)
        if config.macie.enabled:
            notices.sensitive_data(stateful.data_lake.raw.bucket_name, config.macie.severities)
            self.macie = UploadsScan(
                self,
                "Macie",
                config=config.macie,
                bucket_name=stateful.data_lake.raw.bucket_name,
                log_group=log_group(self, config.log_retention_days, self.key.key),
                deployment=config.deployment_tag,
            )
        monitoring, schedule = config.monitoring, config.schedule
        routes = {
            **pipeline.units.dead_letter_routes(),
            "UndeliveredFailureNotices": DeadLetterRoute(
                notices.dead_letters,
                kind="failure-notices",
                describes="Failure notices (runs, transcodes, Macie) the alerts topic did not get",
                via="sns",
                target=watched.alerts.topic_arn,
            ),
        }
        if monitoring.discord is not None:
            discord = DiscordAlerts(
                self,
                "Discord",
                alerts=watched.alerts,
                webhook=monitoring.discord,
                key=self.key,
                log_retention_days=config.log_retention_days,
                deployment=config.deployment_tag,
            )
            routes["UndeliveredDiscordAlerts"] = DeadLetterRoute(
                discord.dead_letters,
                kind="discord-posts",
                describes="Alerts that did not reach Discord (e-mail subscribers got them)",
                via="lambda",
                target=discord.handler.function.function_arn,
            )
        self.dead_letter_analysis = DeadLetterAnalysis(
            self,
            "DeadLetterAnalysis",
            routes=routes,
            data_lake=stateful.data_lake,
            alerts=watched.alerts,
            key=self.key,
            log_retention_days=config.log_retention_days,
            deployment=config.deployment_tag,
        )
        alarms = PipelineAlarms(
            self,
            "Alarms",
            watched,
            thresholds=AlarmThresholds(
                failed_executions=monitoring.failed_executions_threshold,
                lambda_errors=monitoring.lambda_errors_threshold,
                lambda_throttles=monitoring.lambda_throttles_threshold,
                no_success_hours=schedule.interval_hours + schedule.margin_hours,
            ),
            catalog=stateful.catalog.table,
            dead_letter_queues={"UndeliveredFailureNotices": notices.dead_letters},
            # Its failures alarm like the units' functions' (a schedule tick has no DLQ).
            functions={ANALYZER.monitoring_name: self.dead_letter_analysis.analyzer},
        )
        self.slo = ServiceLevelObjectives(
            self, "Objectives", objectives=config.slo, alerts=watched.alerts
        )
        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            watched,
            data_lake=stateful.data_lake,
            campaigns=config.campaigns.campaigns,
            alarms=[*alarms.alarms, *self.slo.alarms],
            sections=alarms.sections,
            dead_letters=self.dead_letter_analysis,
        )
        self.dashboard.dashboard.add_widgets(*self.slo.widgets)
        CostControls(
            self,
            "CostControls",
            watched,
            monthly_budget_usd=config.monthly_budget_usd,
            anomaly_threshold_usd=monitoring.anomaly_threshold_usd,
        )
        if monitoring.slack is not None:
            SlackAlerts(self, "Slack", watched, monitoring.slack)
        cdk.CfnOutput(
            self,
            "DashboardName",
            value=self.dashboard.dashboard.dashboard_name,
            description="CloudWatch dashboard of this deployment",
        )
