"""Compute: the Lambda units, the state machine and its triggers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.analysis import Analysis
from constructs_lib.finalize import Finalize
from constructs_lib.functions import DependenciesLayer, PipelineFunction
from constructs_lib.ingest import Ingest, IngestLimits
from constructs_lib.state_machine import PipelineStateMachine
from constructs_lib.transcode import Transcode
from constructs_lib.triggers import Triggers, WeeklySchedule
from stacks.config import EnvironmentConfig
from stacks.stateful import StatefulStack


class PipelineStack(cdk.Stack):
    """Stateless and replaceable: everything here can be destroyed and redeployed safely."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stateful: StatefulStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.layer = DependenciesLayer(self, "Dependencies")
        self.ingest = Ingest(
            self,
            "Ingest",
            data_lake=stateful.data_lake,
            catalog=stateful.catalog,
            campaign_config=stateful.campaign_config,
            pixabay_key=stateful.pixabay_key,
            layer=self.layer,
            limits=IngestLimits(
                contact_email=config.ingest.contact,
                max_file_bytes=config.ingest.max_file_bytes,
                max_duration_s=config.ingest.max_duration_s,
                timeout_sec=config.ingest.timeout_s,
                memory_mib=config.ingest.memory_mib,
            ),
            log_retention_days=config.log_retention_days,
        )

        lake, catalog = stateful.data_lake, stateful.catalog
        common = {
            "layer": self.layer,
            "log_retention_days": config.log_retention_days,
        }
        self.alerts = EncryptedTopic(
            self, "Alerts", description="Media pipeline alerts", emails=config.alert_emails
        )
        self.resolve_input = PipelineFunction(
            self,
            "Resolve",
            unit="resolve",
            handler="lambdas.resolve.handler.handler",
            service="resolve",
            description="Validates the execution input against the campaign configuration",
            environment={
                "CONFIG_PARAMETER": stateful.campaign_config.parameter_name,
                "RAW_BUCKET": lake.raw.bucket_name,
            },
            **common,  # type: ignore[arg-type]
        )
        stateful.campaign_config.grant_read(self.resolve_input.function)
        self.transcode = Transcode(
            self, "Transcode", data_lake=lake, catalog=catalog,
            deployment=config.deployment_tag, **common,  # type: ignore[arg-type]
        )  # fmt: skip
        self.analysis = Analysis(
            self, "Analysis", data_lake=lake, catalog=catalog,
            deployment=config.deployment_tag, **common,  # type: ignore[arg-type]
        )  # fmt: skip
        self.finalize = Finalize(
            self, "Finalize", data_lake=lake, catalog=catalog, alerts=self.alerts,
            deployment=config.deployment_tag, unit_prices=asdict(config.prices),
            **common,  # type: ignore[arg-type]
        )  # fmt: skip
        self.workflow = PipelineStateMachine(
            self,
            "StateMachine",
            resolve=self.resolve_input,
            ingest=self.ingest.handler,
            transcode=self.transcode,
            analysis=self.analysis,
            finalize=self.finalize,
            data_lake=lake,
            map_concurrency=config.map_concurrency,
            log_retention_days=config.log_retention_days,
        )
        self.triggers = Triggers(
            self,
            "Triggers",
            state_machine=self.workflow.state_machine,
            data_lake=lake,
            schedule=WeeklySchedule(
                minute=config.schedule.minute,
                hour=config.schedule.hour,
                week_day=config.schedule.week_day,
                enabled=config.schedule.enabled,
            ),
            **common,  # type: ignore[arg-type]
        )
        cdk.CfnOutput(
            self,
            "StateMachineArn",
            value=self.workflow.state_machine.state_machine_arn,
            description="Start runs here (console: Start execution with {} or overrides)",
        )
        cdk.CfnOutput(self, "AlertsTopicArn", value=self.alerts.topic_arn)
