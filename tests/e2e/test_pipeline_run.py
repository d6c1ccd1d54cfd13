"""The deployed state machine, executed end to end in moto with the real handlers in-process.

What runs is the ``DefinitionString`` of the synthesized ``Dev/Pipeline`` template, resolved
against the resources created from the ``Dev/Stateful`` and ``Dev/Pipeline`` templates; Wikimedia
Commons and Pixabay answer from local fixtures; Rekognition Video and MediaConvert are stand-ins
with the real request and response shapes (see ``localworld``).
"""

from __future__ import annotations

import io
import json
import posixpath
from pathlib import PurePosixPath

import av

from localworld import World
from localworld.media import (
    NO_AUDIO_MP4,
    PIXABAY_MP4_240,
    SILENT_MP4,
    SPEECH_EN_MP4,
    SPEECH_PT_MP4,
    render,
)
from localworld.mediaconvert import JobFailure
from localworld.sources import variant
from localworld.template import Resolver
from localworld.world import PER_ASSET_STATES
from tests.conftest import SynthesizedApp, pipeline_state_machine


def test_the_definition_that_runs_is_the_synthesized_one(
    synthesized: SynthesizedApp, clean_world: World
) -> None:
    # Given the Pipeline template's DefinitionString, resolved against the created resources
    template = synthesized.templates["Dev/Pipeline"]
    _, resource = pipeline_state_machine(template["Resources"])
    resolver: Resolver = clean_world.resolver
    expected = json.loads(resolver.resolve(resource["Properties"]["DefinitionString"]))

    # When the state machine is read back from Step Functions
    described = clean_world.client("stepfunctions").describe_state_machine(
        stateMachineArn=clean_world.state_machine_arn
    )

    # Then it is that definition, with every function ARN pointing at a created function
    assert json.loads(described["definition"]) == expected
    functions = {
        f["FunctionArn"] for f in clean_world.client("lambda").list_functions()["Functions"]
    }
    text = described["definition"]
    assert all(arn in functions for arn in _lambda_arns(text))
    assert "mediaconvert:createJob.sync" in text


def _lambda_arns(text: str) -> set[str]:
    found: set[str] = set()
    for part in text.split('"FunctionName":"')[1:]:
        found.add(part.split('"', 1)[0])
    return found


def test_campaign_run_of_two_assets_labels_catalogs_and_summarizes(clean_world: World) -> None:
    world = clean_world
    assert world.rekognition is not None

    # When the weekly schedule starts a run with {} (active campaign "travel", batch size 2)
    run = world.run({}, name="weekly-travel-1")

    # Then the execution succeeds with both assets processed
    assert run.status == "SUCCEEDED", run.cause
    assert run.output == {"processed": 2, "failed": 0, "status": "SUCCEEDED"}

    # and each asset has its labels file, renditions and thumbnails in the processed zone
    travel = [a for a in world.assets() if a["campaign"] == "travel" and a["source"] != "upload"]
    assert sorted(a["source"] for a in travel) == ["commons", "pixabay"]
    for asset in travel:
        assert asset["status"] == "PROCESSED"
        document = world.labels_document(asset["labels_key"])
        assert document["asset"]["asset_id"] == asset["asset_id"]
        assert document["summary"]["top_labels"], "Rekognition labels were aggregated"
        assert document["summary"]["shots"], "shot segments were aggregated"
        assert document["license"]["name"]
        assert document["video"]["duration_ms"] > 0
        keys = world.keys(world.processed_bucket, document["thumbnails"]["prefix"])
        assert keys and document["thumbnails"]["poster_key"] in keys
        rendered = world.keys(world.processed_bucket)
        assert document["renditions"]["mp4_key"] in rendered
        assert document["renditions"]["hls_manifest_key"] in rendered
        assert asset["top_labels"] == [label["name"] for label in document["summary"]["top_labels"]]

    # and the summary went to the alerts topic
    summaries = [n for n in world.notifications() if "travel: 2 processed" in (n["subject"] or "")]
    assert len(summaries) == 1
    assert "Media pipeline run: SUCCEEDED" in summaries[0]["message"]

    # and the waits were callbacks, not polls: the start handler checks each job once (a job
    # that ended before its start would not notify again); the scheduled heartbeat sweep may
    # also look, which costs Lambda time but no state transitions; no token is left
    starts = sum(1 for s in run.entered() if s.startswith("Analyze "))
    assert starts == 6
    start_function = world.function_name("lambdas.analysis.start.handler")
    status_checks = [
        c
        for c in world.rekognition.get_calls
        if c[1].get("MaxResults") == 1 and c[2] == start_function
    ]
    assert len(status_checks) == len(world.rekognition.jobs) == 6
    assert world.catalog_items("TOKEN#") == []
    assert all(n["Status"] == "SUCCEEDED" for n in world.rekognition.notices)


def test_a_failed_transcode_fails_only_that_asset(clean_world: World) -> None:
    world = clean_world
    assert world.mediaconvert is not None
    # Given MediaConvert cannot read the Pixabay clip of campaign "nature"
    world.mediaconvert.fail_inputs.append(
        JobFailure(match="/video/pixabay/nature/", error_code=1010)
    )

    # When a run for "nature" is started from the console
    run = world.run({"campaign": "nature"}, name="console-nature-1")

    # Then the execution still succeeds, with a PARTIAL summary
    assert run.status == "SUCCEEDED", run.cause
    assert run.output == {"processed": 1, "failed": 1, "status": "PARTIAL"}
    assert "Mark failed" in run.entered()

    # and the catalog records the failure with MediaConvert's reason; the other asset is done
    nature = {a["source"]: a for a in world.assets() if a["campaign"] == "nature"}
    assert nature["commons"]["status"] == "PROCESSED"
    failed = nature["pixabay"]
    assert failed["status"] == "FAILED"
    assert "MediaConvert job" in failed["failure_reason"]
    assert "error 1010" in failed["failure_reason"]
    assert "Unable to open input file" in failed["failure_reason"]
    labels = [k for k in world.iter_labels_files() if "/nature/" in k]
    assert len(labels) == 1 and "/commons/" in labels[0]

    # and the summary names the failed asset and why
    summary = next(n for n in world.notifications() if "nature:" in (n["subject"] or ""))
    assert "Media pipeline run: PARTIAL" in summary["message"]
    assert failed["asset_id"] in summary["message"]


def test_the_same_upload_event_twice_starts_one_run(clean_world: World, upload_body: bytes) -> None:
    world = clean_world
    # Given an operator dropped a clip under uploads/ and EventBridge delivers the event twice
    event = world.upload("uploads/harbour-at-dawn.mp4", upload_body)

    # When both deliveries reach the upload trigger
    first = world.deliver_event(event)
    second = world.deliver_event(event)

    # Then both name the same execution, and only one exists
    assert len(first) == len(second) == 1
    assert first[0]["error"] is None and second[0]["error"] is None
    name = first[0]["payload"]["name"]
    assert name.startswith("upload-") and second[0]["payload"]["name"] == name
    assert [e["name"] for e in world.executions()].count(name) == 1

    # and that run ingests and processes the upload
    execution = next(e for e in world.executions() if e["name"] == name)
    run = world.wait(execution["executionArn"])
    assert run.status == "SUCCEEDED", run.cause
    assert run.output == {"processed": 1, "failed": 0, "status": "SUCCEEDED"}
    uploaded = [a for a in world.assets() if a["key"].endswith("/harbour-at-dawn.mp4")]
    assert len(uploaded) == 1 and uploaded[0]["status"] == "PROCESSED"


def test_an_event_redelivered_after_the_run_ended_starts_nothing(
    clean_world: World, upload_body: bytes
) -> None:
    # (Regression: the trigger logged extra={"name": ...}, a reserved LogRecord attribute, so
    # this path raised KeyError; lambdas/trigger/handler.py now logs "execution_name".)
    world = clean_world
    # Given an upload whose run has already finished
    event = world.upload("uploads/late-redelivery.mp4", upload_body)
    first = world.deliver_event(event)
    name = first[0]["payload"]["name"]
    execution = next(e for e in world.executions() if e["name"] == name)
    assert world.wait(execution["executionArn"]).status == "SUCCEEDED"

    # When EventBridge delivers the same event again
    again = world.deliver_event(event)

    # Then the trigger answers "already started" and no execution is added
    assert again[0]["error"] is None, again[0]["payload"]
    assert again[0]["payload"] == {"started": False, "name": name}
    assert [e["name"] for e in world.executions()].count(name) == 1


def test_bad_input_fails_at_once_with_a_readable_cause(clean_world: World) -> None:
    # When a run is started with a campaign that does not exist
    run = clean_world.run({"campaign": "nope"}, name="console-bad-input")

    # Then it fails with InvalidInput and the handler's message as the Cause, before any work
    assert run.status == "FAILED"
    assert run.error == "InvalidInput"
    assert run.cause == "campaign: 'nope' is not one of ['travel', 'tech', 'nature']"
    assert run.entered() == ["Resolve input", "Read input error", "Invalid input"]
    assert not PER_ASSET_STATES & set(run.entered())


def test_an_upload_run_ingests_exactly_the_object_version_its_event_names(
    clean_world: World, upload_body: bytes
) -> None:
    world = clean_world
    # Given "uploads/dock at dawn.mp4" (its event's key reads "dock+at+dawn.mp4"), a different
    # file that really is named "uploads/dock+at+dawn.mp4", and a second version of the first
    # written before the first version's run started
    first_version = upload_body
    look_alike = render(variant(PIXABAY_MP4_240, "dock-look-alike", 3, 370.0))
    second_version = render(variant(PIXABAY_MP4_240, "dock-second-version", 4, 415.0))
    event = world.upload("uploads/dock at dawn.mp4", first_version)
    world.upload("uploads/dock+at+dawn.mp4", look_alike)
    world.upload("uploads/dock at dawn.mp4", second_version)
    assert event["detail"]["object"]["key"] == "uploads/dock+at+dawn.mp4"

    # When the first version's event starts its run
    [answer] = world.deliver_event(event)
    run = world.wait(world.execution_arn(answer["payload"]["name"]), timeout_s=120)

    # Then that run ingested the first version of "dock at dawn.mp4", not the look-alike and
    # not the newer version
    assert run.status == "SUCCEEDED", run.cause
    version = event["detail"]["object"]["version-id"]
    [asset] = [
        a
        for a in world.assets()
        if a["source_id"] == f"uploads/dock at dawn.mp4?versionId={version}"
    ]
    raw = world.client("s3").get_object(Bucket=world.raw_bucket, Key=asset["key"])["Body"].read()
    assert raw == first_version
    assert asset["status"] == "PROCESSED", asset.get("failure_reason")


def test_speech_is_transcribed_where_there_is_audio_and_explained_where_not(
    clean_world: World,
) -> None:
    world = clean_world
    assert world.transcribe is not None
    # Given five uploads: English speech, Portuguese speech (pt-PT is not configured: the
    # closest configured language is identified, with a low score), digital silence, no audio
    # track, and English speech whose transcription fails
    clips = {
        "harbour-en": SPEECH_EN_MP4,
        "alfama-pt": SPEECH_PT_MP4,
        "desk-silent": SILENT_MP4,
        "forest-mute": NO_AUDIO_MP4,
        "failing-speech": SPEECH_EN_MP4,
    }
    world.transcribe.fail_jobs["failing-speech"] = "Failed to parse audio file."
    runs = []
    for name, spec in clips.items():
        [answer] = world.deliver_event(world.upload(f"uploads/{name}.mp4", render(spec)))
        runs.append(world.execution_arn(answer["payload"]["name"]))

    # When their runs end
    for arn in runs:
        run = world.wait(arn, timeout_s=120)
        assert run.status == "SUCCEEDED", run.cause

    # Then every asset landed (a failed transcription does not fail the asset) ...
    speech = {}
    for asset in world.assets():
        stem = PurePosixPath(str(asset["key"])).stem
        if stem in clips:
            assert asset["status"] == "PROCESSED", asset.get("failure_reason")
            speech[stem] = (asset, world.labels_document(asset["labels_key"])["speech"])
    assert sorted(speech) == sorted(clips)

    # ... English speech with a confident language, timed segments and real subtitle files
    asset, english = speech["harbour-en"]
    assert (english["status"], english["language_code"]) == ("COMPLETED", "en-US")
    assert english["language_uncertain"] is False and english["word_count"] > 0
    spans = SPEECH_EN_MP4.speech_spans_s
    for segment in english["segments"]:
        assert any(start - 0.05 <= segment["start_s"] <= end for start, end in spans), segment
    vtt = world.client("s3").get_object(Bucket=world.processed_bucket, Key=english["vtt_key"])
    assert vtt["Body"].read().decode().startswith("WEBVTT")
    assert english["srt_key"] in world.keys(world.processed_bucket)
    assert asset["speech_language"] == "en-US"
    # ... and captions in the HLS presentation: one SUBTITLES group that every variant names,
    # whose media playlist resolves (as a player resolves it) to Transcribe's VTT
    s3 = world.client("s3")

    def variants_uris(lines: list[str]) -> list[str]:
        return [line for line in lines if line and not line.startswith("#")]

    def text(key: str) -> str:
        return str(s3.get_object(Bucket=world.processed_bucket, Key=key)["Body"].read().decode())

    playlist_key = str(asset["hls_key"])
    multivariant = text(playlist_key).splitlines()
    [group] = [line for line in multivariant if line.startswith("#EXT-X-MEDIA:TYPE=SUBTITLES")]
    assert 'LANGUAGE="en-US"' in group
    variants = [line for line in multivariant if line.startswith("#EXT-X-STREAM-INF:")]
    assert variants and all('SUBTITLES="subs"' in line for line in variants)
    captions = english["captions"]
    assert captions["status"] == "REFERENCED" and captions["cues"] >= 1
    uri = group.split('URI="', 1)[1].rstrip('"')
    base = PurePosixPath(playlist_key).parent
    assert posixpath.normpath(str(base / uri)) == captions["playlist_key"]
    media = text(captions["playlist_key"]).splitlines()
    copy = posixpath.normpath(str(base / media[media.index("#EXT-X-ENDLIST") - 1]))
    # ... a copy of Transcribe's VTT whose cue time 0 is the first rung's first timestamp, as
    # FFmpeg reads it from the segment (players place cues on the MPEG-TS clock)
    mapped = text(copy).splitlines()
    original = text(english["vtt_key"]).splitlines()
    assert [mapped[0], *mapped[2:]] == original
    rung = posixpath.normpath(str(base / variants_uris(multivariant)[0]))
    segment = posixpath.normpath(
        str(PurePosixPath(rung).parent / variants_uris(text(rung).splitlines())[0])
    )
    body = s3.get_object(Bucket=world.processed_bucket, Key=segment)["Body"].read()
    with av.open(io.BytesIO(body)) as container:
        start = min(st.start_time for st in container.streams if st.start_time is not None)
    assert mapped[1] == f"X-TIMESTAMP-MAP=MPEGTS:{start},LOCAL:00:00:00.000"
    # ... Portuguese identified as the configured pt-BR, marked uncertain
    _, portuguese = speech["alfama-pt"]
    assert (portuguese["language_code"], portuguese["language_uncertain"]) == ("pt-BR", True)
    # ... silence: an empty transcript, not an error, and no subtitle files to point at
    _, silent = speech["desk-silent"]
    assert (silent["status"], silent["transcript"], silent["segments"]) == ("COMPLETED", "", [])
    assert silent["vtt_key"] is None
    # ... no audio track: skipped with the reason, no job started
    _, mute = speech["forest-mute"]
    assert mute == {
        "status": "SKIPPED",
        "reason": "the clip has no audio stream",
        "job_name": None,
        "captions": {"status": "NOT_REFERENCED", "reason": "speech skipped: no captions"},
    }
    # ... and neither silence nor a clip without audio names captions from its playlist
    for stem in ("desk-silent", "forest-mute"):
        playlist = text(str(speech[stem][0]["hls_key"]))
        assert "SUBTITLES" not in playlist and "#EXT-X-STREAM-INF:" in playlist
    # ... and the failed job's reason recorded
    _, failed = speech["failing-speech"]
    assert (failed["status"], failed["reason"]) == ("FAILED", "Failed to parse audio file.")
    started = {record.key for record in world.transcribe.job_records()}
    assert not any("forest-mute" in key for key in started)
