"""``ApiSettings``: the jobs API's environment."""

from __future__ import annotations

import json

import pytest

from lambdas.api.settings import ApiSettings
from lambdas.shared.settings import SettingsError

REQUIRED = {
    "CATALOG_TABLE": "catalog",
    "RAW_BUCKET": "raw",
    "PROCESSED_BUCKET": "processed",
    "CONFIG_PARAMETER": "/p",
    "REPROCESS_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:R",
    "PROJECTS_BUCKET": "projects",
}


def test_defaults():
    settings = ApiSettings.from_env(REQUIRED)
    assert settings.multipart_threshold_bytes == 100 * 1024**2
    assert settings.part_size_bytes == 16 * 1024**2
    assert settings.max_upload_bytes == 10 * 1024**3
    assert settings.url_expiry_s == 3600
    assert settings.max_body_bytes == 16 * 1024
    videos, images = settings.allowed_content_types[:4], settings.allowed_content_types[4:]
    assert videos == ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska")
    assert set(images) == {
        "image/jpeg", "image/png", "image/webp", "image/avif", "image/heic", "image/tiff",
        "image/gif",
    }  # fmt: skip
    assert settings.admins == frozenset()
    assert settings.admin_group is None
    assert settings.default_campaign == "uploads"
    assert set(ApiSettings.variables()) == {
        "CATALOG_TABLE",
        "RAW_BUCKET",
        "PROCESSED_BUCKET",
        "CONFIG_PARAMETER",
        "REPROCESS_STATE_MACHINE_ARN",
        "PROJECTS_BUCKET",
        "MULTIPART_THRESHOLD_BYTES",
        "PART_SIZE_BYTES",
        "MAX_UPLOAD_BYTES",
        "URL_EXPIRY_S",
        "MAX_BODY_BYTES",
        "ALLOWED_CONTENT_TYPES",
        "ADMIN_PRINCIPALS",
        "ADMIN_GROUP",
        "DEFAULT_CAMPAIGN",
    }


def test_admin_principals_are_a_json_list_of_arns_and_round_trip():
    arns = ["arn:aws:iam::123456789012:role/Admin,Ops", "arn:aws:iam::123456789012:user/root-ops"]
    settings = ApiSettings.from_env(REQUIRED | {"ADMIN_PRINCIPALS": json.dumps(arns)})
    assert settings.admins == frozenset(arns)
    assert ApiSettings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ADMIN_PRINCIPALS": "arn:aws:iam::123456789012:user/a"},
            "ADMIN_PRINCIPALS must be a JSON list of IAM ARNs",
        ),
        (
            {"ADMIN_PRINCIPALS": '["alice"]'},
            "ADMIN_PRINCIPALS has values that are not IAM ARNs ['alice']",
        ),
        ({"PART_SIZE_BYTES": "1024"}, "PART_SIZE_BYTES must be "),
        ({"ALLOWED_CONTENT_TYPES": "video mp4"}, "ALLOWED_CONTENT_TYPES has invalid media types"),
        (
            {"DEFAULT_CAMPAIGN": "Uploads"},
            "DEFAULT_CAMPAIGN campaign 'Uploads' is not a valid name",
        ),
        (
            {"MAX_UPLOAD_BYTES": str(20 * 1024**3), "PART_SIZE_BYTES": str(5 * 1024**2)},
            "needs 4096 parts",
        ),
    ],
)
def test_malformed_settings_are_named(env, message):
    with pytest.raises(SettingsError, match=r"^api configuration: ") as caught:
        ApiSettings.from_env(REQUIRED | env)
    assert message in str(caught.value)
