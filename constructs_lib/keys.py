"""Customer-managed KMS keys: one per stack and purpose, each with a policy that names its users.

Three keys per environment, one for each stack:

* the stateful stack's **data key** for what is kept: the raw and processed buckets (SSE-KMS, with
  S3 Bucket Keys), the catalog table, the Pixabay secret and the backup vault;
* the pipeline stack's key for what a run writes: every function's log group and the state
  machine's (which holds execution data and task tokens at log level ALL), and the dead-letter
  queues;
* the monitoring stack's key for its own dead-letter queue and log group.

A key per stack keeps each key policy in the template of the resources it names: a statement
for a topic or a rule of another stack would need that stack's ARNs and make a dependency cycle.

The key policy always keeps CDK's account statement (``arn:aws:iam::<account>:root`` may use the
key), which is what makes IAM policies of the account's roles count: a role still needs its own
grant (``grant_*``) to use the key. AWS services that use the key *as themselves* (not through
a role) get a statement each: CloudWatch Logs, scoped by the encryption context to this stack's
log groups; EventBridge and SNS delivering to an encrypted dead-letter queue, scoped by
``aws:SourceAccount`` and ``aws:SourceArn`` to the one rule or topic; Macie's service-linked role
reading the raw bucket.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# What CloudWatch Logs does with a log group's key (its documentation's key policy example).
LOGS_ACTIONS = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)
# What EventBridge and SNS need to send a message to a queue encrypted with the key.
DELIVERY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
# Macie reads S3 objects with its service-linked role; an SSE-KMS object needs kms:Decrypt.
MACIE_ROLE = "aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie"


class ServiceKey(Construct):
    """A rotating customer-managed key whose policy names every service that uses it."""

    def __init__(
        self, scope: Construct, construct_id: str, *, description: str, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Resource",
            description=description,
            enable_key_rotation=True,
            # A deleted key makes everything it encrypted unreadable: kept in production; in
            # development scheduled for deletion after KMS's shortest waiting period.
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            pending_window=None if retain else cdk.Duration.days(7),
        )
        self._stack = cdk.Stack.of(self)
        self._deliveries: set[str] = set()

    @property
    def key_arn(self) -> str:
        return self.key.key_arn

    def allow_log_groups(self) -> None:
        """CloudWatch Logs may encrypt this stack's log groups, and no other's.

        Log groups get CloudFormation's generated names, ``<stack name>-<logical id>-<suffix>``,
        so the encryption context ``aws:logs:arn`` is pinned to that prefix.
        """
        stack = self._stack
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisStack",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=list(LOGS_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{stack.stack_name}-*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

    def allow_delivery(self, service: str) -> None:
        """``service`` (``events``, ``sns``) may encrypt what it delivers to this stack's
        dead-letter queues, for this stack's rules or topics only.

        The source is pinned by ``aws:SourceAccount`` and an ``aws:SourceArn`` of the stack's
        generated names (``<stack name>-<logical id>-<suffix>``), not by each rule's ARN: the
        queue refers to the key, the rule to the queue, so a key policy naming the rule would be
        a circular dependency. Called once per service; a second call adds nothing.
        """
        if service in self._deliveries:
            return
        self._deliveries.add(service)
        stack = self._stack
        sources = {
            "events": stack.format_arn(
                service="events", resource="rule", resource_name=f"{stack.stack_name}-*"
            ),
            "sns": stack.format_arn(service="sns", resource=f"{stack.stack_name}-*"),
        }
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{service.capitalize()}DeliversToDeadLetterQueues",
                principals=[iam.ServicePrincipal(f"{service}.amazonaws.com")],
                actions=list(DELIVERY_ACTIONS),
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": sources[service]},
                },
            )
        )

    def allow_delivery_from(self, service: str, source_arn: str, sid: str) -> None:
        """``service`` may encrypt what it delivers to this stack's dead-letter queues for one
        named source of another stack (``allow_delivery`` covers this stack's own), which can
        be named exactly: it does not depend on the queue."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.ServicePrincipal(f"{service}.amazonaws.com")],
                actions=list(DELIVERY_ACTIONS),
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self._stack.account},
                    "ArnEquals": {"aws:SourceArn": source_arn},
                },
            )
        )

    def allow_macie(self) -> None:
        """Macie's service-linked role may decrypt what it classifies (the raw bucket).

        Named by ``aws:PrincipalArn`` rather than as the principal: the role exists only once
        Macie is enabled, and KMS refuses a key policy whose principal does not exist yet.
        """
        role_arn = self._stack.format_arn(
            service="iam", region="", resource="role", resource_name=MACIE_ROLE
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="MacieClassifiesTheRawBucket",
                principals=[iam.AnyPrincipal()],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"ArnEquals": {"aws:PrincipalArn": role_arn}},
            )
        )
