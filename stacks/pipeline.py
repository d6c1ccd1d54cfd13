"""Compute: the Lambda units, the state machine and its triggers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.analysis import Analysis
from constructs_lib.api import Api
from constructs_lib.finalize import Finalize
from constructs_lib.functions import DependenciesLayer
from constructs_lib.images import Images
from constructs_lib.ingest import Ingest
from constructs_lib.keys import ServiceKey
from constructs_lib.notify import Notify
from constructs_lib.probe import Probe
from constructs_lib.reprocess import Reprocess
from constructs_lib.resolve import Resolve
from constructs_lib.state_machine import PipelineStateMachine
from constructs_lib.stories import Stories
from constructs_lib.summarize import Summarize
from constructs_lib.transcode import Transcode
from constructs_lib.transcribe import Transcribe
from constructs_lib.trigger import Triggers
from constructs_lib.units import UnitRuntime, Units
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
        self.media_layer = DependenciesLayer(
            self,
            "MediaDependencies",
            requirements="requirements-media.txt",
            description="PyAV (FFmpeg) for the media pipeline handlers that read media",
        )
        self.key = ServiceKey(
            self,
            "Key",
            description="Encrypts the media pipeline's log groups and dead-letter queues",
            retain=False,
        )
        self.key.allow_log_groups()
        runtime = UnitRuntime(
            self.layer,
            self.media_layer,
            config.log_retention_days,
            self.key,
            stateful.data_lake,
            stateful.catalog,
            stateful.campaign_config,
            config.deployment_tag,
        )
        self.alerts = EncryptedTopic(
            self, "Alerts", description="Media pipeline alerts", emails=config.alert_emails
        )
        self.ingest = Ingest(
            self,
            "Ingest",
            pixabay_key=stateful.pixabay_key,
            runtime=runtime,
            limits=config.ingest,
        )
        self.resolve_input = Resolve(self, "Resolve", runtime=runtime)
        self.probe = Probe(
            self, "Probe", runtime=runtime, max_duration_s=config.ingest.max_duration_s
        )
        self.transcode = Transcode(self, "Transcode", runtime=runtime)
        self.analysis = Analysis(
            self, "Analysis", runtime=runtime, concurrency=config.reserved_concurrency
        )
        self.transcribe = Transcribe(
            self,
            "Transcribe",
            runtime=runtime,
            config=config.transcribe,
            analysis=self.analysis,
        )
        self.finalize = Finalize(
            self,
            "Finalize",
            runtime=runtime,
            unit_prices=asdict(config.prices),
            delivery_base_url=stateful.delivery.base_url if stateful.delivery else "",
            slo_clip_max_s=config.slo.clip_minutes_max * 60,
        )
        # In the Finalize construct's scope, where the summary function has always been (its
        # logical ids, and so its log group, stay the same).
        self.notify = Notify(self.finalize, "Summary", runtime=runtime, alerts=self.alerts)
        self.images = Images(self, "Images", runtime=runtime)
        # Only when the environment turns summaries on: off, nothing of the unit exists.
        self.summarize = (
            Summarize(self, "Summarize", runtime=runtime, config=config.summaries)
            if config.summaries.enabled
            else None
        )
        # Workflow order: the state machine composes them, the monitoring stack alarms on and
        # draws every unit's functions.
        self.units = Units(
            [self.resolve_input, self.ingest, self.probe, self.transcode, self.analysis,
             self.transcribe, self.images, self.finalize,
             *([self.summarize] if self.summarize else []), self.notify]
        )  # fmt: skip
        self.workflow = PipelineStateMachine(
            self,
            "StateMachine",
            units=self.units,
            map_concurrency=config.map_concurrency,
            log_retention_days=config.log_retention_days,
            key=self.key,
        )
        self.triggers = Triggers(
            self,
            "Triggers",
            state_machine=self.workflow.state_machine,
            runtime=runtime,
            schedule=config.schedule,
            reserved_concurrency=config.reserved_concurrency.upload_starter,
        )
        self.units.members.append(self.triggers)
        self.reprocess = Reprocess(
            self,
            "Reprocess",
            runtime=runtime,
            config=config.reprocess,
            analysis=self.analysis,
            finalize=self.finalize,
            log_retention_days=config.log_retention_days,
            summarize=self.summarize,
        )
        self.units.members.append(self.reprocess)
        self.stories = Stories(
            self,
            "Stories",
            runtime=runtime,
            config=config.stories,
            log_retention_days=config.log_retention_days,
        )
        self.units.members.append(self.stories)
        self.api = Api(
            self,
            "Api",
            runtime=runtime,
            config=config.api,
            reprocess=self.reprocess.state_machine,
            max_manifest_bytes=config.stories.max_manifest_kib * 1024,
        )
        self.units.members.append(self.api)
        cdk.CfnOutput(
            self,
            "StateMachineArn",
            value=self.workflow.state_machine.state_machine_arn,
            description="Start runs here (console: Start execution with {} or overrides)",
        )
        cdk.CfnOutput(self, "AlertsTopicArn", value=self.alerts.topic_arn)
        cdk.CfnOutput(
            self,
            "ReprocessStateMachineArn",
            value=self.reprocess.state_machine.state_machine_arn,
            description="Reprocess runs (started by POST /assets/{asset_id}/reprocess)",
        )
        cdk.CfnOutput(
            self,
            "StoriesStateMachineArn",
            value=self.stories.state_machine.state_machine_arn,
            description="Story renders (started when a project's manifest.json arrives)",
        )
