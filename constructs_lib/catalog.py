"""The asset catalog table (item shapes are documented in ``lambdas/shared/catalog.py``)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from constructs_lib.nag import acknowledge, arn_finding

BY_CAMPAIGN_INDEX = "ByCampaign"
BY_CAMPAIGN_STATUS_INDEX = "ByCampaignStatus"
TTL_ATTRIBUTE = "expires_at"
# Operations of lambdas/shared/catalog.py (batch_writer for the label index, transactions for
# status changes with their counters); queries include the GSIs.
ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    # The jobs API reads the assets of a page of jobs in one call (JobStore.linked_assets).
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)
READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable")
KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


class AssetCatalog(Construct):
    """One on-demand table with point-in-time recovery and two sparse GSIs.

    The key design answers the product's three questions without a scan: assets of a campaign
    newest first (``ByCampaign``), counts per campaign and status (counter items on the base
    table), and "has this source item been seen" (a source marker item, read by key).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, retain_data: bool, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        string = dynamodb.AttributeType.STRING
        self.table = dynamodb.Table(
            self,
            "Resource",
            partition_key=dynamodb.Attribute(name="pk", type=string),
            sort_key=dynamodb.Attribute(name="sk", type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=retain_data,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY,
        )
        for index, pk, sk in (
            (BY_CAMPAIGN_INDEX, "gsi1pk", "gsi1sk"),
            (BY_CAMPAIGN_STATUS_INDEX, "gsi2pk", "gsi2sk"),
        ):
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=pk, type=string),
                sort_key=dynamodb.Attribute(name=sk, type=string),
                projection_type=dynamodb.ProjectionType.ALL,
            )

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Item reads only (get, query, describe; no Scan) and the key's decrypt."""
        return self._grant(grantee, READ_ACTIONS, ("kms:Decrypt", "kms:DescribeKey"))

    def grant_read_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Exactly the item operations ``lambdas/shared/catalog.py`` performs: no Scan.

        The grant covers the table's own GSIs (``<table>/index/*``); that wildcard is
        acknowledged here, on the grantee's policy, so callers never repeat it.
        """
        return self._grant(grantee, ITEM_ACTIONS, KEY_ACTIONS)

    def _grant(
        self, grantee: iam.IGrantable, actions: tuple[str, ...], key_actions: tuple[str, ...]
    ) -> iam.Grant:
        grant = self.table.grant(grantee, *actions)
        # ``Table.grant`` leaves the table's key to the caller: item reads decrypt, writes
        # encrypt under the data key (no wildcard actions).
        self.key.grant(grantee, *key_actions)
        principal = grantee.grant_principal
        table = self.table.node.default_child
        if isinstance(principal, iam.Role) and isinstance(table, cdk.CfnResource):
            policy = principal.node.find_child("DefaultPolicy")
            acknowledge(
                policy,
                [arn_finding(policy, table, "/index/*")],
                "Queries the catalog's own GSIs (ByCampaign, ByCampaignStatus) through the "
                "catalog grant; index names are fixed by the table.",
            )
        return grant

    def metric_throttled_requests(self, **props: object) -> cloudwatch.IMetric:
        return self.table.metric_throttled_requests_for_operations(
            operations=[
                dynamodb.Operation.PUT_ITEM,
                dynamodb.Operation.UPDATE_ITEM,
                dynamodb.Operation.TRANSACT_WRITE_ITEMS,
                dynamodb.Operation.QUERY,
            ],
            **props,  # type: ignore[arg-type]
        )
