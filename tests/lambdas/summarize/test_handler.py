"""Summarize against moto's S3 and the Converse stand-in: what each kind of reply leaves in
labels.json, what is retried, what is paid for, and that nothing else of the document moves."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from lambdas.shared.errors import InvalidInput
from lambdas.summarize import handler as summarize_module
from lambdas.summarize.answer import MALFORMED, REFUSED, SUMMARIZED, TRUNCATED
from lambdas.summarize.handler import (
    LabelsChanged,
    Model,
    SummaryFailed,
    SummaryThrottled,
    cost_usd,
)
from lambdas.summarize.names import THROTTLED
from lambdas.summarize.prompt import PROMPT_TOKENS, PROMPT_VERSION
from lambdas.summarize.view import compact_view, dumps, estimate_tokens
from localworld.bedrock import BedrockRuntimeStandIn, answer_for
from tests.lambdas.summarize.conftest import MODEL_ID, SETTINGS, Lake, Run, schema_errors
from tests.lambdas.summarize.documents import (
    IMAGE_ASSET,
    IMAGE_KEY,
    VIDEO_ASSET,
    VIDEO_KEY,
    image_document,
    video_document,
)


def _without_editorial(document: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in document.items() if name != "editorial"}


def _sent_view(stand_in: BedrockRuntimeStandIn) -> dict[str, Any]:
    """The view the last call carried (the user message after its first line)."""
    request, _ = stand_in.calls[-1]
    text = request["messages"][0]["content"][0]["text"]
    view: dict[str, Any] = json.loads(text.split("\n", 1)[1])
    return view


@dataclass(frozen=True)
class FakeContext:
    function_name: str = "summarize-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:summarize-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"


def test_a_summary_is_stored_with_its_model_tokens_and_cost(
    lake: Lake, stand_in: BedrockRuntimeStandIn, handler_env: None, capsys: pytest.CaptureFixture
):
    # Given a clip's labels.json as finalize wrote it
    original = video_document(flagged=True)
    version = lake.put(VIDEO_KEY, original)
    # When the deployed handler runs on finalize's output (its own boto3 clients)
    result = summarize_module.handler(
        {"asset_id": VIDEO_ASSET, "status": "PROCESSED", "labels_key": VIDEO_KEY}, FakeContext()
    )
    # Then the document holds the model's summary and tags, what was billed and its price
    assert result == {"asset_id": VIDEO_ASSET, "status": SUMMARIZED}
    document = lake.get(VIDEO_KEY)
    editorial = document["editorial"]
    _, response = stand_in.calls[-1]
    expected = answer_for(_sent_view(stand_in))
    usage = response["usage"]
    assert editorial == {
        "status": SUMMARIZED,
        "summary": expected["summary"],
        "tags": expected["tags"],
        "model_id": MODEL_ID,
        "stop_reason": "end_turn",
        "input_tokens": usage["inputTokens"],
        "output_tokens": usage["outputTokens"],
        "cost_usd": cost_usd(usage["inputTokens"], usage["outputTokens"], SETTINGS),
        "prompt_version": PROMPT_VERSION,
        "view": {"estimated_tokens": editorial["view"]["estimated_tokens"], "truncated": []},
        "labels": {"version_id": version, "generated_at": original["generated_at"]},
        "generated_at": editorial["generated_at"],
    }
    assert "Moderation flagged weapons" in editorial["summary"]
    assert editorial["cost_usd"] > 0
    # And everything finalize wrote is still there, unchanged, and the document is schema-valid
    assert _without_editorial(document) == original
    assert schema_errors(document) == []
    # And the tokens' cost is a metric of its own, overall and per campaign (never finalize's)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    costs = [e for e in emitted if "SummaryCostUSD" in e]
    assert sorted(str(e.get("campaign")) for e in costs) == ["None", "travel"]
    for emf in costs:
        value = emf["SummaryCostUSD"]
        assert (value if isinstance(value, list) else [value]) == [editorial["cost_usd"]]
    assert not [e for e in emitted if "EstimatedCostUSD" in e]


def test_an_image_is_summarized_from_its_own_sections(lake: Lake, run: Run, stand_in):
    # Given an image's labels.json with text read in it
    original = image_document(text="HARBOUR MASTER")
    lake.put(IMAGE_KEY, original)
    # When the step runs
    run(IMAGE_ASSET, IMAGE_KEY)
    # Then the model saw the image's labels and text, and the image document stays valid
    view = _sent_view(stand_in)
    assert view["media_type"] == "image"
    assert [label["name"] for label in view["labels"]] == ["Harbor", "Boat", "Water"]
    assert view["text"] == "HARBOUR MASTER"
    document = lake.get(IMAGE_KEY)
    assert document["editorial"]["status"] == SUMMARIZED
    assert document["editorial"]["tags"] == ["harbor", "boat", "water"]
    assert _without_editorial(document) == original
    assert schema_errors(document) == []


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ServiceUnavailableException", "ModelNotReadyException"]
)
def test_a_throttle_is_the_retryable_error_and_writes_nothing(
    lake: Lake, run: Run, stand_in: BedrockRuntimeStandIn, code: str
):
    # Given Bedrock throttling (or not ready, or unavailable) for the next call
    lake.put(VIDEO_KEY, video_document())
    stand_in.throttle(1, code)
    # When the step runs, Then it raises the error the workflow retries, named as it retries it
    with pytest.raises(SummaryThrottled, match=code):
        run(VIDEO_ASSET, VIDEO_KEY)
    assert SummaryThrottled.__name__ == THROTTLED
    # And labels.json is untouched (no new version), and nothing was billed
    assert lake.versions(VIDEO_KEY) == 1
    assert stand_in.calls == []
    # And the retry that follows summarizes
    assert run(VIDEO_ASSET, VIDEO_KEY).record["status"] == SUMMARIZED


def test_a_request_bedrock_refuses_is_not_retried(lake: Lake, run: Run, stand_in):
    # Given a model the account may not use
    lake.put(VIDEO_KEY, video_document())
    stand_in.throttle(1, "AccessDeniedException")
    # Then the step fails with a non-retried error naming the cause, and writes nothing
    with pytest.raises(SummaryFailed, match="AccessDeniedException"):
        run(VIDEO_ASSET, VIDEO_KEY)
    assert lake.versions(VIDEO_KEY) == 1


@pytest.mark.parametrize("stop_reason", ["content_filtered", "guardrail_intervened"])
def test_a_refusal_is_recorded_with_its_cost_and_not_retried(
    lake: Lake, run: Run, stand_in: BedrockRuntimeStandIn, stop_reason: str
):
    # Given a model that declines to answer
    original = video_document()
    lake.put(VIDEO_KEY, original)
    stand_in.refuse(1, stop_reason)
    # When the step runs
    record = run(VIDEO_ASSET, VIDEO_KEY).record
    # Then the refusal is recorded with why, no summary, and the input tokens it cost
    assert record is not None
    assert record["status"] == REFUSED
    assert stop_reason in record["reason"]
    assert "summary" not in record and record["tags"] == []
    assert record["stop_reason"] == stop_reason
    assert record["input_tokens"] > 0 and record["cost_usd"] > 0
    document = lake.get(VIDEO_KEY)
    assert document["editorial"] == record
    assert _without_editorial(document) == original and schema_errors(document) == []
    # And the model was asked once
    assert len(stand_in.calls) == 1


def test_a_malformed_answer_is_recorded(lake: Lake, run: Run, stand_in: BedrockRuntimeStandIn):
    # Given a model that answers prose instead of the JSON asked for
    lake.put(VIDEO_KEY, video_document())
    stand_in.malform(1)
    # When the step runs, Then it records the answer as malformed, with the problem
    record = run(VIDEO_ASSET, VIDEO_KEY).record
    assert record is not None
    assert record["status"] == MALFORMED
    assert record["reason"].startswith("the answer is not the JSON asked for: ")
    assert "summary" not in record and record["stop_reason"] == "end_turn"
    assert schema_errors(lake.get(VIDEO_KEY)) == []
    assert len(stand_in.calls) == 1


@pytest.mark.parametrize(("max_answer_tokens", "kept"), [(30, True), (16, False)])
def test_an_answer_over_its_budget_is_truncated_and_recorded(
    lake: Lake, run: Run, stand_in: BedrockRuntimeStandIn, max_answer_tokens: int, kept: bool
):
    # Given an answer budget that cuts the answer in its tags (30) or in its summary (16)
    lake.put(VIDEO_KEY, video_document())
    settings = replace(SETTINGS, max_answer_tokens=max_answer_tokens)
    # When the step runs
    record = run(VIDEO_ASSET, VIDEO_KEY, settings).record
    # Then the model was asked for at most that many tokens and stopped there
    request, response = stand_in.calls[-1]
    assert request["inferenceConfig"]["maxTokens"] == max_answer_tokens
    assert response["stopReason"] == "max_tokens"
    # And the record says so, keeping what was complete: the summary and the tags before the cut
    full = answer_for(_sent_view(stand_in))
    assert record is not None
    assert record["status"] == TRUNCATED
    assert f"{max_answer_tokens} tokens" in record["reason"]
    assert record["output_tokens"] == max_answer_tokens
    if kept:
        assert record["summary"] == full["summary"]
        assert record["tags"] == full["tags"][: len(record["tags"])]
        assert len(record["tags"]) < len(full["tags"])
    else:
        assert "summary" not in record and record["tags"] == []
    assert schema_errors(lake.get(VIDEO_KEY)) == []


def test_a_view_over_budget_is_cut_before_it_is_sent(
    lake: Lake, run: Run, stand_in: BedrockRuntimeStandIn
):
    # Given a long clip: 200 shots and a transcript of 4,800 characters
    transcript = " ".join(["Next stop, Largo do Chiado, then Rossio."] * 120)
    document = video_document(shots=200, transcript=transcript)
    settings = replace(SETTINGS, token_budget=1500)
    room = settings.token_budget - settings.max_answer_tokens - PROMPT_TOKENS
    assert estimate_tokens(dumps(compact_view(document))) > 3 * room
    lake.put(VIDEO_KEY, document)
    # When the step runs
    record = run(VIDEO_ASSET, VIDEO_KEY, settings).record
    # Then what was sent fits the budget's room, cut where it is least useful first
    view = _sent_view(stand_in)
    assert estimate_tokens(dumps(view)) <= room
    assert view["truncated"][:2] == ["transcript", "shots"]
    assert len(view["shots"]) < 200 and view["shots"][0]["start_s"] == 0.0
    assert [label["name"] for label in view["labels"]][:3] == ["Tram", "Street", "Building"]
    # And the request the service counted stays within the budget, answer included
    _, response = stand_in.calls[-1]
    assert response["usage"]["inputTokens"] + settings.max_answer_tokens <= settings.token_budget
    # And the record says what was cut
    assert record is not None
    assert record["view"] == {
        "estimated_tokens": estimate_tokens(dumps(view)),
        "truncated": view["truncated"],
    }
    assert schema_errors(lake.get(VIDEO_KEY)) == []


def test_a_document_rewritten_meanwhile_is_kept(
    lake: Lake, run: Run, stand_in, monkeypatch: pytest.MonkeyPatch
):
    # Given a reprocess that rewrites labels.json while the model is answering
    lake.put(VIDEO_KEY, video_document())
    newer = {**video_document(), "generated_at": "2026-01-06T06:00:00Z"}
    answer = Model.converse

    def slow(self: Model, **kwargs: Any) -> dict[str, Any]:
        lake.put(VIDEO_KEY, newer)
        return answer(self, **kwargs)

    monkeypatch.setattr(Model, "converse", slow)
    # When the step writes, Then it refuses to replace the newer document
    with pytest.raises(LabelsChanged):
        run(VIDEO_ASSET, VIDEO_KEY)
    assert lake.get(VIDEO_KEY) == newer


def test_a_retried_invocation_does_not_ask_or_pay_twice(lake: Lake, run: Run, stand_in):
    # Given an asset summarized already (its invocation retried after it wrote)
    lake.put(VIDEO_KEY, video_document())
    run(VIDEO_ASSET, VIDEO_KEY)
    # When the step runs again on the same finalize output
    again = run(VIDEO_ASSET, VIDEO_KEY)
    # Then nothing is asked, paid or written
    assert again.record is None
    assert len(stand_in.calls) == 1 and lake.versions(VIDEO_KEY) == 2


@pytest.mark.parametrize(
    "event",
    [
        {"asset_id": VIDEO_ASSET},
        {"asset_id": VIDEO_ASSET, "labels_key": "video/x/clip.mp4"},
        {"asset_id": VIDEO_ASSET, "labels_key": "scratch/x_labels.json"},
    ],
)
def test_input_that_names_no_labels_document_is_invalid(event: dict[str, Any]):
    with pytest.raises(InvalidInput, match="labels_key"):
        summarize_module.SummarizeRequest.parse(event)
