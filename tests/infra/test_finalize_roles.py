"""The finalize unit's mark-failed function: exactly the access its cleanup needs."""

from __future__ import annotations

from typing import Any

import pytest

from constructs_lib.catalog import ITEM_ACTIONS, KEY_ACTIONS


def _resources(synthesized, env: str) -> dict[str, Any]:
    return synthesized.templates[f"{env}/Pipeline"]["Resources"]


def _mark_failed(resources: dict[str, Any]) -> dict[str, Any]:
    found = [
        v
        for k, v in resources.items()
        if k.startswith("FinalizeMarkFailed") and v["Type"] == "AWS::Lambda::Function"
    ]
    assert len(found) == 1
    return found[0]


def _statements(resources: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources.values()
        if policy["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _bucket_arn(logical_id: str, env: str) -> dict[str, Any]:
    """The bucket's ARN as the pipeline stack reads it from the stateful stack."""
    from constructs_lib.nag import _unique_id

    reference = f'Output{{"Fn::GetAtt":["{logical_id}","Arn"]}}'
    return {
        "Fn::GetStackOutput": {
            "StackName": f"{env}-Stateful",
            "Region": "eu-west-1",
            "OutputName": _unique_id(["Publish", reference]),
        }
    }


@pytest.mark.parametrize("env", ["Dev", "Prod"])
def test_mark_failed_deletes_and_tags_only_under_processed_asset_prefixes(synthesized, env):
    # Given the synthesized mark-failed function and its role
    resources = _resources(synthesized, env)
    role_id = _mark_failed(resources)["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = _statements(resources, role_id)
    processed = _bucket_arn("DataLakeProcessedF37385DD", env)
    raw = _bucket_arn("DataLakeRaw1F82835B", env)

    # Then its S3 access is exactly: delete (a delete marker, never a version) and tag objects
    # under the processed bucket's video/ and image/, and list keys under those of both buckets
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert s3 == [
        {
            "Action": ["s3:DeleteObject", "s3:PutObjectTagging"],
            "Effect": "Allow",
            "Resource": [
                {"Fn::Join": ["", [processed, "/image/*"]]},
                {"Fn::Join": ["", [processed, "/video/*"]]},
            ],
        },
        {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["video/*", "image/*"]}},
            "Effect": "Allow",
            "Resource": [processed, raw],
        },
    ]
    # and nothing else beyond the catalog's item operations, its logs and tracing
    others = {a for s in statements for a in _actions(s) if not a.startswith("s3:")}
    assert others == {
        *ITEM_ACTIONS,
        # the catalog's data key, without wildcards (AssetCatalog.grant_read_write)
        *KEY_ACTIONS,
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }
