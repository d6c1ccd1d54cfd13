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

        for name, value, description in (
            ("RawBucketName", self.data_lake.raw.bucket_name, "Raw zone bucket"),
            ("ProcessedBucketName", self.data_lake.processed.bucket_name, "Processed zone"),
            ("CatalogTableName", self.catalog.table_name, "Asset catalog table"),
            ("CampaignParameterName", self.campaign_config.parameter_name, "Campaign config"),
            ("PixabaySecretArn", self.pixabay_key.secret_arn, "Set the Pixabay API key here"),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)
