"""Permissions proven locally: every call the pipeline makes is evaluated against the templates.

The deployer (``localworld.deploy``) records what the synthesized templates say about access:
roles (trust policy, inline ``Policies``, ``ManagedPolicyArns``), ``AWS::IAM::Policy`` and
``AWS::IAM::ManagedPolicy`` documents attached to them, resource policies
(``AWS::S3::BucketPolicy``, ``AWS::SNS::TopicPolicy``, ``AWS::SQS::QueuePolicy``,
``AWS::Lambda::Permission``), ``AWS::KMS::Key`` key policies (KMS's default one, the account's
``kms:*``, for a key without ``KeyPolicy``) and which resources a customer managed key encrypts:
topics, queues, buckets (SSE-KMS default encryption, and whether S3 Bucket Keys are on), tables,
secrets and log groups. ``Permissions`` holds all of it, resolved, for one world.

Who acts, and with which credentials:

* Every Lambda invocation runs as the function's own role: Lambda's trust in the role is checked
  at deploy time (``CreateFunction`` refuses a role Lambda cannot assume), the role is assumed
  through moto's STS once per world (session name: the function's name), and while the
  invocation runs on its thread ``botocore.session.Session.get_credentials`` answers that
  session's credentials: every client a handler creates signs with its role, as in its own
  container on AWS (boto3's sessions resolve credentials once and keep them, so environment
  variables alone would not do; and ``os.environ`` is shared by every thread, see ``runtime``).
* The Lambda service itself writes the function's logs (``logs:CreateLogStream``,
  ``logs:PutLogEvents`` on its ``LoggingConfig.LogGroup``) and, with active tracing, its X-Ray
  segments, with the same role, on every invocation (a refusal there does not fail the
  invocation, as on AWS, but it is a denial).
* The state machine's tasks run as its role (``states.amazonaws.com``, with ``aws:SourceArn`` and
  ``aws:SourceAccount`` for the trust policy): Lambda invokes go through moto with that role's
  credentials, ``mediaconvert:CreateJob``/``GetJob``, the ``iam:PassRole`` of the job's role
  (``iam:PassedToService`` = ``mediaconvert.amazonaws.com``) and the EventBridge rule a ``.sync``
  job needs are checked by the interpreter.
* A MediaConvert job reads its input and writes its outputs as its ``Role``
  (``mediaconvert.amazonaws.com``); Rekognition publishes its completion notice as the
  ``NotificationChannel.RoleArn`` (``rekognition.amazonaws.com``), through moto's SNS.
* SNS delivers to Lambda, and EventBridge invokes its Lambda targets, only where the function's
  resource policy (``AWS::Lambda::Permission``) lets the service principal do so for that topic
  or rule (``aws:SourceArn``, ``aws:SourceAccount``).
* A caller of the served HTTP API (``localworld.api_gateway``) is whoever owns the access key
  that signed the request (``principal_for_key``: an IAM user's key or an STS session, read from
  moto): ``execute-api:Invoke`` is decided on its identity policies (``require_actor``; for a
  user or role a test created after deployment, the ones moto holds: inline, attached managed,
  the user's groups'), and API Gateway invokes the function as ``apigateway.amazonaws.com``
  only where the function's resource policy allows it for that API, stage, method and route.
* Anything signed with other credentials is the world itself (deployment, test assertions, the
  dashboard): an administrator, never evaluated. A call made *during an invocation, on its thread*
  with such credentials is a denial: a client the handler did not create with its role.

How a call is decided (``Permissions.decide``), as IAM does for one account:

* An explicit ``Deny`` in any applicable policy wins. Otherwise a role's call is allowed when an
  identity policy of the role, or a resource policy naming the role, allows it; a service
  principal's call only when a resource policy allows it.
* KMS: the key policy must allow the principal itself, or allow the account (``:root``) and an
  identity policy must allow the call as well; a key policy with neither refuses whatever IAM
  allows. A key not deployed from the templates has no recorded policy: IAM alone decides.
* Key use a service makes for its caller (a forward access session): after the service's own
  action, each KMS action is checked for the caller on the resource's customer managed key, with
  the context KMS sees: ``kms:ViaService`` = ``<service>.<region>.amazonaws.com``,
  ``kms:CallerAccount`` (the caller's account), ``aws:ViaAWSService`` = true, the service's
  encryption context as ``kms:EncryptionContext:<key>`` and its keys as
  ``kms:EncryptionContextKeys`` (the caller's ``aws:SecureTransport`` is not carried over: the
  service's own request to KMS is another request). Per service:

  - SNS ``Publish``/``PublishBatch`` and SQS ``SendMessage(Batch)``: ``kms:GenerateDataKey`` and
    ``kms:Decrypt`` (context ``aws:sns:topicArn`` / ``aws:sqs:arn``); SQS ``ReceiveMessage``:
    ``kms:Decrypt``. This covers Rekognition's notification role publishing too.
  - S3 (every caller, MediaConvert's job role included: it reads and writes through moto with
    its role's client): ``GetObject`` (and ``SelectObjectContent``, and a copy's source)
    ``kms:Decrypt`` of the key the stored object was written with (moto keeps it per object;
    nothing for a missing object, an SSE-S3 or SSE-C one); ``HeadObject`` only with
    ``ChecksumMode=ENABLED`` on an object with a checksum (``kms:Decrypt``: S3 documents HEAD as
    metadata, the checksum of an SSE-KMS object as encrypted); ``PutObject`` and a copy's
    destination ``kms:GenerateDataKey`` of the request's ``x-amz-server-side-encryption``
    headers' key, else the bucket's default (``aws:kms`` without a key id: ``aws/s3``, AWS
    managed); ``CreateMultipartUpload``, ``UploadPart(Copy)`` and ``CompleteMultipartUpload``
    ``kms:GenerateDataKey`` and ``kms:Decrypt`` each (S3's requirement for SSE-KMS multipart
    uploads: its API reference ties GenerateDataKey to the creation and Decrypt to the parts;
    requiring both at every step refuses the same uploads, at their first step). Context
    ``aws:s3:arn``: the object's ARN, or the bucket's when S3 Bucket Keys are on (the object's
    flag, else the request's header, else the bucket's). Listing, tagging, ACLs, retention,
    deleting and aborting use no key.
  - Rekognition Video ``Start*``: the video is read with the caller's permissions, so besides
    ``s3:GetObject`` the caller needs S3's ``kms:Decrypt`` of the video's key (as above, through
    ``s3``).
  - DynamoDB item operations (``GetItem``, ``PutItem``, ``UpdateItem``, ``DeleteItem``,
    ``Query``, ``Scan``, ``BatchGetItem``, ``BatchWriteItem``, ``Transact*Items``) on a table
    with a customer managed key: ``kms:Decrypt`` once per table, reads and writes alike
    (DynamoDB decrypts the table key, with the caller's permissions, for every access; its
    cached table key is not modelled, every call is checked). Context
    ``aws:dynamodb:tableName`` and ``aws:dynamodb:subscriberId`` (the account). Table
    management calls (``DescribeTable``...) use no key.
  - Secrets Manager ``GetSecretValue``: ``kms:Decrypt``; ``PutSecretValue`` and an
    ``UpdateSecret`` with a new value: ``kms:GenerateDataKey``. Context ``SecretARN`` and
    ``SecretVersionId`` (the version read, or the new version's ``ClientRequestToken``).

  AWS managed keys (``alias/aws/...``: ``aws/s3``, ``aws/dynamodb``, ``aws/secretsmanager``),
  AWS owned keys and SSE-S3 need no grant. A caller's own ``kms:`` calls carry none of these
  keys (a ``kms:Decrypt`` of its own is decided on the key alone).
* CloudWatch Logs uses a log group's key as its own regional service principal
  (``logs.<region>.amazonaws.com``), never with the caller's permissions: the deployer refuses a
  log group whose key policy does not let that principal ``kms:Encrypt``, ``kms:Decrypt`` and
  ``kms:GenerateDataKey`` with ``kms:EncryptionContext:aws:logs:arn`` = the log group's ARN
  (``arn:aws:logs:<region>:<account>:log-group:<name>``), as ``CreateLogGroup`` and
  ``AssociateKmsKey`` do; Logs sends no ``aws:SourceArn``/``aws:SourceAccount`` there. The rest
  of the documented statement (``kms:ReEncrypt*``, ``kms:Describe*``) is not required: a
  ``DescribeKey`` carries no encryption context, so the documented statement's condition could
  never allow it. Writing (Lambda's ``PutLogEvents``) and reading log events need no key grant
  of the caller.
* Matching: ``Action``/``NotAction`` (case-insensitive, ``*`` and ``?``), ``Resource``/
  ``NotResource`` (case-sensitive wildcards), ``Principal``/``NotPrincipal`` (``*``, role and
  assumed-role ARNs, the account as ``:root`` or its id, ``Service``), and ``Condition`` with the
  ``String*``, ``Arn*``, ``Bool``, ``Null`` and ``Numeric*`` operators, ``...IfExists`` and
  ``ForAnyValue:``/``ForAllValues:``; a key absent from the request fails a positive operator
  and satisfies a negated one (``StringNotEquals``, ``ArnNotLike``...), ``ForAllValues`` holds
  and ``ForAnyValue`` fails over it (unless ``IfExists``/``Null``), as the IAM reference says.
* The context a request carries: ``aws:SecureTransport`` (from the endpoint's scheme),
  ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:RequestedRegion``, ``aws:SourceArn``/
  ``aws:SourceAccount`` for a service acting for a resource, ``iam:PassedToService`` for a role
  passed to a service, ``s3:prefix`` for a listing, and for a service's key use the ``kms:`` keys
  above (``kms:ViaService``, ``kms:CallerAccount``, ``kms:EncryptionContext:<key>``,
  ``kms:EncryptionContextKeys``) and ``aws:ViaAWSService``.
* Resources per call: the S3 bucket or object (``HeadObject`` is ``s3:GetObject``, a copy also
  needs ``s3:GetObject`` on its source, ``DeleteObjects`` is ``s3:DeleteObject`` per key),
  DynamoDB tables and indexes (a transaction or batch is checked per item's action and table),
  SSM parameters, Secrets Manager secrets (by full ARN), SNS topics, SQS queues, Step Functions
  state machines and executions (``SendTask*``: the state machine whose task issued the token),
  Lambda functions (``Invoke`` is ``lambda:InvokeFunction``) and KMS keys. Rekognition Video has
  no resource-level permissions (``*``); its ``Start*`` also needs ``iam:PassRole`` of the
  notification role and ``s3:GetObject`` on the video, which Rekognition reads with the caller's
  permissions. Calls of other services are checked as ``<service>:<Operation>`` on ``*``.

What is **not** evaluated: permissions boundaries, session policies, SCPs and RCPs; policy
variables (``${aws:username}``) and condition operators not listed above raise instead of being
guessed; condition keys other than those listed are absent; AWS managed policies other than
``AWSLambdaBasicExecutionRole`` grant nothing; S3 ACLs, VPC endpoint policies and object
ownership; KMS grants (``CreateGrant``), ``kms:GrantIsForAWSResource``, ``kms:RequestAlias`` and
``aws:CalledVia`` (absent); the key use of DynamoDB Streams, PartiQL statements, backups, S3
replication, a caller's ``CreateSecret`` and a secret's change of key; a log group's key after
its creation (Logs' later use is not re-checked); SNS's dead-letter deliveries are not simulated,
and of EventBridge's only the queue policy is checked, not the key-policy statements for
``events.amazonaws.com``/``sns.amazonaws.com`` (``localworld/dead_letters.py``; Lambda's own
dead-letter sends are checked against the function's role and the queue's key); Step Functions'
log delivery and tracing are checked once, at ``CreateStateMachine``;
the weekly cron rule is fired by ``World.fire_rule`` only. The trust
context a service sends is ``aws:SourceAccount`` always, and ``aws:SourceArn`` of the function,
state machine or rule (MediaConvert and Rekognition: none).

Why not moto's own access control (``INITIAL_NO_AUTH_ACTION_COUNT``): it evaluates resources
only for S3 and SQS (every other call is checked against ``*``, so no grant scoped to a table, a
parameter or a state machine ever matches), it turns a statement whose condition does not hold
into a ``Deny`` instead of leaving it out, and it knows no resource or key policies. This module
keeps moto's hook (``ActionAuthenticatorMixin._authenticate_and_authorize_action``, reached by
every call moto answers) and decides there itself.

``Permissions.unused_grants()`` lists the identity statements that allowed nothing so far: after
a run, candidates for a redundant or broader-than-needed grant.

Every denial is recorded (``Permissions.denials``) with who was refused, the action, the resource
and why, and answered as AWS answers it (``AccessDeniedException``, S3's ``AccessDenied``, SNS's
``AuthorizationError``), so the handler sees a real ``ClientError``. A handler may well catch that
error; the world therefore raises ``PermissionDenied`` (an ``AssertionError``) naming every new
denial when a run it waits for ends, and when it closes.
"""

# moto and botocore are imported where they are patched or used, not at import time; patches are
# installed once per process (module-level flags).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import collections
import contextlib
import functools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

# The world's own identity (deployment, assertions, the dashboard): never evaluated.
ADMIN_ACCESS_KEY = "AKIALOCALWORLDADMIN0"
ADMIN_SECRET_KEY = "localworld-admin-secret"  # noqa: S105 - moto accepts any secret
# Stand-in keys the world's scripts (``use_local_environment``), the dashboard's local mode and
# the test suite sign with: the world itself, like the administrator. S3's presigned-URL check
# (``localworld.s3_guard``) knows their secrets; any other unknown key is refused as S3 refuses it.
STAND_IN_CREDENTIALS = {"local": "local", "testing": "testing"}
# AWS managed policies the templates attach (CDK's helper functions); others grant nothing here.
AWS_MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ]
}
# Operations whose IAM action has another name than the operation.
ACTION_NAMES = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("s3", "HeadBucket"): "ListBucket",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
# Publishing to (or sending to) a resource encrypted with a customer managed key.
ENCRYPTED_WRITES = {("sns", "Publish"), ("sns", "PublishBatch"), ("sqs", "SendMessage")}
KMS_FOR_WRITES = ("kms:GenerateDataKey", "kms:Decrypt")
# Receiving from an encrypted queue: SQS decrypts the message's data key.
ENCRYPTED_READS = {("sqs", "ReceiveMessage")}
KMS_FOR_READS = ("kms:Decrypt",)
# The encryption context SNS and SQS send with the key use, by service.
MESSAGE_CONTEXT_KEYS = {"sns": "aws:sns:topicArn", "sqs": "aws:sqs:arn"}
# S3 with SSE-KMS: reading an object decrypts its data key, writing one generates a data key, and
# a multipart upload needs both at every step (S3 decrypts the upload's data key for each part).
S3_KMS_READ = ("kms:Decrypt",)
S3_KMS_WRITE = ("kms:GenerateDataKey",)
S3_KMS_MULTIPART = ("kms:GenerateDataKey", "kms:Decrypt")
# Object sub-resources whose calls read or write no object data (no key use).
S3_METADATA_SUBRESOURCES = (
    "acl", "tagging", "legal-hold", "retention", "attributes", "torrent", "restore",
)  # fmt: skip
S3_SSE_KMS = ("aws:kms", "aws:kms:dsse")
# DynamoDB item operations: each decrypts the table key with the table's KMS key.
DYNAMODB_ITEM_OPERATIONS = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactGetItems", "TransactWriteItems",
}  # fmt: skip
# Secrets Manager: reading a secret value decrypts its data key; a new value needs a new one.
SECRET_READS = {"GetSecretValue"}
SECRET_WRITES = {"PutSecretValue", "UpdateSecret"}
# What CloudWatch Logs does with a log group's key, as its own service principal, with the
# log group's ARN as encryption context (checked when the log group is created).
LOGS_KMS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")


class PolicyNotModelled(ValueError):
    """A policy uses something this evaluator does not implement (it refuses to guess)."""


@dataclass(frozen=True)
class Denial:
    """One refused call: who, what, on which resource, and why."""

    who: str
    action: str
    resource: str
    reason: str

    def __str__(self) -> str:
        return f"{self.who}: {self.action} on {self.resource} denied ({self.reason})"


class PermissionDenied(AssertionError):
    """Calls the synthesized permissions refuse (the test fails naming each of them)."""

    def __init__(self, denials: list[Denial]) -> None:
        self.denials = list(denials)
        lines = "\n".join(f"  - {d}" for d in self.denials)
        super().__init__(f"{len(self.denials)} call(s) denied by the synthesized IAM:\n{lines}")


@dataclass(frozen=True)
class Identity:
    """A role session: the credentials a function, the state machine or a service acts with."""

    role_arn: str
    session: str
    who: str
    access_key: str
    secret_key: str
    token: str
    partition: str = "aws"
    account: str = ""

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def session_arn(self) -> str:
        role = f"assumed-role/{self.role_name}/{self.session}"
        return f"arn:{self.partition}:sts::{self.account}:{role}"

    @property
    def label(self) -> str:
        return f"{self.who} (role {self.role_name})"

    def client(self, service: str, region: str, **options: Any) -> Any:
        """A boto3 client that signs with this session's credentials."""
        import boto3

        factory: Any = boto3.client
        return factory(
            service,
            region_name=region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.token,
            **options,
        )


@dataclass(frozen=True)
class Actor:
    """Who a decision is about: a role (through a session), an IAM user or a service principal."""

    role_arn: str = ""
    session_arn: str = ""
    service: str = ""
    user_arn: str = ""

    @staticmethod
    def of(identity: Identity) -> Actor:
        return Actor(role_arn=identity.role_arn, session_arn=identity.session_arn)


@dataclass(frozen=True)
class Principal:
    """Whoever an access key belongs to: an IAM user, a role session, or the account itself.

    What a service that authenticates SigV4 itself (API Gateway's IAM authorization, S3's
    presigned URLs) finds for the key: the secret to recompute the signature with, the session
    token the request must carry, and who the caller is (``arn``, ``user_id`` as API Gateway's
    ``userId``/``callerId`` show it).
    """

    kind: str  # "user", "assumed-role" or "root"
    arn: str
    user_id: str
    account: str
    access_key: str
    secret_key: str
    token: str | None = None
    role_arn: str = ""

    @property
    def actor(self) -> Actor:
        if self.kind == "user":
            return Actor(user_arn=self.arn)
        return Actor(role_arn=self.role_arn, session_arn=self.arn)


def principal_for_key(access_key: str, *, account: str, partition: str = "aws") -> Principal | None:
    """The principal whose credentials include ``access_key`` (None: no such key).

    The world's administrator key is the account's root user (the world's own identity); IAM
    users' active access keys and STS sessions (every role a function, the state machine or a
    test assumed, all through moto's STS) are read from moto's backends, as AWS reads them from
    IAM and STS.
    """
    if access_key == ADMIN_ACCESS_KEY:
        root = f"arn:{partition}:iam::{account}:root"
        return Principal("root", root, account, account, access_key, ADMIN_SECRET_KEY)
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    backend = iam_backends[account][partition]
    for user in list(backend.users.values()):
        for key in list(user.access_keys):
            if key.access_key_id == access_key and key.status == "Active":
                return Principal(
                    "user", str(user.arn), str(user.id), account, access_key, key.secret_access_key
                )
    for session in list(sts_backends[account][partition].assumed_roles):
        if session.access_key_id == access_key:
            return Principal(
                "assumed-role",
                str(session.arn),
                str(session.user_id),
                account,
                access_key,
                session.secret_access_key,
                token=session.session_token,
                role_arn=str(session.role_arn),
            )
    return None


@dataclass(frozen=True)
class Check:
    """One authorization a call needs."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    # ARN of the resource whose resource policy applies (bucket, topic, queue, function, key).
    policy_of: str | None = None

    def with_context(self, values: Mapping[str, str]) -> Check:
        merged = dict(self.context) | dict(values)
        return Check(self.action, self.resource, tuple(sorted(merged.items())), self.policy_of)


@dataclass
class _Document:
    source: str
    statements: list[dict[str, Any]]


@dataclass
class _Role:
    arn: str
    name: str
    trust: _Document
    inline: list[_Document] = field(default_factory=list)
    managed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FunctionRecord:
    arn: str
    name: str
    role_arn: str
    log_group: str | None
    tracing: bool


def _statements(document: Mapping[str, Any] | str) -> list[dict[str, Any]]:
    doc = json.loads(document) if isinstance(document, str) else document
    statements = doc.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    if "${" in pattern:
        raise PolicyNotModelled(f"policy variables are not evaluated locally: {pattern!r}")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(str(pattern), ignore_case).match(value) is not None


_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}


def _compare(operator: str, value: str, expected: str) -> bool:
    base = operator.replace("Not", "", 1) if operator in _NEGATED else operator
    if base == "StringEquals":
        return value == expected
    if base == "StringEqualsIgnoreCase":
        return value.lower() == expected.lower()
    if base in ("StringLike", "ArnLike", "ArnEquals"):
        return matches(expected, value)
    if base == "Bool":
        return value.lower() == str(expected).lower()
    if base.startswith("Numeric"):
        a, b = float(value), float(expected)
        return {
            "NumericEquals": a == b,
            "NumericLessThan": a < b,
            "NumericLessThanEquals": a <= b,
            "NumericGreaterThan": a > b,
            "NumericGreaterThanEquals": a >= b,
        }[base]
    raise PolicyNotModelled(f"condition operator {operator!r} is not evaluated locally")


_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike", "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike", "Bool",
    "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals",
}  # fmt: skip


def condition_holds(
    operator: str, key: str, expected: Any, context: Mapping[str, list[str]]
) -> bool:
    """One ``Condition`` entry against the request's context (keys case-insensitive)."""
    qualifier, _, op = operator.rpartition(":")
    wanted = [str(e) for e in _as_list(expected)]
    values = context.get(key.lower())
    if op == "Null":
        absent = values is None
        return any((w.lower() == "true") == absent for w in wanted)
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    if op not in _OPERATORS:
        raise PolicyNotModelled(f"condition operator {operator!r} is not evaluated locally")
    negated = op in _NEGATED
    if values is None:
        # IAM: an absent key matches no value, so a negated operator (StringNotEquals...) holds;
        # ForAllValues holds over no values, ForAnyValue never does.
        if if_exists or qualifier == "ForAllValues":
            return True
        return negated and qualifier != "ForAnyValue"
    if qualifier == "ForAllValues":
        hits = [any(_compare(op, v, w) for w in wanted) for v in values]
        return all(not h for h in hits) if negated else all(hits)
    if qualifier not in ("", "ForAnyValue"):
        raise PolicyNotModelled(f"condition qualifier {qualifier!r} is not evaluated locally")
    hits = [any(_compare(op, v, w) for w in wanted) for v in values]
    return any(not h for h in hits) if negated else any(hits)


def conditions_hold(statement: Mapping[str, Any], context: Mapping[str, list[str]]) -> bool:
    for operator, entries in (statement.get("Condition") or {}).items():
        for key, expected in entries.items():
            if not condition_holds(operator, key, expected, context):
                return False
    return True


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        patterns = _as_list(statement["NotAction"])
        return not any(matches(p, action, ignore_case=True) for p in patterns)
    return any(matches(p, action, ignore_case=True) for p in _as_list(statement.get("Action")))


def _resource_matches(statement: Mapping[str, Any], resource: str, *, required: bool) -> bool:
    if "NotResource" in statement:
        return not any(matches(p, resource) for p in _as_list(statement["NotResource"]))
    if "Resource" not in statement:
        return not required  # resource policies may leave it out (Lambda's own policy has it)
    return any(matches(p, resource) for p in _as_list(statement["Resource"]))


class Permissions:
    """Everything the templates say about access, for one world; decisions and denials."""

    def __init__(self, *, partition: str, region: str, account: str) -> None:
        self.partition, self.region, self.account = partition, region, account
        self.roles: dict[str, _Role] = {}
        self._role_by_name: dict[str, str] = {}
        self.managed_policies: dict[str, _Document] = {}
        self.resource_policies: dict[str, list[_Document]] = {}
        self.key_policies: dict[str, _Document] = {}
        self._key_ids: dict[str, str] = {}
        # Resource ARN (topic, queue, bucket, table, secret, log group) -> its customer managed key.
        self.encrypted_with: dict[str, str] = {}
        self.bucket_keys: set[str] = set()  # SSE-KMS buckets with S3 Bucket Keys enabled
        self.functions: dict[str, FunctionRecord] = {}
        self.state_machines: dict[str, str] = {}  # state machine ARN -> role ARN
        self.denials: list[Denial] = []
        # Allowed calls per identity label (who acted, evaluated): proof the checks ran.
        self.allowed: collections.Counter[str] = collections.Counter()
        self._reported = 0
        self._used: set[tuple[str, int]] = set()  # (policy source, statement index) that allowed
        self._identities: dict[str, Identity] = {}
        self._sessions: dict[tuple[str, str], Identity] = {}
        self._lock = threading.RLock()
        self._sts: Any = None

    # -- what the templates say (filled by the deployer) ----------------------------------------
    def add_role(
        self,
        arn: str,
        name: str,
        trust: Mapping[str, Any],
        *,
        source: str,
        inline: Iterable[tuple[str, Mapping[str, Any]]] = (),
        managed: Iterable[str] = (),
    ) -> None:
        role = _Role(arn, name, _Document(f"trust policy of {source}", _statements(trust)))
        role.inline = [_Document(f"{source} inline {n}", _statements(d)) for n, d in inline]
        role.managed = [str(m) for m in managed]
        self.roles[arn] = role
        self._role_by_name[name] = arn

    def attach_policy(
        self, source: str, document: Mapping[str, Any], *, roles: Iterable[str]
    ) -> None:
        """An ``AWS::IAM::Policy``: its document joins each role's identity policies."""
        doc = _Document(source, _statements(document))
        for ref in roles:
            arn = ref if ref.startswith("arn:") else self._role_by_name.get(ref)
            if arn is None or arn not in self.roles:
                raise KeyError(f"{source}: no role {ref!r} was deployed")
            self.roles[arn].inline.append(doc)

    def add_managed_policy(
        self, arn: str, source: str, document: Mapping[str, Any], *, roles: Iterable[str] = ()
    ) -> None:
        self.managed_policies[arn] = _Document(source, _statements(document))
        for ref in roles:
            role = self.roles[ref if ref.startswith("arn:") else self._role_by_name[ref]]
            role.managed.append(arn)

    def add_resource_policy(self, arn: str, source: str, document: Mapping[str, Any]) -> None:
        self.resource_policies.setdefault(arn, []).append(_Document(source, _statements(document)))

    def add_lambda_permission(
        self,
        function_arn: str,
        source: str,
        *,
        action: str,
        principal: str,
        source_arn: str | None = None,
        source_account: str | None = None,
    ) -> None:
        """An ``AWS::Lambda::Permission``, as the statement Lambda adds to the function policy."""
        who: dict[str, Any] = (
            {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal}
        )
        condition: dict[str, Any] = {}
        if source_arn:
            condition["ArnLike"] = {"AWS:SourceArn": source_arn}
        if source_account:
            condition["StringEquals"] = {"AWS:SourceAccount": source_account}
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": who,
            "Action": action,
            "Resource": function_arn,
        }
        if condition:
            statement["Condition"] = condition
        self.add_resource_policy(function_arn, source, {"Statement": [statement]})

    def add_key(self, arn: str, key_id: str, source: str, policy: Mapping[str, Any]) -> None:
        self.key_policies[arn] = _Document(f"key policy of {source}", _statements(policy))
        self._key_ids[key_id] = arn
        self._key_ids[arn] = arn

    def key_arn(self, ref: str) -> str | None:
        return self._key_ids.get(ref)

    def encrypt(self, resource_arn: str, key_ref: str, *, bucket_key: bool = False) -> None:
        """``resource_arn`` (a topic, queue, bucket, table, secret or log group) is encrypted
        with the key ``key_ref``; ``bucket_key``: an SSE-KMS bucket with S3 Bucket Keys."""
        if self.customer_key(key_ref) is None:
            return  # an AWS managed key: its policy lets the account's principals use it
        self.encrypted_with[resource_arn] = key_ref
        if bucket_key:
            self.bucket_keys.add(resource_arn)

    def customer_key(self, key_ref: str | None) -> str | None:
        """The key ARN a use of ``key_ref`` is decided on; None for no key or an AWS managed key
        (``alias/aws/...``: its key policy lets every principal of the account use it through
        its service)."""
        if not key_ref:
            return None
        if key_ref.startswith("alias/aws/") or ":alias/aws/" in key_ref:
            return None
        return self.key_arn(key_ref) or key_ref

    def add_function(self, record: FunctionRecord) -> None:
        self.functions[record.arn] = record

    def add_state_machine(self, arn: str, role_arn: str) -> None:
        self.state_machines[arn] = role_arn

    # -- identities -------------------------------------------------------------------------------
    def bind_sts(self, client: Any) -> None:
        """The admin STS client roles are assumed with (moto's: its sessions show in STS)."""
        self._sts = client

    def trust_refusal(self, role_arn: str, service: str, context: Mapping[str, str]) -> str | None:
        """Why ``service`` may not assume the role (None: the trust policy lets it)."""
        role = self.roles.get(role_arn)
        if role is None:
            return f"no role {role_arn} was deployed"
        check = Check("sts:AssumeRole", role_arn, tuple(sorted(context.items())))
        reason = self.decide(Actor(service=service), check, documents=[role.trust])
        return None if reason is None else f"{service} may not assume it: {reason}"

    def assume(
        self,
        role_arn: str,
        *,
        service: str,
        session: str,
        who: str,
        context: Mapping[str, str] | None = None,
    ) -> Identity:
        """Credentials of ``role_arn`` as ``service`` gets them (cached per role and session).

        Raises ``PermissionDenied`` (and records it) when the trust policy does not let the
        service assume the role with that context.
        """
        key = (role_arn, session)
        with self._lock:
            found = self._sessions.get(key)
            if found is not None:
                return found
            trust_context = {"aws:SourceAccount": self.account, **(context or {})}
            refusal = self.trust_refusal(role_arn, service, trust_context)
            if refusal is not None:
                denial = Denial(f"{who} ({service})", "sts:AssumeRole", role_arn, refusal)
                self.record(denial)
                raise PermissionDenied([denial])
            if self._sts is None:
                raise RuntimeError("Permissions.bind_sts was not called")
            answer = self._sts.assume_role(RoleArn=role_arn, RoleSessionName=session[:64])
            credentials = answer["Credentials"]
            identity = Identity(
                role_arn=role_arn,
                session=session[:64],
                who=who,
                access_key=credentials["AccessKeyId"],
                secret_key=credentials["SecretAccessKey"],
                token=credentials["SessionToken"],
                partition=self.partition,
                account=self.account,
            )
            self._sessions[key] = identity
            self._identities[identity.access_key] = identity
            return identity

    def identity(self, access_key: str) -> Identity | None:
        return self._identities.get(access_key)

    def function_identity(self, function_arn: str) -> Identity | None:
        record = self._function(function_arn)
        if record is None:
            return None
        return self.assume(
            record.role_arn,
            service="lambda.amazonaws.com",
            session=record.name,
            who=f"function {record.name}",
            context={"aws:SourceArn": record.arn},
        )

    def state_machine_identity(self, role_arn: str) -> Identity:
        machines = [arn for arn, role in self.state_machines.items() if role == role_arn]
        machine = machines[0] if machines else ""
        name = machine.rsplit(":", 1)[-1] or "StepFunctions"
        return self.assume(
            role_arn,
            service="states.amazonaws.com",
            session=name,
            who=f"state machine {name}",
            context={"aws:SourceArn": machine} if machine else {},
        )

    def _function(self, ref: str) -> FunctionRecord | None:
        if ref in self.functions:
            return self.functions[ref]
        base = ref.split(":")
        if len(base) > 7:  # a qualified ARN (version or alias): the function's record
            return self.functions.get(":".join(base[:7]))
        return next((f for f in self.functions.values() if f.name == ref), None)

    # -- decisions --------------------------------------------------------------------------------
    def context_for(self, actor: Actor, check: Check) -> dict[str, list[str]]:
        context: dict[str, list[str]] = {
            "aws:requestedregion": [self.region],
        }
        if actor.role_arn or actor.user_arn:
            context["aws:principalarn"] = [actor.role_arn or actor.user_arn]
            context["aws:principalaccount"] = [self.account]
        for key, value in check.context:
            context[key.lower()] = [value]
        # kms:EncryptionContextKeys: the keys of the request's encryption context (multi-valued)
        encryption_keys = [
            key.split(":", 2)[2]
            for key, _ in check.context
            if key.lower().startswith("kms:encryptioncontext:")
        ]
        if encryption_keys:
            context["kms:encryptioncontextkeys"] = encryption_keys
        return context

    def _principal_matches(  # noqa: PLR0911 - one answer per kind of principal
        self, principal: Any, actor: Actor
    ) -> tuple[bool, bool]:
        """(matches, only through the account): the account (``:root``) delegates to IAM."""
        if principal == "*":
            return True, False
        if not isinstance(principal, Mapping):
            return False, False
        for kind, values in principal.items():
            for value in _as_list(values):
                if kind == "Service" and actor.service and value == actor.service:
                    return True, False
                if kind != "AWS" or not (actor.role_arn or actor.user_arn):
                    continue
                if value == "*":
                    return True, False
                if value in {actor.role_arn, actor.session_arn, actor.user_arn} - {""}:
                    return True, False
                root = f"arn:{self.partition}:iam::{self.account}:root"
                if value in (root, self.account):
                    return True, True
        return False, False

    def _applies(
        self,
        statement: Mapping[str, Any],
        actor: Actor,
        check: Check,
        context: Mapping[str, list[str]],
        *,
        identity: bool,
    ) -> tuple[bool, bool]:
        """(applies, only through the account root) for one statement."""
        if not _action_matches(statement, check.action):
            return False, False
        if not _resource_matches(statement, check.resource, required=identity):
            return False, False
        via_root = False
        if not identity:
            if "NotPrincipal" in statement:
                hit, _ = self._principal_matches(statement["NotPrincipal"], actor)
                if hit:
                    return False, False
            else:
                hit, via_root = self._principal_matches(statement.get("Principal"), actor)
                if not hit:
                    return False, False
        if not conditions_hold(statement, context):
            return False, False
        return True, via_root

    def identity_documents(self, role_arn: str) -> list[_Document]:
        role = self.roles.get(role_arn)
        if role is None:
            return []
        documents = list(role.inline)
        for arn in role.managed:
            if arn in self.managed_policies:
                documents.append(self.managed_policies[arn])
            elif ":iam::aws:policy/" in arn:
                name = arn.split(":iam::aws:policy/", 1)[1]
                documents.append(_Document(arn, AWS_MANAGED_POLICIES.get(name, [])))
        return documents

    def documents_of(self, actor: Actor) -> list[_Document]:
        """The identity-based policies of whoever acts: a role from the templates (recorded), or
        an IAM user or role created in moto after deployment (a caller a test made, read from
        moto's IAM as it stands now: inline, attached managed and, for a user, its groups')."""
        if actor.user_arn:
            return self._moto_documents("user", actor.user_arn)
        if actor.role_arn in self.roles:
            return self.identity_documents(actor.role_arn)
        if actor.role_arn:
            return self._moto_documents("role", actor.role_arn)
        return []

    def _moto_documents(self, kind: str, arn: str) -> list[_Document]:
        from moto.iam.models import iam_backends

        backend = iam_backends[self.account][self.partition]
        name = arn.rsplit("/", 1)[-1]
        try:
            entity = backend.get_user(name) if kind == "user" else backend.get_role(name)
        except Exception:  # deleted meanwhile: it has no policies any more
            return []
        holders: list[tuple[Any, str]] = [(entity, f"{kind} {name}")]
        if kind == "user":
            holders += [(g, f"group {g.name}") for g in backend.get_groups_for_user(name)]
        documents: list[_Document] = []
        for holder, label in holders:
            for policy_name, document in dict(holder.policies).items():
                documents.append(_Document(f"{label} inline {policy_name}", _statements(document)))
            for policy_arn, policy in dict(holder.managed_policies).items():
                if policy_arn in self.managed_policies:
                    documents.append(self.managed_policies[policy_arn])
                elif ":iam::aws:policy/" in policy_arn:
                    aws_name = policy_arn.split(":iam::aws:policy/", 1)[1]
                    documents.append(_Document(policy_arn, AWS_MANAGED_POLICIES.get(aws_name, [])))
                else:
                    default = next(v for v in policy.versions if v.is_default)
                    documents.append(
                        _Document(f"{label} managed {policy_arn}", _statements(default.document))
                    )
        return documents

    def decide(  # noqa: PLR0911, PLR0912 - IAM's evaluation order, step by step
        self, actor: Actor, check: Check, *, documents: list[_Document] | None = None
    ) -> str | None:
        """Why the call is refused, or None when it is allowed.

        ``documents``: the resource-based policies that apply instead of the ones recorded for
        ``check.policy_of`` (the trust policy, for ``sts:AssumeRole``).
        """
        context = self.context_for(actor, check)
        identity = self.documents_of(actor)
        key_policy = self.key_policies.get(check.policy_of or "") if documents is None else None
        if documents is None:
            documents = (
                [key_policy]
                if key_policy is not None
                else list(self.resource_policies.get(check.policy_of or "", []))
            )
        identity_allows = False
        allowing: list[tuple[str, int]] = []
        for doc in identity:
            for index, statement in enumerate(doc.statements):
                applies, _ = self._applies(statement, actor, check, context, identity=True)
                if not applies:
                    continue
                if statement.get("Effect") == "Deny":
                    return f"explicitly denied by {doc.source}"
                identity_allows = True
                allowing.append((doc.source, index))
        self._used.update(allowing)
        resource_allows = root_allows = False
        for doc in documents:
            for statement in doc.statements:
                applies, via_root = self._applies(statement, actor, check, context, identity=False)
                if not applies:
                    continue
                if statement.get("Effect") == "Deny":
                    return f"explicitly denied by {doc.source}"
                if via_root:
                    root_allows = True
                else:
                    resource_allows = True
        if key_policy is not None:
            if resource_allows or (root_allows and identity_allows):
                return None
            if root_allows:
                return "no identity-based policy allows it (the key policy leaves it to IAM)"
            return f"the {key_policy.source} does not allow it"
        if resource_allows or identity_allows:
            return None
        if actor.service:
            if not documents:
                return f"no resource-based policy allows {actor.service}"
            return f"{documents[0].source} does not allow {actor.service}"
        return "no identity-based policy allows it"

    def record(self, denial: Denial) -> None:
        with self._lock:
            self.denials.append(denial)

    def require(self, identity: Identity, checks: Iterable[Check]) -> None:
        """Raise ``PermissionDenied`` (recording it) for the first check the identity fails."""
        self.require_actor(Actor.of(identity), identity.label, checks)

    def require_actor(self, actor: Actor, label: str, checks: Iterable[Check]) -> None:
        """``require`` for any actor (``label`` names it in the denial): an IAM user or a role
        session calling a service that authorizes it itself (API Gateway's ``execute-api``)."""
        for check in checks:
            try:
                reason = self.decide(actor, check)
            except PolicyNotModelled as err:
                reason = f"not evaluated locally: {err}"
            if reason is not None:
                denial = Denial(label, check.action, check.resource, reason)
                self.record(denial)
                raise PermissionDenied([denial])
        with self._lock:
            self.allowed[label] += 1

    def allowed_for_service(self, service: str, check: Check) -> Denial | None:
        """A service principal acting on a resource (SNS or EventBridge invoking a function)."""
        reason = self.decide(Actor(service=service), check)
        if reason is None:
            return None
        denial = Denial(service, check.action, check.resource, reason)
        self.record(denial)
        return denial

    def unused_grants(self) -> list[tuple[str, str, int, list[str]]]:
        """Identity statements that allowed nothing so far: (role, policy, index, actions).

        After a run that exercised the pipeline, candidates for a grant that is redundant or
        broader than needed (a path the run never took needs a look before removing one).
        """
        found = []
        for role in self.roles.values():
            for doc in self.identity_documents(role.arn):
                for index, statement in enumerate(doc.statements):
                    if statement.get("Effect") == "Allow" and (doc.source, index) not in self._used:
                        actions = [str(a) for a in _as_list(statement.get("Action"))]
                        found.append((role.name, doc.source, index, actions))
        return found

    def new_denials(self) -> list[Denial]:
        """Denials recorded since the last call (each is reported once)."""
        with self._lock:
            fresh = self.denials[self._reported :]
            self._reported = len(self.denials)
        return fresh

    def raise_new(self) -> None:
        fresh = self.new_denials()
        if fresh:
            raise PermissionDenied(fresh)

    # -- what a call needs -------------------------------------------------------------------------
    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:"
            f"{resource}"
        )

    def kms_via(
        self,
        service: str,
        key_ref: str | None,
        actions: Iterable[str],
        encryption_context: Mapping[str, str] | None = None,
    ) -> list[Check]:
        """The key use ``service`` makes with the caller's permissions (a forward access session):
        one check per action on the customer managed key, none for an AWS managed key or none.

        The request KMS sees: ``kms:ViaService`` (``<service>.<region>.amazonaws.com``),
        ``kms:CallerAccount`` (the caller's account), ``aws:ViaAWSService`` (true) and each
        encryption-context pair as ``kms:EncryptionContext:<key>``.
        """
        key = self.customer_key(key_ref)
        if key is None:
            return []
        context = {
            "kms:ViaService": f"{service}.{self.region}.amazonaws.com",
            "kms:CallerAccount": self.account,
            "aws:ViaAWSService": "true",
        }
        for name, value in (encryption_context or {}).items():
            context[f"kms:EncryptionContext:{name}"] = value
        ctx = tuple(sorted(context.items()))
        return [Check(action, key, ctx, policy_of=key) for action in actions]

    def with_kms(
        self, check: Check, resource_arn: str, actions: Iterable[str] = KMS_FOR_WRITES
    ) -> list[Check]:
        """``check`` plus the key use an encrypted topic or queue asks of the caller."""
        service = resource_arn.split(":")[2] if resource_arn.count(":") >= 5 else ""
        context_key = MESSAGE_CONTEXT_KEYS.get(service)
        encryption_context = {context_key: resource_arn} if context_key else {}
        key_ref = self.encrypted_with.get(resource_arn)
        return [check, *self.kms_via(service, key_ref, actions, encryption_context)]

    def logs_key_refusal(self, log_group_arn: str, key_ref: str) -> tuple[str, str] | None:
        """Why CloudWatch Logs refuses ``key_ref`` for the log group: (action, reason), or None.

        Logs uses the key as its regional service principal (``logs.<region>.amazonaws.com``),
        with the log group's ARN as encryption context (``aws:logs:arn``), so only the key policy
        decides (a service principal has no identity policy).
        """
        key = self.key_arn(key_ref)
        if key is None:
            return LOGS_KMS_ACTIONS[0], f"no key {key_ref} was deployed"
        principal = f"logs.{self.region}.amazonaws.com"
        context = (("kms:EncryptionContext:aws:logs:arn", log_group_arn),)
        for action in LOGS_KMS_ACTIONS:
            check = Check(action, key, context, policy_of=key)
            try:
                reason = self.decide(Actor(service=principal), check)
            except PolicyNotModelled as err:
                reason = f"not evaluated locally: {err}"
            if reason is not None:
                return action, f"{principal} may not use it: {reason}"
        return None

    def lambda_service_checks(self, function_arn: str, request_id: str) -> list[Check]:
        """What the Lambda service does with the execution role on every invocation."""
        record = self._function(function_arn)
        if record is None:
            return []
        checks: list[Check] = []
        if record.log_group:
            stream = self.arn("logs", f"log-group:{record.log_group}:log-stream:{request_id}")
            checks += [Check("logs:CreateLogStream", stream), Check("logs:PutLogEvents", stream)]
        if record.tracing:
            checks += [Check("xray:PutTraceSegments", "*"), Check("xray:PutTelemetryRecords", "*")]
        return checks

    def checks_for(self, service: str, operation: str, request: Any, resource: str) -> list[Check]:
        """The authorizations one call through moto needs (``request``: moto's response)."""
        secure = "true" if urlsplit(str(getattr(request, "uri", ""))).scheme == "https" else "false"
        base = (("aws:SecureTransport", secure),)
        handler = getattr(self, f"_checks_{service}", None)
        if handler is None:
            action = f"{service}:{ACTION_NAMES.get((service, operation), operation)}"
            return [Check(action, "*", base)]
        checks: list[Check] = handler(operation, request, resource, base)
        return checks

    def _checks_s3(self, op: str, request: Any, resource: str, base: Any) -> list[Check]:
        action = f"s3:{ACTION_NAMES.get(('s3', op), op)}"
        bucket_arn = resource.split("/", 1)[0]
        context = dict(base)
        prefix = request.querystring.get("prefix") if hasattr(request, "querystring") else None
        if op in ("ListBucket", "ListBucketVersions") and prefix:
            context["s3:prefix"] = prefix[0] if isinstance(prefix, list) else str(prefix)
        ctx = tuple(sorted(context.items()))
        if op == "DeleteObject" and "/" not in resource.split(":::", 1)[-1]:
            return [  # DeleteObjects: one s3:DeleteObject(Version) per key in the body
                Check(a, f"{bucket_arn}/{k}", ctx, bucket_arn)
                for a, k in _delete_objects(request.body)
            ]
        checks = [Check(action, resource, ctx, bucket_arn)]
        source = request.headers.get("x-amz-copy-source")
        if source:
            path, _, query = unquote(source).lstrip("/").partition("?versionId=")
            src_bucket = path.split("/", 1)[0]
            src = f"arn:{self.partition}:s3:::{path}"
            verb = "s3:GetObjectVersion" if query else "s3:GetObject"
            checks.append(Check(verb, src, ctx, f"arn:{self.partition}:s3:::{src_bucket}"))
        return checks + self._s3_kms(request, resource)

    # -- S3 with SSE-KMS ---------------------------------------------------------------------------
    def _s3_kms(self, request: Any, resource: str) -> list[Check]:
        """The key use an object call makes S3 do with the caller's permissions."""
        bucket_arn, _, key = resource.partition("/")
        if not key or not bucket_arn.startswith(f"arn:{self.partition}:s3:::"):
            return []  # bucket-level calls (listing, configuration) use no key
        bucket = bucket_arn.rsplit(":", 1)[-1]
        method = str(getattr(request, "method", "")).upper()
        query = dict(getattr(request, "querystring", {}) or {})
        if any(sub in query for sub in S3_METADATA_SUBRESOURCES) or method == "DELETE":
            return []  # tagging, ACLs, retention, deletes, aborts: no object data
        if method in ("GET", "HEAD"):
            if "uploadId" in query:
                return []  # ListParts
            checksum = str(request.headers.get("x-amz-checksum-mode", "")).upper() == "ENABLED"
            if method == "HEAD" and not checksum:
                return []  # HeadObject reads metadata only (its checksum needs kms:Decrypt)
            version = _first(query.get("versionId"))
            return self._s3_read_kms(bucket, key, version, checksum_only=method == "HEAD")
        return self._s3_write_kms(method, query, request.headers, bucket_arn, key)

    def _s3_write_kms(
        self, method: str, query: Mapping[str, Any], headers: Any, bucket_arn: str, key: str
    ) -> list[Check]:
        """PutObject, CopyObject, the multipart upload steps and SelectObjectContent."""
        bucket = bucket_arn.rsplit(":", 1)[-1]
        upload = _first(query.get("uploadId"))
        checks: list[Check] = []
        if method == "POST" and "select" in query:  # SelectObjectContent reads the object
            return self._s3_read_kms(bucket, key, _first(query.get("versionId")))
        if method == "PUT" and upload is None:  # PutObject, CopyObject
            key_ref, bucket_key = self._s3_write_key(bucket_arn, headers)
            actions: tuple[str, ...] = S3_KMS_WRITE
        elif method == "POST" and "uploads" in query:  # CreateMultipartUpload
            key_ref, bucket_key = self._s3_write_key(bucket_arn, headers)
            actions = S3_KMS_MULTIPART
        elif upload is not None and method in ("PUT", "POST"):  # UploadPart(Copy), Complete
            key_ref, bucket_key = self._s3_upload_key(bucket, bucket_arn, upload)
            actions = S3_KMS_MULTIPART
        else:
            return []
        checks += self.kms_via("s3", key_ref, actions, self._s3_context(bucket, key, bucket_key))
        source = headers.get("x-amz-copy-source")
        if source and method == "PUT":  # a copy (or UploadPartCopy) reads its source
            path, _, src_version = unquote(str(source)).lstrip("/").partition("?versionId=")
            src_bucket, _, src_key = path.partition("/")
            checks += self._s3_read_kms(src_bucket, src_key, src_version or None)
        return checks

    def _s3_context(self, bucket: str, key: str, bucket_key: bool) -> dict[str, str]:
        """S3's encryption context: the object's ARN, or the bucket's with S3 Bucket Keys."""
        arn = f"arn:{self.partition}:s3:::{bucket}"
        return {"aws:s3:arn": arn if bucket_key else f"{arn}/{key}"}

    def _s3_write_key(self, bucket_arn: str, headers: Any) -> tuple[str | None, bool]:
        """(key, S3 Bucket Key) a new object is encrypted with: the request's SSE headers, else
        the bucket's default encryption (None: SSE-S3 or SSE-C)."""
        sse = headers.get("x-amz-server-side-encryption")
        default = self.encrypted_with.get(bucket_arn)
        default_bucket_key = bucket_arn in self.bucket_keys
        if not sse:
            if headers.get("x-amz-server-side-encryption-customer-algorithm"):
                return None, False  # SSE-C: the caller's own key, no KMS
            return default, default_bucket_key
        if str(sse) not in S3_SSE_KMS:
            return None, False  # AES256: SSE-S3
        key_ref = headers.get("x-amz-server-side-encryption-aws-kms-key-id") or "alias/aws/s3"
        flag = headers.get("x-amz-server-side-encryption-bucket-key-enabled")
        bucket_key = str(flag).lower() == "true" if flag is not None else default_bucket_key
        return str(key_ref), bucket_key

    def _s3_upload_key(self, bucket: str, bucket_arn: str, upload: str) -> tuple[str | None, bool]:
        """(key, S3 Bucket Key) of a multipart upload in progress (None: it does not exist)."""
        from moto.s3.models import s3_backends

        try:
            found = s3_backends[self.account][self.partition].get_bucket(bucket).multiparts[upload]
        except Exception:  # no such upload: S3 answers NoSuchUpload, no key is used
            return None, False
        sse = getattr(found, "sse_encryption", None)
        if sse in S3_SSE_KMS:
            return str(getattr(found, "kms_key_id", None) or "alias/aws/s3"), (
                bucket_arn in self.bucket_keys
            )
        if sse:
            return None, False
        return self.encrypted_with.get(bucket_arn), bucket_arn in self.bucket_keys

    def _s3_read_kms(
        self, bucket: str, key: str, version: str | None, *, checksum_only: bool = False
    ) -> list[Check]:
        """``kms:Decrypt`` of the key the stored object was encrypted with (none when it does
        not exist, is SSE-S3, or, for ``checksum_only``, has no checksum)."""
        from moto.s3.models import s3_backends

        try:
            found = s3_backends[self.account][self.partition].get_object(bucket, key, version)
        except Exception:  # no such bucket or object: nothing to decrypt
            return []
        if found is None or getattr(found, "is_delete_marker", False):
            return []
        if checksum_only and not (
            getattr(found, "checksum_value", None) or getattr(found, "checksum_algorithm", None)
        ):
            return []
        bucket_arn = f"arn:{self.partition}:s3:::{bucket}"
        sse = getattr(found, "encryption", None)
        if sse in S3_SSE_KMS:
            key_ref: str | None = str(found.kms_key_id or "alias/aws/s3")
            bucket_key = str(found.bucket_key_enabled).lower() == "true"
        elif sse:
            return []  # SSE-S3
        else:  # moto was not told the bucket's default encryption: the template's
            key_ref, bucket_key = (
                self.encrypted_with.get(bucket_arn),
                bucket_arn in self.bucket_keys,
            )
        return self.kms_via("s3", key_ref, S3_KMS_READ, self._s3_context(bucket, key, bucket_key))

    def _checks_dynamodb(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        params = _json(request)

        def table(name: str, index: str | None = None) -> str:
            arn = name if name.startswith("arn:") else self.arn("dynamodb", f"table/{name}")
            return f"{arn}/index/{index}" if index else arn

        if op in ("TransactWriteItems", "TransactGetItems"):
            checks = []
            for item in params.get("TransactItems", []):
                ((kind, body),) = item.items()
                checks.append(
                    Check(f"dynamodb:{TRANSACT_ACTIONS[kind]}", table(body["TableName"]), base)
                )
        elif op in ("BatchWriteItem", "BatchGetItem"):
            checks = [
                Check(f"dynamodb:{op}", table(t), base) for t in params.get("RequestItems", {})
            ]
        elif "TableName" in params:
            index = params.get("IndexName") if op in ("Query", "Scan") else None
            checks = [Check(f"dynamodb:{op}", table(params["TableName"], index), base)]
        else:
            return [Check(f"dynamodb:{op}", "*", base)]
        if op not in DYNAMODB_ITEM_OPERATIONS:
            return checks
        tables = dict.fromkeys(c.resource.split("/index/", 1)[0] for c in checks)
        for arn in tables:  # the table key, decrypted with the table's KMS key
            context = {
                "aws:dynamodb:tableName": arn.split(":table/", 1)[-1],
                "aws:dynamodb:subscriberId": self.account,
            }
            key_ref = self.encrypted_with.get(arn)
            checks += self.kms_via("dynamodb", key_ref, ("kms:Decrypt",), context)
        return checks

    def _checks_ssm(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        params = _json(request)
        names = _as_list(params.get("Names")) or _as_list(params.get("Name"))
        if params.get("Path"):
            names = [params["Path"]]
        if not names:
            return [Check(f"ssm:{op}", "*", base)]
        return [
            Check(f"ssm:{op}", self.arn("ssm", f"parameter/{str(n).lstrip('/')}"), base)
            for n in names
        ]

    def _checks_secretsmanager(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        secret_id = _json(request).get("SecretId")
        if not secret_id:
            return [Check(f"secretsmanager:{op}", "*", base)]
        from moto.secretsmanager.models import secretsmanager_backends

        params = _json(request)
        found = secretsmanager_backends[self.account][self.region].secrets.get(secret_id)
        arn = found.arn if found is not None else str(secret_id)
        checks = [Check(f"secretsmanager:{op}", arn, base)]
        key_ref = self.encrypted_with.get(arn)
        if key_ref is None or found is None:
            return checks
        if op in SECRET_READS:
            version = params.get("VersionId") or _secret_version(
                found, str(params.get("VersionStage") or "AWSCURRENT")
            )
            actions: tuple[str, ...] = ("kms:Decrypt",)
        elif op in SECRET_WRITES and ("SecretString" in params or "SecretBinary" in params):
            version = params.get("ClientRequestToken")  # the new version's id
            actions = ("kms:GenerateDataKey",)
        else:
            return checks
        context = {"SecretARN": arn}
        if version:
            context["SecretVersionId"] = str(version)
        return checks + self.kms_via("secretsmanager", key_ref, actions, context)

    def _checks_sns(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        params = {k: v[0] if isinstance(v, list) else v for k, v in request.querystring.items()}
        topic = params.get("TopicArn") or params.get("TargetArn")
        if not topic:
            return [Check(f"sns:{op}", "*", base)]
        check = Check(f"sns:{op}", topic, base, topic)
        if ("sns", op) in ENCRYPTED_WRITES:
            return self.with_kms(check, topic)
        return [check]

    def _checks_sqs(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        params = _json(request)
        url = params.get("QueueUrl")
        action = f"sqs:{ACTION_NAMES.get(('sqs', op), op)}"
        if url:
            parts = urlsplit(str(url)).path.strip("/").split("/")
            queue = self.arn("sqs", parts[-1]) if len(parts) >= 2 else "*"
        elif params.get("QueueName"):
            queue = self.arn("sqs", str(params["QueueName"]))
        else:
            return [Check(action, "*", base)]
        check = Check(action, queue, base, queue)
        if ("sqs", action.split(":", 1)[1]) in ENCRYPTED_WRITES:
            return self.with_kms(check, queue)
        if ("sqs", action.split(":", 1)[1]) in ENCRYPTED_READS:
            return self.with_kms(check, queue, KMS_FOR_READS)
        return [check]

    def _checks_states(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        params = _json(request)
        arn = params.get("stateMachineArn") or params.get("executionArn")
        if op.startswith("SendTask"):
            arn = _token_state_machine(self, str(params.get("taskToken", "")))
        return [Check(f"states:{op}", str(arn or "*"), base)]

    def _checks_lambda(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        action = f"lambda:{ACTION_NAMES.get(('lambda', op), op)}"
        found = re.search(r"/functions/([^/?]+)", str(getattr(request, "path", "")))
        if not found:
            return [Check(action, "*", base)]
        name = unquote(found.group(1))
        record = self._function(name)
        arn = (
            record.arn
            if record
            else (name if name.startswith("arn:") else self.arn("lambda", f"function:{name}"))
        )
        qualifier = getattr(request, "querystring", {}).get("Qualifier")
        if qualifier:
            arn = f"{arn}:{qualifier[0] if isinstance(qualifier, list) else qualifier}"
        return [Check(action, arn, base, record.arn if record else arn)]

    def _checks_rekognition(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        checks = [Check(f"rekognition:{op}", "*", base)]
        if not op.startswith("Start"):
            return checks
        params = _json(request)
        video = (params.get("Video") or {}).get("S3Object") or {}
        if video.get("Bucket") and video.get("Name"):
            bucket = f"arn:{self.partition}:s3:::{video['Bucket']}"
            verb = "s3:GetObjectVersion" if video.get("Version") else "s3:GetObject"
            checks.append(Check(verb, f"{bucket}/{video['Name']}", base, bucket))
            # Rekognition reads the video through S3 as the caller: S3 decrypts it as for a
            # GetObject of the caller's.
            checks += self._s3_read_kms(
                str(video["Bucket"]), str(video["Name"]), video.get("Version")
            )
        role = (params.get("NotificationChannel") or {}).get("RoleArn")
        if role:
            checks.append(
                Check("iam:PassRole", role, base).with_context(
                    {"iam:PassedToService": "rekognition.amazonaws.com"}
                )
            )
        return checks

    def _checks_transcribe(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        """Transcription jobs are authorized by their ARN (``transcription-job/<name>``), and a
        start that tags its job needs ``transcribe:TagResource`` on it too."""
        params = _json(request)
        name = params.get("TranscriptionJobName")
        arn = self.arn("transcribe", f"transcription-job/{name}") if name else "*"
        checks = [Check(f"transcribe:{op}", arn, base)]
        if op == "StartTranscriptionJob" and params.get("Tags"):
            checks.append(Check("transcribe:TagResource", arn, base))
        return checks

    def _checks_kms(self, op: str, request: Any, _r: str, base: Any) -> list[Check]:
        key_ref = str(_json(request).get("KeyId", ""))
        key = self.key_arn(key_ref) or key_ref or "*"
        return [Check(f"kms:{op}", key, base, key)]

    def _checks_sts(self, op: str, request: Any, resource: str, base: Any) -> list[Check]:
        if op == "GetCallerIdentity":
            return []  # always allowed, whatever the policies say
        return [Check(f"sts:{op}", resource or "*", base)]


def _first(value: Any) -> str | None:
    """One query-string value (moto keeps lists)."""
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _json(request: Any) -> dict[str, Any]:
    body = getattr(request, "body", None)
    if isinstance(body, dict):  # some moto responses parse the body themselves
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _secret_version(secret: Any, stage: str) -> str | None:
    """The id of the secret's version with ``stage`` (moto's secret model)."""
    for version_id, version in (getattr(secret, "versions", None) or {}).items():
        if stage in (version.get("version_stages") or []):
            return str(version_id)
    return None


def _delete_objects(body: Any) -> list[tuple[str, str]]:
    """``DeleteObjects``' keys: (``s3:DeleteObject`` or ``s3:DeleteObjectVersion``, key)."""
    raw = body if isinstance(body, bytes) else str(body or "").encode()
    found: list[tuple[str, str]] = []
    root = ElementTree.fromstring(raw)  # noqa: S314 - botocore's own request body
    for item in root.iter():
        if not item.tag.endswith("Object"):
            continue
        key = next((c.text for c in item if c.tag.endswith("Key")), None)
        version = next((c.text for c in item if c.tag.endswith("VersionId")), None)
        if key is not None:
            found.append(("s3:DeleteObjectVersion" if version else "s3:DeleteObject", key))
    return found


def _token_state_machine(store: Permissions, token: str) -> str:
    """The state machine whose execution handed out ``token`` (``*`` when none did)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[store.account][store.region]
    for machine in backend.state_machines:
        for execution in machine.executions:
            worker = getattr(execution, "exec_worker", None)
            env = getattr(worker, "env", None)
            pool = getattr(env, "callback_pool_manager", None)
            if pool is not None and pool.get(token) is not None:
                return str(machine.arn)
    return "*"


# -- the active world and the acting identity ------------------------------------------------------
_ACTIVE: dict[str, Permissions | None] = {"store": None}
_LOCAL = threading.local()
_INSTALLED = False


def activate(store: Permissions | None) -> None:
    _ACTIVE["store"] = store


def active() -> Permissions | None:
    return _ACTIVE["store"]


def acting() -> Identity | None:
    """The identity of the invocation running on this thread (innermost), if any."""
    stack: list[Identity] = getattr(_LOCAL, "stack", [])
    return stack[-1] if stack else None


@contextlib.contextmanager
def acting_as(identity: Identity | None) -> Iterator[None]:
    """Run the block as ``identity``: clients created in it sign with its credentials."""
    if identity is None:
        yield
        return
    stack: list[Identity] = _LOCAL.__dict__.setdefault("stack", [])
    stack.append(identity)
    try:
        yield
    finally:
        stack.pop()


def mark_admin(session: Any) -> None:
    """A boto3 session of the world's own: its credentials are never replaced."""
    session._session._localworld_admin = True


def _credential_of(request: Any) -> tuple[str, str] | None:
    """(access key id, signing service) of a SigV4 request (header or presigned query)."""
    header = request.headers.get("Authorization") or ""
    found = re.search(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/", header)
    if found:
        return found.group(1), found.group(2)
    query = getattr(request, "querystring", {}) or {}
    credential = query.get("X-Amz-Credential")
    if credential:
        value = credential[0] if isinstance(credential, list) else credential
        parts = unquote(str(value)).split("/")
        if len(parts) >= 4:
            return parts[0], parts[3]
    return None


def _denied_error(service: str, denial: Denial, identity: Identity | None) -> Exception:
    """The error the service answers a refused call with."""
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.s3.exceptions import S3ClientError

    who = identity.session_arn if identity else denial.who
    message = (
        f"User: {who} is not authorized to perform: {denial.action} on resource: "
        f"{denial.resource} because {denial.reason}"
    )
    if service == "s3":
        error = S3ClientError("AccessDenied", message)
        error.code = "AccessDenied"
        return error
    if service in ("sns", "sts", "iam"):
        code = "AuthorizationError" if service == "sns" else "AccessDenied"

        class QueryDenied(AccessDeniedError):  # an XML error answer (403) with this code
            def __init__(self) -> None:
                super(AccessDeniedError, self).__init__(code, message)

        return QueryDenied()
    json_error = JsonRESTError("AccessDeniedException", message)
    json_error.code = 403 if service == "lambda" else 400
    return json_error


def _authorize(response: Any, _iam_request_cls: type, resource: str = "*") -> None:
    """moto's access-control hook, evaluated against the active world's permissions."""
    store = _ACTIVE["store"]
    if store is None:
        return
    signed = _credential_of(response)
    key, service = signed if signed else ("", "")
    identity = store.identity(key)
    operation = str(response._get_action())  # moto's own name for the call
    if identity is None:
        current = acting()
        if current is None:
            return  # the world itself
        denial = Denial(
            current.label,
            f"{service}:{operation}",
            resource,
            "signed with credentials that are not the function's role (a client created "
            "outside the invocation?)",
        )
        store.record(denial)
        raise _denied_error(service, denial, current)
    try:
        checks = store.checks_for(service, operation, response, resource)
    except Exception as err:  # a call this module cannot read is refused, never waved through
        reason = f"not evaluated: {err!r}"
        denial = Denial(identity.label, f"{service}:{operation}", resource, reason)
        store.record(denial)
        raise _denied_error(service, denial, identity) from None
    try:
        store.require(identity, checks)
    except PermissionDenied as err:
        raise _denied_error(service, err.denials[0], identity) from None


def install() -> None:
    """Route moto's access-control hook and botocore's credential lookup here (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from botocore.session import Session
    from moto.core.authorization import ActionAuthenticatorMixin

    cast(Any, ActionAuthenticatorMixin)._authenticate_and_authorize_action = _authorize
    original = Session.get_credentials

    def get_credentials(self: Any) -> Any:
        identity = acting()
        if identity is None or getattr(self, "_localworld_admin", False):
            return original(self)
        from botocore.credentials import Credentials

        return Credentials(identity.access_key, identity.secret_key, identity.token)

    Session.get_credentials = get_credentials  # type: ignore[method-assign]
    _INSTALLED = True
