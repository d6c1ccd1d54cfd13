"""Template hygiene for what CDK generates for us, not for our own logic."""

from __future__ import annotations

from aws_cdk import CfnResource
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import IConstruct

# The L2s of these types add DependsOn their role next to a GetAtt of it.
SILENCED_TYPES = ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine")
SILENCED_CLASSES = (lambda_.CfnFunction, sfn.CfnStateMachine)


def silence_cdk_handler_lint(scope: IConstruct) -> None:
    """Skip cfn-lint W3005 on Lambda functions and state machines, and only there.

    CDK's ``lambda.Function`` (ours and the singleton handlers CDK adds for bucket notifications
    and auto-delete) declares ``DependsOn`` its role although ``Role: GetAtt`` already orders
    them; the warning is about CDK's code, which we cannot change. A test checks nothing else is
    silenced.

    A walk of the finished tree, not an ``IAspect``: an aspect is called back from Node for every
    construct of the app (thousands of jsii round trips, about half a second of every synthesis,
    which ``cdk diff`` pays on every pull request); the walk is one call. Call it once the scope's
    constructs are all created.
    """
    for node in scope.node.find_all():
        # The L1 classes are told apart in Python; only CDK's own handlers, plain
        # ``CfnResource``s, are asked their type (a jsii round trip each, 600 saved).
        if isinstance(node, SILENCED_CLASSES) or (
            type(node) is CfnResource and node.cfn_resource_type in SILENCED_TYPES
        ):
            node.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
