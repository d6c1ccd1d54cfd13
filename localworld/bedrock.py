"""A Bedrock Runtime stand-in for moto: ``Converse``, answering from what it was sent.

moto's ``bedrock-runtime`` has ``InvokeModel`` only. ``install()`` adds ``Converse`` to moto's
``BedrockRuntimeResponse`` (so a handler's own ``boto3.client("bedrock-runtime")`` reaches it
inside ``mock_aws``, exactly as it would reach AWS), backed by ``BedrockRuntimeStandIn`` while
one is active (``activate``); otherwise the call is answered ``AccessDeniedException``.

What it does as the service does:

* Every request is checked against botocore's model of ``Converse`` (``ParamValidator``: names,
  types, required members, minimums; the ``modelId`` of the URL included), then against the
  conversation rules the service enforces: at least one message, the first from ``user``,
  roles alternating, the last from ``user``, no empty content. A violation is
  ``ValidationException`` (HTTP 400). A model id it does not serve is ``ValidationException``
  "The provided model identifier is invalid."; a ``maxTokens`` above the model's output limit
  is ``ValidationException`` too.
* Every answer has Converse's real shape (``output.message`` with the assistant's text block,
  ``stopReason``, ``usage`` with ``inputTokens``/``outputTokens``/``totalTokens``,
  ``metrics.latencyMs``) and goes through ``localworld.shapes`` before it leaves.
* An answer longer than ``maxTokens`` is cut there: ``stopReason`` ``max_tokens``,
  ``outputTokens`` = ``maxTokens``.
* Errors carry the service's code in ``x-amzn-ErrorType`` and its HTTP status (throttling 429,
  ``ServiceUnavailableException`` 503, ...), so boto3 raises the ``ClientError`` the service's
  would be; ``throttle(times, code)`` makes the next calls fail that way
  (``localworld.faults``).

What it does not do faithfully:

* No model runs. The answer is built from the view it was sent (the JSON after the user
  message's first line): a sentence naming the media type, duration and first labels, a note
  of moderation flags and of speech, and the label names, lowercased, as tags; the same request
  always gets the same answer. It answers the JSON shape the pipeline's prompt asks for because
  it was written for that prompt, not because it read it.
* Tokens are counted as a quarter of the characters (system text, every text block, the
  answer), not by the model's tokenizer; no cache tokens are reported.
* No content filter or guardrail looks at anything: a refusal (``content_filtered`` with no
  content, ``guardrail_intervened`` with the default blocked message), a malformed (prose)
  answer and throttling happen only when a test asks for them (``refuse``, ``malform``,
  ``throttle``). ``guardrailConfig``, ``toolConfig``, ``additionalModelRequestFields`` and
  non-text content blocks are accepted and ignored; per-model parameter rules (which models
  refuse ``temperature`` with ``topP``, context windows) are not checked.
* The served models and their output limits are a small table (``MODELS``) of this stand-in's;
  the messages of the conversation-rule errors are approximations of the service's.
* ``latencyMs`` is a formula (200 ms + 10 ms per output token); no simulated time passes.
* The local world does not start it: the world deploys the default templates, where summaries
  are off, and its IAM evaluation (``localworld.iam``) has no rule for Converse (authorized as
  ``bedrock:InvokeModel`` on the foundation model's ARN).
"""

# moto is imported where it is patched, not at import time; the patch is installed once per
# process (module-level flag).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.validate import ParamValidator

from localworld.faults import FaultQueue
from localworld.shapes import check_output

OPERATIONS = ("Converse",)
# Models served, with the most output tokens each accepts (this stand-in's table).
MODELS = {
    "amazon.nova-micro-v1:0": 5000,
    "amazon.nova-lite-v1:0": 5000,
    "amazon.nova-pro-v1:0": 5000,
    "anthropic.claude-3-haiku-20240307-v1:0": 4096,
}
CHARS_PER_TOKEN = 4
FAULT_STATUS = {
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "AccessDeniedException": 403,
}
FAULT_MESSAGES = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "ModelNotReadyException": "Model is not ready to serve inference requests. Try again later.",
    "InternalServerException": "The server encountered an internal error.",
    "ModelTimeoutException": "Model has timed out in processing the request.",
    "ModelErrorException": "The model encountered an error processing the request.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
}
REFUSALS = ("content_filtered", "guardrail_intervened")
GUARDRAIL_MESSAGE = "Sorry, the model cannot answer this question."
INVALID_MODEL = "The provided model identifier is invalid."
# What ``malform`` answers: prose, as a chatty model may write instead of the JSON asked for.
PROSE = "Sure! Here is a short description of the asset: it shows {what}."


class BedrockError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _view(text: str) -> dict[str, Any]:
    """The JSON the user message carries after its first line ({} when there is none)."""
    _, _, rest = text.partition("\n")
    try:
        found = json.loads(rest)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _listed(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def answer_for(view: dict[str, Any]) -> dict[str, Any]:
    """The deterministic answer to one view: a summary and tags, as the prompt asks."""
    labels = [str(label.get("name")) for label in view.get("labels") or [] if label.get("name")]
    kind = str(view.get("media_type") or "asset")
    duration = view.get("duration_s")
    what = f"{round(duration)}-second {kind}" if isinstance(duration, int | float) else kind
    article = "An" if what[:1].lower() in "aeiou" else "A"
    showing = f" showing {_listed([name.lower() for name in labels[:3]])}" if labels else ""
    sentences = [f"{article} {what}{showing}."]
    moderation = view.get("moderation") or {}
    if moderation.get("flagged"):
        flags = [str(flag.get("name")).lower() for flag in moderation.get("flags") or []]
        sentences.append(f"Moderation flagged {_listed(flags[:2]) or 'some content'}.")
    if view.get("transcript"):
        sentences.append(f"It has speech ({view.get('language') or 'unknown language'}).")
    if view.get("text"):
        sentences.append("It shows some text.")
    tags = list(dict.fromkeys(name.lower() for name in labels))[:5] or [kind]
    return {"summary": " ".join(sentences), "tags": tags}


class BedrockRuntimeStandIn:
    def __init__(self) -> None:
        self.faults = FaultQueue(
            operations=OPERATIONS,
            status=FAULT_STATUS,
            messages=FAULT_MESSAGES,
            error=BedrockError,
            service="Bedrock Runtime",
        )
        # The next answers' behaviour, one per call: "refuse:<stopReason>" or "malform".
        self._behaviours: list[str] = []
        # (request, response) of every call answered.
        self.calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._model = boto3.session.Session()._session.get_service_model("bedrock-runtime")

    # -- what a test asks for ------------------------------------------------------------------
    def throttle(self, times: int = 1, code: str = "ThrottlingException") -> None:
        """The next ``times`` calls fail with ``code`` (see FAULT_STATUS)."""
        self.faults.add("Converse", times, code)

    def refuse(self, times: int = 1, stop_reason: str = "content_filtered") -> None:
        if stop_reason not in REFUSALS:
            raise ValueError(f"{stop_reason} is not one of {REFUSALS}")
        with self._lock:
            self._behaviours += [f"refuse:{stop_reason}"] * times

    def malform(self, times: int = 1) -> None:
        """The next ``times`` answers are prose instead of JSON."""
        with self._lock:
            self._behaviours += ["malform"] * times

    def reset_faults(self) -> None:
        self.faults.clear()
        with self._lock:
            self._behaviours.clear()

    # -- the operation -------------------------------------------------------------------------
    def _validate(self, params: dict[str, Any]) -> None:
        shape = self._model.operation_model("Converse").input_shape
        if shape is None:  # pragma: no cover - botocore's model has one
            raise BedrockError("ValidationException", "Converse takes an input")
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise BedrockError("ValidationException", report.generate_report())
        if params["modelId"] not in MODELS:
            raise BedrockError("ValidationException", INVALID_MODEL)
        messages = params.get("messages") or []
        if not messages:
            raise BedrockError("ValidationException", "The conversation must have a message.")
        if messages[0]["role"] != "user":
            raise BedrockError(
                "ValidationException", "A conversation must start with a user message."
            )
        for before, after in itertools.pairwise(messages):
            if before["role"] == after["role"]:
                raise BedrockError(
                    "ValidationException",
                    "A conversation must alternate between user and assistant roles.",
                )
        if messages[-1]["role"] != "user":
            raise BedrockError(
                "ValidationException", "The conversation must end with a user message."
            )
        if any(not message["content"] for message in messages):
            raise BedrockError("ValidationException", "A message's content must not be empty.")
        limit = MODELS[params["modelId"]]
        wanted = (params.get("inferenceConfig") or {}).get("maxTokens")
        if wanted is not None and wanted > limit:
            raise BedrockError(
                "ValidationException",
                f"The maximum tokens you requested exceeds the model limit of {limit}.",
            )

    def converse(self, params: dict[str, Any]) -> dict[str, Any]:
        self._validate(params)
        self.faults.raise_next("Converse")
        with self._lock:
            behaviour = self._behaviours.pop(0) if self._behaviours else "answer"
        texts = [str(block["text"]) for block in params.get("system") or [] if "text" in block]
        user = [
            str(block["text"])
            for message in params["messages"]
            for block in message["content"]
            if "text" in block
        ]
        input_tokens = sum(count_tokens(text) for text in [*texts, *user])
        view = _view(user[-1] if user else "")
        stop = "end_turn"
        content: list[dict[str, Any]]
        if behaviour.startswith("refuse:"):
            stop = behaviour.split(":", 1)[1]
            content = [] if stop == "content_filtered" else [{"text": GUARDRAIL_MESSAGE}]
        else:
            answer = answer_for(view)
            text = (
                PROSE.format(what=answer["summary"].rstrip(".").lower())
                if behaviour == "malform"
                else json.dumps(answer, ensure_ascii=False)
            )
            limit = (params.get("inferenceConfig") or {}).get("maxTokens") or MODELS[
                params["modelId"]
            ]
            if count_tokens(text) > limit:
                text, stop = text[: limit * CHARS_PER_TOKEN], "max_tokens"
            content = [{"text": text}]
        output_tokens = sum(count_tokens(str(block.get("text", ""))) for block in content)
        response = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": 200 + 10 * output_tokens},
        }
        check_output("bedrock-runtime", "Converse", response)
        with self._lock:
            self.calls.append((params, response))
        return response


_STATE: dict[str, BedrockRuntimeStandIn | None] = {"service": None}
_INSTALLED = False


def activate(service: BedrockRuntimeStandIn | None) -> None:
    _STATE["service"] = service


def _answer(status: int, code: str | None, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    # moto reads the status from the headers (a bare tuple status is answered 200); botocore's
    # rest-json parser reads the error code from x-amzn-ErrorType.
    headers = {"Content-Type": "application/json", "status": str(status)}
    if code is not None:
        headers["x-amzn-ErrorType"] = code
    return status, headers, json.dumps(body)


def install() -> None:
    """Put ``Converse`` on moto's Bedrock Runtime responses (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.bedrockruntime.responses import BedrockRuntimeResponse

    def converse(self: Any) -> tuple[int, dict[str, str], str]:
        service = _STATE["service"]
        if service is None:
            return _answer(403, "AccessDeniedException", {"message": "no Bedrock stand-in"})
        try:
            params = {"modelId": self._get_param("modelId"), **json.loads(self.body or "{}")}
            return _answer(200, None, service.converse(params))
        except BedrockError as err:
            return _answer(err.status, err.code, {"message": err.message})

    handler: Callable[[Any], tuple[int, dict[str, str], str]] = converse
    BedrockRuntimeResponse.converse = handler  # type: ignore[attr-defined]
    _INSTALLED = True
