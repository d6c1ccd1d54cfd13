"""Monitoring: failure notices, alarms, the dashboard and cost controls of one deployment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.monitoring import (
    AlarmThresholds,
    CostControls,
    FailureNotices,
    PipelineAlarms,
    PipelineDashboard,
    SlackAlerts,
)
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
        deployment = config.deployment_tag
        notices = FailureNotices(
            self,
            "FailureNotices",
            workflow=pipeline.workflow,
            alerts=pipeline.alerts,
            deployment=deployment,
        )
        schedule = config.schedule
        alarms = PipelineAlarms(
            self,
            "Alarms",
            workflow=pipeline.workflow,
            # Every unit's functions, dead-letter queues and event alarms, in workflow order.
            units=pipeline.units,
            alerts=pipeline.alerts,
            thresholds=AlarmThresholds(
                failed_executions=config.monitoring.failed_executions_threshold,
                lambda_errors=config.monitoring.lambda_errors_threshold,
                lambda_throttles=config.monitoring.lambda_throttles_threshold,
                no_success_hours=schedule.interval_hours + schedule.margin_hours,
            ),
            dead_letter_queues={"UndeliveredFailureNotices": notices.dead_letters},
        )
        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            workflow=pipeline.workflow,
            units=pipeline.units,
            data_lake=stateful.data_lake,
            campaigns=config.campaigns.campaigns,
            alarms=alarms.alarms,
        )
        CostControls(
            self,
            "CostControls",
            alerts=pipeline.alerts,
            deployment=deployment,
            monthly_budget_usd=config.monthly_budget_usd,
            anomaly_threshold_usd=config.monitoring.anomaly_threshold_usd,
        )
        monitoring = config.monitoring
        if monitoring.slack_workspace_id and monitoring.slack_channel_id:
            SlackAlerts(
                self,
                "Slack",
                alerts=pipeline.alerts,
                deployment=deployment,
                workspace_id=monitoring.slack_workspace_id,
                channel_id=monitoring.slack_channel_id,
            )
        cdk.CfnOutput(
            self,
            "DashboardName",
            value=self.dashboard.dashboard.dashboard_name,
            description="CloudWatch dashboard of this deployment",
        )
