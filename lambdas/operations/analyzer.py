"""The scheduled dead-letter analyzer: what is waiting in every dead-letter queue, and why.

Every run reads each queue without consuming it (``dead_letters.peek``), classifies and groups
the messages, and writes the incident summary to the processed bucket
(``operations/dead-letters/summary.json``; each summary that differs from the last also under
``history/``). When a message is new since the last summary, the alerts topic gets a readable
digest: which queue, what the messages were for, the error, first and last seen, and the
command that redrives them. Metrics per queue and error class (``DeadLetterMessages``) let the
dashboard show what kind of failure is piling up, not only that one is.

A queue that cannot be read is reported in the summary (``unreadable``) and the run goes on:
one broken queue must not hide what is in the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.operations.dead_letters import (
    HISTORY_PREFIX,
    SUMMARY_KEY,
    Group,
    Route,
    classify,
    group,
    iso,
    iter_lines,
    message_ids,
    parse_registry,
    peek,
)
from lambdas.operations.settings import AnalyzerSettings
from lambdas.shared.documents import read_json
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.metrics import add_metric_with_dimensions

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

SUBJECT_LIMIT = 100  # SNS subjects: at most 100 printable ASCII characters
DIGEST_LIMIT = 40  # lines of groups in one digest; the summary has them all


def analyze(
    routes: Mapping[str, Route],
    *,
    sqs: Any,
    s3: Any,
    sns: Any,
    bucket: str,
    topic_arn: str,
    deployment: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """One pass over every queue: the summary written, and the digest sent if anything is new."""
    previous = read_json(s3, bucket, SUMMARY_KEY)
    known = message_ids(previous)
    classified = []
    queues: dict[str, Any] = {}
    for name, route in routes.items():
        try:
            messages = peek(sqs, route)
        except (ClientError, BotoCoreError) as err:
            logger.exception("dead-letter queue unreadable", extra={"queue": name})
            queues[name] = {"kind": route.kind, "unreadable": f"{type(err).__name__}: {err}"}
            continue
        queues[name] = {"kind": route.kind, "describes": route.describes, "count": len(messages)}
        classified += [classify(m, route) for m in messages]
    groups = group(classified)
    new_ids = {c.message.message_id for c in classified} - known
    new_groups = [g for g in groups if new_ids.intersection(g.message_ids)]
    summary: dict[str, Any] = {
        "deployment": deployment,
        "analyzed_at": iso(now()),
        "total": len(classified),
        "new": len(new_ids),
        "queues": queues,
        "groups": [g.to_dict() for g in groups],
    }
    summary["digest_sent"] = bool(new_groups)
    if new_groups:
        # Sent before the summary is written: a digest that fails leaves the messages new,
        # and the next run tries again.
        sns.publish(
            TopicArn=topic_arn,
            Subject=f"Media pipeline ({deployment}): dead letters"[:SUBJECT_LIMIT],
            Message=digest(
                new_groups,
                new=len(new_ids),
                total=len(classified),
                bucket=bucket,
                deployment=deployment,
            ),
        )
    for g in groups:
        add_metric_with_dimensions(
            metrics,
            name="DeadLetterMessages",
            unit=MetricUnit.Count,
            value=len(g.message_ids),
            queue=g.queue,
            error_class=g.error_class,
        )
    metrics.add_metric(name="DeadLetterMessagesTotal", unit=MetricUnit.Count, value=len(classified))
    metrics.add_metric(name="DeadLetterMessagesNew", unit=MetricUnit.Count, value=len(new_ids))
    body = json.dumps(summary, indent=1).encode()
    s3.put_object(Bucket=bucket, Key=SUMMARY_KEY, Body=body, ContentType="application/json")
    if previous is None or _comparable(previous) != _comparable(summary):
        stamp = summary["analyzed_at"].replace(":", "")
        s3.put_object(
            Bucket=bucket,
            Key=f"{HISTORY_PREFIX}{stamp}.json",
            Body=body,
            ContentType="application/json",
        )
    logger.info(
        "dead letters analyzed",
        extra={"total": len(classified), "new": len(new_ids), "groups": len(groups)},
    )
    return summary


def digest(groups: list[Group], *, new: int, total: int, bucket: str, deployment: str) -> str:
    """The readable message for the alerts topic: the new groups, where the summary is, and
    the command that redrives each queue."""
    lines = list(iter_lines(groups[:DIGEST_LIMIT]))
    more = len(groups) - DIGEST_LIMIT
    queues = sorted({g.queue for g in groups})
    return "\n".join(
        [
            f"Media pipeline ({deployment}): {new} new message(s) in the dead-letter queues "
            f"({total} waiting in all).",
            "",
            *lines,
            *([f"... and {more} more group(s); see the summary."] if more > 0 else []),
            "",
            f"Summary: s3://{bucket}/{SUMMARY_KEY}",
            "Redrive after a dry run: "
            + "; ".join(f"make redrive ENV=<env> QUEUE={q}" for q in queues),
        ]
    )


def _comparable(summary: Mapping[str, Any]) -> Any:
    """A summary without its time stamps: what decides whether history gets a new entry."""
    return {k: v for k, v in summary.items() if k not in ("analyzed_at", "digest_sent", "new")}


def _build(settings: AnalyzerSettings) -> dict[str, Any]:
    return {
        "routes": parse_registry(settings.queues, routed=False),
        "sqs": boto3.client("sqs"),
        "s3": boto3.client("s3"),
        "sns": boto3.client("sns"),
    }


dependencies = Dependencies(AnalyzerSettings, _build)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, built = dependencies()
    summary = analyze(
        built["routes"],
        sqs=built["sqs"],
        s3=built["s3"],
        sns=built["sns"],
        bucket=settings.processed_bucket,
        topic_arn=settings.alerts_topic_arn,
        deployment=settings.deployment,
    )
    return {k: summary[k] for k in ("analyzed_at", "total", "new", "digest_sent")}
