"""Pins logical ids of stateful resources: a refactor must never silently replace them."""

from __future__ import annotations

import pytest

STATEFUL_TYPES = {
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::SSM::Parameter",
    "AWS::SecretsManager::Secret",
}

PINNED = {
    "DataLakeAccessLogs1DA51325": "AWS::S3::Bucket",
    "DataLakeRaw1F82835B": "AWS::S3::Bucket",
    "DataLakeProcessedF37385DD": "AWS::S3::Bucket",
    "DataLakeProjects4B1ACFF2": "AWS::S3::Bucket",
    "Catalog43DE16E8": "AWS::DynamoDB::Table",
    "CampaignConfig24AE9180": "AWS::SSM::Parameter",
    "PixabayApiKey50F98718": "AWS::SecretsManager::Secret",
}


@pytest.mark.parametrize("stack_path", ["Dev/Stateful", "Prod/Stateful"])
def test_stateful_logical_ids_are_pinned(synthesized, stack_path):
    resources = synthesized.templates[stack_path]["Resources"]
    found = {k: v["Type"] for k, v in resources.items() if v["Type"] in STATEFUL_TYPES}
    assert found == PINNED
