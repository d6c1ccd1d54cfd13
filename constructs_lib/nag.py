"""Narrow cdk-nag acknowledgments for the wildcards that ``grant_*`` methods produce.

cdk-nag reports each wildcard of a policy separately (``AwsSolutions-IAM5[Action::s3:List*]``,
``AwsSolutions-IAM5[Resource::<arn>/video/*]``), and an acknowledgment must name the finding
exactly. The resource part is the ARN as cdk-nag prints it, which depends on whether the resource
lives in the same stack (``<LogicalId.Arn>``) or is read across stacks (a ``Fn::GetStackOutput``
published by the producing stack); ``arn_finding`` renders both forms. If CDK ever changes how it
publishes references, the acknowledgment stops matching and synthesis fails: it fails closed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct


def _unique_id(components: list[str]) -> str:
    """CDK's ``makeUniqueId`` for a two-part path: readable part plus an md5 path hash."""
    human = "".join(re.sub(r"[^A-Za-z0-9]", "", c) for c in components)
    digest = hashlib.md5("/".join(components).encode(), usedforsecurity=False).hexdigest()
    return human[:240] + digest[:8].upper()


@dataclass(frozen=True)
class _Producer:
    stack_ref: str
    logical_id: str
    stack_name: str
    region: object


# Per resource, what its findings name: the same buckets and tables are acknowledged hundreds
# of times per synthesis, and each of these facts is a jsii round trip. Keyed by the jsii
# reference (a Python proxy of an object made in Node is new each time it is returned; the
# reference is unique for the life of the jsii process).
_PRODUCERS: dict[str, _Producer] = {}


def _ref(construct: object) -> str:
    return str(construct.__jsii_ref__.ref)  # type: ignore[attr-defined]


def _producer(resource: cdk.CfnResource) -> _Producer:
    key = _ref(resource)
    known = _PRODUCERS.get(key)
    if known is None:
        stack = cdk.Stack.of(resource)
        known = _Producer(
            _ref(stack),
            stack.get_logical_id(resource),
            stack.stack_name,
            # A stack with a concrete region publishes it literally, else as AWS::Region.
            {"Ref": "AWS::Region"} if cdk.Token.is_unresolved(stack.region) else stack.region,
        )
        _PRODUCERS[key] = known
    return known


def arn_finding(consumer: IConstruct, resource: cdk.CfnResource, suffix: str = "") -> str:
    """The ``Resource::`` part of a finding for ``resource.Arn + suffix`` seen from ``consumer``."""
    producer = _producer(resource)
    if producer.stack_ref == _ref(cdk.Stack.of(consumer)):
        return f"Resource::<{producer.logical_id}.Arn>{suffix}"
    reference = json.dumps({"Fn::GetAtt": [producer.logical_id, "Arn"]}, separators=(",", ":"))
    output = _unique_id(["Publish", f"Output{reference}"])
    rendered = json.dumps(
        {
            "Fn::GetStackOutput": {
                "StackName": producer.stack_name,
                "Region": producer.region,
                "OutputName": output,
            }
        },
        separators=(",", ":"),
    )
    return f"Resource::{rendered}{suffix}"


def render(scope: IConstruct, value: str) -> str:
    """A token-bearing string as cdk-nag prints it: pseudo parameters become ``<AWS::...>``.

    Whether a part is a literal or a pseudo parameter depends on the stack's environment
    (``aws``/``us-east-1`` when the region is known), so the finding is rendered, not guessed.
    """
    resolved = cdk.Stack.of(scope).resolve(value)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1] if isinstance(resolved, dict) else [resolved]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict) and "Ref" in part:
            out.append(f"<{part['Ref']}>")
        else:
            raise ValueError(f"cannot render {part!r} for a cdk-nag finding")
    return "".join(out)


def acknowledge(scope: IConstruct, findings: Iterable[str], reason: str) -> None:
    """Acknowledge each listed ``AwsSolutions-IAM5`` finding on ``scope`` with one reason.

    In one call: each jsii round trip costs about half a millisecond, and the app acknowledges
    about 460 findings per synthesis of both environments (and about 200 rules)."""
    acknowledgments = [
        cdk.Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason)
        for finding in findings
    ]
    if acknowledgments:
        cdk.Validations.of(scope).acknowledge(*acknowledgments)


def acknowledge_rule(scope: IConstruct, rule_id: str, reason: str) -> None:
    acknowledge_rules(scope, {rule_id: reason})


def acknowledge_rules(scope: IConstruct, reasons: Mapping[str, str]) -> None:
    """Acknowledge each rule on ``scope`` with its reason, in one jsii call."""
    cdk.Validations.of(scope).acknowledge(
        *(cdk.Acknowledgment(id=rule, reason=reason) for rule, reason in reasons.items())
    )


# The construct id of CDK's singleton function behind every ``AwsCustomResource`` of a stack.
SDK_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"


def acknowledge_sdk_provider(stack: cdk.Stack) -> None:
    """CDK's ``AwsCustomResource`` provider: runs only while CloudFormation deploys the stack."""
    provider = stack.node.try_find_child(SDK_PROVIDER_ID)
    if provider is None:
        return
    reasons = {
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]": "CDK's own provider role: the managed policy only lets "
        "it write its own logs.",
        "Serverless-LambdaDefaultMemorySize": "CDK's provider function, sized by CDK; it makes "
        "one SDK call per deployment.",
        "Serverless-LambdaDLQ": "Invoked synchronously by CloudFormation, which reports and "
        "rolls back a failed call; nothing is asynchronous to dead-letter.",
        "Serverless-LambdaTracing": "Runs once per deployment inside CloudFormation; its logs "
        "and CloudFormation's events trace it, X-Ray would add nothing.",
    }
    acknowledge_rules(provider, reasons)


S3_READ_ACTIONS = ("Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*")
S3_WRITE_ACTIONS = ("Action::s3:Abort*",)
S3_DELETE_ACTIONS = ("Action::s3:DeleteObject*",)


def acknowledge_dead_letter_queue(queue: IConstruct) -> None:
    """A dead-letter queue needs no dead-letter queue of its own."""
    for rule in ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"):
        acknowledge_rule(
            queue,
            rule,
            "This queue is itself a dead-letter queue (alarmed when not empty); a DLQ of a DLQ "
            "would only hide messages one level deeper.",
        )
