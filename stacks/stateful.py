"""Stateful resources: everything whose loss would lose data lives here, apart from compute."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from constructs import Construct

from constructs_lib.backup import DataBackups
from constructs_lib.campaign_config import CampaignConfig, PixabayApiKey
from constructs_lib.catalog import AssetCatalog
from constructs_lib.data_lake import DataLake
from constructs_lib.delivery import Delivery
from constructs_lib.keys import ServiceKey
from stacks.config import EnvironmentConfig


class StatefulStack(cdk.Stack):
    """Data lake, catalog, campaign configuration and secrets (retained in prod)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.data_key = ServiceKey(
            self,
            "DataKey",
            description="Encrypts the media pipeline's buckets, catalog, secret and backups",
            retain=config.retain_data,
        )
        if config.macie.enabled:
            self.data_key.allow_macie()
        key = self.data_key.key
        self.data_lake = DataLake(
            self,
            "DataLake",
            lifecycle=config.lifecycle,
            retain_data=config.retain_data,
            key=key if config.bucket_encryption == "kms" else None,
            replication=config.raw_replication,
            project_upload_origins=config.stories.upload_origins,
        )
        self.catalog = AssetCatalog(self, "Catalog", retain_data=config.retain_data, key=key)
        self.campaign_config = CampaignConfig(
            self, "CampaignConfig", initial=config.campaigns.as_parameter()
        )
        self.pixabay_key = PixabayApiKey(self, "PixabayApiKey", key=key)
        if config.backups.enabled:
            self.backups = DataBackups(
                self,
                "Backups",
                config=config.backups,
                key=key,
                resources=[
                    backup.BackupResource.from_dynamo_db_table(self.catalog.table),
                    backup.BackupResource.from_arn(self.data_lake.raw.bucket_arn),
                ],
            )

        # CloudFront in front of the processed bucket, here and not in a stack of its own:
        # the bucket policy and the data key's policy name the distribution.
        self.delivery: Delivery | None = None
        if config.delivery.enabled:
            self.delivery = Delivery(
                self,
                "Delivery",
                bucket=self.data_lake.processed,
                log_bucket=self.data_lake.access_logs,
                config=config.delivery,
            )
            self._delivery_outputs(self.delivery)

        for name, value, description in (
            ("RawBucketName", self.data_lake.raw.bucket_name, "Raw zone bucket"),
            ("ProcessedBucketName", self.data_lake.processed.bucket_name, "Processed zone"),
            (
                "ProjectsBucketName",
                self.data_lake.projects.bucket_name,
                "Story projects: upload images, audio, then manifest.json",
            ),
            ("CatalogTableName", self.catalog.table_name, "Asset catalog table"),
            ("CampaignParameterName", self.campaign_config.parameter_name, "Campaign config"),
            ("PixabaySecretArn", self.pixabay_key.secret_arn, "Set the Pixabay API key here"),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)

    def _delivery_outputs(self, delivery: Delivery) -> None:
        outputs = [
            ("DeliveryDomainName", delivery.domain_name, "Renditions are served from here"),
            ("DeliveryDistributionId", delivery.distribution_id, "CloudFront distribution"),
        ]
        if delivery.config.domain_name is not None:
            outputs.append(
                (
                    "DeliveryDistributionDomainName",
                    delivery.distribution.distribution_domain_name,
                    f"Point {delivery.config.domain_name} here (CNAME or alias record)",
                )
            )
        cookies = delivery.config.signed_cookies
        if cookies is not None and delivery.public_key_id is not None:
            outputs += [
                ("DeliveryKeyPairId", delivery.public_key_id, "CloudFront-Key-Pair-Id cookie"),
                (
                    "DeliverySigningKeySecretName",
                    cookies.private_key_secret_name,
                    "Secrets Manager secret holding the cookie-signing private key (PEM)",
                ),
            ]
        for name, value, description in outputs:
            cdk.CfnOutput(self, name, value=value, description=description)
