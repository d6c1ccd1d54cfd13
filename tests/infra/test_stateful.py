"""Fine-grained guarantees of the stateful stack, per environment."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from constructs_lib.data_lake import ORPHAN_TAG
from stacks.config import build_environments


def _template(synthesized, env: str) -> Template:
    return Template.from_json(synthesized.templates[f"{env}/Stateful"])


def _buckets(template: Template) -> dict[str, Any]:
    return dict(template.find_resources("AWS::S3::Bucket"))


def _bucket(template: Template, prefix: str) -> dict:
    matches = {k: v for k, v in _buckets(template).items() if k.startswith(prefix)}
    assert len(matches) == 1, f"expected one bucket {prefix}, found {sorted(matches)}"
    return next(iter(matches.values()))


def _rules(bucket: dict) -> dict[str, dict]:
    return {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_every_bucket_blocks_public_access_encrypts_and_versions(synthesized, env):
    template = _template(synthesized, env)
    buckets = _buckets(template)
    assert len(buckets) == 4  # access logs, raw, processed, projects
    [key_id] = template.find_resources("AWS::KMS::Key")
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        if logical_id.startswith("DataLakeAccessLogs"):
            # S3 server access logging delivers only to SSE-S3 buckets
            assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        else:
            # the data key, with Bucket Keys (one KMS call per bucket key, not per object)
            assert rule == {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                    "SSEAlgorithm": "aws:kms",
                },
            }, logical_id
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_every_bucket_policy_denies_plain_http(synthesized, env):
    template = _template(synthesized, env)
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 4
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s["Action"] == "s3:*"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_raw_and_processed_log_to_the_access_log_bucket(synthesized, env):
    template = _template(synthesized, env)
    logs_id = next(k for k in _buckets(template) if k.startswith("DataLakeAccessLogs"))
    for prefix, log_prefix in (("DataLakeRaw", "raw/"), ("DataLakeProcessed", "processed/")):
        logging = _bucket(template, prefix)["Properties"]["LoggingConfiguration"]
        assert logging == {"DestinationBucketName": {"Ref": logs_id}, "LogFilePrefix": log_prefix}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_raw_video_tiers_follow_the_environment_config(synthesized, env):
    days = build_environments()[env].lifecycle
    raw = _bucket(_template(synthesized, env.capitalize()), "DataLakeRaw")
    rules = _rules(raw)
    tiers = rules["RawVideoTiers"]
    assert tiers["Prefix"] == "video/"
    assert tiers["Transitions"] == [
        {
            "StorageClass": "INTELLIGENT_TIERING",
            "TransitionInDays": days.raw_intelligent_tiering_days,
        },
        {"StorageClass": "GLACIER", "TransitionInDays": days.raw_glacier_days},
        {"StorageClass": "DEEP_ARCHIVE", "TransitionInDays": days.raw_deep_archive_days},
    ]
    assert rules["ExpireScratch"] == {
        "Id": "ExpireScratch",
        "Prefix": "scratch/",
        "ExpirationInDays": 14,
        "Status": "Enabled",
    }
    assert rules["ExpireUploadedOriginals"]["Prefix"] == "uploads/"
    housekeeping = rules["Housekeeping"]
    assert housekeeping["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": days.noncurrent_version_expiry_days
    }
    assert housekeeping["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": days.abort_incomplete_multipart_days
    }


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_processed_renditions_tier_but_labels_json_stays_standard(synthesized, env):
    days = build_environments()[env].lifecycle
    processed = _bucket(_template(synthesized, env.capitalize()), "DataLakeProcessed")
    rule = _rules(processed)["RenditionTiers"]
    # Only objects above 1 MiB (video and segments) move; labels documents are far smaller.
    assert rule["ObjectSizeGreaterThan"] == "1048576"
    assert rule["Transitions"] == [
        {
            "StorageClass": "GLACIER_IR",
            "TransitionInDays": days.renditions_instant_archive_days,
        }
    ]
    assert "ExpireScratch" in _rules(processed)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_renditions_tagged_orphaned_expire(synthesized, env):
    # Given the tag mark-failed puts on renditions of a failed asset that S3 would not delete
    from lambdas.finalize.cleanup import ORPHAN_TAG_KEY, ORPHAN_TAG_VALUE

    assert {ORPHAN_TAG_KEY: ORPHAN_TAG_VALUE} == ORPHAN_TAG
    # Then the processed bucket expires objects under video/ that carry it, so nothing of a
    # failed asset stays forever (the delete marker and noncurrent version go by Housekeeping)
    days = build_environments()[env].lifecycle
    rules = _rules(_bucket(_template(synthesized, env.capitalize()), "DataLakeProcessed"))
    assert rules["ExpireOrphanedRenditions"] == {
        "Id": "ExpireOrphanedRenditions",
        "Prefix": "video/",
        "TagFilters": [{"Key": ORPHAN_TAG_KEY, "Value": ORPHAN_TAG_VALUE}],
        "ExpirationInDays": days.orphaned_renditions_expiry_days,
        "Status": "Enabled",
    }
    assert rules["Housekeeping"]["ExpiredObjectDeleteMarker"] is True
    assert days.orphaned_renditions_expiry_days < days.noncurrent_version_expiry_days


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_raw_bucket_sends_events_to_eventbridge(synthesized, env):
    template = _template(synthesized, env)
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )


def test_prod_retains_data_and_dev_destroys_it(synthesized):
    prod, dev = _template(synthesized, "Prod"), _template(synthesized, "Dev")
    for bucket in _buckets(prod).values():
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["UpdateReplacePolicy"] == "Retain"
    for bucket in _buckets(dev).values():
        assert bucket["DeletionPolicy"] == "Delete"
    # Dev empties its buckets on delete; prod never has the auto-delete custom resource.
    assert len(dev.find_resources("Custom::S3AutoDeleteObjects")) == 4
    assert prod.find_resources("Custom::S3AutoDeleteObjects") == {}
    prod.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})
    prod.has_resource_properties("AWS::DynamoDB::Table", {"DeletionProtectionEnabled": True})
    dev.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Delete"})
    dev.has_resource_properties("AWS::DynamoDB::Table", {"DeletionProtectionEnabled": False})


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_catalog_is_on_demand_with_pitr_ttl_and_query_indexes(synthesized, env):
    template = _template(synthesized, env)
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                Match.object_like({"IndexName": "ByCampaign"}),
                Match.object_like({"IndexName": "ByCampaignStatus"}),
            ],
        },
    )


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_campaign_parameter_holds_the_default_campaigns(synthesized, env):
    import json

    template = _template(synthesized, env)
    params = template.find_resources("AWS::SSM::Parameter")
    assert len(params) == 1
    value = json.loads(next(iter(params.values()))["Properties"]["Value"])
    assert value == {
        "active_campaign": "travel",
        "batch_sizes": {"video": 2},
        "campaigns": ["travel", "tech", "nature"],
    }


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_pixabay_secret_is_a_placeholder_without_a_value_in_the_template(synthesized, env):
    template = _template(synthesized, env)
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": {
                "SecretStringTemplate": '{"api_key": "REPLACE_ME"}',
                "GenerateStringKey": "placeholder_nonce",
            }
        },
    )
    secret = next(iter(template.find_resources("AWS::SecretsManager::Secret").values()))
    assert "SecretString" not in secret["Properties"]


def test_no_physical_names_on_stateful_resources(synthesized):
    name_props = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SSM::Parameter": "Name",
        "AWS::SecretsManager::Secret": "Name",
    }
    for path, raw in synthesized.templates.items():
        template = Template.from_json(raw)
        for resource_type, prop in name_props.items():
            for logical_id, resource in template.find_resources(resource_type).items():
                assert prop not in resource.get("Properties", {}), f"{path} {logical_id}"


def test_local_catalog_table_matches_the_stack(synthesized):
    # Given the table definition local worlds and tests create, When it is compared with the
    # synthesized table, Then keys, indexes and TTL agree (a drift would make tests lie).
    from lambdas.shared.catalog import create_table

    captured: dict = {}

    class Recorder:
        def create_table(self, **kwargs):
            captured.update(kwargs)

        def update_time_to_live(self, **kwargs):
            captured["ttl"] = kwargs["TimeToLiveSpecification"]

    create_table(Recorder(), "t")
    table = next(
        r["Properties"]
        for r in synthesized.templates["Dev/Stateful"]["Resources"].values()
        if r["Type"] == "AWS::DynamoDB::Table"
    )
    assert captured["KeySchema"] == table["KeySchema"]
    assert sorted(captured["AttributeDefinitions"], key=str) == sorted(
        table["AttributeDefinitions"], key=str
    )
    assert [
        (g["IndexName"], g["KeySchema"], g["Projection"])
        for g in captured["GlobalSecondaryIndexes"]
    ] == [
        (g["IndexName"], g["KeySchema"], g["Projection"]) for g in table["GlobalSecondaryIndexes"]
    ]
    assert captured["ttl"] == table["TimeToLiveSpecification"]
    assert captured["BillingMode"] == table["BillingMode"]
