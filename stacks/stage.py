"""One CDK Stage per environment, so ``cdk deploy 'Dev/*'`` deploys exactly one environment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.hygiene import silence_cdk_handler_lint
from stacks.config import EnvironmentConfig
from stacks.monitoring import MonitoringStack
from stacks.pipeline import PipelineStack
from stacks.stateful import StatefulStack


class PipelineStage(cdk.Stage):
    """All stacks of one deployment; tags say which deployment a resource belongs to."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.stateful = StatefulStack(
            self,
            "Stateful",
            config=config,
            description=f"Media pipeline ({config.name}): data lake, catalog, configuration",
            termination_protection=config.retain_data,
        )
        self.pipeline = PipelineStack(
            self,
            "Pipeline",
            config=config,
            stateful=self.stateful,
            description=f"Media pipeline ({config.name}): functions, state machine, triggers",
        )
        self.monitoring = MonitoringStack(
            self,
            "Monitoring",
            config=config,
            stateful=self.stateful,
            pipeline=self.pipeline,
            description=f"Media pipeline ({config.name}): alerts, alarms, dashboard, budget",
        )
        silence_cdk_handler_lint(self)
        cdk.Tags.of(self).add("project", "media-pipeline")
        cdk.Tags.of(self).add("environment", config.name)
        cdk.Tags.of(self).add("deployment", config.deployment_tag)

    @property
    def stacks(self) -> list[cdk.Stack]:
        return [self.stateful, self.pipeline, self.monitoring]
