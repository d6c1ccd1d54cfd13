"""Monitoring: failure notices, alarms, the dashboard and cost controls of one deployment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.monitoring import (
    AlarmThresholds,
    CostControls,
    EventAlarm,
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
        functions = {
            "Resolve": pipeline.resolve_input,
            "Ingest": pipeline.ingest.handler,
            "PlanTranscode": pipeline.transcode.plan,
            "AnalysisStart": pipeline.analysis.start,
            "AnalysisCallback": pipeline.analysis.callback,
            "AnalysisHeartbeat": pipeline.analysis.heartbeat,
            "Finalize": pipeline.finalize.finalize,
            "MarkFailed": pipeline.finalize.mark_failed,
            "Summary": pipeline.finalize.summary,
            "UploadStarter": pipeline.triggers.starter,
        }
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
            functions=functions,
            dead_letter_queues={
                "TriggerDeadLetters": pipeline.triggers.dead_letters,
                "UndeliveredRekognitionNotices": pipeline.analysis.undelivered,
                "UndeliveredFailureNotices": notices.dead_letters,
            },
            alerts=pipeline.alerts,
            thresholds=AlarmThresholds(
                failed_executions=config.monitoring.failed_executions_threshold,
                lambda_errors=config.monitoring.lambda_errors_threshold,
                lambda_throttles=config.monitoring.lambda_throttles_threshold,
                no_success_hours=schedule.interval_hours + schedule.margin_hours,
            ),
            event_alarms={
                "FailuresNotRecorded": EventAlarm(
                    pipeline.finalize.metric_failures_not_recorded(),
                    "Mark-failed could not record an asset's failure in the catalog (DynamoDB "
                    "refused or was unreachable): the dashboard does not show it; the run "
                    "summary lists it with the reason",
                ),
                "AnalysisNoticesRecovered": EventAlarm(
                    pipeline.analysis.metric_notices_recovered(),
                    "The heartbeat sweep resumed an analysis whose Rekognition completion notice "
                    "never came: check the completion topic, its subscription and the callback "
                    "function (each lost notice delays its asset by up to 10 minutes)",
                ),
                "RenditionsLeft": EventAlarm(
                    pipeline.finalize.metric_renditions_left(),
                    "Mark-failed could neither delete nor tag a failed asset's renditions: they "
                    "stay in the processed bucket unreferenced; the asset's catalog record "
                    "(renditions_left) lists what is left",
                ),
            },
        )
        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            workflow=pipeline.workflow,
            functions=functions,
            ingest=pipeline.ingest,
            transcode=pipeline.transcode,
            finalize=pipeline.finalize,
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
