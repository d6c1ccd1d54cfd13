"""Customer managed keys, locally: each service's key use is checked for its caller, as KMS does.

Small hand-written templates are deployed into moto by the world's deployer; a role then calls
S3, DynamoDB, Secrets Manager and Rekognition through moto with its own credentials, so every
call passes through the same access-control hook as a pipeline run's. Each rule is shown to allow
with the right grant and to deny without it, naming the action, the principal and the key.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localworld import iam
from localworld.clock import SimClock
from localworld.deploy import Deployer, Deployment
from localworld.iam import Denial, Identity, PermissionDenied, Permissions, condition_holds
from localworld.mediaconvert import MediaConvertStandIn
from localworld.template import Resolver
from localworld.transcoder import TranscodeError

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DATA = "Test-Data"
LAMBDA_TRUST = {
    "Statement": [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
}
ACCOUNT_STATEMENT = {
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": "kms:*",
    "Resource": "*",
}
KEY_ARN = {"Fn::GetAtt": ["Key", "Arn"]}


def key_resource(*statements: dict[str, Any], account: bool = True) -> dict[str, Any]:
    policy = [ACCOUNT_STATEMENT] if account else []
    return {
        "Type": "AWS::KMS::Key",
        "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": [*policy, *statements]}},
    }


def bucket_resource(*, kms: bool = True, bucket_key: bool = True) -> dict[str, Any]:
    if not kms:
        rule: dict[str, Any] = {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    else:
        rule = {
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
            "BucketKeyEnabled": bucket_key,
        }
    return {
        "Type": "AWS::S3::Bucket",
        "Properties": {"BucketEncryption": {"ServerSideEncryptionConfiguration": [rule]}},
    }


def role_resource(trust: dict[str, Any] = LAMBDA_TRUST) -> dict[str, Any]:
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}


def policy_resource(*statements: dict[str, Any], role: str = "Role") -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "RolePolicy",
            "Roles": [{"Ref": role}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
        },
    }


def allow(action: str | list[str], resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def decrypt(key: Any, condition: dict[str, Any]) -> dict[str, Any]:
    return allow("kms:Decrypt", key, Condition=condition)


def decrypt_via(service: str, key: Any, **conditions: Any) -> dict[str, Any]:
    """``kms:Decrypt`` of ``key`` only through ``service`` and with ``conditions`` (operator ->
    keys) besides ``StringEquals`` ones given as ``equals``."""
    equals = {"kms:ViaService": f"{service}.{REGION}.amazonaws.com", **conditions.pop("equals", {})}
    return decrypt(key, {"StringEquals": equals, **conditions})


def objects(bucket: str = "Bucket") -> dict[str, Any]:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}


@dataclass
class Cloud:
    """moto with the world's deployer and evaluator, and nothing else of a world."""

    session: Any
    resolver: Resolver
    store: Permissions
    deployer: Deployer
    _grants: int = 0
    deployments: dict[str, Deployment] = field(default_factory=dict)

    def deploy(self, resources: dict[str, Any], stack: str = DATA, **outputs: Any) -> Deployment:
        template: dict[str, Any] = {"Resources": resources}
        if outputs:
            template["Outputs"] = {name: {"Value": value} for name, value in outputs.items()}
        self.deployments[stack] = self.deployer.deploy(stack, template)
        return self.deployments[stack]

    def arn(self, logical_id: str) -> str:
        return str(self.resolver.attrs[(logical_id, "Arn")])

    def name(self, logical_id: str) -> str:
        return str(self.resolver.refs[logical_id])

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)

    def role(self, logical_id: str = "Role") -> Identity:
        return self.store.assume(
            self.arn(logical_id), service="lambda.amazonaws.com", session="Fn", who="function Fn"
        )

    def grant(self, *statements: dict[str, Any], role: str = "Role") -> None:
        """Another identity policy for the role (as an ``AWS::IAM::Policy`` would add)."""
        self._grants += 1
        document = {"Statement": self.resolver.resolve(list(statements))}
        self.store.attach_policy(f"{DATA}/Grant{self._grants}", document, roles=[self.arn(role)])

    def denials(self) -> list[Denial]:
        return self.store.new_denials()


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    from moto import mock_aws

    iam.install()
    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id=iam.ADMIN_ACCESS_KEY,
            aws_secret_access_key=iam.ADMIN_SECRET_KEY,
            region_name=REGION,
        )
        iam.mark_admin(session)
        resolver = Resolver(region=REGION, account=ACCOUNT)
        store = Permissions(partition="aws", region=REGION, account=ACCOUNT)
        store.bind_sts(session.client("sts", region_name=REGION))
        iam.activate(store)
        try:
            yield Cloud(session, resolver, store, Deployer(session, resolver, store))
        finally:
            iam.activate(None)


def denied(cloud: Cloud, action: str, resource: str) -> Denial:
    """The one denial recorded since the last look: ``action`` on ``resource``."""
    (denial,) = cloud.denials()
    assert (denial.action, denial.resource) == (action, resource), denial
    return denial


def access_denied(call: Any, **params: Any) -> ClientError:
    with pytest.raises(ClientError) as err:
        call(**params)
    assert err.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    return err.value


# -- S3 ------------------------------------------------------------------------------------------
def s3_world(cloud: Cloud, *statements: dict[str, Any], **bucket: Any) -> tuple[str, str, Any]:
    """A key, an encrypted bucket with one object (written by the world) and a role."""
    resources = {
        "Key": key_resource(),
        "Bucket": bucket_resource(**bucket),
        "Role": role_resource(),
    }
    if statements:
        resources["RolePolicy"] = policy_resource(*statements)
    cloud.deploy(resources)
    bucket_name = cloud.name("Bucket")
    cloud.client("s3").put_object(Bucket=bucket_name, Key="video/a.mp4", Body=b"video")
    return bucket_name, cloud.arn("Key"), cloud.role().client("s3", REGION)


def test_the_deployer_gives_moto_the_buckets_key_and_records_it(cloud: Cloud) -> None:
    # Given the key in one stack and the bucket in another (the key ARN comes as a stack output)
    cloud.deploy({"Key": key_resource()}, stack="Test-Keys", KeyArn=KEY_ARN)
    imported = {"Fn::GetStackOutput": {"StackName": "Test-Keys", "OutputName": "KeyArn"}}
    bucket = bucket_resource()
    bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"] = imported
    cloud.deploy({"Bucket": bucket, "Plain": bucket_resource(kms=False)})
    key, name = cloud.arn("Key"), cloud.name("Bucket")

    # Then moto encrypts with it, objects carry it, and the evaluator knows it
    s3 = cloud.client("s3")
    (rule,) = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key
    s3.put_object(Bucket=name, Key="a", Body=b"x")
    head = s3.head_object(Bucket=name, Key="a")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)
    assert s3.get_object(Bucket=name, Key="a")["Body"].read() == b"x"
    assert cloud.store.encrypted_with == {cloud.arn("Bucket"): key}
    assert cloud.store.bucket_keys == {cloud.arn("Bucket")}
    s3.put_object(Bucket=cloud.name("Plain"), Key="a", Body=b"x")
    assert s3.head_object(Bucket=cloud.name("Plain"), Key="a")["ServerSideEncryption"] == "AES256"


def test_reading_an_sse_kms_object_needs_decrypt_on_its_key(cloud: Cloud) -> None:
    bucket, key, s3 = s3_world(cloud, allow("s3:GetObject", objects()))

    # When the role reads with s3:GetObject alone, S3's kms:Decrypt for it is refused
    access_denied(s3.get_object, Bucket=bucket, Key="video/a.mp4")
    denial = denied(cloud, "kms:Decrypt", key)
    assert "Fn" in denial.who and "the key policy leaves it to IAM" in denial.reason

    # Then CDK's bucket.grantRead key statement is enough
    cloud.grant(allow(["kms:Decrypt", "kms:DescribeKey"], key))
    assert s3.get_object(Bucket=bucket, Key="video/a.mp4")["Body"].read() == b"video"
    assert cloud.denials() == []


def test_s3_asks_kms_through_s3_with_the_bucket_arn_as_context_when_bucket_keys_are_on(
    cloud: Cloud,
) -> None:
    bucket, key, s3 = s3_world(cloud, allow("s3:GetObject", objects()))
    bucket_arn = cloud.arn("Bucket")

    # A grant for another service's use of the key, or for the object's ARN, does not apply
    cloud.grant(
        decrypt(key, {"StringEquals": {"kms:ViaService": "sqs.eu-west-1.amazonaws.com"}}),
        decrypt(
            key, {"ArnEquals": {"kms:EncryptionContext:aws:s3:arn": f"{bucket_arn}/video/a.mp4"}}
        ),
    )
    access_denied(s3.get_object, Bucket=bucket, Key="video/a.mp4")
    denied(cloud, "kms:Decrypt", key)

    # The bucket's ARN (S3 Bucket Keys), from this account, through S3, does
    cloud.grant(
        decrypt_via(
            "s3",
            key,
            equals={"kms:CallerAccount": ACCOUNT},
            ArnEquals={"kms:EncryptionContext:aws:s3:arn": bucket_arn},
            **{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "aws:s3:arn"}},
        )
    )
    s3.get_object(Bucket=bucket, Key="video/a.mp4")
    assert cloud.denials() == []


def test_without_bucket_keys_the_context_is_the_objects_arn(cloud: Cloud) -> None:
    bucket, key, s3 = s3_world(cloud, allow("s3:GetObject", objects()), bucket_key=False)
    bucket_arn = cloud.arn("Bucket")
    cloud.grant(decrypt(key, {"ArnEquals": {"kms:EncryptionContext:aws:s3:arn": bucket_arn}}))
    access_denied(s3.get_object, Bucket=bucket, Key="video/a.mp4")
    denied(cloud, "kms:Decrypt", key)
    cloud.grant(
        decrypt(key, {"ArnLike": {"kms:EncryptionContext:aws:s3:arn": f"{bucket_arn}/video/*"}})
    )
    s3.get_object(Bucket=bucket, Key="video/a.mp4")
    assert cloud.denials() == []


def test_head_object_needs_decrypt_only_for_the_checksum(cloud: Cloud) -> None:
    bucket, key, s3 = s3_world(cloud, allow("s3:GetObject", objects()))
    # HeadObject returns metadata: no key use
    assert s3.head_object(Bucket=bucket, Key="video/a.mp4")["SSEKMSKeyId"] == key
    assert cloud.denials() == []
    # but the stored checksum is encrypted: asking for it needs kms:Decrypt
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="video/a.mp4", ChecksumMode="ENABLED")
    denied(cloud, "kms:Decrypt", key)


def test_writing_an_object_needs_generate_data_key_on_the_buckets_key(cloud: Cloud) -> None:
    bucket, key, s3 = s3_world(cloud, allow("s3:PutObject", objects()))

    access_denied(s3.put_object, Bucket=bucket, Key="video/b.mp4", Body=b"b")
    assert "Fn" in denied(cloud, "kms:GenerateDataKey", key).who
    # An object the caller asks to be SSE-S3 uses no KMS key
    s3.put_object(Bucket=bucket, Key="video/c.mp4", Body=b"c", ServerSideEncryption="AES256")
    assert cloud.denials() == []

    cloud.grant(allow("kms:GenerateDataKey*", key))
    s3.put_object(Bucket=bucket, Key="video/b.mp4", Body=b"b")
    assert cloud.denials() == []
    head = cloud.client("s3").head_object(Bucket=bucket, Key="video/b.mp4")
    assert head["SSEKMSKeyId"] == key


def test_a_copy_decrypts_its_source_and_encrypts_its_destination(cloud: Cloud) -> None:
    bucket, key, s3 = s3_world(cloud, allow(["s3:GetObject", "s3:PutObject"], objects()))
    copy = {"Bucket": bucket, "Key": "video/copy.mp4", "CopySource": f"{bucket}/video/a.mp4"}

    # Without either key use: the destination's data key is refused, then the source's decrypt
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        access_denied(s3.copy_object, **copy)
        denied(cloud, action, key)
        cloud.grant(allow(action, key))
    s3.copy_object(**copy)
    assert cloud.denials() == []


def test_every_step_of_a_multipart_upload_needs_generate_data_key_and_decrypt(cloud: Cloud) -> None:
    bucket, key, s3 = s3_world(cloud, allow(["s3:PutObject", "s3:AbortMultipartUpload"], objects()))
    cloud.grant(allow("kms:GenerateDataKey", key))
    admin = cloud.client("s3")
    target = {"Bucket": bucket, "Key": "video/big.mp4"}

    # Each step S3 takes with the key refuses a caller without kms:Decrypt
    access_denied(s3.create_multipart_upload, **target)
    denied(cloud, "kms:Decrypt", key)
    upload = admin.create_multipart_upload(**target)["UploadId"]
    access_denied(s3.upload_part, **target, UploadId=upload, PartNumber=1, Body=b"x" * 10)
    denied(cloud, "kms:Decrypt", key)
    part = admin.upload_part(**target, UploadId=upload, PartNumber=1, Body=b"x" * 10)
    parts = {"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}
    access_denied(s3.complete_multipart_upload, **target, UploadId=upload, MultipartUpload=parts)
    denied(cloud, "kms:Decrypt", key)
    # Aborting uses no key
    s3.abort_multipart_upload(**target, UploadId=upload)
    assert cloud.denials() == []

    # With both, the caller's whole upload goes through (boto3's managed upload, 2 parts)
    cloud.grant(allow("kms:Decrypt", key))
    s3.upload_fileobj(io.BytesIO(b"y" * (9 * 1024 * 1024)), bucket, "video/big.mp4")
    assert cloud.denials() == []
    assert admin.head_object(**target)["SSEKMSKeyId"] == key


def test_listing_tagging_and_deleting_use_no_key(cloud: Cloud) -> None:
    bucket, _key, s3 = s3_world(
        cloud,
        allow("s3:ListBucket", {"Fn::GetAtt": ["Bucket", "Arn"]}),
        allow(["s3:PutObjectTagging", "s3:GetObjectTagging", "s3:DeleteObject"], objects()),
    )
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["video/a.mp4"]
    tags = {"TagSet": [{"Key": "k", "Value": "v"}]}
    s3.put_object_tagging(Bucket=bucket, Key="video/a.mp4", Tagging=tags)
    assert s3.get_object_tagging(Bucket=bucket, Key="video/a.mp4")["TagSet"] == tags["TagSet"]
    s3.delete_object(Bucket=bucket, Key="video/a.mp4")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "video/a.mp4"}]})
    assert cloud.denials() == []
    # (the same role reading an object does need the key: the grants above are all it has)
    cloud.client("s3").put_object(Bucket=bucket, Key="video/b.mp4", Body=b"b")
    cloud.grant(allow("s3:GetObject", objects()))
    access_denied(s3.get_object, Bucket=bucket, Key="video/b.mp4")
    denied(cloud, "kms:Decrypt", _key)


def test_an_sse_s3_bucket_needs_no_key_grant(cloud: Cloud) -> None:
    cloud.deploy(
        {
            "Bucket": bucket_resource(kms=False),
            "Role": role_resource(),
            "RolePolicy": policy_resource(allow(["s3:GetObject", "s3:PutObject"], objects())),
        }
    )
    s3 = cloud.role().client("s3", REGION)
    bucket = cloud.name("Bucket")
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"a"
    assert cloud.denials() == []
    assert cloud.store.encrypted_with == {}


def test_a_key_policy_without_the_account_refuses_even_what_iam_allows(cloud: Cloud) -> None:
    # Given a key whose policy names another principal only (no account statement)
    other = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"},
        "Action": "kms:*",
        "Resource": "*",
    }
    cloud.deploy(
        {
            "Key": key_resource(other, account=False),
            "Bucket": bucket_resource(),
            "Role": role_resource(),
            "RolePolicy": policy_resource(
                allow(["s3:GetObject"], objects()), allow("kms:*", KEY_ARN)
            ),
        }
    )
    bucket, key = cloud.name("Bucket"), cloud.arn("Key")
    cloud.client("s3").put_object(Bucket=bucket, Key="a", Body=b"a")
    s3 = cloud.role().client("s3", REGION)

    # Then the role's own kms:* grant does not help: the key policy decides
    access_denied(s3.get_object, Bucket=bucket, Key="a")
    denial = denied(cloud, "kms:Decrypt", key)
    assert denial.reason == f"the key policy of {DATA}/Key does not allow it"


def test_a_key_policy_naming_the_role_needs_no_identity_grant(cloud: Cloud) -> None:
    # Given a key policy statement for the role itself, through S3 only (as CDK writes them)
    role_statement = {
        "Effect": "Allow",
        "Principal": {"AWS": {"Fn::GetAtt": ["Role", "Arn"]}},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}},
    }
    cloud.deploy(
        {
            "Role": role_resource(),
            "RolePolicy": policy_resource(allow("s3:GetObject", objects())),
            "Key": key_resource(role_statement, account=False),
            "Bucket": bucket_resource(),
        }
    )
    bucket = cloud.name("Bucket")
    cloud.client("s3").put_object(Bucket=bucket, Key="a", Body=b"a")
    s3 = cloud.role().client("s3", REGION)
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"a"
    assert cloud.denials() == []
    # but only for what the statement allows
    cloud.grant(allow("s3:PutObject", objects()), allow("kms:GenerateDataKey", cloud.arn("Key")))
    access_denied(s3.put_object, Bucket=bucket, Key="b", Body=b"b")
    assert denied(cloud, "kms:GenerateDataKey", cloud.arn("Key")).reason == (
        f"the key policy of {DATA}/Key does not allow it"
    )


# -- DynamoDB --------------------------------------------------------------------------------------
def table_resource(*, customer_key: bool = True) -> dict[str, Any]:
    sse: dict[str, Any] = {"SSEEnabled": True}
    if customer_key:
        sse |= {"SSEType": "KMS", "KMSMasterKeyId": KEY_ARN}
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": sse,
        },
    }


ITEM_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]


def test_item_operations_on_a_table_with_a_customer_managed_key_need_decrypt(cloud: Cloud) -> None:
    cloud.deploy(
        {
            "Key": key_resource(),
            "Table": table_resource(),
            "Managed": table_resource(customer_key=False),
            "Role": role_resource(),
            "RolePolicy": policy_resource(
                allow(
                    [*ITEM_ACTIONS, "dynamodb:DescribeTable"],
                    [{"Fn::GetAtt": ["Table", "Arn"]}, {"Fn::GetAtt": ["Managed", "Arn"]}],
                )
            ),
        }
    )
    key, table, managed = cloud.arn("Key"), cloud.name("Table"), cloud.name("Managed")
    assert cloud.store.encrypted_with == {cloud.arn("Table"): key}
    assert (
        cloud.client("dynamodb").describe_table(TableName=table)["Table"]["SSEDescription"][
            "KMSMasterKeyArn"
        ]
        == key
    )
    ddb = cloud.role().client("dynamodb", REGION)
    item = {"pk": {"S": "a"}}

    # Reads and writes alike: DynamoDB decrypts the table key with the caller's permissions
    access_denied(ddb.put_item, TableName=table, Item=item)
    assert "Fn" in denied(cloud, "kms:Decrypt", key).who
    access_denied(ddb.get_item, TableName=table, Key=item)
    denied(cloud, "kms:Decrypt", key)
    batch = {table: [{"PutRequest": {"Item": item}}]}
    access_denied(ddb.batch_write_item, RequestItems=batch)
    denied(cloud, "kms:Decrypt", key)
    # Describing the table, or a table with the AWS managed key, needs no grant
    ddb.describe_table(TableName=table)
    ddb.put_item(TableName=managed, Item=item)
    assert cloud.denials() == []

    # CDK's table grant (kms:Decrypt), scoped the way KMS sees DynamoDB's request, allows it
    cloud.grant(
        decrypt_via(
            "dynamodb",
            key,
            equals={
                "kms:EncryptionContext:aws:dynamodb:tableName": table,
                "kms:EncryptionContext:aws:dynamodb:subscriberId": ACCOUNT,
            },
        )
    )
    ddb.put_item(TableName=table, Item=item)
    assert ddb.get_item(TableName=table, Key=item)["Item"] == item
    ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "a"}},
    )
    ddb.batch_write_item(RequestItems=batch)
    assert cloud.denials() == []


# -- Secrets Manager -------------------------------------------------------------------------------
def test_reading_a_secret_with_a_customer_managed_key_needs_decrypt_through_secrets_manager(
    cloud: Cloud,
) -> None:
    cloud.deploy(
        {
            "Key": key_resource(),
            "Secret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {"KmsKeyId": KEY_ARN, "SecretString": "s3cr3t"},
            },
            "Role": role_resource(),
            "RolePolicy": policy_resource(
                allow(
                    ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    {"Ref": "Secret"},
                )
            ),
        }
    )
    key, secret = cloud.arn("Key"), cloud.name("Secret")
    assert cloud.client("secretsmanager").describe_secret(SecretId=secret)["KmsKeyId"] == key
    sm = cloud.role().client("secretsmanager", REGION)

    access_denied(sm.get_secret_value, SecretId=secret)
    assert "Fn" in denied(cloud, "kms:Decrypt", key).who
    sm.describe_secret(SecretId=secret)  # metadata: no key use
    assert cloud.denials() == []

    # kms:Decrypt through another service does not apply; CDK's grantRead statement does
    via = {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"}
    cloud.grant(decrypt(key, {"StringEquals": via}))
    access_denied(sm.get_secret_value, SecretId=secret)
    denied(cloud, "kms:Decrypt", key)
    cloud.grant(
        decrypt_via("secretsmanager", key, equals={"kms:EncryptionContext:SecretARN": secret})
    )
    assert sm.get_secret_value(SecretId=secret)["SecretString"] == "s3cr3t"
    assert cloud.denials() == []


# -- Rekognition Video and MediaConvert read S3 as their caller -----------------------------------
def test_rekognition_start_needs_decrypt_of_the_videos_key_for_the_caller(cloud: Cloud) -> None:
    from localworld import rekognition

    rekognition.install()  # Start* answers "no local world" once the checks pass
    bucket, key, _s3 = s3_world(
        cloud, allow("s3:GetObject", objects()), allow("rekognition:StartLabelDetection", "*")
    )
    client = cloud.role().client("rekognition", REGION)
    video = {"S3Object": {"Bucket": bucket, "Name": "video/a.mp4"}}

    with pytest.raises(ClientError):
        client.start_label_detection(Video=video)
    denied(cloud, "kms:Decrypt", key)

    cloud.grant(decrypt(key, {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}))
    with pytest.raises(ClientError) as err:
        client.start_label_detection(Video=video)
    assert "no local world" in str(err.value)  # past every check
    assert cloud.denials() == []


def test_a_mediaconvert_job_role_reads_and_writes_through_the_same_key_checks(
    cloud: Cloud, tmp_path: Path
) -> None:
    trust = {
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "mediaconvert.amazonaws.com"},
            }
        ]
    }
    bucket, key, _s3 = s3_world(cloud)
    cloud.deploy(
        {
            "JobRole": role_resource(trust),
            "JobPolicy": policy_resource(
                allow(["s3:GetObject", "s3:PutObject"], f"{cloud.arn('Bucket')}/*"), role="JobRole"
            ),
        },
        stack="Test-Media",
    )

    def assume(role_arn: str) -> Identity:
        return cloud.store.assume(
            role_arn,
            service="mediaconvert.amazonaws.com",
            session="MediaConvert",
            who="MediaConvert",
        )

    standin = MediaConvertStandIn(
        clock=SimClock(1000.0), region=REGION, account=ACCOUNT, assume_role=assume
    )
    s3 = standin._s3_for(cloud.arn("JobRole"))
    rendition = tmp_path / "out.mp4"
    rendition.write_bytes(b"rendition")

    # Without the key, the job cannot read its input nor write its output
    assert standin._read(f"s3://{bucket}/video/a.mp4", s3) is None
    assert "MediaConvert" in denied(cloud, "kms:Decrypt", key).who
    with pytest.raises(TranscodeError) as err:
        standin._put(s3, f"s3://{bucket}/out/a.mp4", rendition, "video/mp4")
    assert err.value.error_code == 1401
    denied(cloud, "kms:GenerateDataKey", key)

    # With CDK's read/write key grant it does both
    cloud.grant(allow(["kms:Decrypt", "kms:GenerateDataKey*"], key), role="JobRole")
    assert standin._read(f"s3://{bucket}/video/a.mp4", s3) == b"video"
    standin._put(s3, f"s3://{bucket}/out/a.mp4", rendition, "video/mp4")
    assert cloud.denials() == []


# -- CloudWatch Logs refuses a log group whose key it may not use ---------------------------------
def logs_statement(
    log_groups: str, principal: str = f"logs.{REGION}.amazonaws.com"
) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": [
            "kms:Encrypt*",
            "kms:Decrypt*",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Describe*",
        ],
        "Resource": "*",
        "Condition": {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_groups}"
            }
        },
    }


LOG_GROUP = {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": KEY_ARN}}


def test_a_log_group_is_created_with_a_key_whose_policy_lets_logs_use_it_for_this_stack(
    cloud: Cloud,
) -> None:
    cloud.deploy({"Key": key_resource(logs_statement(f"{DATA}-*")), "Logs": LOG_GROUP})
    name, key = cloud.name("Logs"), cloud.arn("Key")
    assert name.startswith(f"{DATA}-Logs-")
    (group,) = cloud.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert group["kmsKeyId"] == key
    assert cloud.store.encrypted_with == {f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}": key}
    assert cloud.denials() == []


@pytest.mark.parametrize(
    "statements",
    [
        pytest.param([], id="no-logs-statement"),
        pytest.param([logs_statement("Other-Stack-*")], id="another-stacks-log-groups"),
        pytest.param(
            [logs_statement(f"{DATA}-*", principal="logs.us-east-1.amazonaws.com")],
            id="another-regions-logs",
        ),
    ],
)
def test_a_log_group_whose_key_logs_may_not_use_is_refused(
    cloud: Cloud, statements: list[dict[str, Any]]
) -> None:
    with pytest.raises(PermissionDenied) as err:
        cloud.deploy({"Key": key_resource(*statements), "Logs": LOG_GROUP})
    (denial,) = err.value.denials
    key = cloud.arn("Key")
    assert denial.who.startswith(f"CreateLogGroup {DATA}-Logs-")
    assert (denial.action, denial.resource) == ("kms:Encrypt", key)
    assert f"log-group:{DATA}-Logs-" in denial.reason
    assert f"logs.{REGION}.amazonaws.com may not use it" in denial.reason
    assert cloud.client("logs").describe_log_groups()["logGroups"] == []


def test_the_logs_check_names_the_first_action_the_key_policy_leaves_out(cloud: Cloud) -> None:
    statement = logs_statement(f"{DATA}-*")
    statement["Action"] = ["kms:Encrypt", "kms:GenerateDataKey"]
    with pytest.raises(PermissionDenied) as err:
        cloud.deploy({"Key": key_resource(statement), "Logs": LOG_GROUP})
    assert err.value.denials[0].action == "kms:Decrypt"


# -- the evaluator's own rules ----------------------------------------------------------------------
def test_an_absent_key_satisfies_a_negated_operator_and_no_for_any_value() -> None:
    context = {"kms:viaservice": ["s3.eu-west-1.amazonaws.com"]}
    assert condition_holds("StringNotEquals", "kms:CallerAccount", "111", context)
    assert not condition_holds("StringEquals", "kms:CallerAccount", "111", context)
    assert not condition_holds("ForAnyValue:StringNotLike", "kms:CallerAccount", "1*", context)
    assert condition_holds("ForAllValues:StringEquals", "kms:CallerAccount", "1", context)
    assert not condition_holds(
        "StringNotEquals", "kms:ViaService", "s3.eu-west-1.amazonaws.com", context
    )


def test_publishing_to_an_encrypted_topic_uses_the_key_through_sns_with_the_topics_arn() -> None:
    store = Permissions(partition="aws", region=REGION, account=ACCOUNT)
    role = f"arn:aws:iam::{ACCOUNT}:role/Publisher"
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:Completion"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1"
    store.add_role(role, "Publisher", LAMBDA_TRUST, source="Test/Publisher")
    store.add_key(key, "1", "Test/Key", {"Statement": [ACCOUNT_STATEMENT]})
    store.encrypt(topic, key)
    store.encrypt(f"{topic}-aws", "alias/aws/sns")
    checks = store.with_kms(iam.Check("sns:Publish", topic, (), topic), topic)
    assert [c.action for c in checks] == ["sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"]
    assert dict(checks[1].context) == {
        "aws:ViaAWSService": "true",
        "kms:CallerAccount": ACCOUNT,
        "kms:EncryptionContext:aws:sns:topicArn": topic,
        "kms:ViaService": f"sns.{REGION}.amazonaws.com",
    }
    assert len(store.with_kms(iam.Check("sns:Publish", f"{topic}-aws"), f"{topic}-aws")) == 1
    actor = iam.Actor(role_arn=role)
    store.attach_policy(
        "Test/Policy",
        {
            "Statement": [
                allow(
                    "kms:GenerateDataKey",
                    key,
                    Condition={"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic}},
                )
            ]
        },
        roles=[role],
    )
    assert store.decide(actor, checks[1]) is None
    assert store.decide(actor, checks[2]) == (
        "no identity-based policy allows it (the key policy leaves it to IAM)"
    )


def test_a_key_without_a_key_policy_gets_kms_default_one(cloud: Cloud) -> None:
    cloud.deploy({"Key": {"Type": "AWS::KMS::Key", "Properties": {}}})
    document = cloud.store.key_policies[cloud.arn("Key")]
    assert document.statements == [ACCOUNT_STATEMENT]


def test_receiving_from_an_encrypted_queue_needs_decrypt_sending_needs_both() -> None:
    from types import SimpleNamespace

    store = Permissions(partition="aws", region=REGION, account=ACCOUNT)
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:Undelivered"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1"
    store.add_key(key, "1", "Test/Key", {"Statement": [ACCOUNT_STATEMENT]})
    store.encrypt(queue, key)
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/Undelivered"
    request = SimpleNamespace(body=json.dumps({"QueueUrl": url}), uri=url)

    receive = store.checks_for("sqs", "ReceiveMessage", request, "")
    send = store.checks_for("sqs", "SendMessage", request, "")
    assert [(c.action, c.resource) for c in receive] == [
        ("sqs:ReceiveMessage", queue),
        ("kms:Decrypt", key),
    ]
    assert [c.action for c in send] == ["sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"]
    assert dict(receive[1].context)["kms:EncryptionContext:aws:sqs:arn"] == queue
    assert dict(receive[1].context)["kms:ViaService"] == f"sqs.{REGION}.amazonaws.com"
    assert [c.action for c in store.checks_for("sqs", "DeleteMessage", request, "")] == [
        "sqs:DeleteMessage"
    ]
