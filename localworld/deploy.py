"""A tiny CloudFormation for moto: create the synthesized stacks' resources, resolve references.

Physical names are generated the way CloudFormation does (``<stack>-<logical id>-<suffix>``,
deterministic here), so the templates keep "no physical names". Resources are created in
dependency order by retrying whatever still refers to something not yet created. Resource types
that do nothing locally (policies, custom resources, alarms...) are listed in ``skipped``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localworld.template import Resolver, UnresolvedReference

LAMBDA_RUNTIME_FALLBACK = "python3.12"


def physical_name(stack: str, logical_id: str, *, max_len: int = 64, lower: bool = False) -> str:
    suffix = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{stack}-{logical_id}"[: max_len - len(suffix) - 1]
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
    def __init__(self, session: Any, resolver: Resolver) -> None:
        self.session = session
        self.resolver = resolver
        self._clients: dict[str, Any] = {}
        self._zip = _code_zip()
        self.definitions: dict[str, str] = {}
        self.rules: dict[str, dict[str, Any]] = {}

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
        }
        pending = dict(template.get("Resources", {}))
        self._stack = stack
        self._deployment = deployment
        while pending:
            progress = False
            errors: dict[str, str] = {}
            for logical_id, resource in list(pending.items()):
                creator = creators.get(resource["Type"])
                if creator is None:
                    deployment.skipped[logical_id] = resource["Type"]
                    del pending[logical_id]
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
            deployment.outputs[name] = str(self.resolver.resolve(output["Value"]))
        self.resolver.outputs[stack] = deployment.outputs
        return deployment

    # -- helpers ----------------------------------------------------------------------------------
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

    # -- Stateful ---------------------------------------------------------------------------------
    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("BucketName") or physical_name(
            self._stack, logical_id, max_len=63, lower=True
        )
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if props.get("LifecycleConfiguration"):
            rules = self.resolver.resolve(props["LifecycleConfiguration"])["Rules"]
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        if props.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
        self._created(
            logical_id,
            name,
            Arn=f"arn:{self.resolver.partition}:s3:::{name}",
            DomainName=f"{name}.s3.amazonaws.com",
            RegionalDomainName=f"{name}.s3.{self.resolver.region}.amazonaws.com",
        )

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
        dynamodb = self.client("dynamodb")
        description = dynamodb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
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
                name.encode()
            ).hexdigest()[:32]
            value = json.dumps(document)
        answer = self.client("secretsmanager").create_secret(
            Name=name, SecretString=value or "", Description=props.get("Description", "")
        )
        self._created(logical_id, answer["ARN"], Id=answer["ARN"])

    # -- Pipeline ---------------------------------------------------------------------------------
    def _role(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("RoleName") or physical_name(self._stack, logical_id)
        role = self.client("iam").create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(
                self.resolver.resolve(props["AssumeRolePolicyDocument"])
            ),
            Path=props.get("Path", "/"),
        )["Role"]
        self._created(logical_id, name, Arn=role["Arn"], RoleId=role["RoleId"])

    def _key(self, logical_id: str, props: dict[str, Any]) -> None:
        key = self.client("kms").create_key(Description=props.get("Description", ""))["KeyMetadata"]
        self._created(logical_id, key["KeyId"], Arn=key["Arn"], KeyId=key["KeyId"])

    def _topic(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("TopicName") or physical_name(self._stack, logical_id, max_len=256)
        attributes = {}
        if props.get("DisplayName"):
            attributes["DisplayName"] = props["DisplayName"]
        if props.get("KmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = str(self.resolver.resolve(props["KmsMasterKeyId"]))
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self._created(logical_id, arn, TopicArn=arn, TopicName=name)

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("QueueName") or physical_name(self._stack, logical_id, max_len=80)
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._created(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    def _log_group(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("LogGroupName") or physical_name(self._stack, logical_id, max_len=512)
        self.client("logs").create_log_group(logGroupName=name)
        self._created(logical_id, name, Arn=self._arn("logs", f"log-group:{name}:*"))

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
        arn = lam.create_function(**args)["FunctionArn"]
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
        name = props.get("StateMachineName") or physical_name(self._stack, logical_id, max_len=80)
        definition = self.resolver.resolve(props["DefinitionString"])
        arn = self.client("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=self.resolver.resolve(props["RoleArn"]),
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        self._created(logical_id, arn, Arn=arn, Name=name)
        self.definitions[arn] = definition

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
            }
            for t in props.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, Targets=targets)
        self._created(logical_id, name, Arn=arn)
        self.rules[name] = {
            "arn": arn,
            "pattern": self.resolver.resolve(props.get("EventPattern") or {}),
            "schedule": props.get("ScheduleExpression"),
            "state": props.get("State", "ENABLED"),
            "targets": targets,
        }


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
