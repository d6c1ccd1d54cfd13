"""The probe handler: what the state machine gets for a good asset, and Unprocessable otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.probe import handler as probe_handler
from lambdas.probe.handler import Unprocessable, probe_asset
from lambdas.probe.settings import ProbeSettings
from lambdas.shared.errors import InvalidInput
from localworld.media import COMMONS_WEBM, PIXABAY_MP4_360, render, text_as_mp4
from tests.lambdas.conftest import client
from tests.lambdas.pipeline.conftest import FakeContext

SETTINGS = ProbeSettings(max_duration_s=3600)


def _asset(bucket: str, key: str, data: bytes | None) -> dict[str, Any]:
    if data is not None:
        client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    return {"bucket": bucket, "key": key, "asset_id": "commons-1", "campaign": "travel"}


def test_a_clip_comes_back_with_its_streams_and_both_decisions(raw_bucket):
    # Given an H.264 MP4 and a VP9 WebM in the raw zone
    mp4 = _asset(raw_bucket, "video/pixabay/travel/a.mp4", render(PIXABAY_MP4_360))
    webm = _asset(raw_bucket, "video/commons/travel/b.webm", render(COMMONS_WEBM))

    # When each is probed
    mp4_report = probe_asset(mp4, SETTINGS, client("s3"))
    webm_report = probe_asset(webm, SETTINGS, client("s3"))

    # Then both can be transcoded, and only the MP4 read by Rekognition as it is
    assert mp4_report["mediaconvert"]["ok"] and webm_report["mediaconvert"]["ok"]
    assert mp4_report["rekognition"]["ok"] is True
    assert webm_report["rekognition"]["ok"] is False
    assert "VP9" in webm_report["rekognition"]["reason"]
    [video] = mp4_report["video"]
    assert (video["codec"], video["width"], video["height"]) == ("h264", 640, 360)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (text_as_mp4(), "not a media file"),
        (None, "no longer exists"),
    ],
    ids=["a text file named .mp4", "deleted before the probe"],
)
def test_what_cannot_be_processed_is_refused_with_the_reason(raw_bucket, data, said):
    # Given an asset whose object is not media, or is gone
    asset = _asset(raw_bucket, "video/upload/uploads/x/bad.mp4", data)

    # When probed, Then Unprocessable says why (the state machine marks the asset FAILED)
    with pytest.raises(Unprocessable, match=said):
        probe_asset(asset, SETTINGS, client("s3"))


def test_a_clip_longer_than_the_limit_is_refused(raw_bucket):
    asset = _asset(raw_bucket, "video/pixabay/travel/a.mp4", render(PIXABAY_MP4_360))
    with pytest.raises(Unprocessable, match=r"longer than the limit"):
        probe_asset(asset, ProbeSettings(max_duration_s=1), client("s3"))


@pytest.mark.parametrize(
    "event",
    [{}, {"asset": "a.mp4"}, {"asset": {"bucket": "b", "key": "", "asset_id": "x"}}],
    ids=["no asset", "not an object", "empty key"],
)
def test_a_malformed_event_is_invalid_input_naming_the_field(event, monkeypatch):
    monkeypatch.setattr(probe_handler, "_dependencies", lambda: (SETTINGS, None))
    with pytest.raises(InvalidInput, match="asset"):
        probe_handler.handler(event, FakeContext())
