"""The resolve unit: checks the execution input against the campaign configuration."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import Flow
from lambdas.resolve.settings import ResolveSettings

RESOLVE = FunctionSpec(
    monitoring_name="Resolve",
    # "Default" keeps the logical ids this function had before it became a unit of its own.
    construct_id="Default",
    handler="lambdas.resolve.handler.handler",
    description="Validates the execution input against the campaign configuration",
    service="resolve",
    settings=ResolveSettings,
)


class Resolve(Unit):
    """``{}`` becomes the active campaign with its batch sizes; anything else is checked."""

    def __init__(self, scope: Construct, construct_id: str, *, runtime: UnitRuntime) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        self.handler = self.add_function(
            RESOLVE,
            self.settings(ResolveSettings),
        )
        runtime.campaign_config.grant_read(self.handler.function)

    def fragment(self, flow: Flow) -> Fragment:
        """Resolve input; ``InvalidInput`` fails the execution at once with the handler's
        message as its Cause. The catch replaces the state ("$"): the input may be any JSON,
        and "$.error" cannot be added to an array or a string."""
        task = flow.call("Resolve input", self.handler)
        read_cause = sfn.Pass(
            flow.scope,
            "Read input error",
            parameters={"detail": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Cause"))},
        )
        invalid_input = sfn.Fail(
            flow.scope, "Invalid input", error="InvalidInput", cause_path="$.detail.errorMessage"
        )
        task.add_catch(read_cause.next(invalid_input), errors=["InvalidInput"], result_path="$")
        return Fragment(start=task, end=task, catchable=(task,))
