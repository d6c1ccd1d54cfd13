"""The stand-ins' simulated time: MediaConvert by the pixels a job encodes, Rekognition by the
video's duration (the model is documented in ``localworld.mediaconvert`` and
``localworld.rekognition``).

The pure estimates are checked against hand-computed figures and the repository's own job
settings (``plan.build_plan``); the stand-ins are run on a ``SimClock`` whose time moves only when
a test moves it (its timers, pauses and scheduler are SimClock's own), so "not yet at the
modelled instant" and "done at it" are exact, never a race against the wall clock. Fixture clips
are tiny (64x36, 10 fps, 1-2 s).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.transcode.plan import PlanAsset, build_plan
from localworld.clock import SimClock
from localworld.media import ClipSpec, VideoInfo, probe, render, text_as_mp4
from localworld.mediaconvert import (
    CALIBRATION_MEGAPIXELS_PER_SOURCE_S,
    CALIBRATION_SECONDS_PER_SOURCE_S,
    MIN_JOB_S,
    SECONDS_PER_MEGAPIXEL,
    MediaConvertStandIn,
    encoded_pixels,
    estimate_job_seconds,
)
from localworld.rekognition import (
    REK_MIN_S,
    REK_SECONDS_PER_VIDEO_SECOND,
    UNSUPPORTED,
    RekognitionVideoStandIn,
    estimate_analysis_seconds,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "time-model"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/MediaConvertRole"
ONE_SECOND = ClipSpec("time-model-1s", "mp4", "h264", None, 64, 36, 10, (("city", 1.0),))
TWO_SECONDS = ClipSpec(
    "time-model-2s", "mp4", "h264", None, 64, 36, 10, (("city", 1.0), ("tram", 1.0))
)
WEBM = ClipSpec("time-model-webm", "webm", "vp9", None, 64, 36, 10, (("city", 1.0),))


class ManualClock(SimClock):
    """A SimClock whose time moves only when the test moves it; timers and pauses are real."""

    def __init__(self) -> None:
        # A fixed epoch: the job timestamps a test compares are the same on every run.
        super().__init__(scale=0.001, epoch=datetime(2026, 1, 1, tzinfo=UTC))
        self.at = 0.0

    def _seconds(self) -> float:
        return self.at

    def advance_to(self, target: float) -> None:
        with self._lock:
            self.at = max(self.at, target)
            self._lock.notify_all()  # the scheduler looks at its timers now


def info(
    width: int = 1920,
    height: int = 1080,
    fps: float = 30.0,
    duration_s: float = 10.0,
    *,
    rotation: int = 0,
    container: str = "mp4",
    video_codec: str = "h264",
) -> VideoInfo:
    return VideoInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        container=container,
        video_codec=video_codec,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        duration_s=duration_s,
        frame_count=round(fps * duration_s),
        bitrate=1_000_000,
        size_bytes=1_000_000,
        pix_fmt="yuv420p",
        audio=None,
    )


def full_plan(height: int = 1080, key: str = "video/a.mp4") -> dict[str, Any]:
    asset = PlanAsset(
        asset_id="a1", campaign="travel", bucket=BUCKET, key=key, height=height, duration_s=None
    )
    settings: dict[str, Any] = build_plan(asset, processed_bucket=BUCKET, deployment="test")[
        "settings"
    ]
    return settings


def only_groups(settings: dict[str, Any], *names: str) -> dict[str, Any]:
    """The same job with only the output groups of these CustomNames."""
    job = copy.deepcopy(settings)
    job["OutputGroups"] = [g for g in job["OutputGroups"] if g.get("CustomName") in names]
    assert [g["CustomName"] for g in job["OutputGroups"]] == list(names)
    return job


def h264(**extra: Any) -> dict[str, Any]:
    return {
        "Codec": "H_264",
        "H264Settings": {"FramerateControl": "INITIALIZE_FROM_SOURCE"} | extra,
    }


# -- MediaConvert: the pixel count and the estimate ----------------------------------------------
def test_the_pixels_of_a_job_are_counted_as_the_transcoder_would_size_its_outputs() -> None:
    # Given a 1280x720, 25 fps, 4 s source (100 frames) and a job with one output of each kind
    source = info(1280, 720, 25.0, 4.0)
    settings = {
        "Inputs": [{"VideoSelector": {}}],
        "OutputGroups": [
            {
                "OutputGroupSettings": {"Type": "FILE_GROUP_SETTINGS"},
                "Outputs": [
                    # height only: width from 16:9 -> 640x360, 100 frames
                    {"VideoDescription": {"Height": 360, "CodecSettings": h264()}},
                    # audio only: no pixels
                    {"AudioDescriptions": [{"CodecSettings": {"Codec": "AAC"}}]},
                    # captures every 2 s from t=0: floor(4 / 2) + 1 = 3 at 160x90
                    {
                        "VideoDescription": {
                            "Height": 90,
                            "CodecSettings": {
                                "Codec": "FRAME_CAPTURE",
                                "FrameCaptureSettings": {
                                    "FramerateNumerator": 1,
                                    "FramerateDenominator": 2,
                                    "MaxCaptures": 10,
                                },
                            },
                        }
                    },
                ],
            },
            {
                "OutputGroupSettings": {"Type": "HLS_GROUP_SETTINGS"},
                "Outputs": [
                    # both dimensions given: 320x180, 100 frames
                    {"VideoDescription": {"Width": 320, "Height": 180, "CodecSettings": h264()}},
                    # 240 high: 426.7 wide, rounded to even 426; a specified 10 fps: 40 frames
                    {
                        "VideoDescription": {
                            "Height": 240,
                            "CodecSettings": h264(
                                FramerateControl="SPECIFIED",
                                FramerateNumerator=10,
                                FramerateDenominator=1,
                            ),
                        }
                    },
                ],
            },
        ],
    }
    # Then the count is what the hand computes
    expected = 640 * 360 * 100 + 160 * 90 * 3 + 320 * 180 * 100 + 426 * 240 * 40
    assert expected == 32_932_800
    assert encoded_pixels(settings, source) == expected
    # and the job's time is the queue's minimum plus the pixels' cost
    assert estimate_job_seconds(settings, source) == pytest.approx(
        MIN_JOB_S + SECONDS_PER_MEGAPIXEL * 32.9328
    )


def test_the_full_job_for_a_1080p_source_takes_half_a_second_per_second_of_source() -> None:
    # Given the plan Lambda's full job for a 1920x1080, 30 fps source of 10 minutes
    settings = full_plan(1080)
    rungs = [
        o["VideoDescription"]["Height"]
        for o in only_groups(settings, "hls")["OutputGroups"][0]["Outputs"]
    ]
    assert rungs == [360, 480, 720, 1080]
    source = info(1920, 1080, 30.0, 600.0)
    # Then it encodes the calibration's megapixels per second of source (60 thumbnails in 600 s)
    assert math.isclose(CALIBRATION_MEGAPIXELS_PER_SOURCE_S, 136.73664)
    assert encoded_pixels(settings, source) / 600 / 1e6 == pytest.approx(
        CALIBRATION_MEGAPIXELS_PER_SOURCE_S, rel=1e-9
    )
    # and takes MIN_JOB_S plus 0.5 s per second of source
    assert CALIBRATION_SECONDS_PER_SOURCE_S == 0.5
    assert math.isclose(SECONDS_PER_MEGAPIXEL, 0.5 / 136.73664)
    assert estimate_job_seconds(settings, source) == pytest.approx(MIN_JOB_S + 300.0)


def test_a_proxy_only_job_is_shorter_than_the_full_ladder() -> None:
    settings = full_plan(1080)
    source = info(1920, 1080, 30.0, 120.0)
    proxy = estimate_job_seconds(only_groups(settings, "mp4-proxy"), source)
    renditions = estimate_job_seconds(only_groups(settings, "hls", "thumbnails"), source)
    full = estimate_job_seconds(settings, source)
    # The proxy (one 720p output) is about a fifth of the full job's pixels
    assert proxy == pytest.approx(MIN_JOB_S + SECONDS_PER_MEGAPIXEL * 1280 * 720 * 30 * 120 / 1e6)
    assert MIN_JOB_S < proxy < full
    assert (proxy - MIN_JOB_S) / (full - MIN_JOB_S) == pytest.approx(0.2022, abs=1e-3)
    # and split in two, the work is the same (each job pays its own MIN_JOB_S)
    assert proxy + renditions == pytest.approx(full + MIN_JOB_S)


@pytest.mark.parametrize("fps", [25.0, 30.0, 30000 / 1001])
def test_the_job_time_beyond_the_minimum_grows_linearly_with_the_source_duration(
    fps: float,
) -> None:
    settings = only_groups(full_plan(1080), "mp4-proxy", "hls")
    one = estimate_job_seconds(settings, info(fps=fps, duration_s=60.0)) - MIN_JOB_S
    two = estimate_job_seconds(settings, info(fps=fps, duration_s=120.0)) - MIN_JOB_S
    five = estimate_job_seconds(settings, info(fps=fps, duration_s=300.0)) - MIN_JOB_S
    assert one > 0
    # exactly, but for whole frames (60 s at 29.97 fps is 1798 frames, not 1798.2)
    assert two == pytest.approx(2 * one, rel=1e-3)
    assert five == pytest.approx(5 * one, rel=1e-3)


def test_frame_captures_are_counted_up_to_max_captures() -> None:
    # thumbnails.json: one 640x360 capture every 10 s from t=0, at most 60
    thumbnails = only_groups(full_plan(1080), "thumbnails")
    capture = 640 * 360
    assert encoded_pixels(thumbnails, info(duration_s=95.0)) == 10 * capture
    assert encoded_pixels(thumbnails, info(duration_s=100.0)) == 11 * capture
    assert encoded_pixels(thumbnails, info(duration_s=3600.0)) == 60 * capture  # not 361


def test_a_rotated_source_is_sized_upright_when_the_job_rotates_it() -> None:
    # A phone clip coded 1920x1080, shown portrait; the plan rotates MP4s (Rotate: AUTO)
    source = info(1920, 1080, 30.0, 1.0, rotation=90)
    proxy = only_groups(full_plan(1080), "mp4-proxy")
    # 720 high, 720 * 9/16 = 405 wide, rounded to even as the transcoder does: 404
    assert encoded_pixels(proxy, source) == 404 * 720 * 30
    proxy["Inputs"][0]["VideoSelector"]["Rotate"] = "DEGREE_0"
    assert encoded_pixels(proxy, source) == 1280 * 720 * 30


def test_an_input_that_cannot_be_read_takes_the_minimum() -> None:
    assert estimate_job_seconds(full_plan(1080), None) == MIN_JOB_S


# -- MediaConvert: the stand-in runs its jobs for the modelled time --------------------------------
@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def test_a_mediaconvert_job_completes_at_its_modelled_simulated_time(
    s3: Any, tmp_path: Any
) -> None:
    # Given a 1 s, 64x36, 10 fps source and the plan's full job for it
    clip = render(ONE_SECOND)
    s3.put_object(Bucket=BUCKET, Key="video/a.mp4", Body=clip)
    (tmp_path / "a.mp4").write_bytes(clip)
    source = probe(tmp_path / "a.mp4")
    settings = full_plan(36)
    settings["Inputs"][0]["FileInput"] = f"s3://{BUCKET}/video/a.mp4"
    clock = ManualClock()
    clock.advance_to(100.0)
    standin = MediaConvertStandIn(clock=clock, region=REGION, account=ACCOUNT)
    expected = estimate_job_seconds(settings, source)
    assert expected == pytest.approx(
        MIN_JOB_S + SECONDS_PER_MEGAPIXEL * encoded_pixels(settings, source) / 1e6
    )

    # When the job is created
    job = standin.create_job({"Role": ROLE, "Settings": settings})["Job"]
    (record,) = standin.job_records()
    assert record.job_id == job["Id"]
    assert record.input == f"s3://{BUCKET}/video/a.mp4"
    assert record.submitted_s == 100.0
    assert record.simulated_s == pytest.approx(expected)
    assert record.megapixels == pytest.approx(encoded_pixels(settings, source) / 1e6)
    assert record.output_groups == ("mp4-proxy", "hls", "thumbnails")
    assert record.finished_s is None

    # Then just before its modelled end it is still running
    clock.advance_to(100.0 + expected - 0.01)
    assert standin.get_job(job["Id"])["Job"]["Status"] == "PROGRESSING"
    assert standin.job_records()[0].finished_s is None
    # and from then on it is complete, finished at that instant (whenever the poll comes)
    clock.advance_to(100.0 + expected)
    finish = clock.now()
    clock.advance_to(100.0 + expected + 0.5)
    done = standin.get_job(job["Id"])["Job"]
    assert done["Status"] == "COMPLETE"
    assert done["Timing"]["FinishTime"] == _iso(finish)
    (record,) = standin.job_records()
    assert record.finished_s == pytest.approx(100.0 + expected)
    assert record.status == "COMPLETE"

    # and what it encoded is what the model counted (sizes and frames as the transcoder made them)
    video_pixels = 0
    for group in done["OutputGroupDetails"][:2]:  # the MP4 proxy and the HLS rungs
        for output in group["OutputDetails"]:
            frames = round(output["DurationInMs"] * source.fps / 1000)
            video_pixels += (
                output["VideoDetails"]["WidthInPx"] * output["VideoDetails"]["HeightInPx"] * frames
            )
    (thumbnail,) = done["OutputGroupDetails"][2]["OutputDetails"]
    written = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    jpegs = [c for c in written if c["Key"].endswith(".jpg")]
    assert len(jpegs) == 1  # 1 s at one capture every 10 s: the one at t=0
    size = thumbnail["VideoDetails"]["WidthInPx"] * thumbnail["VideoDetails"]["HeightInPx"]
    assert video_pixels + len(jpegs) * size == encoded_pixels(settings, source)
    clock.cancel_all()


def _uploaded(s3: Any) -> tuple[dict[str, Any], MediaConvertStandIn, ManualClock]:
    """The plan's full job for a 1 s clip in S3, a stand-in on a manual clock."""
    s3.put_object(Bucket=BUCKET, Key="video/a.mp4", Body=render(ONE_SECOND))
    settings = full_plan(36)
    settings["Inputs"][0]["FileInput"] = f"s3://{BUCKET}/video/a.mp4"
    clock = ManualClock()
    return settings, MediaConvertStandIn(clock=clock, region=REGION, account=ACCOUNT), clock


def _ended(standin: MediaConvertStandIn) -> bool:
    """Whether the job's timer has ended it (it runs on the clock's scheduler thread)."""
    for _ in range(2000):
        if standin.job_records()[0].finished_s is not None:
            return True
        time.sleep(0.005)
    return False


def test_a_mediaconvert_job_writes_its_outputs_at_its_end_even_if_nobody_polls(s3: Any) -> None:
    settings, standin, clock = _uploaded(s3)
    standin.create_job({"Role": ROLE, "Settings": settings})
    (record,) = standin.job_records()
    # Just before its end, nothing is written, however long we wait
    clock.advance_to(record.simulated_s - 0.01)
    time.sleep(0.05)
    assert standin.job_records()[0].finished_s is None
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="video/a/")
    # At its end the job writes everything, with no GetJob
    clock.advance_to(record.simulated_s)
    assert _ended(standin)
    (record,) = standin.job_records()
    assert record.status == "COMPLETE"
    assert record.finished_s == pytest.approx(record.simulated_s)
    written = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="video/a/")["Contents"]}
    assert {"video/a/mp4/proxy.mp4", "video/a/hls/index.m3u8"} <= written
    clock.cancel_all()


def test_settings_the_stand_in_cannot_run_raise_at_the_next_get_job(s3: Any) -> None:
    settings, standin, clock = _uploaded(s3)
    proxy = settings["OutputGroups"][0]["Outputs"][0]
    proxy["ContainerSettings"] = {"Container": "MOV"}  # valid for MediaConvert, not implemented
    job = standin.create_job({"Role": ROLE, "Settings": settings})["Job"]
    clock.advance_to(standin.job_records()[0].simulated_s)
    assert _ended(standin)
    with pytest.raises(NotImplementedError, match="MOV"):
        standin.get_job(job["Id"])
    clock.cancel_all()


def test_a_mediaconvert_job_whose_input_cannot_be_read_takes_the_minimum(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="video/text.mp4", Body=text_as_mp4())
    settings = full_plan(1080)
    settings["Inputs"][0]["FileInput"] = f"s3://{BUCKET}/video/text.mp4"
    clock = ManualClock()
    standin = MediaConvertStandIn(clock=clock, region=REGION, account=ACCOUNT)
    job = standin.create_job({"Role": ROLE, "Settings": settings})["Job"]
    (record,) = standin.job_records()
    assert record.simulated_s == MIN_JOB_S
    assert record.megapixels == 0.0
    clock.advance_to(MIN_JOB_S)
    assert standin.get_job(job["Id"])["Job"]["Status"] == "ERROR"
    assert standin.job_records()[0].finished_s == MIN_JOB_S
    clock.cancel_all()


# -- Rekognition: the duration model -------------------------------------------------------------
def test_an_analysis_takes_the_minimum_plus_the_video_duration() -> None:
    assert REK_MIN_S == 30.0
    assert REK_SECONDS_PER_VIDEO_SECOND == 1.0
    ten = estimate_analysis_seconds(info(duration_s=10.0))
    twenty = estimate_analysis_seconds(info(duration_s=20.0))
    hour = estimate_analysis_seconds(info(duration_s=3600.0))
    assert ten == 40.0
    assert twenty == 50.0
    assert hour == 3630.0
    # beyond the minimum, proportional to the duration
    assert twenty - REK_MIN_S == 2 * (ten - REK_MIN_S)


def test_a_video_rekognition_cannot_read_takes_the_minimum() -> None:
    assert estimate_analysis_seconds(None) == REK_MIN_S
    webm = info(duration_s=600.0, container="webm", video_codec="vp9")
    assert estimate_analysis_seconds(webm) == REK_MIN_S


class Rekognition:
    """A Rekognition Video stand-in on a manual clock, its videos in a dict."""

    def __init__(self, job_duration_s: float | None = None) -> None:
        self.clock = ManualClock()
        self.objects: dict[tuple[str, str], bytes] = {}
        self.standin = RekognitionVideoStandIn(
            clock=self.clock,
            read_object=lambda bucket, key: self.objects.get((bucket, key)),
            publish=lambda _topic, _message, _role: None,
            job_duration_s=job_duration_s,
        )

    def start(self, key: str, body: bytes, api: str = "StartSegmentDetection") -> str:
        self.objects[(BUCKET, key)] = body
        params: dict[str, Any] = {"Video": {"S3Object": {"Bucket": BUCKET, "Name": key}}}
        if api == "StartSegmentDetection":
            params["SegmentTypes"] = ["SHOT"]
        return str(self.standin.start(api, params)["JobId"])

    def status(self, job_id: str) -> str:
        return self.standin.jobs[job_id].status

    def wait_done(self, job_id: str) -> str:
        """The job's status once its timer has run (the scheduler thread runs it at once)."""
        for _ in range(2000):
            if self.status(job_id) != "IN_PROGRESS":
                break
            time.sleep(0.005)
        return self.status(job_id)


def test_a_longer_video_makes_a_proportionally_longer_analysis_job() -> None:
    rek = Rekognition()
    short = rek.start("video/one.mp4", render(ONE_SECOND))
    long_ = rek.start("video/two.mp4", render(TWO_SECONDS), api="StartLabelDetection")
    records = {r.job_id: r for r in rek.standin.job_records()}
    assert records[short].simulated_s == pytest.approx(REK_MIN_S + 1.0)
    assert records[long_].simulated_s == pytest.approx(REK_MIN_S + 2.0)
    assert records[long_].api == "StartLabelDetection"
    assert (records[short].bucket, records[short].key) == (BUCKET, "video/one.mp4")
    assert records[short].started_s == 0.0
    assert records[short].finished_s is None
    rek.clock.cancel_all()


def test_an_analysis_job_ends_at_its_modelled_simulated_time() -> None:
    rek = Rekognition()
    job_id = rek.start("video/two.mp4", render(TWO_SECONDS))
    (record,) = rek.standin.job_records()
    # Just before its modelled end, no timer fires, however long we wait
    rek.clock.advance_to(record.simulated_s - 0.01)
    time.sleep(0.05)
    assert rek.status(job_id) == "IN_PROGRESS"
    # At it, the job ends: it looked at the video, and the record says when
    rek.clock.advance_to(record.simulated_s)
    assert rek.wait_done(job_id) == "SUCCEEDED"
    (record,) = rek.standin.job_records()
    assert record.finished_s == pytest.approx(REK_MIN_S + 2.0)
    assert record.status == "SUCCEEDED"
    assert len(rek.standin.jobs[job_id].results) == 2  # the two shots
    rek.clock.cancel_all()


def test_a_fixed_analysis_duration_overrides_the_model() -> None:
    rek = Rekognition(job_duration_s=3600.0)
    job_id = rek.start("video/one.mp4", render(ONE_SECOND))
    assert rek.standin.job_records()[0].simulated_s == 3600.0
    rek.clock.advance_to(REK_MIN_S + 1.0)
    time.sleep(0.05)
    assert rek.status(job_id) == "IN_PROGRESS"
    rek.clock.advance_to(3600.0)
    assert rek.wait_done(job_id) == "SUCCEEDED"
    # and setting it back to None restores the model for the next job
    rek.standin.job_duration_s = None
    rek.start("video/two.mp4", render(TWO_SECONDS))
    assert rek.standin.job_records()[1].simulated_s == pytest.approx(REK_MIN_S + 2.0)
    rek.clock.cancel_all()


@pytest.mark.parametrize(
    ("name", "body"),
    [("text.mp4", text_as_mp4()), ("clip.webm", None)],
    ids=["not-media", "vp9-webm"],
)
def test_an_unreadable_video_takes_the_minimum_and_fails(name: str, body: bytes | None) -> None:
    rek = Rekognition()
    job_id = rek.start(f"video/{name}", body if body is not None else render(WEBM))
    assert rek.standin.job_records()[0].simulated_s == REK_MIN_S
    rek.clock.advance_to(REK_MIN_S)
    assert rek.wait_done(job_id) == "FAILED"
    assert rek.standin.jobs[job_id].status_message == UNSUPPORTED
    rek.clock.cancel_all()


def test_on_a_running_clock_an_analysis_ends_no_earlier_than_modelled() -> None:
    # The world's own kind of clock (time runs on; 1 ms per simulated second)
    clock = SimClock(0.001)
    objects = {(BUCKET, "video/one.mp4"): render(ONE_SECOND)}
    standin = RekognitionVideoStandIn(
        clock=clock,
        read_object=lambda bucket, key: objects.get((bucket, key)),
        publish=lambda _topic, _message, _role: None,
    )
    params = {
        "Video": {"S3Object": {"Bucket": BUCKET, "Name": "video/one.mp4"}},
        "SegmentTypes": ["SHOT"],
    }
    job_id = standin.start("StartSegmentDetection", params)["JobId"]
    # 31 simulated seconds are 31 ms here; wait on the clock, then for the timer's thread
    clock.wait_until(standin.job_records()[0].started_s + REK_MIN_S + 1.0)
    for _ in range(2000):
        if standin.jobs[job_id].status != "IN_PROGRESS":
            break
        time.sleep(0.005)
    (record,) = standin.job_records()
    assert record.status == "SUCCEEDED"
    assert record.finished_s is not None
    assert record.finished_s >= record.started_s + record.simulated_s
    assert math.isclose(record.simulated_s, REK_MIN_S + 1.0)
    clock.cancel_all()
