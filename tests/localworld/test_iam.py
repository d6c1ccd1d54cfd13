"""The local IAM evaluator decides as IAM does, on the statement shapes the templates use."""

from __future__ import annotations

import pytest

from localworld.iam import Actor, Check, Permissions, PolicyNotModelled, condition_holds, matches

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def arn(service: str, resource: str, *, region: str = REGION) -> str:
    """An ARN in the test account; IAM and STS ARNs name no region (``region=""``)."""
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


ROLE = arn("iam", "role/Fn-Role", region="")
OTHER = arn("iam", "role/Other", region="")
TABLE = arn("dynamodb", "table/Catalog")
KEY = arn("kms", "key/1234")
TOPIC = arn("sns", "Completion")
FUNCTION = arn("lambda", "function:Callback")
LAMBDA_TRUST = {
    "Statement": [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
}


def permissions(*statements: dict) -> Permissions:
    store = Permissions(partition="aws", region=REGION, account=ACCOUNT)
    store.add_role(ROLE, "Fn-Role", LAMBDA_TRUST, source="Stack/FnRole")
    store.add_role(OTHER, "Other", LAMBDA_TRUST, source="Stack/Other")
    if statements:
        store.attach_policy(
            "Stack/FnRolePolicy", {"Statement": list(statements)}, roles=["Fn-Role"]
        )
    return store


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


ROLE_ACTOR = Actor(role_arn=ROLE, session_arn=arn("sts", "assumed-role/Fn-Role/fn", region=""))


def test_wildcards_in_actions_are_case_insensitive_and_in_resources_are_not() -> None:
    # Given a grant written the way CDK's grantReadWriteData writes it
    store = permissions(allow(["dynamodb:Get*", "dynamodb:PutItem"], [TABLE, f"{TABLE}/index/*"]))

    # Then the call on the table or its index is allowed, in any action case
    assert store.decide(ROLE_ACTOR, Check("dynamodb:GetItem", TABLE)) is None
    assert store.decide(ROLE_ACTOR, Check("DynamoDB:getitem", TABLE)) is None
    assert (
        store.decide(ROLE_ACTOR, Check("dynamodb:Query", f"{TABLE}/index/ByCampaign")) is not None
    )
    assert store.decide(ROLE_ACTOR, Check("dynamodb:GetItem", f"{TABLE}/index/ByCampaign")) is None
    # and another table, a resource in another case, or another role is not
    assert store.decide(ROLE_ACTOR, Check("dynamodb:GetItem", TABLE + "2")) == (
        "no identity-based policy allows it"
    )
    assert store.decide(ROLE_ACTOR, Check("dynamodb:GetItem", TABLE.lower())) is not None
    assert store.decide(Actor(role_arn=OTHER), Check("dynamodb:GetItem", TABLE)) is not None
    assert matches("arn:aws:s3:::raw/video/?/*", "arn:aws:s3:::raw/video/a/b.mp4")
    assert not matches("arn:aws:s3:::raw/video/?/*", "arn:aws:s3:::raw/video/ab/b.mp4")


def test_an_explicit_deny_wins_over_any_allow() -> None:
    store = permissions(
        allow("s3:*", "*"),
        {"Effect": "Deny", "Action": "s3:DeleteObject*", "Resource": "arn:aws:s3:::raw/*"},
    )
    assert store.decide(ROLE_ACTOR, Check("s3:GetObject", "arn:aws:s3:::raw/a")) is None
    assert "explicitly denied by Stack/FnRolePolicy" in str(
        store.decide(ROLE_ACTOR, Check("s3:DeleteObjectVersion", "arn:aws:s3:::raw/a"))
    )


def test_a_bucket_policy_deny_on_insecure_transport_applies_only_without_tls() -> None:
    # Given the identity allows reading and the bucket policy (CDK's enforceSSL) denies plain HTTP
    store = permissions(allow("s3:GetObject", "arn:aws:s3:::raw/*"))
    store.add_resource_policy(
        "arn:aws:s3:::raw",
        "bucket policy raw",
        {
            "Statement": [
                {
                    "Action": "s3:*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Resource": ["arn:aws:s3:::raw", "arn:aws:s3:::raw/*"],
                }
            ]
        },
    )
    tls = Check(
        "s3:GetObject", "arn:aws:s3:::raw/a", (("aws:SecureTransport", "true"),), "arn:aws:s3:::raw"
    )
    plain = Check(
        "s3:GetObject",
        "arn:aws:s3:::raw/a",
        (("aws:SecureTransport", "false"),),
        "arn:aws:s3:::raw",
    )
    assert store.decide(ROLE_ACTOR, tls) is None
    assert store.decide(ROLE_ACTOR, plain) == "explicitly denied by bucket policy raw"


def test_pass_role_honours_the_passed_to_service_condition() -> None:
    mediaconvert_role = arn("iam", "role/Transcode", region="")
    store = permissions(
        allow(
            "iam:PassRole",
            mediaconvert_role,
            Condition={"StringLike": {"iam:PassedToService": "mediaconvert.amazonaws.com"}},
        )
    )
    to_mediaconvert = Check(
        "iam:PassRole", mediaconvert_role, (("iam:PassedToService", "mediaconvert.amazonaws.com"),)
    )
    to_lambda = Check(
        "iam:PassRole", mediaconvert_role, (("iam:PassedToService", "lambda.amazonaws.com"),)
    )
    assert store.decide(ROLE_ACTOR, to_mediaconvert) is None
    assert store.decide(ROLE_ACTOR, to_lambda) is not None
    # a key the request does not carry fails the condition, as in IAM
    assert store.decide(ROLE_ACTOR, Check("iam:PassRole", mediaconvert_role)) is not None


def test_trust_policies_check_the_service_and_its_source_conditions() -> None:
    store = permissions()
    machine_role = arn("iam", "role/Machine", region="")
    store.add_role(
        machine_role,
        "Machine",
        {
            "Statement": [
                {
                    "Action": "sts:AssumeRole",
                    "Effect": "Allow",
                    "Principal": {"Service": "states.amazonaws.com"},
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": arn("states", "stateMachine:*")},
                        "StringEquals": {"aws:SourceAccount": ACCOUNT},
                    },
                }
            ]
        },
        source="Stack/Machine",
    )
    ours = {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": arn("states", "stateMachine:StateMachine-X"),
    }
    assert store.trust_refusal(machine_role, "states.amazonaws.com", ours) is None
    assert store.trust_refusal(
        machine_role, "states.amazonaws.com", {**ours, "aws:SourceAccount": "999999999999"}
    )
    assert store.trust_refusal(machine_role, "lambda.amazonaws.com", ours)
    assert store.trust_refusal(ROLE, "lambda.amazonaws.com", {}) is None


def test_a_key_policy_must_allow_the_principal_or_leave_it_to_iam() -> None:
    # Given a role whose identity policy allows using the key
    store = permissions(allow(["kms:Decrypt", "kms:GenerateDataKey*"], KEY))
    root = {
        "Effect": "Allow",
        "Action": "kms:*",
        "Principal": {"AWS": arn("iam", "root", region="")},
        "Resource": "*",
    }
    use = Check("kms:GenerateDataKey", KEY, policy_of=KEY)

    # When the key policy has CDK's default statement (the account, i.e. IAM decides), it is allowed
    store.add_key(KEY, "1234", "Stack/Key", {"Statement": [root]})
    assert store.decide(ROLE_ACTOR, use) is None
    # but not for a role without an identity grant
    assert store.decide(Actor(role_arn=OTHER), use) == (
        "no identity-based policy allows it (the key policy leaves it to IAM)"
    )
    # and without that statement nobody may use it, whatever IAM says
    store.add_key(KEY, "1234", "Stack/Key", {"Statement": []})
    assert store.decide(ROLE_ACTOR, use) == "the key policy of Stack/Key does not allow it"
    # a service named in the key policy needs no identity policy
    service = {
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Resource": "*",
    }
    store.add_key(KEY, "1234", "Stack/Key", {"Statement": [service]})
    assert store.decide(Actor(service="cloudwatch.amazonaws.com"), use) is None


def test_a_lambda_permission_lets_only_its_service_and_source_invoke() -> None:
    store = permissions()
    store.add_lambda_permission(
        FUNCTION,
        "Stack/Permission",
        action="lambda:InvokeFunction",
        principal="sns.amazonaws.com",
        source_arn=TOPIC,
    )
    from_topic = Check("lambda:InvokeFunction", FUNCTION, (("aws:SourceArn", TOPIC),), FUNCTION)
    from_other = Check(
        "lambda:InvokeFunction", FUNCTION, (("aws:SourceArn", TOPIC + "2"),), FUNCTION
    )
    assert store.decide(Actor(service="sns.amazonaws.com"), from_topic) is None
    assert store.decide(Actor(service="sns.amazonaws.com"), from_other) is not None
    assert store.decide(Actor(service="events.amazonaws.com"), from_topic) is not None


def test_condition_operators_and_what_is_not_guessed() -> None:
    context = {"aws:sourcearn": ["arn:aws:events:eu-west-1:1:rule/r"]}
    assert condition_holds(
        "ArnEquals", "aws:SourceArn", "arn:aws:events:eu-west-1:1:rule/r", context
    )
    assert condition_holds("StringNotLike", "aws:SourceArn", "*:sns:*", context)
    assert condition_holds("StringEqualsIfExists", "aws:SourceAccount", "1", context)
    assert not condition_holds("StringEquals", "aws:SourceAccount", "1", context)
    assert condition_holds("Null", "aws:SourceAccount", "true", context)
    assert condition_holds("ForAnyValue:StringLike", "aws:SourceArn", ["x", "*rule/r"], context)
    with pytest.raises(PolicyNotModelled):
        condition_holds("DateGreaterThan", "aws:CurrentTime", "2020-01-01", context)
    store = permissions(allow("s3:GetObject", "arn:aws:s3:::raw/${aws:username}/*"))
    with pytest.raises(PolicyNotModelled):
        store.decide(ROLE_ACTOR, Check("s3:GetObject", "arn:aws:s3:::raw/a/b"))


def test_not_action_grants_everything_else() -> None:
    store = permissions({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert store.decide(ROLE_ACTOR, Check("sqs:SendMessage", "*")) is None
    assert store.decide(ROLE_ACTOR, Check("iam:PassRole", ROLE)) is not None
