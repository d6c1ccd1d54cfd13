"""The security posture a compliance review asks for, read from the synthesized templates.

Customer-managed keys with rotation on everything that stores or carries data, key policies that
name each AWS service that uses a key as itself (with the conditions that pin it to this
deployment), backups and Macie in production, reservations on the functions events start, and
no secret in any function's environment.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from constructs_lib.data_lake import RawReplication
from constructs_lib.units import EventConcurrency
from localworld.template import cdk_context
from stacks.config import build_environments
from stacks.stateful import StatefulStack
from tests.conftest import TEST_ACCOUNT, TEST_REGION

ENVS = ["Dev", "Prod"]
STACKS = ["Stateful", "Pipeline", "Monitoring"]


def _resources(synthesized, path: str, kind: str) -> dict[str, dict[str, Any]]:
    template = synthesized.templates[path]
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _key_id(reference: Any) -> str:
    """The logical id of a key named by ``{"Fn::GetAtt": [id, "Arn"]}`` or ``{"Ref": id}``."""
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        return str(reference["Fn::GetAtt"][0])
    if isinstance(reference, dict) and "Ref" in reference:
        return str(reference["Ref"])
    raise AssertionError(f"not a reference to a key of the same stack: {reference!r}")


def _key_statements(synthesized, path: str, key_id: str) -> list[dict[str, Any]]:
    key = synthesized.templates[path]["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    return list(key["Properties"]["KeyPolicy"]["Statement"])


def _service_statement(statements: list[dict[str, Any]], service: str) -> dict[str, Any]:
    found = [s for s in statements if s.get("Principal", {}).get("Service") == service]
    assert len(found) == 1, f"expected one statement for {service}, found {found}"
    return found[0]


def _stack_name(synthesized, path: str) -> str:
    return str(synthesized.stacks[path].stack_name)  # type: ignore[attr-defined]


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("stack", STACKS)
def test_every_key_rotates_and_keeps_the_account_statement(synthesized, env, stack):
    keys = _resources(synthesized, f"{env}/{stack}", "AWS::KMS::Key")
    assert keys, f"{env}/{stack} has no customer-managed key"
    for logical_id, key in keys.items():
        assert key["Properties"]["EnableKeyRotation"] is True, logical_id
        # the account statement is what lets the roles' own grants count (and nothing else)
        root = [
            s
            for s in key["Properties"]["KeyPolicy"]["Statement"]
            if s.get("Principal", {}).get("AWS") == f"arn:aws:iam::{TEST_ACCOUNT}:root"
            and s["Action"] == "kms:*"
            and "Condition" not in s
        ]
        assert len(root) == 1, logical_id


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("stack", ["Pipeline", "Monitoring"])
def test_every_log_group_uses_its_stacks_key_which_only_logs_of_that_stack_may_use(
    synthesized, env, stack
):
    path = f"{env}/{stack}"
    groups = _resources(synthesized, path, "AWS::Logs::LogGroup")
    if stack == "Monitoring" and env == "Dev":
        # Its only function in dev is the dead-letter analyzer (Macie and Discord are off).
        assert [g for g in groups if not g.startswith("DeadLetterAnalysisAnalyzerLogs")] == []
    assert groups
    prefix = _stack_name(synthesized, path)
    for logical_id, group in groups.items():
        key_id = _key_id(group["Properties"].get("KmsKeyId"))
        logs = _service_statement(
            _key_statements(synthesized, path, key_id), f"logs.{TEST_REGION}.amazonaws.com"
        )
        assert logs["Condition"] == {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:aws:logs:{TEST_REGION}:{TEST_ACCOUNT}:log-group:{prefix}-*"
                )
            }
        }, logical_id
        assert "kms:Decrypt*" in logs["Action"] and "kms:GenerateDataKey*" in logs["Action"]


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("stack", ["Pipeline", "Monitoring"])
def test_every_queue_uses_a_customer_key_that_its_senders_may_use(synthesized, env, stack):
    path = f"{env}/{stack}"
    queues = _resources(synthesized, path, "AWS::SQS::Queue")
    assert queues
    prefix = _stack_name(synthesized, path)
    senders = {"Pipeline": ("events", "sns"), "Monitoring": ("events",)}[stack]
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert "SqsManagedSseEnabled" not in props, logical_id
        statements = _key_statements(synthesized, path, _key_id(props["KmsMasterKeyId"]))
        for service in senders:
            statement = _service_statement(statements, f"{service}.amazonaws.com")
            arn = {
                "events": f"arn:aws:events:{TEST_REGION}:{TEST_ACCOUNT}:rule/{prefix}-*",
                "sns": f"arn:aws:sns:{TEST_REGION}:{TEST_ACCOUNT}:{prefix}-*",
            }[service]
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": TEST_ACCOUNT},
                "ArnLike": {"aws:SourceArn": arn},
            }, (logical_id, service)
            assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


@pytest.mark.parametrize("env", ENVS)
def test_every_topic_is_encrypted_with_a_rotating_key_of_its_own_stack(synthesized, env):
    path = f"{env}/Pipeline"
    topics = _resources(synthesized, path, "AWS::SNS::Topic")
    assert len(topics) == 2
    keys = _resources(synthesized, path, "AWS::KMS::Key")
    for logical_id, topic in topics.items():
        key_id = _key_id(topic["Properties"]["KmsMasterKeyId"])
        assert keys[key_id]["Properties"]["EnableKeyRotation"] is True, logical_id


@pytest.mark.parametrize("env", ENVS)
def test_the_catalog_and_the_secret_use_the_data_key(synthesized, env):
    path = f"{env}/Stateful"
    [data_key] = _resources(synthesized, path, "AWS::KMS::Key")
    [table] = _resources(synthesized, path, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [data_key, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    [secret] = _resources(synthesized, path, "AWS::SecretsManager::Secret").values()
    assert secret["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [data_key, "Arn"]}


def _stateful(env: str, **changes: Any) -> dict[str, Any]:
    """The stateful stack of ``env``'s configuration with ``changes``, synthesized on its own."""
    config = build_environments()[env]
    config = type(config)(**{**config.__dict__, **changes})
    app = cdk.App(context=cdk_context())
    # with the same checks as every synthesis: an unacknowledged finding fails the test
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    stack = StatefulStack(
        app,
        "Stateful",
        config=config,
        env=cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION),
    )
    return dict(app.synth().get_stack_artifact(stack.artifact_id).template)


def test_production_can_replicate_the_raw_bucket_to_another_region():
    # Given prod with replication to a bucket (and its key) in another region
    replica = RawReplication(
        destination_bucket_arn="arn:aws:s3:::media-raw-replica-eu-central-1",
        destination_key_arn=f"arn:aws:kms:eu-central-1:{TEST_ACCOUNT}:key/1234abcd-12ab-34cd",
    )

    # When synthesized
    template = _stateful("prod", raw_replication=replica)

    # Then the raw bucket, and only it, replicates everything, SSE-KMS objects included
    buckets = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::S3::Bucket"}
    replicating = {k for k, v in buckets.items() if "ReplicationConfiguration" in v["Properties"]}
    assert [k[: len("DataLakeRaw")] for k in replicating] == ["DataLakeRaw"]
    [rule] = buckets[replicating.pop()]["Properties"]["ReplicationConfiguration"]["Rules"]
    assert rule["Destination"]["Bucket"] == replica.destination_bucket_arn
    assert rule["Destination"]["StorageClass"] == "STANDARD_IA"
    assert rule["Destination"]["EncryptionConfiguration"] == {
        "ReplicaKmsKeyID": replica.destination_key_arn
    }
    assert rule["SourceSelectionCriteria"]["SseKmsEncryptedObjects"] == {"Status": "Enabled"}
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}


def test_an_environment_may_keep_sse_s3_buckets_and_still_encrypt_the_rest_with_its_key():
    # Given the dev configuration switched to SSE-S3 buckets, when synthesized
    template = _stateful("dev", bucket_encryption="s3")

    # Then no bucket names the key, and the table still does
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::S3::Bucket":
            [rule] = resource["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}, logical_id
    [table] = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert table["Properties"]["SSESpecification"]["SSEType"] == "KMS"


def test_production_backs_up_the_catalog_and_the_raw_bucket_into_a_vault_under_the_data_key(
    synthesized,
):
    path = "Prod/Stateful"
    [data_key] = _resources(synthesized, path, "AWS::KMS::Key")
    [vault] = _resources(synthesized, path, "AWS::Backup::BackupVault").values()
    assert vault["Properties"]["EncryptionKeyArn"] == {"Fn::GetAtt": [data_key, "Arn"]}
    # recovery points cannot be deleted, not even by the account's administrators
    [deny] = vault["Properties"]["AccessPolicy"]["Statement"]
    assert deny["Effect"] == "Deny" and "backup:DeleteRecoveryPoint" in deny["Action"]
    [plan] = _resources(synthesized, path, "AWS::Backup::BackupPlan").values()
    rules = {r["RuleName"]: r for r in plan["Properties"]["BackupPlan"]["BackupPlanRule"]}
    assert rules["Daily"]["Lifecycle"] == {"DeleteAfterDays": 35}
    assert rules["Daily"]["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert rules["Monthly"]["Lifecycle"] == {"DeleteAfterDays": 365}
    assert rules["Monthly"]["ScheduleExpression"] == "cron(0 3 1 * ? *)"
    [selection] = _resources(synthesized, path, "AWS::Backup::BackupSelection").values()
    chosen = json.dumps(selection["Properties"]["BackupSelection"]["Resources"])
    assert "CatalogAssets" in chosen or "Catalog" in chosen
    assert "DataLakeRaw" in chosen
    assert "DataLakeProcessed" not in chosen  # derived from raw, rebuilt by reprocessing


def test_development_has_no_backup_plan_and_no_macie(synthesized):
    for stack in STACKS:
        template = synthesized.templates[f"Dev/{stack}"]
        kinds = {r["Type"] for r in template["Resources"].values()}
        assert not {t for t in kinds if t.startswith(("AWS::Backup::", "AWS::Macie::"))}
        assert "Custom::AWS" not in kinds


@pytest.mark.parametrize("env", ENVS)
def test_only_the_functions_events_start_have_reserved_concurrency(synthesized, env):
    functions = _resources(synthesized, f"{env}/Pipeline", "AWS::Lambda::Function")
    reserved = {
        f["Properties"]["Handler"]: f["Properties"].get("ReservedConcurrentExecutions")
        for f in functions.values()
        if str(f["Properties"].get("Handler", "")).startswith("lambdas.")
    }
    defaults = EventConcurrency()
    assert {h: n for h, n in reserved.items() if n is not None} == {
        "lambdas.trigger.handler.handler": defaults.upload_starter,
        "lambdas.analysis.callback.handler": defaults.analysis_callback,
        "lambdas.analysis.heartbeat.handler": defaults.analysis_heartbeat,
    }


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"upload_starter": 0}, r"^reserved_concurrency\.upload_starter: must be None or"),
        ({"analysis_callback": 1.5}, r"^reserved_concurrency\.analysis_callback:"),
        ({"upload_starter": 500, "analysis_callback": 401}, r"adds up to 902"),
    ],
)
def test_reservations_an_account_with_the_default_quota_cannot_deploy_are_refused(kwargs, said):
    from constructs_lib.props import ConfigError

    with pytest.raises(ConfigError, match=said):
        EventConcurrency(**kwargs)
    assert EventConcurrency(upload_starter=None).upload_starter is None


def test_production_scans_uploads_with_macie_and_routes_findings_to_the_alerts_topic(synthesized):
    path = "Prod/Monitoring"
    [session] = _resources(synthesized, path, "AWS::Macie::Session").values()
    assert session["Properties"]["Status"] == "ENABLED"
    [job] = _resources(synthesized, path, "Custom::AWS").values()
    create = json.loads(_joined(job["Properties"]["Create"]))
    assert create["service"] == "Macie2" and create["action"] == "createClassificationJob"
    parameters = create["parameters"]
    assert parameters["jobType"] == "SCHEDULED"
    assert parameters["scheduleFrequency"] == {"weeklySchedule": {"dayOfWeek": "SUNDAY"}}
    [term] = parameters["s3JobDefinition"]["scoping"]["includes"]["and"]
    assert term["simpleScopeTerm"] == {
        "comparator": "STARTS_WITH",
        "key": "OBJECT_KEY",
        "values": ["uploads/"],
    }
    delete = json.loads(_joined(job["Properties"]["Delete"]))
    assert delete["action"] == "updateClassificationJob"
    assert delete["parameters"]["jobStatus"] == "CANCELLED"

    # the data key lets Macie's service-linked role decrypt what it classifies, in prod only
    def macie_statements(env: str) -> list[dict[str, Any]]:
        [key] = _resources(synthesized, f"{env}/Stateful", "AWS::KMS::Key")
        return [
            s
            for s in _key_statements(synthesized, f"{env}/Stateful", key)
            if "AWSServiceRoleForAmazonMacie" in json.dumps(s)
        ]

    [statement] = macie_statements("Prod")
    assert statement["Action"] == "kms:Decrypt"
    assert macie_statements("Dev") == []


def _joined(value: Any) -> str:
    """A ``Fn::Join`` of literals and references, with each reference as a placeholder."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "REF" for p in parts)


def _render(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """What EventBridge sends: each ``<name>`` of the template replaced by its path's value."""

    def at(path: str) -> str:
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        return str(value)

    values = {name: at(path) for name, path in transformer["InputPathsMap"].items()}
    text = _joined(transformer["InputTemplate"])
    return re.sub(r"<([\w-]+)>", lambda m: values.get(m.group(1), m.group(0)), text)


MACIE_FINDING = {
    "version": "0",
    "source": "aws.macie",
    "detail-type": "Macie Finding",
    "account": TEST_ACCOUNT,
    "region": TEST_REGION,
    "detail": {
        "id": "64b917aa3ed1b2d3b7a0a5d9f0c1e2f3",
        "type": "SensitiveData:S3Object/Personal",
        "title": "The S3 object contains personal information.",
        "description": "The object contains personal information such as full names.",
        "severity": {"description": "High", "score": 3},
        "resourcesAffected": {
            "s3Bucket": {"name": "prod-stateful-datalakeraw-abc123"},
            "s3Object": {"key": "uploads/dashcam/2026-11-30/clip_0042.json"},
        },
    },
}


def test_a_macie_finding_reads_as_a_sentence_with_the_object_and_a_console_link(synthesized):
    from moto.events.models import EventPattern

    rules = _resources(synthesized, "Prod/Monitoring", "AWS::Events::Rule")
    [rule] = [
        r["Properties"]
        for r in rules.values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.macie"]
    ]
    pattern = rule["EventPattern"]
    assert pattern["detail"]["severity"]["description"] == ["Medium", "High"]
    # the raw bucket's name is a reference in the template; the event carries a literal one
    literal = json.loads(json.dumps(pattern))
    literal["detail"]["resourcesAffected"]["s3Bucket"]["name"] = [
        MACIE_FINDING["detail"]["resourcesAffected"]["s3Bucket"]["name"]  # type: ignore[index]
    ]
    matcher = EventPattern.load(json.dumps(literal))
    assert matcher.matches_event(MACIE_FINDING)
    low = json.loads(json.dumps(MACIE_FINDING))
    low["detail"]["severity"]["description"] = "Low"
    assert not matcher.matches_event(low)

    [target] = rule["Targets"]
    assert "DeadLetterConfig" in target
    # one quoted line per line of the message (RuleTargetInput.from_multiline_text)
    text = _render(target["InputTransformer"], MACIE_FINDING)
    assert text.startswith('"Media pipeline (media-pipeline-prod): High-severity Macie finding in')
    assert "uploads/dashcam/2026-11-30/clip_0042.json" in text
    assert "The S3 object contains personal information. The object contains" in text
    assert "macie/home" in text and "64b917aa3ed1b2d3b7a0a5d9f0c1e2f3" in text


SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_?KEY|PRIVATE", re.IGNORECASE)
NAMES_A_SECRET = re.compile(r"_(ARN|NAME|PARAMETER|ID)$")


def environment_secret_problems(function_id: str, variables: dict[str, Any]) -> list[str]:
    """What in one function's environment could be (or become) a secret's value."""
    problems = []
    for name, value in variables.items():
        rendered = json.dumps(value)
        if "{{resolve:secretsmanager" in rendered or "{{resolve:ssm-secure" in rendered:
            problems.append(f"{function_id}.{name} resolves a secret into the environment")
        if SECRET_NAME.search(name) and not NAMES_A_SECRET.search(name):
            problems.append(f"{function_id}.{name} looks like a secret value, not its ARN/name")
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9+/=_-]{32,}", value):
            problems.append(f"{function_id}.{name} holds a long opaque literal")
    return problems


@pytest.mark.parametrize("env", ENVS)
def test_no_function_environment_holds_a_secret(synthesized, env):
    problems = []
    for stack in STACKS:
        functions = _resources(synthesized, f"{env}/{stack}", "AWS::Lambda::Function")
        for logical_id, function in functions.items():
            variables = function["Properties"].get("Environment", {}).get("Variables", {})
            problems += environment_secret_problems(logical_id, variables)
    assert problems == []


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"PIXABAY_SECRET_ARN": {"Ref": "Secret"}}, []),
        ({"PIXABAY_API_KEY": "abc"}, ["F.PIXABAY_API_KEY looks like a secret value"]),
        (
            {"KEY_VALUE": "{{resolve:secretsmanager:pixabay:SecretString:api_key}}"},
            ["F.KEY_VALUE resolves a secret into the environment"],
        ),
        ({"SETTING": "a" * 40}, ["F.SETTING holds a long opaque literal"]),
    ],
)
def test_the_secret_check_reports_what_it_should(variables, expected):
    problems = environment_secret_problems("F", variables)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start)
