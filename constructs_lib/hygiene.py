"""Template hygiene for what CDK generates for us, not for our own logic."""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect
from constructs import IConstruct

# The L2s of these types add DependsOn their role next to a GetAtt of it.
SILENCED_TYPES = ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine")


@jsii.implements(IAspect)
class SilenceCdkHandlerLint:
    """Skip cfn-lint W3005 on Lambda functions and state machines, and only there.

    CDK's ``lambda.Function`` (ours and the singleton handlers CDK adds for bucket notifications
    and auto-delete) declares ``DependsOn`` its role although ``Role: GetAtt`` already orders
    them; the warning is about CDK's code, which we cannot change. A test checks nothing else is
    silenced.
    """

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_resource_type in SILENCED_TYPES:
            node.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
