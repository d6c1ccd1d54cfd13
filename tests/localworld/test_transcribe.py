"""The Transcribe stand-in: real request, answer, file and event shapes, timed to the clip's audio.

moto runs in-process with the stand-in active (no world: a world costs seconds); a role's calls
go through the world's permission evaluator where a test needs them. The clips are the speech-
like fixtures of ``localworld.media`` (4 s, 240p): tone bursts tagged Portuguese or English,
digital silence, and no audio track at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localworld import iam, media, transcribe
from localworld.clock import SimClock
from localworld.deploy import Deployer
from localworld.media import NO_AUDIO_MP4, SILENT_MP4, SPEECH_EN_MP4, SPEECH_PT_MP4
from localworld.template import Resolver

ACCOUNT = "123456789012"
REGION = "eu-west-1"
IN, OUT = "media-processed", "media-transcripts"
# One attempt: botocore's ``max_attempts`` counts retries, ``total_max_attempts`` every attempt.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
# The developer guide's example rule: a job that ended, either way.
JOB_RULE: dict[str, Any] = {
    "source": ["aws.transcribe"],
    "detail-type": ["Transcribe Job State Change"],
    "detail": {"TranscriptionJobStatus": ["COMPLETED", "FAILED"]},
}


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    """The four transcription fixtures, rendered once (or read from the fixture cache)."""
    paths = media.render_all(media.TRANSCRIPTION_FIXTURES)
    return {name: path.read_bytes() for name, path in paths.items()}


@dataclass
class Cloud:
    """moto with the stand-in active, two buckets and the fixtures uploaded as proxies."""

    standin: transcribe.TranscribeStandIn
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def s3(self) -> Any:
        return boto3.client("s3", region_name=REGION)

    def client(self) -> Any:
        return boto3.client("transcribe", region_name=REGION, config=NO_RETRY)

    def start(self, name: str, clip: str = SPEECH_PT_MP4.name, **params: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TranscriptionJobName": name,
            "Media": {"MediaFileUri": f"s3://{IN}/video/{clip}.mp4"},
            "OutputBucketName": OUT,
            "OutputKey": f"video/{clip}/speech/",
            "Subtitles": {"Formats": ["vtt", "srt"], "OutputStartIndex": 1},
        }
        request.update(params)
        if "LanguageCode" not in params and "IdentifyLanguage" not in params:
            request["LanguageCode"] = "pt-PT"
        request = {k: v for k, v in request.items() if v is not None}
        return dict(self.client().start_transcription_job(**request)["TranscriptionJob"])

    def wait(self, name: str, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.client().get_transcription_job(TranscriptionJobName=name)
            job = job["TranscriptionJob"]
            if job["TranscriptionJobStatus"] in ("COMPLETED", "FAILED"):
                return dict(job)
            assert time.monotonic() < deadline, f"{name} still {job['TranscriptionJobStatus']}"
            time.sleep(0.005)

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=OUT, Key=key)["Body"].read())

    def transcript(self, job: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.read(key_of(job["Transcript"]["TranscriptFileUri"])))


def key_of(uri: str) -> str:
    """The key of a path-style S3 URI in the output bucket."""
    prefix = f"https://s3.{REGION}.amazonaws.com/{OUT}/"
    assert uri.startswith(prefix), uri
    return uri.removeprefix(prefix)


@pytest.fixture(scope="module")
def moto(clips: dict[str, bytes]) -> Iterator[None]:
    """moto for the whole module (starting it costs a good part of a second): the media bucket
    with the fixtures uploaded as proxies, and an output bucket emptied after each test."""
    from moto import mock_aws

    iam.install()
    transcribe.install()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (IN, OUT):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        for name, body in clips.items():
            s3.put_object(Bucket=IN, Key=f"video/{name}.mp4", Body=body)
        yield


def make_cloud(scale: float) -> Iterator[Cloud]:
    """A fresh stand-in (no jobs, no faults) on its own clock, active for one test."""
    clock = SimClock(scale)
    cloud = Cloud(transcribe.TranscribeStandIn(clock=clock, account=ACCOUNT, region=REGION))
    cloud.standin.emit = cloud.events.append
    transcribe.activate(cloud.standin)
    try:
        yield cloud
    finally:
        transcribe.activate(None)
        clock.cancel_all()
        s3 = cloud.s3
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=OUT):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=OUT, Key=item["Key"])


@pytest.fixture
def cloud(moto: None) -> Iterator[Cloud]:
    """A fast clock: 16 simulated seconds of a job pass in 8 real milliseconds."""
    yield from make_cloud(0.0005)


@pytest.fixture
def slow_cloud(moto: None) -> Iterator[Cloud]:
    """A clock slow enough to look at a job while it runs (16 s in 0.32 s)."""
    yield from make_cloud(0.02)


def bad_request(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(**params)
    assert err.value.response["Error"]["Code"] == "BadRequestException", err.value.response
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(err.value.response["Error"]["Message"])


# -- requests --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field_named"),
    [
        ({"LanguageCode": "en-US", "IdentifyLanguage": True}, "LanguageCode"),
        ({"LanguageCode": None}, "LanguageCode"),
        ({"IdentifyLanguage": True, "LanguageOptions": ["en-US"]}, "LanguageOptions"),
        ({"IdentifyLanguage": True, "LanguageOptions": ["en-US", "xx-YY"]}, "languageOptions.2"),
        ({"LanguageOptions": ["en-US", "pt-PT"]}, "LanguageOptions"),
        ({"LanguageCode": "klingon"}, "'languageCode'"),
        ({"Media": {"MediaFileUri": "ftp://media-processed/a.mp4"}}, "'media.mediaFileUri'"),
        ({"Media": {"MediaFileUri": "media-processed/a.mp4"}}, "'media.mediaFileUri'"),
        ({"TranscriptionJobName": "has spaces"}, "'transcriptionJobName'"),
        (
            {"Subtitles": {"Formats": ["vtt"], "OutputStartIndex": 2}},
            "'subtitles.outputStartIndex'",
        ),
        ({"Subtitles": {"Formats": ["ass"]}}, "'subtitles.formats.1.member'"),
        ({"OutputBucketName": None}, "OutputKey"),
        ({"OutputBucketName": "Not_A_Bucket"}, "'outputBucketName'"),
        ({"MediaFormat": "avi"}, "'mediaFormat'"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(cloud: Cloud, change: dict, field_named: str):
    # Given a request that the model or the API reference forbids
    if change.get("LanguageCode", "") is None:
        change = {"LanguageCode": None, "IdentifyLanguage": None}
    request = {
        "TranscriptionJobName": "job",
        "Media": {"MediaFileUri": f"s3://{IN}/video/{SPEECH_PT_MP4.name}.mp4"},
        "OutputBucketName": OUT,
        "OutputKey": "video/out/",
        "LanguageCode": "pt-PT",
    }
    if "IdentifyLanguage" in change and "LanguageCode" not in change:
        del request["LanguageCode"]
    request.update(change)
    request = {k: v for k, v in request.items() if v is not None}
    # When it is sent, Then Transcribe answers BadRequestException naming the field, starts nothing
    message = bad_request(cloud.client().start_transcription_job, **request)
    assert field_named in message
    assert cloud.standin.job_records() == []


def test_model_violations_botocore_would_catch_are_refused_in_its_words(cloud: Cloud):
    # Given requests only another SDK would send (botocore validates these before sending)
    with pytest.raises(transcribe.TranscribeError) as missing:
        cloud.standin.handle("StartTranscriptionJob", {"TranscriptionJobName": "job"})
    with pytest.raises(transcribe.TranscribeError) as unknown:
        cloud.standin.handle("GetTranscriptionJob", {"TranscriptionJobName": "j", "Foo": 1})
    # Then they are BadRequestExceptions with botocore's own report
    assert missing.value.code == unknown.value.code == "BadRequestException"
    assert 'Missing required parameter in input: "Media"' in missing.value.message
    assert 'Unknown parameter in input: "Foo"' in unknown.value.message


def test_media_that_is_not_an_object_of_this_world_is_refused(cloud: Cloud):
    client = cloud.client()
    for uri in (
        f"s3://{IN}/video/missing.mp4",
        "s3://no-such-bucket/video/a.mp4",
        "https://example.com/video/a.mp4",
    ):
        message = bad_request(
            client.start_transcription_job,
            TranscriptionJobName="job",
            Media={"MediaFileUri": uri},
            LanguageCode="en-US",
        )
        assert message == transcribe.NO_OBJECT
    # A path-style https URI of S3 in this region names the object, as s3:// does
    https = f"https://s3.{REGION}.amazonaws.com/{IN}/video/{SPEECH_EN_MP4.name}.mp4"
    started = client.start_transcription_job(
        TranscriptionJobName="https-job", Media={"MediaFileUri": https}, LanguageCode="en-US"
    )
    assert started["TranscriptionJob"]["Media"] == {"MediaFileUri": https}


def test_a_duplicate_name_is_a_conflict(cloud: Cloud):
    # Given a job
    cloud.start("clip-1")
    # When another starts under its name (a retried start)
    with pytest.raises(ClientError) as err:
        cloud.start("clip-1", clip=SPEECH_EN_MP4.name, LanguageCode="en-US")
    # Then Transcribe refuses it as a conflict (409 in the model), and one job exists
    assert err.value.response["Error"] == {
        "Code": "ConflictException",
        "Message": "The requested job name already exists. Use a different job name.",
    }
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert [r.name for r in cloud.standin.job_records()] == ["clip-1"]


# -- the job's course ------------------------------------------------------------------------------
def test_a_job_is_in_progress_then_completed_on_the_simulated_clock(slow_cloud: Cloud):
    cloud = slow_cloud
    # Given a job on a 4 s clip
    started = cloud.start("clip-1")
    # Then it starts IN_PROGRESS, with no transcript yet
    assert started["TranscriptionJobStatus"] == "IN_PROGRESS"
    assert "Transcript" not in started and "CompletionTime" not in started
    assert started["Subtitles"] == {"Formats": ["vtt", "srt"], "OutputStartIndex": 1}
    running = cloud.client().get_transcription_job(TranscriptionJobName="clip-1")
    assert running["TranscriptionJob"]["TranscriptionJobStatus"] == "IN_PROGRESS"
    # When the modelled time has passed (15 s + 0.25 s per second of media)
    done = cloud.wait("clip-1")
    (record,) = cloud.standin.job_records()
    assert record.simulated_s == pytest.approx(transcribe.TRANSCRIBE_MIN_S + 0.25 * 4.0)
    assert record.finished_s is not None
    assert record.finished_s - record.started_s >= record.simulated_s
    # Then it is COMPLETED, with what the file is and where the output went
    elapsed = (done["CompletionTime"] - done["StartTime"]).total_seconds()
    assert elapsed == pytest.approx(record.finished_s - record.started_s, abs=0.01)
    assert done["TranscriptionJobStatus"] == "COMPLETED"
    assert (done["LanguageCode"], done["MediaFormat"], done["MediaSampleRateHertz"]) == (
        "pt-PT",
        "mp4",
        48000,
    )
    assert done["Transcript"]["TranscriptFileUri"] == (
        f"https://s3.{REGION}.amazonaws.com/{OUT}/video/{SPEECH_PT_MP4.name}/speech/clip-1.json"
    )
    assert [key_of(u) for u in done["Subtitles"]["SubtitleFileUris"]] == [
        f"video/{SPEECH_PT_MP4.name}/speech/clip-1.vtt",
        f"video/{SPEECH_PT_MP4.name}/speech/clip-1.srt",
    ]
    assert done["Settings"] == {"ChannelIdentification": False, "ShowAlternatives": False}


def measured_voiced_intervals(body: bytes) -> list[tuple[float, float]]:
    """Independently of the stand-in: decode the first audio stream at its own rate, average
    the channels, and keep the runs of 10 ms windows whose RMS is above -40 dBFS."""
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        blocks = [frame.to_ndarray() for frame in container.decode(stream)]
    mono = np.concatenate([b.mean(axis=0) if b.ndim == 2 else b for b in blocks], axis=-1)
    window = rate // 100
    count = len(mono) // window
    rms = np.sqrt((mono[: count * window].reshape(count, window) ** 2).mean(axis=1))
    loud = np.concatenate([[False], rms > 0.01, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(loud))
    return [
        (a * window / rate, b * window / rate) for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


def test_the_words_fall_inside_the_voiced_intervals_at_a_steady_rate(cloud: Cloud, clips):
    # Given a clip of tone bursts with silences between them
    heard = measured_voiced_intervals(clips[SPEECH_PT_MP4.name])
    truth = SPEECH_PT_MP4.speech_spans_s
    assert len(heard) == len(truth) == 2
    for (a, b), (c, d) in zip(heard, truth, strict=True):
        assert a == pytest.approx(c, abs=0.03) and b == pytest.approx(d, abs=0.03)
    # When it is transcribed
    cloud.start("clip-1")
    document = cloud.transcript(cloud.wait("clip-1"))
    # Then the transcript is in Transcribe's shape
    assert (document["jobName"], document["accountId"], document["status"]) == (
        "clip-1",
        ACCOUNT,
        "COMPLETED",
    )
    results = document["results"]
    items = results["items"]
    assert [item["id"] for item in items] == list(range(len(items)))
    words = [i for i in items if i["type"] == "pronunciation"]
    stops = [i for i in items if i["type"] == "punctuation"]
    assert all(set(i) == {"id", "type", "alternatives"} for i in stops)
    assert all(i["alternatives"] == [{"confidence": "0.0", "content": "."}] for i in stops)
    # And every word lies inside an interval where there is sound, measured independently
    for word in words:
        start, end = float(word["start_time"]), float(word["end_time"])
        assert start < end
        assert any(a - 0.03 <= start and end <= b + 0.03 for a, b in heard), (word, heard)
        (alternative,) = word["alternatives"]
        assert 0.85 <= float(alternative["confidence"]) < 1.0
        assert alternative["content"].lower() in transcribe.WORDS["pt"]
    # And each interval is one sentence of about 2.5 words a second
    assert len(results["audio_segments"]) == len(stops) == len(heard)
    for segment, (a, b) in zip(results["audio_segments"], heard, strict=True):
        spoken = [items[i] for i in segment["items"] if items[i]["type"] == "pronunciation"]
        assert len(spoken) == max(1, round((b - a) * transcribe.WORDS_PER_SECOND))
        assert segment["start_time"] == spoken[0]["start_time"]
        assert segment["transcript"][0].isupper() and segment["transcript"].endswith(".")
    text = " ".join(s["transcript"] for s in results["audio_segments"])
    assert results["transcripts"] == [{"transcript": text}]
    # And the same bytes give the same words
    cloud.start("clip-2")
    again = cloud.transcript(cloud.wait("clip-2"))
    assert again["results"]["items"] == items


def test_silence_completes_with_an_empty_transcript_and_no_subtitle_files(cloud: Cloud):
    cloud.start("silent", clip=SILENT_MP4.name, LanguageCode="en-US")
    done = cloud.wait("silent")
    # Then the job completed, with an empty transcript and no items
    assert done["TranscriptionJobStatus"] == "COMPLETED"
    document = cloud.transcript(done)
    assert document["results"]["transcripts"] == [{"transcript": ""}]
    assert document["results"]["items"] == [] == document["results"]["audio_segments"]
    # And, as the subtitles page says, no subtitle file is created for audio without speech
    prefix = f"video/{SILENT_MP4.name}/speech/"
    listed = cloud.s3.list_objects_v2(Bucket=OUT, Prefix=prefix)["Contents"]
    assert [o["Key"] for o in listed] == [f"{prefix}silent.json"]


def test_media_without_audio_fails_with_the_reason_and_its_event_says_why(cloud: Cloud):
    cloud.start("mute", clip=NO_AUDIO_MP4.name, LanguageCode="en-US")
    done = cloud.wait("mute")
    assert done["TranscriptionJobStatus"] == "FAILED"
    assert done["FailureReason"] == transcribe.NO_AUDIO_REASON
    assert "Transcript" not in done and "SubtitleFileUris" not in done["Subtitles"]
    assert cloud.s3.list_objects_v2(Bucket=OUT).get("KeyCount") == 0
    (event,) = cloud.events
    assert event["detail"] == {
        "TranscriptionJobName": "mute",
        "TranscriptionJobStatus": "FAILED",
        "FailureReason": transcribe.NO_AUDIO_REASON,
    }


@pytest.mark.parametrize(
    ("clip", "options", "identified", "low", "high"),
    [
        (SPEECH_PT_MP4, ["en-US", "pt-PT"], "pt-PT", 0.90, 1.0),
        (SPEECH_EN_MP4, ["en-US", "pt-PT", "es-ES"], "en-US", 0.90, 1.0),
        # Outside the options: the option of the same base language, with a low score
        (SPEECH_PT_MP4, ["en-US", "pt-BR"], "pt-BR", 0.40, 0.50),
        # Nothing alike: still one of the options (the first), with a lower score
        (SPEECH_PT_MP4, ["es-ES", "en-US"], "es-ES", 0.30, 0.40),
    ],
)
def test_the_identified_language_is_always_one_of_the_options_scored_as_modelled(
    cloud: Cloud, clip, options, identified, low, high
):
    # Given a clip whose audio is tagged with its language, and the configured options
    cloud.start("lid", clip=clip.name, IdentifyLanguage=True, LanguageOptions=options)
    done = cloud.wait("lid")
    # Then the identified language and its score are as the stand-in models them
    assert done["LanguageCode"] == identified
    assert low <= done["IdentifiedLanguageScore"] < high
    assert done["IdentifyLanguage"] is True and done["LanguageOptions"] == options
    # And the transcript lists every option with its score, best first, in the language chosen
    results = cloud.transcript(done)["results"]
    assert results["language_code"] == identified
    ranked = results["language_identification"]
    assert sorted(r["code"] for r in ranked) == sorted(options)
    assert ranked[0] == {"score": str(done["IdentifiedLanguageScore"]), "code": identified}
    assert [float(r["score"]) for r in ranked] == sorted(
        (float(r["score"]) for r in ranked), reverse=True
    )
    base = identified.split("-")[0]
    assert all(
        i["alternatives"][0]["content"].lower() in transcribe.WORDS[base]
        for i in results["items"]
        if i["type"] == "pronunciation"
    )
    # And a "Language Identification State Change" came no later than the job's own event (their
    # deliveries run on the clock's threads, so neither the list's order nor the job's status
    # tells that both have been delivered: wait for two, as a consumer of best-effort events would)
    deadline = time.monotonic() + 5
    while len(cloud.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    events = {e["detail-type"]: e for e in cloud.events}
    assert sorted(events) == ["Language Identification State Change", "Transcribe Job State Change"]
    assert (
        events["Language Identification State Change"]["time"]
        <= events["Transcribe Job State Change"]["time"]
    )
    assert events["Language Identification State Change"]["detail"] == {
        "JobType": "TranscriptionJob",
        "JobName": "lid",
        "LanguageIdentificationStatus": "COMPLETED",
    }


def test_the_identified_language_is_reported_while_the_job_still_runs(slow_cloud: Cloud):
    # Given a long job with language identification (identification ends 5 s into it)
    cloud = slow_cloud
    cloud.standin.job_duration_s = 3600.0
    cloud.start("long", IdentifyLanguage=True, LanguageOptions=["en-US", "pt-PT"])
    deadline = time.monotonic() + 5
    while not cloud.events:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    # Then GetTranscriptionJob already tells the language and its score, the job IN_PROGRESS
    job = cloud.client().get_transcription_job(TranscriptionJobName="long")["TranscriptionJob"]
    assert job["TranscriptionJobStatus"] == "IN_PROGRESS"
    assert job["LanguageCode"] == "pt-PT" and job["IdentifiedLanguageScore"] >= 0.9
    assert "Transcript" not in job


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"MediaFormat": "webm"}, transcribe.FORMAT_MISMATCH),
        ({"MediaFormat": "m4a"}, None),
        ({"MediaSampleRateHertz": 16000}, transcribe.SAMPLE_RATE_MISMATCH),
        ({"MediaSampleRateHertz": 48000}, None),
        ({"clip": "not-media"}, transcribe.UNSUPPORTED_FORMAT),
    ],
)
def test_what_the_file_is_decides_a_failure_as_documented(cloud: Cloud, change, reason):
    cloud.s3.put_object(Bucket=IN, Key="video/not-media.mp4", Body=b"<html>403 Forbidden</html>")
    cloud.start("job", **{"clip": SPEECH_PT_MP4.name, **change})
    done = cloud.wait("job")
    assert done.get("FailureReason") == reason
    assert done["TranscriptionJobStatus"] == ("FAILED" if reason else "COMPLETED")


def test_an_untagged_clip_is_english_and_a_given_language_code_is_used_as_it_is(cloud: Cloud):
    # Given the fixture catalogue's continuous tone (untagged), identified without options
    body = media.render(media.PIXABAY_MP4_240)
    cloud.s3.put_object(Bucket=IN, Key="video/tone.mp4", Body=body)
    cloud.start("tone", clip="tone", IdentifyLanguage=True)
    tone = cloud.transcript(cloud.wait("tone"))["results"]
    # Then it is en-US, and the five likeliest languages are listed, adding up to 1
    assert tone["language_code"] == "en-US"
    assert len(tone["language_identification"]) == 5
    assert sum(float(r["score"]) for r in tone["language_identification"]) == pytest.approx(1.0)
    # And a continuous tone is one long sentence
    assert len(tone["audio_segments"]) == 1
    # When a Portuguese clip is transcribed with LanguageCode fr-FR, Then it is "French"
    cloud.start("fr", LanguageCode="fr-FR")
    done = cloud.wait("fr")
    results = cloud.transcript(done)["results"]
    assert done["LanguageCode"] == "fr-FR" and "IdentifiedLanguageScore" not in done
    assert "language_identification" not in results and "language_code" not in results
    assert results["items"][0]["alternatives"][0]["content"].lower() in transcribe.WORDS["fr"]


# -- output --------------------------------------------------------------------------------------
TIMING = re.compile(
    r"(\d{2}):(\d{2}):(\d{2})([.,])(\d{3}) --> (\d{2}):(\d{2}):(\d{2})([.,])(\d{3})"
)


def parse_cues(text: str, separator: str) -> list[tuple[int, int, int, list[str]]]:
    """A strict parser of WebVTT (``.``) and SubRip (``,``): (number, start ms, end ms, lines)."""
    blocks = text.strip("\n").split("\n\n")
    if separator == ".":
        assert blocks[0] == "WEBVTT", blocks[0]
        blocks = blocks[1:]
    cues = []
    for block in blocks:
        number, timing, *lines = block.split("\n")
        found = TIMING.fullmatch(timing)
        assert found, timing
        assert found.group(4) == found.group(9) == separator
        h1, m1, s1, _, ms1, h2, m2, s2, _, ms2 = found.groups()
        start = ((int(h1) * 60 + int(m1)) * 60 + int(s1)) * 1000 + int(ms1)
        end = ((int(h2) * 60 + int(m2)) * 60 + int(s2)) * 1000 + int(ms2)
        assert 1 <= len(lines) <= 2 and all(0 < len(line) <= 42 for line in lines), lines
        cues.append((int(number), start, end, lines))
    return cues


def millis(seconds: str) -> int:
    return round(float(seconds) * 1000)


@pytest.mark.parametrize(
    ("output_key", "transcript_key"),
    [
        (None, "clip-1.json"),
        ("video/a/speech/", "video/a/speech/clip-1.json"),
        ("video/a/speech", "video/a/speech/clip-1.json"),
        ("video/a/transcript.json", "video/a/transcript.json"),
    ],
)
def test_subtitles_are_written_beside_the_transcript_and_parse_back_with_its_timing(
    cloud: Cloud, output_key, transcript_key
):
    # Given a job with both subtitle formats, numbered from 1, and an OutputKey of each kind
    cloud.start("clip-1", OutputKey=output_key)
    done = cloud.wait("clip-1")
    # Then the transcript and the subtitles are where Transcribe puts them
    assert key_of(done["Transcript"]["TranscriptFileUri"]) == transcript_key
    stem = transcript_key.removesuffix(".json")
    assert [key_of(u) for u in done["Subtitles"]["SubtitleFileUris"]] == [
        f"{stem}.vtt",
        f"{stem}.srt",
    ]
    items = cloud.transcript(done)["results"]["items"]
    words = [i for i in items if i["type"] == "pronunciation"]
    # And both files parse back, numbered from OutputStartIndex, each cue timed by its words
    for fmt, separator in (("vtt", "."), ("srt", ",")):
        cues = parse_cues(cloud.read(f"{stem}.{fmt}").decode(), separator)
        assert [c[0] for c in cues] == list(range(1, len(cues) + 1))
        remaining = list(words)
        for _number, start, end, lines in cues:
            assert 0 < end - start <= 7000
            shown = " ".join(lines).split(" ")
            mine, remaining = remaining[: len(shown)], remaining[len(shown) :]
            assert [w["alternatives"][0]["content"] for w in mine] == [s.rstrip(".") for s in shown]
            assert (start, end) == (millis(mine[0]["start_time"]), millis(mine[-1]["end_time"]))
        assert remaining == []
        assert all(a[2] <= b[1] for a, b in itertools.pairwise(cues))


def test_the_default_start_index_is_zero_and_long_speech_is_cut_into_short_cues():
    # Given a sentence of 40 words over 16 s (a long burst of speech)
    words = [transcribe.Word(i * 400, i * 400 + 350, f"word{i:02d}", 0.9) for i in range(40)]
    cues = transcribe.cues_for([words])
    vtt = parse_cues(transcribe.webvtt(cues), ".")
    srt = parse_cues(transcribe.subrip(cues), ",")
    # Then cues are numbered from 0, never longer than 7 s or two lines, and cover every word
    assert [c[0] for c in vtt] == list(range(len(cues))) == [c[0] for c in srt]
    assert all(end - start <= 7000 for _n, start, end, _l in vtt)
    assert " ".join(" ".join(c[3]) for c in vtt).split(" ") == [
        *(f"word{i:02d}" for i in range(39)),
        "word39.",
    ]
    # And nothing at all is an empty SubRip file and a bare WebVTT header
    assert transcribe.subrip([]) == "" and transcribe.webvtt([]) == "WEBVTT\n"


# -- events and faults ----------------------------------------------------------------------------
def test_the_event_is_delivered_to_the_targets_of_the_rules_that_match(cloud: Cloud):
    from moto.events.models import EventPattern

    from localworld.world import _Deliveries

    # Given the world's asynchronous deliveries, routing through two rules (one for these jobs)
    rules = {
        "transcribe": {**JOB_RULE, "detail": {**JOB_RULE["detail"], "TranscriptionJobName": [
            {"prefix": "dev-"}
        ]}},
        "s3": {"source": ["aws.s3"]},
    }  # fmt: skip
    received: dict[str, list[dict[str, Any]]] = {name: [] for name in rules}

    def route(event: dict[str, Any]) -> list[dict[str, Any]]:
        answers = []
        for name, pattern in rules.items():
            if EventPattern.load(json.dumps(pattern)).matches_event(event):
                received[name].append(event)
                answers.append({"target": name, "error": None, "payload": None})
        return answers

    deliveries = _Deliveries(route)
    cloud.standin.emit = deliveries.submit
    try:
        # When a job of this deployment ends, and one of another
        cloud.start("dev-clip-1")
        cloud.start("prod-clip-1", clip=SPEECH_EN_MP4.name, LanguageCode="en-US")
        cloud.wait("dev-clip-1")
        cloud.wait("prod-clip-1")
        assert deliveries.drain(5.0) and deliveries.errors == []
    finally:
        deliveries.close()
    # Then only the matching rule's target got exactly one event, shaped as Transcribe sends it
    assert received["s3"] == []
    (event,) = received["transcribe"]
    assert set(event) == {
        "version", "id", "detail-type", "source", "account", "time", "region", "resources",
        "detail",
    }  # fmt: skip
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.transcribe",
        "Transcribe Job State Change",
        [],
    )
    assert (event["account"], event["region"]) == (ACCOUNT, REGION)
    assert event["detail"] == {
        "TranscriptionJobName": "dev-clip-1",
        "TranscriptionJobStatus": "COMPLETED",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert len(deliveries.delivered) == 2  # both events were routed; one matched


def test_a_lost_event_leaves_get_transcription_job_telling_the_truth(cloud: Cloud):
    # Given events of this clip are lost (EventBridge delivers Transcribe's best effort)
    cloud.standin.lose_events.add(SPEECH_PT_MP4.name)
    cloud.start("clip-1")
    done = cloud.wait("clip-1")
    # Then no event was sent, and GetTranscriptionJob still says COMPLETED with its output
    assert cloud.events == []
    assert [e["detail"]["TranscriptionJobStatus"] for e in cloud.standin.lost] == ["COMPLETED"]
    assert done["TranscriptionJobStatus"] == "COMPLETED"
    assert cloud.transcript(done)["results"]["items"]


def test_a_failed_transcription_and_throttling_fail_as_the_service_does(cloud: Cloud):
    # Given a job forced to fail, and the next two starts throttled
    cloud.standin.fail_jobs[SPEECH_EN_MP4.name] = "Internal failure: the media could not be read."
    cloud.standin.throttle("StartTranscriptionJob", 2)
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            cloud.start("en", clip=SPEECH_EN_MP4.name, LanguageCode="en-US")
        assert err.value.response["Error"]["Code"] == "LimitExceededException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # When the third start goes through
    cloud.start("en", clip=SPEECH_EN_MP4.name, LanguageCode="en-US")
    done = cloud.wait("en")
    # Then the job FAILED with the reason, and its event carries it
    assert done["TranscriptionJobStatus"] == "FAILED"
    assert done["FailureReason"] == "Internal failure: the media could not be read."
    assert cloud.events[-1]["detail"]["FailureReason"] == done["FailureReason"]
    assert cloud.standin.faults_raised == [("StartTranscriptionJob", "LimitExceededException")] * 2
    # And resetting the faults lets the same clip be transcribed
    cloud.standin.reset_faults()
    cloud.start("en-again", clip=SPEECH_EN_MP4.name, LanguageCode="en-US")
    assert cloud.wait("en-again")["TranscriptionJobStatus"] == "COMPLETED"


def test_a_job_is_listed_and_deleted_once_it_has_finished(slow_cloud: Cloud):
    cloud = slow_cloud
    client = cloud.client()
    cloud.start("clip-1")
    # An unfinished job cannot be deleted
    message = bad_request(client.delete_transcription_job, TranscriptionJobName="clip-1")
    assert "IN_PROGRESS" in message
    cloud.start("clip-2", clip=SPEECH_EN_MP4.name, LanguageCode="en-US")
    listed = client.list_transcription_jobs(JobNameContains="CLIP", MaxResults=1)
    assert [s["TranscriptionJobName"] for s in listed["TranscriptionJobSummaries"]] == ["clip-2"]
    more = client.list_transcription_jobs(JobNameContains="clip", NextToken=listed["NextToken"])
    assert [s["TranscriptionJobName"] for s in more["TranscriptionJobSummaries"]] == ["clip-1"]
    assert more["TranscriptionJobSummaries"][0]["OutputLocationType"] == "CUSTOMER_BUCKET"
    cloud.wait("clip-1")
    cloud.wait("clip-2")
    done = client.list_transcription_jobs(Status="COMPLETED")
    assert done["Status"] == "COMPLETED" and len(done["TranscriptionJobSummaries"]) == 2
    # A finished one can; then it is not found, and its name can be used again
    client.delete_transcription_job(TranscriptionJobName="clip-1")
    with pytest.raises(ClientError) as err:
        client.get_transcription_job(TranscriptionJobName="clip-1")
    assert err.value.response["Error"]["Code"] == "NotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    message = bad_request(client.delete_transcription_job, TranscriptionJobName="clip-1")
    assert message == transcribe.NOT_FOUND
    cloud.start("clip-1")


def test_without_an_output_bucket_the_output_stays_in_the_service(cloud: Cloud):
    cloud.start("managed", OutputBucketName=None, OutputKey=None)
    done = cloud.wait("managed")
    uri = done["Transcript"]["TranscriptFileUri"]
    assert uri.startswith(f"https://s3.{REGION}.amazonaws.com/aws-transcribe-{REGION}-prod/")
    output = cloud.standin.service_output("managed")
    assert sorted(output) == ["managed.json", "managed.srt", "managed.vtt"]
    assert json.loads(output["managed.json"])["jobName"] == "managed"
    assert cloud.s3.list_objects_v2(Bucket=OUT).get("KeyCount") == 0


# -- permissions ----------------------------------------------------------------------------------
LAMBDA_TRUST = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
}
KMS_MEDIA_BUCKET = {
    "Type": "AWS::S3::Bucket",
    "Properties": {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {
                    "ServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]},
                    }
                }
            ]
        }
    },
}
# A function's role may start jobs and read the media, not decrypt it nor write the output.
START_AND_READ = {
    "Type": "AWS::IAM::Policy",
    "Properties": {
        "PolicyName": "Start",
        "Roles": [{"Ref": "Role"}],
        "PolicyDocument": {
            "Statement": [
                {"Effect": "Allow", "Action": "transcribe:StartTranscriptionJob", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Media", "Arn"]}, "/*"]]},
                },
            ]
        },
    },
}


@dataclass
class Permissions:
    """The world's deployer and permission evaluator, in the module's moto, for one test."""

    session: Any
    resolver: Resolver
    store: iam.Permissions
    standin: transcribe.TranscribeStandIn

    def grant(self, role_arn: str, **statement: Any) -> None:
        statement = {"Effect": "Allow", **statement}
        self.store.attach_policy("Grant", {"Statement": [statement]}, roles=[role_arn])

    def wait(self) -> str:
        deadline = time.monotonic() + 10
        while self.standin.job_records()[-1].status == "IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.005)
        return self.standin.job_records()[-1].status


@pytest.fixture
def permissions(moto: None) -> Iterator[Permissions]:
    session = boto3.session.Session(
        aws_access_key_id=iam.ADMIN_ACCESS_KEY,
        aws_secret_access_key=iam.ADMIN_SECRET_KEY,
        region_name=REGION,
    )
    iam.mark_admin(session)
    store = iam.Permissions(partition="aws", region=REGION, account=ACCOUNT)
    store.bind_sts(session.client("sts", region_name=REGION))
    clock = SimClock(0.0005)
    standin = transcribe.TranscribeStandIn(clock=clock, account=ACCOUNT, region=REGION)
    iam.activate(store)
    transcribe.activate(standin)
    try:
        yield Permissions(session, Resolver(region=REGION, account=ACCOUNT), store, standin)
    finally:
        transcribe.activate(None)
        iam.activate(None)
        clock.cancel_all()


def test_the_callers_grants_decide_what_transcribe_reads_and_writes(permissions, clips):
    """Without a data access role, Transcribe reads and writes with the caller's permissions."""
    # Given a key, an SSE-KMS media bucket, an output bucket and a role that may start jobs and
    # read the media (but not decrypt it, nor write the output)
    Deployer(permissions.session, permissions.resolver, permissions.store).deploy(
        "Transcribe-Permissions",
        {
            "Resources": {
                "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
                "Media": KMS_MEDIA_BUCKET,
                "Output": {"Type": "AWS::S3::Bucket", "Properties": {}},
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {"AssumeRolePolicyDocument": LAMBDA_TRUST},
                },
                "RolePolicy": START_AND_READ,
            }
        },
    )
    refs, attrs = permissions.resolver.refs, permissions.resolver.attrs
    media_bucket, output_bucket = refs["Media"], refs["Output"]
    key_arn, role_arn = attrs[("Key", "Arn")], attrs[("Role", "Arn")]
    s3 = permissions.session.client("s3")
    s3.put_object(Bucket=media_bucket, Key="video/a.mp4", Body=clips[SPEECH_EN_MP4.name])
    store = permissions.store
    role = store.assume(role_arn, service="lambda.amazonaws.com", session="Fn", who="function Fn")
    client = role.client("transcribe", REGION, config=NO_RETRY)
    request = {
        "TranscriptionJobName": "job",
        "Media": {"MediaFileUri": f"s3://{media_bucket}/video/a.mp4"},
        "LanguageCode": "en-US",
        "OutputBucketName": output_bucket,
        "OutputKey": "speech/",
        "Subtitles": {"Formats": ["vtt"]},
    }
    # When the role starts a job, Then S3 cannot decrypt the media for it: the start is refused
    assert bad_request(client.start_transcription_job, **request) == transcribe.NO_READ
    (denial,) = store.new_denials()
    assert (denial.action, denial.resource) == ("kms:Decrypt", key_arn)
    assert "function Fn" in denial.who
    # When it may decrypt through S3, Then it still may not write the transcript
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    permissions.grant(role_arn, Action="kms:Decrypt", Resource=key_arn, Condition=via_s3)
    message = bad_request(client.start_transcription_job, **request)
    assert message.startswith("You don't have permission to write")
    (denial,) = store.new_denials()
    assert (denial.action, denial.resource) == (
        "s3:PutObject",
        f"arn:aws:s3:::{output_bucket}/speech/job.json",
    )
    assert permissions.standin.job_records() == []
    # When it may write there too, Then the job starts and completes, with nothing denied
    permissions.grant(role_arn, Action="s3:PutObject", Resource=f"arn:aws:s3:::{output_bucket}/*")
    client.start_transcription_job(**request)
    assert permissions.wait() == "COMPLETED"
    assert store.new_denials() == []
    listed = s3.list_objects_v2(Bucket=output_bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["speech/job.json", "speech/job.vtt"]


# -- fixture media ----------------------------------------------------------------------------------
def test_the_speech_fixtures_carry_their_language_tag_and_the_catalogue_keeps_its_keys(clips):
    # The speech-like clips carry their audio language as the stream's tag
    for spec, tag in ((SPEECH_PT_MP4, "por"), (SPEECH_EN_MP4, "eng"), (SILENT_MP4, "und")):
        with av.open(io.BytesIO(clips[spec.name])) as container:
            assert container.streams.audio[0].metadata["language"] == tag
    with av.open(io.BytesIO(clips[NO_AUDIO_MP4.name])) as container:
        assert not container.streams.audio
    assert SILENT_MP4.speech_spans_s == () == NO_AUDIO_MP4.speech_spans_s
    assert media.PIXABAY_MP4_240.speech_spans_s == ((0.0, media.PIXABAY_MP4_240.duration_s),)
    # And a clip without the new options keeps the cache key it had before they existed
    for spec in media.FIXTURES:
        payload = {
            "spec": {
                k: v
                for k, v in dataclasses.asdict(spec).items()
                if k not in ("audio_pattern", "audio_language")
            },
            "scenes": [
                dataclasses.asdict(media.SCENES[n]) for n in sorted({n for n, _ in spec.scenes})
            ],
            "av": av.__version__,
            "revision": media.RENDER_REVISION,
        }
        old = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
        assert media.cache_key(spec) == old
    # And a spec that cannot carry its audio option is refused
    with pytest.raises(ValueError, match="needs an audio codec"):
        dataclasses.replace(NO_AUDIO_MP4, audio_pattern="speech")
    with pytest.raises(ValueError, match="ISO 639-2"):
        dataclasses.replace(SPEECH_EN_MP4, audio_language="en-US")
