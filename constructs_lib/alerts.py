"""Encrypted SNS topics: the operators' alerts topic and Rekognition's completion topic."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from constructs_lib.nag import acknowledge
from constructs_lib.principals import account_service_principal


class EncryptedTopic(Construct):
    """A topic encrypted with its own rotating KMS key and reachable over TLS only.

    A customer managed key (not ``alias/aws/sns``) is what lets EventBridge, CloudWatch alarms and
    Rekognition publish to an encrypted topic: their service principals get ``kms:GenerateDataKey``
    through ``grant_publish``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, description: str, emails: tuple[str, ...] = ()
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "Key", enable_key_rotation=True, description=f"Encrypts the {description} topic"
        )
        self.topic = sns.Topic(
            self, "Topic", master_key=self.key, enforce_ssl=True, display_name=description
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """Publish rights plus the key use CDK adds (``kms:Decrypt``, ``kms:GenerateDataKey*``)."""
        grant = self.topic.grant_publish(grantee)
        principal = grantee.grant_principal
        if isinstance(principal, iam.Role):
            acknowledge(
                principal.node.find_child("DefaultPolicy"),
                ["Action::kms:GenerateDataKey*"],
                "Added by Topic.grant_publish for this topic's own KMS key only "
                "(GenerateDataKey and its WithoutPlaintext variant).",
            )
        return grant

    def grant_publish_to_service(self, service: str) -> iam.Grant:
        """Let an AWS service publish, only on behalf of this account (confused-deputy guard)."""
        return self.grant_publish(account_service_principal(self, service))

    @property
    def topic_arn(self) -> str:
        return self.topic.topic_arn
