"""Stateful resources: everything whose loss would lose data lives here, apart from compute."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.campaign_config import CampaignConfig, PixabayApiKey
from constructs_lib.catalog import AssetCatalog
from constructs_lib.data_lake import DataLake
from stacks.config import EnvironmentConfig


class StatefulStack(cdk.Stack):
    """Data lake, catalog, campaign configuration and secrets (retained in prod)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.data_lake = DataLake(
            self, "DataLake", lifecycle=config.lifecycle, retain_data=config.retain_data
        )
        self.catalog = AssetCatalog(self, "Catalog", retain_data=config.retain_data)
        self.campaign_config = CampaignConfig(
            self, "CampaignConfig", initial=config.campaigns.as_parameter()
        )
        self.pixabay_key = PixabayApiKey(self, "PixabayApiKey")

        for name, value, description in (
            ("RawBucketName", self.data_lake.raw.bucket_name, "Raw zone bucket"),
            ("ProcessedBucketName", self.data_lake.processed.bucket_name, "Processed zone"),
            ("CatalogTableName", self.catalog.table_name, "Asset catalog table"),
            ("CampaignParameterName", self.campaign_config.parameter_name, "Campaign config"),
            ("PixabaySecretArn", self.pixabay_key.secret_arn, "Set the Pixabay API key here"),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)
