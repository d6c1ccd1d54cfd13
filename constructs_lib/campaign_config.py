"""Campaign configuration (SSM parameter) and the Pixabay API key secret."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

PIXABAY_PLACEHOLDER = "REPLACE_ME"


class CampaignConfig(Construct):
    """The active campaign, the campaign list and batch sizes, as one JSON parameter.

    The dashboard writes it and every run reads it, so a choice made on the page is what the next
    scheduled run uses. The stack only sets the initial value.
    """

    def __init__(self, scope: Construct, construct_id: str, *, initial: dict[str, Any]) -> None:
        super().__init__(scope, construct_id)
        for field in ("active_campaign", "campaigns", "batch_sizes"):
            if field not in initial:
                raise ValueError(f"campaign configuration: missing field {field!r}")
        self.parameter = ssm.StringParameter(
            self,
            "Resource",
            description="Media pipeline campaign configuration (active campaign, batch sizes)",
            string_value=json.dumps(initial, sort_keys=True),
            tier=ssm.ParameterTier.STANDARD,
        )

    @property
    def parameter_name(self) -> str:
        return self.parameter.parameter_name

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.parameter.grant_read(grantee)

    def grant_write(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.parameter.grant_write(grantee)


class PixabayApiKey(Construct):
    """A secret whose value operators set after deploy; the code never holds the key.

    It starts as ``{"api_key": "REPLACE_ME"}``; until replaced, ingest skips Pixabay with a
    recorded reason instead of failing.
    """

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        self.secret = secretsmanager.Secret(
            self,
            "Resource",
            encryption_key=key,
            description="Pixabay API key for the media pipeline: set api_key after deploy",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"api_key": PIXABAY_PLACEHOLDER}),
                generate_string_key="placeholder_nonce",
                exclude_punctuation=True,
            ),
        )

        Validations.of(self.secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason=(
                    "Third-party API key issued by Pixabay: it can only be rotated in the Pixabay "
                    "account, so there is no rotation Lambda to attach."
                ),
            )
        )

    @property
    def secret_arn(self) -> str:
        return self.secret.secret_arn

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read the secret, and decrypt it with the data key only through Secrets Manager.

        Written out rather than ``Secret.grant_read``: for a key in another stack that grant also
        names the reader's role in the key policy (through ``kms:ViaService``), which would make
        the stateful stack depend on the pipeline stack that depends on it.
        """
        read = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resource_arns=[self.secret.secret_arn],
        )
        decrypt = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["kms:Decrypt"],
            resource_arns=[self.key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"secretsmanager.{cdk.Stack.of(self).region}.amazonaws.com"
                }
            },
        )
        return read.combine(decrypt)
