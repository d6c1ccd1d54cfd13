"""The notify unit: the run summary on the alerts topic, for finished and for failed runs."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import Flow
from lambdas.notify.settings import SummarySettings

SUMMARY = FunctionSpec(
    monitoring_name="Summary",
    # Under the Finalize construct (see ``Notify``): "Default" keeps its logical ids.
    construct_id="Default",
    handler="lambdas.notify.summary.handler",
    description="Publishes the run summary to the alerts topic",
    service="notify",
    settings=SummarySettings,
    metrics=("RunAssetsProcessed", "RunAssetsFailed"),
)


class Notify(Unit):
    """Publishes one summary per run.

    Placed in the tree as ``Finalize/Summary`` (where this function lived before it became a
    unit), so deployed stacks keep its function, role and log group instead of replacing them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: UnitRuntime,
        alerts: EncryptedTopic,
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        self.summary = self.add_function(
            SUMMARY, self.settings(SummarySettings, alerts_topic_arn=alerts.topic_arn)
        )
        alerts.grant_publish(self.summary.function)

    def fragment(self, flow: Flow) -> Fragment:
        """Summary: publish the run summary (assets, skips, errors) to the alerts topic."""
        path = sfn.JsonPath
        task = flow.call(
            "Summary",
            self.summary,
            {
                "execution": path.execution_id,
                "campaign": path.string_at("$.campaign"),
                "results": path.list_at("$.results"),
                "ingest": {
                    "skipped": path.object_at("$.ingest.skipped"),
                    "errors": path.list_at("$.ingest.errors"),
                },
            },
        )
        return Fragment(start=task, end=task)

    def failure_fragment(self, flow: Flow) -> sfn.TaskStateBase:
        """A run that failed: publish its summary, then fail with the short Error and the
        readable Cause the summary returns (the raw Cause of a Lambda error is about 1 kB of
        JSON with a stack trace); if that step fails too, fail with the Error and a fixed
        sentence. The monitoring stack's EventBridge rule alerts on FAILED with that Cause.
        The run ends in one of those two Fail states, so this piece is its first state only."""
        path = sfn.JsonPath
        task = flow.call(
            "Summarize failed run",
            self.summary,
            {"execution": path.execution_id, "run": path.entire_payload},
        )
        failed = sfn.Fail(flow.scope, "Run failed", error_path="$.error", cause_path="$.cause")
        task.next(failed)
        task.add_catch(
            sfn.Fail(
                flow.scope,
                "Run failed without summary",
                error_path="$.error.Error",
                cause="The run failed and its summary could not be published or read; the "
                "execution's history shows the original error and why the summary failed.",
            ),
            errors=["States.ALL"],
            result_path="$.summary_error",
        )
        return task
