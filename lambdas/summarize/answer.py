"""What the model must answer, and what its reply becomes in labels.json.

The answer is a fixed JSON shape (``Answer``): a summary of bounded length and a bounded list of
short tags, checked by pydantic, so what labels.json holds is the same whichever model wrote it.
The bounds are the ones the prompt states (``prompt.py`` fills ``prompt.md`` with them), so the
model is asked for exactly what is accepted.

Every reply is recorded, never retried: a model that refused (``content_filtered``,
``guardrail_intervened``) or answered something else than that JSON would do the same again and
be paid again. A reply cut at its budget (``max_tokens``) keeps what it had complete:
pydantic-core's partial JSON parser drops the unfinished string or item, so a cut summary is
lost but the tags before the cut are not, and a cut in the tags keeps the whole summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import from_json

from lambdas.shared.errors import bounded
from lambdas.summarize.prompt import MAX_SUMMARY_CHARS, MAX_TAG_CHARS, MAX_TAGS, TAG_PATTERN

MAX_REASON_CHARS = 300

SUMMARIZED, TRUNCATED, REFUSED, MALFORMED = "SUMMARIZED", "TRUNCATED", "REFUSED", "MALFORMED"
STATUSES = (SUMMARIZED, TRUNCATED, REFUSED, MALFORMED)
# Converse's stop reasons (botocore's StopReason enum), by what they make of the reply.
COMPLETE = frozenset({"end_turn", "stop_sequence"})
CUT = frozenset({"max_tokens", "model_context_window_exceeded"})
REFUSALS = {
    "content_filtered": "the model's content filters stopped the answer",
    "guardrail_intervened": "a guardrail stopped the answer",
}

Summary = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SUMMARY_CHARS)
]
Tag = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=MAX_TAG_CHARS,
        pattern=TAG_PATTERN,
    ),
]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("tags", check_fields=False)
    @classmethod
    def _unique(cls, tags: list[str]) -> list[str]:
        """The same tag twice (``Tram``, ``tram``) is kept once: a small slip, not a bad
        answer."""
        return list(dict.fromkeys(tags))


class Answer(_Shape):
    summary: Summary
    tags: Annotated[list[Tag], Field(min_length=1, max_length=MAX_TAGS)]


class PartialAnswer(_Shape):
    """What a reply cut at its budget may still hold (each part complete, or absent)."""

    summary: Summary | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str | None = None
    summary: str | None = None
    tags: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """The record's part that says what became of the reply."""
        found: dict[str, Any] = {"status": self.status}
        if self.reason:
            found["reason"] = self.reason
        if self.summary:
            found["summary"] = self.summary
        found["tags"] = list(self.tags)
        return found


def reply_text(response: Mapping[str, Any]) -> str:
    """The reply's text blocks joined (reasoning and other blocks are not the answer), without
    the code fence some models put around JSON although asked not to."""
    message = (response.get("output") or {}).get("message") or {}
    text = "".join(
        str(block["text"]) for block in message.get("content") or [] if "text" in block
    ).strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.removesuffix("```").rstrip()
    return text


def _problem(err: ValueError) -> str:
    if isinstance(err, ValidationError):
        first = err.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        return f"{where}: {first['msg']}"
    return str(err)


def interpret(response: Mapping[str, Any], *, max_tokens: int) -> Outcome:
    """What a Converse reply is worth recording (pure)."""
    stop = str(response.get("stopReason"))
    if stop in REFUSALS:
        return Outcome(REFUSED, reason=f"{REFUSALS[stop]} ({stop})")
    text = reply_text(response)
    if stop in CUT:
        try:
            partial = PartialAnswer.model_validate(from_json(text or "{}", allow_partial=True))
        except ValueError as err:
            return Outcome(
                TRUNCATED,
                reason=bounded(
                    f"the answer reached its budget ({stop}, {max_tokens} tokens) and what was "
                    f"kept is not the JSON asked for: {_problem(err)}",
                    MAX_REASON_CHARS,
                ),
            )
        kept = "its summary was kept" if partial.summary else "before its summary was complete"
        return Outcome(
            TRUNCATED,
            reason=f"the answer reached its budget ({stop}, {max_tokens} tokens): {kept}",
            summary=partial.summary,
            tags=partial.tags,
        )
    if stop not in COMPLETE:
        return Outcome(MALFORMED, reason=f"the model stopped with {stop}, not with an answer")
    try:
        answer = Answer.model_validate_json(text)
    except ValidationError as err:
        return Outcome(
            MALFORMED,
            reason=bounded(
                f"the answer is not the JSON asked for: {_problem(err)}", MAX_REASON_CHARS
            ),
        )
    return Outcome(SUMMARIZED, summary=answer.summary, tags=answer.tags)
