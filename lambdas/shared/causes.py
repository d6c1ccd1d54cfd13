"""Step Functions errors read as one line a person understands: what failed, and why.

A ``{"Error", "Cause"}`` pair reaches a Catch from many places, each with its own Cause: a Lambda
function error (JSON with ``errorType``/``errorMessage`` and a stack trace), a MediaConvert
``.sync`` job (JSON describing the job, with ``errorCode``/``errorMessage``), a plain-text cause
(Rekognition callbacks, States.Runtime), or nothing at all (timeouts). Mark-failed and the run
summary both reduce it to one bounded line with ``root_cause``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from lambdas.shared.catalog import MAX_REASON_LEN

NO_CAUSE = {
    "States.Timeout": "the step did not finish within its timeout",
    "States.HeartbeatTimeout": "the step stopped sending heartbeats",
    "States.TaskFailed": "the task failed without a cause",
    "Sandbox.Timedout": "the Lambda function ran out of time",
}
MAX_ERROR_NAME_LEN = 120
_SPACE = re.compile(r"\s+")


def _first(mapping: Mapping[str, Any], *names: str) -> object:
    return next((mapping[n] for n in names if mapping.get(n) not in (None, "")), None)


def _job_reason(job: Mapping[str, Any]) -> str | None:
    """MediaConvert's job description, in either the API's or the event's casing."""
    message = _first(job, "ErrorMessage", "errorMessage")
    if message is None:
        return None
    job_id = _first(job, "Id", "id", "jobId", "JobId")
    code = _first(job, "ErrorCode", "errorCode")
    where = f"MediaConvert job {job_id}" if job_id else "MediaConvert job"
    return f"{where} failed" + (f" (error {code})" if code is not None else "") + f": {message}"


def error_name(error: object) -> str:
    """The ``Error`` of a Step Functions error, bounded (it becomes a Fail state's Error)."""
    name = error.get("Error") if isinstance(error, Mapping) else None
    text = _SPACE.sub(" ", str(name or "UnknownError")).strip()
    return text[:MAX_ERROR_NAME_LEN]


def root_cause(error: object, *, limit: int = MAX_REASON_LEN) -> str:
    """One readable line saying what failed, from a Step Functions ``{Error, Cause}``."""
    if not isinstance(error, Mapping):
        return "unknown error (no error details were passed on)"
    name = error_name(error)
    cause = error.get("Cause")
    text = cause.strip() if isinstance(cause, str) else ""
    reason: str | None = None
    parsed: Any = None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if isinstance(parsed, Mapping):
        nested = _first(parsed, "Job", "job", "detail")
        job = nested if isinstance(nested, Mapping) else parsed
        if "ErrorCode" in job or "errorCode" in job:
            # A MediaConvert job description (its camelCase wire form also has errorMessage).
            reason = _job_reason(job)
        if reason is None and ("errorMessage" in parsed or "errorType" in parsed):
            # A Lambda function error; errorType is the exception class the handler raised.
            error_type = parsed.get("errorType") or name
            message = parsed.get("errorMessage") or "no message"
            reason = f"{error_type}: {message}"
        if reason is None:
            message = _first(parsed, "message", "Message", "cause", "Cause")
            reason = f"{name}: {message if message is not None else json.dumps(parsed)}"
    elif text:
        reason = f"{name}: {text}"
    else:
        reason = f"{name}: {NO_CAUSE.get(name, 'no cause was given')}"
    reason = _SPACE.sub(" ", reason).strip()
    if len(reason) > limit:
        reason = reason[: limit - 1] + "…"
    return reason
