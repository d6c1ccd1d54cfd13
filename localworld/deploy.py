"""A tiny CloudFormation for moto: create the synthesized stacks' resources, resolve references.

Physical names are generated the way CloudFormation does (``<stack>-<logical id>-<suffix>``;
state machines ``<logical id>-<suffix>``; deterministic here), so the templates keep "no physical
names" and a policy scoped by CloudFormation's naming matches. Resources are created in
dependency order by retrying whatever still refers to something not yet created, after the
resources it names in ``DependsOn``. Resource types that do nothing locally (custom resources,
alarms...) are listed in ``skipped``; what refers to them is created all the same.

HTTP APIs (``AWS::ApiGatewayV2::Api``, ``Integration``, ``Route``, ``Stage``) are created in
moto's API Gateway v2 and recorded (``http_apis``, ``localworld.api_gateway.HttpApi``), so the
world can serve them on loopback (``localworld.api_gateway``) with their Lambda permissions
evaluated. What the local world cannot serve is skipped with whatever refers to it, and the
reason is recorded (``NOT_SERVED``): Cognito (no user pools locally) and API Gateway authorizers
(JWT and Lambda authorizers are not emulated), so in an environment with ``api.cognito`` on,
the routes that need the authorizer are skipped too and answer 404 locally; the output that
names a skipped resource is left out. ``Custom::S3BucketNotifications`` records which buckets
send their events to EventBridge (``eventbridge_buckets``): the world emits S3's "Object
Created" events for objects that arrive in them over HTTP (``localworld.world``).

CloudFront (``constructs_lib/delivery.py``) is recorded, not served: the distribution and its
parts get ids in CloudFront's formats and a ``*.cloudfront.net`` name, so the processed bucket's
policy (which names the distribution's ARN) and the stack's outputs resolve; nothing answers at
that name, and the local world keeps handing out presigned S3 links.

With a ``localworld.iam.Permissions`` the deployer also records what the templates say about
access: roles with their trust and inline/managed policies, ``AWS::IAM::Policy`` and
``AWS::IAM::ManagedPolicy``, bucket, topic, queue and Lambda resource policies, key policies (a
key without ``KeyPolicy`` gets KMS's default one: the account may use it, IAM decides) and which
resources each customer managed key encrypts: topics and queues (``KmsMasterKeyId``), buckets
(SSE-KMS default encryption, with or without S3 Bucket Keys), tables (``SSESpecification`` with
``KMSMasterKeyId``), secrets and log groups (``KmsKeyId``). A key given as ``alias/aws/...``, a
table without ``KMSMasterKeyId`` and an SSE-S3 bucket use AWS managed keys: nothing to record.
moto is told the same (``put_bucket_encryption``, ``SSESpecification``, ``KmsKeyId``,
``kmsKeyId``), so stored objects carry the key they were written with, as on AWS.

It refuses, as the service would at creation, a function whose role Lambda may not assume, a
state machine whose role Step Functions may not assume or that lacks the log-delivery and X-Ray
actions its logging and tracing need, and a log group whose key CloudWatch Logs may not use
(``CreateLogGroup``/``AssociateKmsKey`` check that the key policy lets ``logs.<region>.
amazonaws.com`` use the key with the log group's ARN as encryption context).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localworld.api_gateway import HttpApi, Integration, Route, Stage, Throttle
from localworld.iam import (
    S3_SSE_KMS,
    Actor,
    Check,
    Denial,
    FunctionRecord,
    PermissionDenied,
    Permissions,
)
from localworld.template import Resolver, UnresolvedReference

LAMBDA_RUNTIME_FALLBACK = "python3.12"
# What a state machine's role needs for its logging and tracing configuration (checked by
# CreateStateMachine; the Step Functions developer guide lists them).
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
)  # fmt: skip
TRACING_ACTIONS = (
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)  # fmt: skip
# The key policy KMS gives a key created without one: the account may use it (IAM decides).
DEFAULT_KEY_POLICY_ACTIONS = "kms:*"


def physical_name(
    stack: str,
    logical_id: str,
    *,
    max_len: int = 64,
    lower: bool = False,
    with_stack: bool = True,
) -> str:
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode(), usedforsecurity=False)
    suffix = digest.hexdigest()[:12].upper()
    head = (f"{stack}-{logical_id}" if with_stack else logical_id)[: max_len - len(suffix) - 1]
    name = f"{head}-{suffix}"
    return name.lower() if lower else name


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    tags = props.get("Tags") or []
    if isinstance(tags, dict):
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags]


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in-process from lambdas/ (localworld.runtime).\n")
    return buffer.getvalue()


@dataclass
class Deployment:
    """What one stack created: physical ids by logical id, outputs, what was skipped."""

    stack: str
    physical: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


class Deployer:
    def __init__(
        self, session: Any, resolver: Resolver, permissions: Permissions | None = None
    ) -> None:
        self.session = session
        self.resolver = resolver
        self.permissions = permissions
        self._clients: dict[str, Any] = {}
        self._zip = _code_zip()
        self.definitions: dict[str, str] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        # Function ARN -> the queue ARN of its DeadLetterConfig (asynchronous invocations).
        self.function_queues: dict[str, str] = {}
        # Deployed HTTP APIs by API id, and the buckets with EventBridge notifications on.
        self.http_apis: dict[str, HttpApi] = {}
        self.eventbridge_buckets: set[str] = set()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.resolver.region)
        return self._clients[service]

    def deploy(self, stack: str, template: dict[str, Any]) -> Deployment:
        deployment = Deployment(stack)
        creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SSM::Parameter": self._parameter,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::IAM::Role": self._role,
            "AWS::KMS::Key": self._key,
            "AWS::SNS::Topic": self._topic,
            "AWS::SQS::Queue": self._queue,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::Lambda::Function": self._function,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Events::Rule": self._rule,
            "AWS::ApiGatewayV2::Api": self._http_api,
            "AWS::ApiGatewayV2::Integration": self._api_integration,
            "AWS::ApiGatewayV2::Route": self._api_route,
            "AWS::ApiGatewayV2::Stage": self._api_stage,
            "Custom::S3BucketNotifications": self._bucket_notifications,
            "AWS::CloudFront::Distribution": self._distribution,
            **dict.fromkeys(CLOUDFRONT_ID_PREFIXES, self._cloudfront_part),
        }
        if self.permissions is not None:
            creators |= {
                "AWS::IAM::Policy": self._policy,
                "AWS::IAM::ManagedPolicy": self._managed_policy,
                "AWS::S3::BucketPolicy": self._bucket_policy,
                "AWS::SNS::TopicPolicy": self._topic_policy,
                "AWS::SQS::QueuePolicy": self._queue_policy,
                "AWS::Lambda::Permission": self._lambda_permission,
            }
        pending = dict(template.get("Resources", {}))
        self._kinds = {logical_id: r["Type"] for logical_id, r in pending.items()}
        self._stack = stack
        self._deployment = deployment
        while pending:
            progress = False
            errors: dict[str, str] = {}
            for logical_id, resource in list(pending.items()):
                creator = creators.get(resource["Type"])
                reason = _not_served_reason(resource["Type"])
                if creator is None or reason is not None:
                    deployment.skipped[logical_id] = resource["Type"] + (
                        f" ({reason})" if reason else ""
                    )
                    del pending[logical_id]
                    progress = True
                    continue
                needs = _references(resource.get("Properties", {})) & _not_served(deployment)
                if needs:
                    # A part of, or a permission for, something the local world does not serve
                    # (a Cognito user pool, a JWT authorizer): skipped with it, and said why.
                    first = sorted(needs)[0]
                    deployment.skipped[logical_id] = (
                        f"{resource['Type']} (needs {first}, {deployment.skipped[first]})"
                    )
                    del pending[logical_id]
                    progress = True
                    continue
                waits_for = [d for d in _as_list(resource.get("DependsOn")) if d in pending]
                if waits_for:
                    errors[logical_id] = f"DependsOn {waits_for}"
                    continue
                try:
                    creator(logical_id, resource.get("Properties", {}))
                except UnresolvedReference as err:
                    errors[logical_id] = str(err)
                    continue
                del pending[logical_id]
                progress = True
            if pending and not progress:
                raise RuntimeError(f"{stack}: cannot resolve references: {errors}")
        for name, output in template.get("Outputs", {}).items():
            if _references(output["Value"]) & set(deployment.skipped):
                continue  # an output of something skipped here (a user pool's id, a dashboard)
            deployment.outputs[name] = str(self.resolver.resolve(output["Value"]))
        self.resolver.outputs[stack] = deployment.outputs
        return deployment

    # -- helpers ----------------------------------------------------------------------------------
    def _resolve(self, value: Any) -> Any:
        """Resolved, ``Fn::Sub`` too (pseudo parameters, ``${Id}``, ``${Id.Attr}``)."""
        return self.resolver.resolve(self._substitute(value))

    def _substitute(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._substitute(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) != {"Fn::Sub"}:
            return {key: self._substitute(item) for key, item in value.items()}
        arg = value["Fn::Sub"]
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(found: re.Match[str]) -> str:
            name = found.group(1)
            if name in variables:
                return str(self._resolve(variables[name]))
            if name.startswith("AWS::"):
                return self.resolver.pseudo(name)
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.resolver.resolve({"Fn::GetAtt": [logical_id, attribute]}))
            return str(self.resolver.resolve({"Ref": name}))

        return re.sub(r"\$\{([^}!][^}]*)\}", one, text)

    def _permissions(self) -> Permissions:
        if self.permissions is None:
            raise RuntimeError("this resource type is deployed only with permissions")
        return self.permissions

    def _refuse(self, who: str, action: str, resource: str, reason: str) -> None:
        """Creation fails as the service fails it (recorded as a denial of the world's IAM)."""
        denial = Denial(who, action, resource, reason)
        if self.permissions is not None:
            self.permissions.record(denial)
        raise PermissionDenied([denial])

    def _created(self, logical_id: str, ref: str, **attrs: str) -> None:
        self.resolver.refs[logical_id] = ref
        for name, value in attrs.items():
            self.resolver.attrs[(logical_id, name)] = value
        self._deployment.physical[logical_id] = ref

    def _arn(
        self, service: str, resource: str, *, region: bool = True, account: bool = True
    ) -> str:
        r = self.resolver
        return (
            f"arn:{r.partition}:{service}:{r.region if region else ''}:"
            f"{r.account if account else ''}:{resource}"
        )

    # -- CloudFront: recorded, not served (the local world keeps presigned links) -----------------
    def _distribution(self, logical_id: str, props: dict[str, Any]) -> None:
        """A distribution's id and ``*.cloudfront.net`` name, once what it names exists (its
        bucket, log bucket, policies, key group); nothing answers at that name locally."""
        self._resolve(props)
        distribution_id = _cloudfront_id(self._stack, logical_id, "E")
        domain = f"d{distribution_id[1:].lower()}.cloudfront.net"
        self._created(logical_id, distribution_id, Id=distribution_id, DomainName=domain)

    def _cloudfront_part(self, logical_id: str, props: dict[str, Any]) -> None:
        """An origin access control, cache or response headers policy, public key or key group:
        an id in CloudFront's format, so the distribution and the bucket policy resolve."""
        self._resolve(props)
        kind = self._kinds[logical_id]
        ref = _cloudfront_id(self._stack, logical_id, CLOUDFRONT_ID_PREFIXES[kind])
        self._created(logical_id, ref, Id=ref)

    # -- Stateful ---------------------------------------------------------------------------------
    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("BucketName") or physical_name(
            self._stack, logical_id, max_len=63, lower=True
        )
        # Resolved first: a key not created yet retries the bucket before it exists.
        encryption = self._bucket_encryption(props)
        s3 = self.client("s3")
        if self.resolver.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": self.resolver.region},
            )
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if props.get("LifecycleConfiguration"):
            rules = self.resolver.resolve(props["LifecycleConfiguration"])["Rules"]
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        if props.get("CorsConfiguration"):
            rules = self.resolver.resolve(props["CorsConfiguration"])["CorsRules"]
            s3.put_bucket_cors(
                Bucket=name, CORSConfiguration={"CORSRules": [_cors_rule(r) for r in rules]}
            )
        if props.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
        arn = f"arn:{self.resolver.partition}:s3:::{name}"
        if encryption is not None:
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": [encryption]}
            )
            default = encryption["ApplyServerSideEncryptionByDefault"]
            if self.permissions is not None and default["SSEAlgorithm"] in S3_SSE_KMS:
                self.permissions.encrypt(
                    arn,
                    str(default.get("KMSMasterKeyID") or "alias/aws/s3"),
                    bucket_key=bool(encryption.get("BucketKeyEnabled")),
                )
        self._created(
            logical_id,
            name,
            Arn=arn,
            DomainName=f"{name}.s3.amazonaws.com",
            RegionalDomainName=f"{name}.s3.{self.resolver.region}.amazonaws.com",
        )

    def _bucket_encryption(self, props: dict[str, Any]) -> dict[str, Any] | None:
        """The template's default encryption as an S3 API rule (None: S3's default, SSE-S3)."""
        configuration = props.get("BucketEncryption") or {}
        rules = self._resolve(configuration.get("ServerSideEncryptionConfiguration") or [])
        if not rules:
            return None
        rule = rules[0]
        default = rule.get("ServerSideEncryptionByDefault") or {"SSEAlgorithm": "AES256"}
        api: dict[str, Any] = {"SSEAlgorithm": str(default["SSEAlgorithm"])}
        if default.get("KMSMasterKeyID"):
            api["KMSMasterKeyID"] = str(default["KMSMasterKeyID"])
        out: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": api}
        if "BucketKeyEnabled" in rule:
            out["BucketKeyEnabled"] = str(rule["BucketKeyEnabled"]).lower() == "true"
        return out

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("TableName") or physical_name(self._stack, logical_id, max_len=255)
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        sse = self._resolve(props.get("SSESpecification") or {})
        # SSEEnabled with SSEType KMS: a KMS key (the AWS managed aws/dynamodb one unless
        # KMSMasterKeyId names another); otherwise DynamoDB's own AWS owned key.
        kms_key = None
        if str(sse.get("SSEEnabled", False)).lower() == "true":
            kms_key = str(sse.get("KMSMasterKeyId") or "alias/aws/dynamodb")
            args["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
            if sse.get("KMSMasterKeyId"):
                args["SSESpecification"]["KMSMasterKeyId"] = kms_key
        dynamodb = self.client("dynamodb")
        description = dynamodb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        if self.permissions is not None and kms_key is not None:
            self.permissions.encrypt(description["TableArn"], kms_key)
        self._created(logical_id, name, Arn=description["TableArn"])

    def _parameter(self, logical_id: str, props: dict[str, Any]) -> None:
        name = (
            props.get("Name") or f"CFN-{logical_id}-{physical_name(self._stack, logical_id)[-12:]}"
        )
        self.client("ssm").put_parameter(
            Name=name,
            Value=self.resolver.resolve(props["Value"]),
            Type=props.get("Type", "String"),
            Description=props.get("Description", ""),
        )
        self._created(logical_id, name, Type=props.get("Type", "String"), Value=str(props["Value"]))

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or f"{logical_id}-{physical_name(self._stack, logical_id)[-12:]}"
        value = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if value is None and generate:
            document = json.loads(generate.get("SecretStringTemplate", "{}"))
            document[generate.get("GenerateStringKey", "password")] = hashlib.sha256(
                name.encode(), usedforsecurity=False
            ).hexdigest()[:32]
            value = json.dumps(document)
        args: dict[str, Any] = {
            "Name": name,
            "SecretString": value or "",
            "Description": props.get("Description", ""),
        }
        if props.get("KmsKeyId"):
            args["KmsKeyId"] = str(self._resolve(props["KmsKeyId"]))
        answer = self.client("secretsmanager").create_secret(**args)
        if self.permissions is not None and args.get("KmsKeyId"):
            self.permissions.encrypt(answer["ARN"], args["KmsKeyId"])
        self._created(logical_id, answer["ARN"], Id=answer["ARN"])

    # -- Pipeline ---------------------------------------------------------------------------------
    def _role(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("RoleName") or physical_name(self._stack, logical_id)
        trust = self._resolve(props["AssumeRolePolicyDocument"])
        inline = [
            (str(p["PolicyName"]), self._resolve(p["PolicyDocument"]))
            for p in props.get("Policies", [])
        ]
        managed = [str(arn) for arn in self._resolve(props.get("ManagedPolicyArns", []))]
        role = self.client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Path=props.get("Path", "/")
        )["Role"]
        if self.permissions is not None:
            self.permissions.add_role(
                role["Arn"],
                name,
                trust,
                source=f"{self._stack}/{logical_id}",
                inline=inline,
                managed=managed,
            )
        self._created(logical_id, name, Arn=role["Arn"], RoleId=role["RoleId"])

    def _policy(self, logical_id: str, props: dict[str, Any]) -> None:
        document = self._resolve(props["PolicyDocument"])
        roles = [str(r) for r in self._resolve(props.get("Roles", []))]
        permissions = self._permissions()
        permissions.attach_policy(f"{self._stack}/{logical_id}", document, roles=roles)
        self._created(logical_id, str(props.get("PolicyName", logical_id)))

    def _managed_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("ManagedPolicyName") or physical_name(self._stack, logical_id, max_len=128)
        arn = f"arn:{self.resolver.partition}:iam::{self.resolver.account}:policy/{name}"
        document = self._resolve(props["PolicyDocument"])
        roles = [str(r) for r in self._resolve(props.get("Roles", []))]
        permissions = self._permissions()
        permissions.add_managed_policy(arn, f"{self._stack}/{logical_id}", document, roles=roles)
        self._created(logical_id, arn, PolicyArn=arn)

    def _bucket_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        bucket = str(self._resolve(props["Bucket"]))
        permissions = self._permissions()
        permissions.add_resource_policy(
            f"arn:{self.resolver.partition}:s3:::{bucket}",
            f"bucket policy {self._stack}/{logical_id}",
            self._resolve(props["PolicyDocument"]),
        )
        self._created(logical_id, bucket)

    def _topic_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        document = self._resolve(props["PolicyDocument"])
        permissions = self._permissions()
        for topic in self._resolve(props["Topics"]):
            permissions.add_resource_policy(
                str(topic), f"topic policy {self._stack}/{logical_id}", document
            )
        self._created(logical_id, logical_id)

    def _queue_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        document = self._resolve(props["PolicyDocument"])
        permissions = self._permissions()
        for url in self._resolve(props["Queues"]):
            name = str(url).rstrip("/").rsplit("/", 1)[-1]
            permissions.add_resource_policy(
                self._arn("sqs", name), f"queue policy {self._stack}/{logical_id}", document
            )
        self._created(logical_id, logical_id)

    def _lambda_permission(self, logical_id: str, props: dict[str, Any]) -> None:
        function = str(self._resolve(props["FunctionName"]))
        if not function.startswith("arn:"):
            function = self._arn("lambda", f"function:{function}")
        permissions = self._permissions()
        permissions.add_lambda_permission(
            function,
            f"function policy {self._stack}/{logical_id}",
            action=str(props["Action"]),
            principal=str(self._resolve(props["Principal"])),
            source_arn=self._resolve(props["SourceArn"]) if "SourceArn" in props else None,
            source_account=(
                self._resolve(props["SourceAccount"]) if "SourceAccount" in props else None
            ),
        )
        self._created(logical_id, logical_id)

    def _key(self, logical_id: str, props: dict[str, Any]) -> None:
        policy = self._resolve(props["KeyPolicy"]) if "KeyPolicy" in props else None
        args: dict[str, Any] = {"Description": props.get("Description", "")}
        if policy is not None:
            args["Policy"] = json.dumps(policy)
        key = self.client("kms").create_key(**args)["KeyMetadata"]
        if self.permissions is not None:
            root = f"arn:{self.resolver.partition}:iam::{self.resolver.account}:root"
            default = {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": root},
                        "Action": DEFAULT_KEY_POLICY_ACTIONS,
                        "Resource": "*",
                    }
                ]
            }
            self.permissions.add_key(
                key["Arn"], key["KeyId"], f"{self._stack}/{logical_id}", policy or default
            )
        self._created(logical_id, key["KeyId"], Arn=key["Arn"], KeyId=key["KeyId"])

    def _topic(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("TopicName") or physical_name(self._stack, logical_id, max_len=256)
        attributes = {}
        if props.get("DisplayName"):
            attributes["DisplayName"] = props["DisplayName"]
        if props.get("KmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = str(self.resolver.resolve(props["KmsMasterKeyId"]))
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        if self.permissions is not None and attributes.get("KmsMasterKeyId"):
            self.permissions.encrypt(arn, attributes["KmsMasterKeyId"])
        self._created(logical_id, arn, TopicArn=arn, TopicName=name)

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("QueueName") or physical_name(self._stack, logical_id, max_len=80)
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        if self.permissions is not None and props.get("KmsMasterKeyId"):
            self.permissions.encrypt(arn, str(self._resolve(props["KmsMasterKeyId"])))
        self._created(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    def _log_group(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("LogGroupName") or physical_name(self._stack, logical_id, max_len=512)
        args: dict[str, Any] = {"logGroupName": name}
        arn = self._arn("logs", f"log-group:{name}")  # as the encryption context names it
        if props.get("KmsKeyId"):
            key = str(self._resolve(props["KmsKeyId"]))
            args["kmsKeyId"] = key
            if self.permissions is not None:
                refusal = self.permissions.logs_key_refusal(arn, key)
                if refusal is not None:
                    action, reason = refusal
                    self._refuse(
                        f"CreateLogGroup {name}",
                        action,
                        key,
                        f"The specified KMS key does not exist or is not allowed to be used "
                        f"with ARN '{arn}': {reason}",
                    )
                self.permissions.encrypt(arn, key)
        self.client("logs").create_log_group(**args)
        self._created(logical_id, name, Arn=f"{arn}:*")

    def _function(self, logical_id: str, props: dict[str, Any]) -> None:
        if not str(props.get("Handler", "")).startswith("lambdas."):
            # CDK's own helpers (custom resource providers) have no code in lambdas/.
            self._deployment.skipped[logical_id] = "AWS::Lambda::Function (CDK helper)"
            return
        name = props.get("FunctionName") or physical_name(self._stack, logical_id)
        variables = self.resolver.resolve(props.get("Environment", {}).get("Variables", {}))
        role = self.resolver.resolve(props["Role"])
        lam = self.client("lambda")
        args: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": props.get("Runtime", LAMBDA_RUNTIME_FALLBACK),
            "Role": role,
            "Handler": props["Handler"],
            "Code": {"ZipFile": self._zip},
            "Timeout": int(props.get("Timeout", 3)),
            "MemorySize": int(props.get("MemorySize", 128)),
            "Environment": {"Variables": {k: str(v) for k, v in variables.items()}},
            "Description": str(self.resolver.resolve(props.get("Description", ""))),
        }
        arn = self._arn("lambda", f"function:{name}")
        if self.permissions is not None:
            logging = props.get("LoggingConfig") or {}
            record = FunctionRecord(
                arn=arn,
                name=name,
                role_arn=str(role),
                log_group=str(self._resolve(logging.get("LogGroup") or f"/aws/lambda/{name}")),
                tracing=(props.get("TracingConfig") or {}).get("Mode") == "Active",
            )
            refusal = self.permissions.trust_refusal(
                record.role_arn,
                "lambda.amazonaws.com",
                {"aws:SourceAccount": self.resolver.account, "aws:SourceArn": arn},
            )
            if refusal is not None:
                self._refuse(
                    f"CreateFunction {name}",
                    "sts:AssumeRole",
                    record.role_arn,
                    f"The role defined for the function cannot be assumed by Lambda: {refusal}",
                )
            self.permissions.add_function(record)
        arn = lam.create_function(**args)["FunctionArn"]
        dead_letters = (props.get("DeadLetterConfig") or {}).get("TargetArn")
        if dead_letters:
            # moto keeps no dead-letter configuration; localworld.dead_letters sends to it.
            self.function_queues[arn] = str(self.resolver.resolve(dead_letters))
        self._created(logical_id, name, Arn=arn)

    def _subscription(self, logical_id: str, props: dict[str, Any]) -> None:
        arn = self.client("sns").subscribe(
            TopicArn=self.resolver.resolve(props["TopicArn"]),
            Protocol=props["Protocol"],
            Endpoint=self.resolver.resolve(props["Endpoint"]),
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self._created(logical_id, arn)

    def _state_machine(self, logical_id: str, props: dict[str, Any]) -> None:
        # CloudFormation names a state machine "<LogicalId>-<random>", without the stack name.
        name = props.get("StateMachineName") or physical_name(
            self._stack, logical_id, max_len=80, with_stack=False
        )
        definition = self.resolver.resolve(props["DefinitionString"])
        role = str(self.resolver.resolve(props["RoleArn"]))
        if self.permissions is not None:
            self._check_state_machine_role(self._arn("states", f"stateMachine:{name}"), role, props)
        arn = self.client("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=role,
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        if self.permissions is not None:
            self.permissions.add_state_machine(arn, role)
        self._created(logical_id, arn, Arn=arn, Name=name)
        self.definitions[arn] = definition

    def _check_state_machine_role(self, arn: str, role: str, props: dict[str, Any]) -> None:
        """What ``CreateStateMachine`` refuses: a role Step Functions may not assume, or one
        that lacks what the logging and tracing configuration make Step Functions do."""
        permissions = self._permissions()
        who = f"CreateStateMachine {arn.rsplit(':', 1)[-1]}"
        refusal = permissions.trust_refusal(
            role,
            "states.amazonaws.com",
            {"aws:SourceAccount": self.resolver.account, "aws:SourceArn": arn},
        )
        if refusal is not None:
            self._refuse(
                who,
                "sts:AssumeRole",
                role,
                "Neither the global service principal states.amazonaws.com, nor the regional "
                f"one is authorized to assume the provided role: {refusal}",
            )
        needed: tuple[str, ...] = ()
        if (props.get("LoggingConfiguration") or {}).get("Destinations"):
            needed += LOG_DELIVERY_ACTIONS
        if (props.get("TracingConfiguration") or {}).get("Enabled"):
            needed += TRACING_ACTIONS
        actor = Actor(role_arn=role)
        for action in needed:
            reason = permissions.decide(actor, Check(action, "*"))
            if reason is not None:
                self._refuse(f"{who} (role {role.rsplit('/', 1)[-1]})", action, "*", reason)

    def _rule(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or physical_name(self._stack, logical_id)
        events = self.client("events")
        args: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
        if props.get("EventPattern"):
            args["EventPattern"] = json.dumps(self.resolver.resolve(props["EventPattern"]))
        if props.get("ScheduleExpression"):
            args["ScheduleExpression"] = props["ScheduleExpression"]
        arn = events.put_rule(**args)["RuleArn"]
        targets = [
            {
                "Id": t["Id"],
                "Arn": self.resolver.resolve(t["Arn"]),
                **({"Input": self.resolver.resolve(t["Input"])} if "Input" in t else {}),
                **({"RoleArn": self.resolver.resolve(t["RoleArn"])} if "RoleArn" in t else {}),
            }
            for t in props.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, Targets=targets)
        for target, declared in zip(targets, props.get("Targets", []), strict=True):
            # Where EventBridge keeps what it cannot deliver, and how often it tries first.
            for setting in ("DeadLetterConfig", "RetryPolicy"):
                if setting in declared:
                    target[setting] = self.resolver.resolve(declared[setting])
        self._created(logical_id, name, Arn=arn)
        self.rules[name] = {
            "arn": arn,
            "pattern": self.resolver.resolve(props.get("EventPattern") or {}),
            "schedule": props.get("ScheduleExpression"),
            "state": props.get("State", "ENABLED"),
            "targets": targets,
        }

    # -- HTTP APIs --------------------------------------------------------------------------------
    def _http_api(self, logical_id: str, props: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "Name": str(props.get("Name") or logical_id),
            "ProtocolType": str(props.get("ProtocolType", "HTTP")),
        }
        for key in ("Description", "RouteSelectionExpression"):
            if key in props:
                args[key] = self._resolve(props[key])
        if "DisableExecuteApiEndpoint" in props:  # a boolean, or "true"/"false" in a template
            disabled = self._resolve(props["DisableExecuteApiEndpoint"])
            args["DisableExecuteApiEndpoint"] = str(disabled).lower() == "true"
        if props.get("Tags"):
            args["Tags"] = {str(k): str(v) for k, v in dict(props["Tags"]).items()}
        created = self.client("apigatewayv2").create_api(**args)
        api_id, endpoint = str(created["ApiId"]), str(created["ApiEndpoint"])
        self.http_apis[api_id] = HttpApi(
            logical_id=logical_id,
            api_id=api_id,
            name=args["Name"],
            protocol_type=args["ProtocolType"],
            endpoint=endpoint,
            disable_execute_api_endpoint=bool(args.get("DisableExecuteApiEndpoint", False)),
        )
        self._created(logical_id, api_id, ApiId=api_id, ApiEndpoint=endpoint)

    def _api_of(self, props: dict[str, Any]) -> HttpApi:
        return self.http_apis[str(self._resolve(props["ApiId"]))]

    def _api_integration(self, logical_id: str, props: dict[str, Any]) -> None:
        api = self._api_of(props)
        args: dict[str, Any] = {
            "ApiId": api.api_id,
            "IntegrationType": str(props["IntegrationType"]),
        }
        for key in (
            "IntegrationUri",
            "PayloadFormatVersion",
            "TimeoutInMillis",
            "IntegrationMethod",
        ):
            if key in props:
                args[key] = self._resolve(props[key])
        integration_id = str(
            self.client("apigatewayv2").create_integration(**args)["IntegrationId"]
        )
        api.integrations[integration_id] = Integration(
            integration_id=integration_id,
            integration_type=args["IntegrationType"],
            uri=str(args.get("IntegrationUri", "")),
            # Required for an HTTP API's AWS_PROXY integration; other types default to 1.0.
            payload_format_version=str(args.get("PayloadFormatVersion", "1.0")),
            timeout_ms=int(args.get("TimeoutInMillis", 30_000)),
        )
        self._created(logical_id, integration_id, IntegrationId=integration_id)

    def _api_route(self, logical_id: str, props: dict[str, Any]) -> None:
        api = self._api_of(props)
        args: dict[str, Any] = {
            "ApiId": api.api_id,
            "RouteKey": str(props["RouteKey"]),
            "AuthorizationType": str(props.get("AuthorizationType", "NONE")),
        }
        if "Target" in props:
            args["Target"] = str(self._resolve(props["Target"]))
        route_id = str(self.client("apigatewayv2").create_route(**args)["RouteId"])
        api.routes.append(
            Route(
                route_id=route_id,
                route_key=args["RouteKey"],
                authorization_type=args["AuthorizationType"],
                target=args.get("Target"),
            )
        )
        self._created(logical_id, route_id)

    def _api_stage(self, logical_id: str, props: dict[str, Any]) -> None:
        api = self._api_of(props)
        resolved = self._resolve({k: v for k, v in props.items() if k != "Tags"})
        args: dict[str, Any] = {"ApiId": api.api_id, "StageName": str(resolved["StageName"])}
        for key in (
            "AutoDeploy",
            "DefaultRouteSettings",
            "RouteSettings",
            "StageVariables",
            "AccessLogSettings",
            "Description",
        ):
            if key in resolved:
                args[key] = resolved[key]
        self.client("apigatewayv2").create_stage(**args)
        logs = resolved.get("AccessLogSettings") or {}
        api.stages[args["StageName"]] = Stage(
            name=args["StageName"],
            throttle=_throttle(resolved.get("DefaultRouteSettings") or {}),
            route_throttles={
                str(route): _throttle(settings)
                for route, settings in dict(resolved.get("RouteSettings") or {}).items()
            },
            access_log_destination=str(logs["DestinationArn"])
            if logs.get("DestinationArn")
            else None,
            access_log_format=str(logs["Format"]) if logs.get("Format") else None,
            variables={
                str(k): str(v) for k, v in dict(resolved.get("StageVariables") or {}).items()
            },
        )
        self._created(logical_id, args["StageName"])

    def _bucket_notifications(self, logical_id: str, props: dict[str, Any]) -> None:
        """CDK's notifications custom resource: only whether the bucket sends to EventBridge.

        moto is not told (its own EventBridge delivery would bypass the world's rules and
        permissions); the world emits the events itself (``localworld.world``).
        """
        bucket = str(self._resolve(props["BucketName"]))
        configuration = props.get("NotificationConfiguration") or {}
        if "EventBridgeConfiguration" in configuration:
            self.eventbridge_buckets.add(bucket)
        self._created(logical_id, bucket)


def _throttle(settings: dict[str, Any]) -> Throttle:
    """A stage's (or route's) throttling settings; absent: not throttled by the stage."""
    rate = settings.get("ThrottlingRateLimit")
    burst = settings.get("ThrottlingBurstLimit")
    return Throttle(
        rate_per_s=float(rate) if rate is not None else None,
        burst=int(burst) if burst is not None else None,
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# CloudFormation's CorsRule property names -> the S3 API's (PutBucketCors).
_CORS_NAMES = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    return {_CORS_NAMES.get(name, name): value for name, value in rule.items()}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule properties in S3 API names (the ones the templates use)."""
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule.get("Status", "Enabled")}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if rule.get("ExpiredObjectDeleteMarker"):
        out.setdefault("Expiration", {})["ExpiredObjectDeleteMarker"] = True
    if "Transitions" in rule:
        out["Transitions"] = [
            {"Days": t["TransitionInDays"], "StorageClass": t["StorageClass"]}
            for t in rule["Transitions"]
        ]
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        }
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return out


# CloudFront resources other than the distribution, and how CloudFront's ids for them begin
# ("" for the ones whose ids are UUIDs).
CLOUDFRONT_ID_PREFIXES = {
    "AWS::CloudFront::OriginAccessControl": "E",
    "AWS::CloudFront::PublicKey": "K",
    "AWS::CloudFront::KeyGroup": "",
    "AWS::CloudFront::CachePolicy": "",
    "AWS::CloudFront::ResponseHeadersPolicy": "",
}


def _cloudfront_id(stack: str, logical_id: str, prefix: str) -> str:
    """Deterministic: ``E``/``K`` + 13 upper-case characters, or a UUID-shaped id."""
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode(), usedforsecurity=False).hexdigest()
    if prefix:
        return prefix + digest[:13].upper()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


# What the local world does not serve at all, and why: a resource that refers to one of these
# (a route with a JWT authorizer, a user pool client) is skipped with it. Other skipped types
# (layers, alarms, most custom resources) are merely not needed locally, and what refers to them
# is created.
NOT_SERVED = {
    "AWS::Cognito::": "no Cognito user pools locally; JWT authorizers are not served",
    "AWS::ApiGatewayV2::Authorizer": (
        "JWT and Lambda authorizers are not served by the local API adapter"
    ),
}
NOT_SERVED_PREFIXES = tuple(NOT_SERVED)


def _not_served_reason(kind: str) -> str | None:
    return next((why for prefix, why in NOT_SERVED.items() if kind.startswith(prefix)), None)


def _not_served(deployment: Any) -> set[str]:
    return {
        logical_id
        for logical_id, kind in deployment.skipped.items()
        if kind.startswith(NOT_SERVED_PREFIXES)
    }


def _references(value: Any) -> set[str]:
    """The logical ids a template value names with ``Ref`` or ``Fn::GetAtt``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and not inner.startswith("AWS::"):
                found.add(inner)
            elif key == "Fn::GetAtt" and isinstance(inner, list) and inner:
                found.add(str(inner[0]))
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found
