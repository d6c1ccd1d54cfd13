"""Resolve: the execution input becomes a validated run request, or fails with a clear cause."""

from __future__ import annotations

import json

import pytest

from lambdas.resolve.handler import handler, resolve_input
from lambdas.shared.campaign_config import CampaignConfig
from lambdas.shared.errors import InvalidInput
from tests.lambdas.pipeline.builders import CONFIG_PARAMETER, RAW_BUCKET


def test_empty_input_takes_active_campaign_and_batch_sizes(config_parameter, lambda_context):
    # Given the stored configuration (active campaign "travel", 2 videos per run)
    # When the weekly schedule starts a run with {}
    result = handler({}, lambda_context)
    # Then the run uses the stored values
    assert result == {"campaign": "travel", "batch_sizes": {"video": 2, "image": 0}}


def test_overrides_replace_stored_values(config_parameter, lambda_context):
    # Given an operator who starts a run from the console with overrides
    event = {"campaign": "tech", "batch_sizes": {"video": 5}}
    # When resolved
    result = handler(event, lambda_context)
    # Then the overrides win and nothing else is added
    assert result == {"campaign": "tech", "batch_sizes": {"video": 5, "image": 0}}


def test_upload_event_is_passed_on(config_parameter, lambda_context):
    # Given the upload trigger's input built from an EventBridge "Object Created" detail
    event = {"upload": {"bucket": RAW_BUCKET, "key": "uploads/edge-cam/clip 01.mp4", "size": 1024}}
    # When resolved
    result = handler(event, lambda_context)
    # Then the run is filed under the uploads campaign (not the active theme) with the upload
    assert result == {
        "campaign": "uploads",
        "batch_sizes": {"video": 2, "image": 0},
        "upload": {"bucket": RAW_BUCKET, "key": "uploads/edge-cam/clip 01.mp4", "size": 1024},
    }


def test_upload_with_a_named_campaign_keeps_it(config_parameter, lambda_context):
    event = {"campaign": "nature", "upload": {"bucket": RAW_BUCKET, "key": "uploads/a.mp4"}}
    assert handler(event, lambda_context)["campaign"] == "nature"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"campaign": "cooking"}, "campaign"),
        ({"campaign": 7}, "campaign"),
        ({"batch_sizes": {"video": 0}}, "batch_sizes.video"),
        ({"batch_sizes": {"video": 51}}, "batch_sizes.video"),
        ({"batch_sizes": {"video": "5"}}, "batch_sizes.video"),
        ({"batch_sizes": {"image": -1}}, "batch_sizes.image"),
        ({"batch_sizes": {"image": 51}}, "batch_sizes.image"),
        ({"batch_sizes": {"video": True}}, "batch_sizes.video"),
        ({"batch_sizes": {"audio": 2}}, "batch_sizes"),
        ({"batch_sizes": [5]}, "batch_sizes"),
        ({"campain": "tech"}, "campain"),
        ({"upload": "uploads/x.mp4"}, "upload"),
        ({"upload": {"bucket": RAW_BUCKET}}, "upload.key"),
        ({"upload": {"bucket": "someone-elses", "key": "uploads/x.mp4"}}, "upload.bucket"),
        ({"upload": {"bucket": RAW_BUCKET, "key": "video/x.mp4"}}, "upload.key"),
        ({"upload": {"bucket": RAW_BUCKET, "key": "uploads/dir/"}}, "upload.key"),
        ({"upload": {"bucket": RAW_BUCKET, "key": "uploads/../video/x.mp4"}}, "upload.key"),
        ({"upload": {"bucket": RAW_BUCKET, "key": "uploads/x.mp4", "size": -1}}, "upload.size"),
        ({"upload": {"bucket": RAW_BUCKET, "key": "uploads/x.mp4", "acl": "x"}}, "acl"),
        (["travel"], "execution input"),
    ],
)
def test_bad_input_fails_with_the_field_named(event, field):
    # Given the stored configuration and input with one bad value
    config = CampaignConfig("travel", ("travel", "tech", "nature"), {"video": 2})
    # When resolved
    with pytest.raises(InvalidInput) as raised:
        resolve_input(event, config, raw_bucket=RAW_BUCKET)
    # Then the error (Step Functions' Error=InvalidInput) names the field in its message (Cause)
    assert field in str(raised.value)


def test_handler_rejects_bad_input_with_invalid_input(config_parameter, lambda_context):
    # Given a console run with an unknown campaign
    # When the handler resolves it
    with pytest.raises(InvalidInput) as raised:
        handler({"campaign": "cooking", "batch_sizes": {"video": 5}}, lambda_context)
    # Then the class name is the state machine's Error and the message its Cause
    assert type(raised.value).__name__ == "InvalidInput"
    assert str(raised.value) == "campaign: 'cooking' is not one of ['travel', 'tech', 'nature']"


def test_broken_configuration_parameter_is_reported(config_parameter, lambda_context):
    # Given a hand-edited parameter that lost its active campaign
    config_parameter.put_parameter(
        Name=CONFIG_PARAMETER,
        Overwrite=True,
        Value=json.dumps(
            {"active_campaign": "gone", "campaigns": ["travel"], "batch_sizes": {"video": 2}}
        ),
    )
    # When a scheduled run resolves {}
    with pytest.raises(InvalidInput) as raised:
        handler({}, lambda_context)
    # Then the failure says which stored field is wrong
    assert "active_campaign" in str(raised.value)


@pytest.mark.parametrize(
    ("event", "shape"),
    [
        (["travel"], "an array"),
        ("travel", "a string ('travel')"),
        (7, "a number (7)"),
        (2.5, "a number (2.5)"),
        (True, "true"),
        ("x" * 5000, "a string ('xxxxx"),
    ],
    ids=["list", "string", "int", "float", "bool", "long-string"],
)
def test_a_non_object_input_is_invalid_input_naming_its_shape(
    config_parameter, lambda_context, event, shape
):
    # Given an execution started with JSON that is not an object (the console accepts any JSON)
    # When the handler, with its Powertools decorators, resolves it
    with pytest.raises(InvalidInput) as raised:
        handler(event, lambda_context)
    # Then the Cause says what was expected and what came, in one short line
    message = str(raised.value)
    assert message.startswith(
        'execution input must be a JSON object such as {} or {"campaign": "travel"}, got '
    )
    assert shape in message
    assert len(message) <= 200


def test_null_input_means_the_stored_configuration(config_parameter, lambda_context):
    # Given `null` as the execution input (what "no input" serializes to in some clients)
    # Then it is read as {} (documented), not as an error
    assert handler(None, lambda_context) == {
        "campaign": "travel",
        "batch_sizes": {"video": 2, "image": 0},
    }


@pytest.mark.parametrize(
    "event",
    [
        {"campaign": "c" * 5000},
        {"upload": {"bucket": RAW_BUCKET, "key": "video/" + "k" * 5000}},
        {"campaign": "travel", "z" * 3000: 1},
        {"batch_sizes": {"video": list(range(2000))}},
    ],
    ids=["long-campaign", "long-key", "long-field-name", "huge-value"],
)
def test_user_values_in_the_cause_are_shortened(config_parameter, lambda_context, event):
    with pytest.raises(InvalidInput) as raised:
        handler(event, lambda_context)
    assert len(str(raised.value)) <= 300, str(raised.value)
