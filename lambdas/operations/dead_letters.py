"""What is in the dead-letter queues: read without consuming, classified, grouped.

Shared by the scheduled analyzer (``analyzer.py``), the redrive (``redrive.py``, run by
``make redrive`` and the dashboard's button) and their tests, so that what the digest calls a
message is what the redrive lists and sends.

Three services write to these queues, each its own way, and the classification reads all three:

* EventBridge (a rule's target could not be reached): the body is the event, the attributes
  ``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE`` and ``ERROR_MESSAGE`` say why.
* Lambda (an asynchronous invocation still failed after Lambda's retries): the body is the
  invocation's payload, the attributes ``RequestID``, ``ErrorCode`` (an HTTP status) and
  ``ErrorMessage`` (the start of the function's error message).
* SNS (a subscription could not be delivered): the body is SNS's JSON envelope of the notice.

A body that is not JSON, or JSON from no source this pipeline subscribes to, is classified as
such (``not-json``, ``unknown``) and kept: nothing is dropped for being unreadable.

Why hand-written: SQS's "peek" is receive-then-release, which no library wraps, and the
classification is this pipeline's own knowledge of which message is for what.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from lambdas.shared.errors import bounded

# The processed bucket's folder for what operations write (summaries, the redrive ledger).
OPERATIONS_PREFIX = "operations/dead-letters/"
SUMMARY_KEY = f"{OPERATIONS_PREFIX}summary.json"
HISTORY_PREFIX = f"{OPERATIONS_PREFIX}history/"
LEDGER_PREFIX = f"{OPERATIONS_PREFIX}redriven/"
# SQS answers at most 10 messages per receive; a queue holding more than this is summarized
# from its first PEEK_LIMIT messages (the count comes from the queue's attributes).
RECEIVE_BATCH = 10
PEEK_LIMIT = 500
# Long enough for one scan to finish before a message shows again (the same scan would count
# it twice), short enough that a redrive started meanwhile waits little.
PEEK_VISIBILITY_S = 60
MAX_ERROR_MESSAGE_LEN = 300
MAX_ERROR_CLASS_LEN = 64
VIAS = ("lambda", "states", "sns")

# "An error occurred (ThrottlingException) when calling ...": botocore's ClientError text, the
# most common reason a function of this pipeline gives up.
_CLIENT_ERROR = re.compile(r"An error occurred \((?P<code>[A-Za-z0-9_.]+)\)")
# "Unprocessable: ..." / "InvalidInput: ...": an exception class name in front of its message.
_NAMED_ERROR = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9_.]{2,63})(?::|\s-\s)")
_UNSAFE_CLASS = re.compile(r"[^A-Za-z0-9_.:-]+")


class RegistryError(ValueError):
    """The registry of queues (the ``DeadLetterQueues`` output) is missing or malformed."""


@dataclass(frozen=True)
class Route:
    """One queue: where it is, what its messages are and where a redrive sends them (the
    runtime side of ``constructs_lib.dead_letters.DeadLetterRoute``)."""

    name: str
    url: str
    arn: str
    kind: str
    describes: str
    via: str
    target: str
    input: str | None = None

    @classmethod
    def parse(cls, name: str, entry: object, *, routed: bool = True) -> Route:
        """``routed``: the redrive needs where to send (``via``, ``target``); the analyzer,
        whose environment holds only what it reads (Lambda allows 4 KB of variables), does
        not."""
        if not isinstance(entry, Mapping):
            raise RegistryError(f"queue {name!r}: expected an object, got {type(entry).__name__}")
        needed = ("url", "kind", *(("via", "target") if routed else ()))
        missing = [f for f in needed if not isinstance(entry.get(f), str) or not entry.get(f)]
        if missing:
            raise RegistryError(f"queue {name!r}: missing {', '.join(missing)}")
        if routed and entry["via"] not in VIAS:
            raise RegistryError(
                f"queue {name!r}: via must be one of {', '.join(VIAS)}, got {entry['via']!r}"
            )
        raw_input = entry.get("input")
        return cls(
            name=name,
            url=entry["url"],
            arn=str(entry.get("arn") or ""),
            kind=entry["kind"],
            describes=str(entry.get("describes") or ""),
            via=str(entry.get("via") or ""),
            target=str(entry.get("target") or ""),
            input=raw_input if isinstance(raw_input, str) else None,
        )


def parse_registry(registry: object, *, routed: bool = True) -> dict[str, Route]:
    """``{name: entry}`` (a JSON string or its object) as routes, or ``RegistryError``."""
    if isinstance(registry, str):
        try:
            registry = json.loads(registry)
        except json.JSONDecodeError as err:
            raise RegistryError(f"the queue registry is not JSON: {err}") from None
    if not isinstance(registry, Mapping) or not registry:
        raise RegistryError("the queue registry must be a non-empty object of queues")
    return {
        str(name): Route.parse(str(name), entry, routed=routed) for name, entry in registry.items()
    }


@dataclass(frozen=True)
class Message:
    """One message as SQS answered it (attributes and message attributes flattened)."""

    queue: str
    message_id: str
    receipt_handle: str
    body: str
    sent_at: datetime
    receive_count: int
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_sqs(cls, queue: str, raw: Mapping[str, Any]) -> Message:
        system = raw.get("Attributes") or {}
        custom = {
            name: str(value.get("StringValue", value.get("BinaryValue", "")))
            for name, value in (raw.get("MessageAttributes") or {}).items()
        }
        sent_ms = int(system.get("SentTimestamp") or 0)
        return cls(
            queue=queue,
            message_id=str(raw["MessageId"]),
            receipt_handle=str(raw["ReceiptHandle"]),
            body=str(raw.get("Body") or ""),
            sent_at=datetime.fromtimestamp(sent_ms / 1000, UTC),
            receive_count=int(system.get("ApproximateReceiveCount") or 0),
            attributes=custom,
        )


@dataclass(frozen=True)
class Classified:
    """What one message was for and why it is here."""

    message: Message
    route: Route
    # Where the message came from: aws.s3, aws.events, aws.transcribe, sns (a notice),
    # rekognition, lambda (an invocation payload of no known source), not-json or unknown.
    source: str
    # What it was about: an S3 key, an asset id, a job, or the event's detail type.
    subject: str
    error_class: str
    error_message: str
    # Who gave up on it: eventbridge, lambda, sns (from the attributes' shape).
    delivered_by: str
    event: Any = None

    @property
    def readable(self) -> bool:
        return self.source not in ("not-json", "unknown")

    @property
    def group(self) -> str:
        """Messages of one queue, subject and error are one line of the incident."""
        text = f"{self.route.name}\x1f{self.subject}\x1f{self.error_class}"
        return hashlib.sha256(text.encode(), usedforsecurity=False).hexdigest()[:16]


def peek(sqs: Any, route: Route, *, limit: int = PEEK_LIMIT) -> list[Message]:
    """Every message of the queue (up to ``limit``), then each released again at once.

    SQS has no peek: a received message is hidden for its visibility timeout. Each batch is
    hidden just long enough for this scan (so it is not counted twice) and released with
    ``ChangeMessageVisibility`` 0 when the scan is done, so nothing is consumed; a message
    the release misses shows again after ``PEEK_VISIBILITY_S``.
    """
    seen: dict[str, Message] = {}
    try:
        while len(seen) < limit:
            answer = sqs.receive_message(
                QueueUrl=route.url,
                MaxNumberOfMessages=min(RECEIVE_BATCH, limit - len(seen)),
                VisibilityTimeout=PEEK_VISIBILITY_S,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = answer.get("Messages") or []
            if not batch:
                break
            fresh = [m for m in batch if m["MessageId"] not in seen]
            for raw in fresh:
                seen[raw["MessageId"]] = Message.from_sqs(route.name, raw)
            if not fresh:
                break
    finally:
        release(sqs, route, list(seen.values()))
    return sorted(seen.values(), key=lambda m: (m.sent_at, m.message_id))


def release(sqs: Any, route: Route, messages: list[Message]) -> None:
    """Make ``messages`` visible again (what ``peek`` hid)."""
    for start in range(0, len(messages), RECEIVE_BATCH):
        chunk = messages[start : start + RECEIVE_BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=route.url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(chunk)
            ],
        )


def classify(message: Message, route: Route) -> Classified:
    """Read one message: its source, subject and error (never raises)."""
    delivered_by, error_class, error_message = _error_of(message.attributes)
    try:
        event = json.loads(message.body)
    except (json.JSONDecodeError, ValueError):
        return Classified(
            message,
            route,
            source="not-json",
            subject=bounded(message.body, 80) or "(empty body)",
            error_class=error_class,
            error_message=error_message,
            delivered_by=delivered_by,
        )
    source, subject = _source_and_subject(event)
    return Classified(
        message,
        route,
        source=source,
        subject=subject,
        error_class=error_class,
        error_message=error_message,
        delivered_by=delivered_by,
        event=event,
    )


def _error_of(attributes: Mapping[str, str]) -> tuple[str, str, str]:
    """(who gave up, error class, message) from the attributes each service sets."""
    if "ERROR_CODE" in attributes or "RULE_ARN" in attributes:
        message = attributes.get("ERROR_MESSAGE", "")
        return "eventbridge", _class_name(attributes.get("ERROR_CODE") or "unknown"), message
    if "ErrorMessage" in attributes or "RequestID" in attributes:
        message = attributes.get("ErrorMessage", "")
        found = _CLIENT_ERROR.search(message) or _NAMED_ERROR.search(message)
        name = found.group(1) if found else f"FunctionError{attributes.get('ErrorCode', '')}"
        return "lambda", _class_name(name), message
    return "sns", "Undeliverable", "SNS could not deliver the notice to its subscriber"


def _class_name(raw: str) -> str:
    return _UNSAFE_CLASS.sub("-", raw)[:MAX_ERROR_CLASS_LEN] or "unknown"


def s3_object(event: object) -> tuple[str, str, str | None] | None:
    """(bucket, key, version id) of an S3 event for EventBridge, its key decoded once (S3
    form-encodes it: "a b" arrives as "a+b"); None for any other event."""
    if not isinstance(event, Mapping) or event.get("source") != "aws.s3":
        return None
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return None
    obj = detail.get("object") or {}
    bucket, key = (detail.get("bucket") or {}).get("name"), obj.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None
    version = obj.get("version-id")
    return bucket, unquote_plus(key), version if isinstance(version, str) and version else None


def _source_and_subject(event: object) -> tuple[str, str]:  # noqa: PLR0911 - one per source
    if not isinstance(event, Mapping):
        return "unknown", f"a JSON {type(event).__name__}"
    if event.get("Type") == "Notification" and "TopicArn" in event:
        return "sns", _notice_subject(event.get("Message"))
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        sns = records[0].get("Sns")
        if isinstance(sns, Mapping):
            return "sns", _notice_subject(sns.get("Message"))
    source = event.get("source")
    detail = event.get("detail")
    if isinstance(source, str) and isinstance(detail, Mapping):
        located = s3_object(event)
        if located is not None:
            return source, f"s3://{located[0]}/{located[1]}"
        if source == "aws.transcribe":
            return source, f"transcription job {detail.get('TranscriptionJobName', '?')}"
        if source == "aws.states":
            return source, f"execution {detail.get('name', '?')} {detail.get('status', '')}".strip()
        if source == "aws.mediaconvert":
            asset = (detail.get("userMetadata") or {}).get("asset_id", "?")
            return source, f"MediaConvert job {detail.get('jobId', '?')} of asset {asset}"
        if source == "aws.macie":
            return source, f"Macie finding {detail.get('id', '?')}"
        if source in ("aws.events", "aws.scheduler"):
            return source, str(event.get("detail-type") or "Scheduled Event")
        return "unknown", f"{source}: {event.get('detail-type', '?')}"
    return "unknown", "JSON without a known source"


def _notice_subject(message: object) -> str:
    """A Rekognition Video completion notice names its job and tag (the asset)."""
    if isinstance(message, str):
        try:
            notice = json.loads(message)
        except json.JSONDecodeError:
            return bounded(message, 80)
        if isinstance(notice, Mapping) and "JobId" in notice:
            tag = notice.get("JobTag") or "?"
            return f"Rekognition {notice.get('API', 'job')} {notice['JobId']} ({tag})"
    return "an SNS notice"


@dataclass
class Group:
    """One line of the incident: messages of one queue with one subject and error."""

    id: str
    queue: str
    kind: str
    describes: str
    source: str
    subject: str
    error_class: str
    error_message: str
    delivered_by: str
    first_seen: datetime
    last_seen: datetime
    message_ids: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "kind": self.kind,
            "describes": self.describes,
            "source": self.source,
            "subject": self.subject,
            "error_class": self.error_class,
            "error_message": bounded(self.error_message, MAX_ERROR_MESSAGE_LEN),
            "delivered_by": self.delivered_by,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "count": len(self.message_ids),
            "message_ids": self.message_ids,
        }


def group(classified: Iterable[Classified]) -> list[Group]:
    groups: dict[str, Group] = {}
    for c in classified:
        found = groups.get(c.group)
        if found is None:
            groups[c.group] = Group(
                id=c.group,
                queue=c.route.name,
                kind=c.route.kind,
                describes=c.route.describes,
                source=c.source,
                subject=c.subject,
                error_class=c.error_class,
                error_message=c.error_message,
                delivered_by=c.delivered_by,
                first_seen=c.message.sent_at,
                last_seen=c.message.sent_at,
                message_ids=[c.message.message_id],
            )
            continue
        found.first_seen = min(found.first_seen, c.message.sent_at)
        found.last_seen = max(found.last_seen, c.message.sent_at)
        found.message_ids.append(c.message.message_id)
    return sorted(groups.values(), key=lambda g: (g.queue, g.first_seen, g.id))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def message_ids(summary: Mapping[str, Any] | None) -> set[str]:
    """Every message id an earlier summary listed (what is not new)."""
    if not summary:
        return set()
    return {
        str(mid)
        for g in summary.get("groups") or []
        if isinstance(g, Mapping)
        for mid in g.get("message_ids") or []
    }


def iter_lines(groups: Iterable[Group]) -> Iterator[str]:
    """The digest's lines for ``groups``: one per group, then the redrive command."""
    for g in groups:
        yield (
            f"- {g.queue} ({g.kind}): {len(g.message_ids)} x {g.error_class} for {g.subject}; "
            f"first {iso(g.first_seen)}, last {iso(g.last_seen)}"
        )
        if g.error_message:
            yield f"  {bounded(g.error_message, 200)}"
