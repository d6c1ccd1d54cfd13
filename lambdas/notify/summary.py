"""Step 4: publish a readable run summary to the alerts topic and return the counts.

Operators read this message in their mail client, so it is plain text that says what happened
first (counts, then each failure with its reason) and links the execution in the console. The
subject stays within SNS's limits (ASCII, one line, under 100 characters); every listed line is
one line of at most ``MAX_LINE_LEN`` characters.

Two events arrive here:

* the end of a run, ``{"execution", "campaign", "results", "ingest"}``: the counts are returned;
* a run that failed after Resolve, ``{"execution", "run": {..., "error": {"Error", "Cause"}}}``
  (the Catch of the Run state, or of Resolve itself for anything but bad input): the summary
  says FAILED with the reason, and the result carries a short ``error`` and a readable ``cause``
  (what failed and why, at most ``MAX_CAUSE_LEN`` characters) that the workflow's Fail state
  uses instead of the raw Lambda error with its stack trace. Publishing is best effort there:
  the run has failed already, and its Cause must still be readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.notify.settings import SummarySettings
from lambdas.shared.causes import error_name, root_cause
from lambdas.shared.entry import Dependencies, Powertools

tools = Powertools()
logger, metrics = tools.logger, tools.metrics

MAX_SUBJECT_LEN = 99
MAX_MESSAGE_BYTES = 240_000  # SNS allows 256 KiB per message, counted in UTF-8 bytes
MAX_LISTED = 50
MAX_LINE_LEN = 400
MAX_CAUSE_LEN = 500
_NOT_SUBJECT = re.compile(r"[^\x20-\x7e]+")
_EXECUTION_ARN = re.compile(r"^arn:aws:states:([a-z0-9-]+):\d{12}:execution:[^:]+:[^:]+$")


@dataclass
class RunSummary:
    execution: str
    campaign: str
    deployment: str
    processed: list[Mapping[str, Any]] = field(default_factory=list)
    failed: list[Mapping[str, Any]] = field(default_factory=list)
    ingest_skipped: dict[str, int] = field(default_factory=dict)
    ingest_errors: list[str] = field(default_factory=list)
    # Set when the run itself failed: the readable cause (what failed and why).
    run_failure: str | None = None

    @property
    def status(self) -> str:
        if self.run_failure is not None:
            return "FAILED"
        if not self.processed and not self.failed:
            return "EMPTY"
        return "PARTIAL" if self.failed else "SUCCEEDED"

    @property
    def not_recorded(self) -> list[Mapping[str, Any]]:
        """Failures mark-failed could not write to the catalog (the dashboard misses them)."""
        return [r for r in self.failed if r.get("recorded") is False]

    def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = {
            "processed": len(self.processed),
            "failed": len(self.failed),
            "status": self.status,
        }
        if self.not_recorded:
            counts["not_recorded"] = len(self.not_recorded)
        return counts


def _skipped(value: object) -> dict[str, int]:
    """Ingest reports skipped items as ``{reason: count}``; a list or a number is accepted too."""
    if isinstance(value, Mapping):
        counts: dict[str, int] = {}
        for reason, count in value.items():
            number = (
                count
                if isinstance(count, int) and not isinstance(count, bool)
                else (len(count) if isinstance(count, list) else 1)
            )
            counts[str(reason)] = number
        return counts
    if isinstance(value, list):
        counts = {}
        for item in value:
            reason = str(item.get("reason", "skipped")) if isinstance(item, Mapping) else "skipped"
            counts[reason] = counts.get(reason, 0) + 1
        return counts
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return {"skipped": value}
    return {}


def line(text: object, limit: int = MAX_LINE_LEN) -> str:
    """One line of at most ``limit`` characters (messages carry user-supplied values)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _error_line(item: object) -> str:
    """``source: error``, naming the source once (ingest's messages often lead with it)."""
    if isinstance(item, Mapping):
        who = str(item.get("source") or item.get("source_id") or "")
        what = str(item.get("message") or item.get("error") or item.get("reason") or item)
        text = what if not who or what.startswith(f"{who}:") else f"{who}: {what}"
        return line(text)
    return line(item)


def failure_cause(error: object) -> str:
    """The Cause of a failed run: what failed and why, in one bounded sentence."""
    prefix = "The run failed: "
    return prefix + root_cause(error, limit=MAX_CAUSE_LEN - len(prefix))


def summarize(event: object, *, deployment: str) -> RunSummary:
    """Sort per-asset results into processed and failed (pure)."""
    data: Mapping[str, Any] = event if isinstance(event, Mapping) else {}
    run = data.get("run")
    if isinstance(run, Mapping):
        # A failed run: the resolved input (when Resolve got that far) and the error.
        campaign = run.get("campaign")
        return RunSummary(
            execution=line(data.get("execution") or "unknown execution", 200),
            campaign=line(campaign, 60) if isinstance(campaign, str) else "unknown campaign",
            deployment=deployment,
            run_failure=failure_cause(run.get("error")),
        )
    summary = RunSummary(
        execution=line(data.get("execution") or "unknown execution", 200),
        campaign=line(data.get("campaign") or "unknown campaign", 60),
        deployment=deployment,
    )
    for item in data.get("results") or []:
        result = item if isinstance(item, Mapping) else {"asset_id": None, "raw": item}
        if result.get("status") == "PROCESSED":
            summary.processed.append(result)
        elif result.get("status") == "FAILED":
            summary.failed.append(result)
        else:
            # Neither outcome still counts as a failure: silence would hide a broken step.
            summary.failed.append(
                {
                    "asset_id": result.get("asset_id"),
                    "reason": f"unrecognized result: {str(result.get('raw', result))[:200]}",
                }
            )
    ingest = data.get("ingest")
    ingest = ingest if isinstance(ingest, Mapping) else {}
    summary.ingest_skipped = _skipped(ingest.get("skipped"))
    errors = ingest.get("errors") or []
    summary.ingest_errors = [
        _error_line(e) for e in (errors if isinstance(errors, list) else [errors])
    ]
    return summary


def subject(summary: RunSummary) -> str:
    if summary.status == "FAILED":
        text = f"[{summary.deployment}] {summary.campaign}: run failed"
    elif summary.status == "EMPTY":
        text = f"[{summary.deployment}] {summary.campaign}: no new assets"
    else:
        text = (
            f"[{summary.deployment}] {summary.campaign}: {len(summary.processed)} processed, "
            f"{len(summary.failed)} failed"
        )
    text = _NOT_SUBJECT.sub(" ", text).strip()
    return text if len(text) <= MAX_SUBJECT_LEN else text[: MAX_SUBJECT_LEN - 3] + "..."


def console_url(execution: str) -> str | None:
    match = _EXECUTION_ARN.match(execution)
    if not match:
        return None
    region = match.group(1)
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution}"
    )


def _listed(lines: list[str]) -> list[str]:
    shown = [f"- {line(text)}" for text in lines[:MAX_LISTED]]
    if len(lines) > MAX_LISTED:
        shown.append(f"- ... and {len(lines) - MAX_LISTED} more")
    return shown


def _failure_line(result: Mapping[str, Any]) -> str:
    asset_id = result.get("asset_id") or "unknown asset"
    text = f"{asset_id}: {result.get('reason') or 'no reason recorded'}"
    if result.get("recorded") is False:
        text += f" (not recorded in the catalog: {result.get('not_recorded') or 'reason unknown'})"
    return text


def message(summary: RunSummary) -> str:
    lines = [
        f"Media pipeline run: {summary.status}",
        "",
        f"Deployment: {summary.deployment}",
        f"Campaign:   {summary.campaign}",
        f"Execution:  {summary.execution}",
    ]
    url = console_url(summary.execution)
    if url:
        lines.append(f"Console:    {url}")
    if summary.run_failure is not None:
        lines += [
            "",
            f"Reason: {summary.run_failure}",
            "",
            "Assets the run had already committed stay INGESTED in the catalog; they were not "
            "transcoded. The execution's history shows each step.",
        ]
        return "\n".join(lines) + "\n"
    skipped_total = sum(summary.ingest_skipped.values())
    lines += [
        "",
        f"Processed: {len(summary.processed)}",
        f"Failed:    {len(summary.failed)}",
        f"Skipped at ingest: {skipped_total}"
        + (
            " ("
            + ", ".join(
                f"{reason}: {count}" for reason, count in sorted(summary.ingest_skipped.items())
            )
            + ")"
            if skipped_total
            else ""
        ),
        f"Ingest errors: {len(summary.ingest_errors)}",
    ]
    if summary.not_recorded:
        lines.append(f"Failures not recorded in the catalog: {len(summary.not_recorded)}")
    if summary.status == "EMPTY":
        lines += ["", "No new assets were found for this campaign; nothing was transcoded."]
    if summary.failed:
        lines += ["", "Failed assets:", *_listed([_failure_line(r) for r in summary.failed])]
    if summary.processed:
        processed = [
            f"{r.get('asset_id')}: {', '.join(r.get('top_labels') or []) or 'no labels'}"
            + (f" ({r['labels_key']})" if r.get("labels_key") else "")
            for r in summary.processed
        ]
        lines += ["", "Processed assets:", *_listed(processed)]
    if summary.ingest_errors:
        lines += ["", "Ingest errors:", *_listed(summary.ingest_errors)]
    text = "\n".join(lines) + "\n"
    data = text.encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        text = data[: MAX_MESSAGE_BYTES - 64].decode("utf-8", "ignore")
        text += "\n... (message shortened)\n"
    return text


class AlertsTopic:
    """The alerts topic; one publish per run."""

    def __init__(self, topic_arn: str, client: BaseClient | None = None) -> None:
        self.topic_arn = topic_arn
        self._sns: Any = client or boto3.client("sns")

    def publish(self, subject: str, message: str) -> str:
        response = self._sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)
        return str(response["MessageId"])


_dependencies = Dependencies(
    SummarySettings, lambda settings: AlertsTopic(settings.alerts_topic_arn)
)


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = summarize(event, deployment=_dependencies()[0].deployment)
    if summary.run_failure is not None:
        return _failed_run(event, summary)
    message_id = _dependencies()[1].publish(subject(summary), message(summary))
    counts = summary.counts()
    logger.info(
        "run summary published",
        extra={
            **counts,
            "execution": summary.execution,
            "campaign": summary.campaign,
            "message_id": message_id,
        },
    )
    metrics.add_metric(name="RunAssetsProcessed", unit=MetricUnit.Count, value=counts["processed"])
    metrics.add_metric(name="RunAssetsFailed", unit=MetricUnit.Count, value=counts["failed"])
    return counts


def _failed_run(event: Mapping[str, Any], summary: RunSummary) -> dict[str, Any]:
    """Publish the FAILED summary if possible; always return the Fail state's Error and Cause."""
    run = event.get("run")
    error = error_name(run.get("error") if isinstance(run, Mapping) else None)
    try:
        message_id: str | None = _dependencies()[1].publish(subject(summary), message(summary))
    except (ClientError, BotoCoreError):
        logger.exception("could not publish the failed run's summary")
        message_id = None
    logger.warning(
        "run failed",
        extra={"execution": summary.execution, "error": error, "cause": summary.run_failure},
    )
    return {
        **summary.counts(),
        "error": error,
        "cause": summary.run_failure,
        "published": message_id is not None,
    }
