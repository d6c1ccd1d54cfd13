"""The dashboard page, driven with Streamlit's AppTest against the world the pipeline built.

Every expected value is read from that world (its catalog, its ``labels.json`` documents, its
playlists) when the test asserts, so the page is held to what the pipeline writes.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import av
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dashboard_app import data, page, player
from lambdas.shared.catalog import words_of
from lambdas.shared.cloudfront_cookies import from_url_safe_b64
from tests.dashboard.conftest import (
    Pipeline,
    assert_label_search,
    deny,
    record_calls,
    write_world,
)

CAMPAIGNS = ("travel", "tech", "nature", "uploads")


def metrics(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def errors(at: Any) -> list[str]:
    return [e.value for e in at.error]


def expected_metrics(pipeline: Pipeline, campaign: str) -> dict[str, str]:
    """The counters of one campaign, counted from its asset items."""
    statuses = Counter(a["status"] for a in pipeline.assets(campaign))
    return {
        "Raw": str(sum(statuses.values())),
        "Processed": str(statuses["PROCESSED"]),
        "Failed": str(statuses["FAILED"]),
        "In progress": str(statuses["INGESTED"] + statuses["PROCESSING"]),
    }


def activate(pipeline: Pipeline, campaign: str) -> None:
    """Make ``campaign`` the active one, as an editor would have (restored after the test)."""
    pipeline.set_config(json.dumps({**pipeline.stored_config(), "active_campaign": campaign}))


def key_of(url: str) -> str:
    """The object key a presigned path-style URL points at (``/<bucket>/<key>``)."""
    return urlsplit(url).path.split("/", 2)[2]


STORY_VIDEO = "_final_video.mp4"


# -- views ---------------------------------------------------------------------------------------
def test_page_shows_what_the_pipeline_wrote(pipeline, world_file, app):
    # Given the demo's world: travel (active) ran with {}, nature lost a transcode, two uploads
    # (a file dropped under uploads/ and a device's upload through the jobs API)
    travel = pipeline.assets("travel", "PROCESSED")
    assert sorted(a["source"] for a in travel) == ["commons", "pixabay"]
    assert [a["source"] for a in pipeline.assets("uploads")] == ["upload", "upload"]

    # When the page renders
    at = app()

    # Then nothing failed and the counters come from the catalog's counter items
    assert not at.exception
    assert not errors(at)
    assert metrics(at) == expected_metrics(pipeline, "travel")
    per_campaign = at.dataframe[0].value.set_index("campaign")["raw"].to_dict()
    assert per_campaign == {c: len(pipeline.assets(c)) for c in CAMPAIGNS}
    assert per_campaign["uploads"] == 2  # uploaded files are filed under their own campaign
    # And the demo's executions, with the campaign from their input and each run's outcome as
    # its summary said, not Step Functions' status: the nature run lost a transcode, so it is
    # PARTIAL (Step Functions calls it SUCCEEDED), with its counts; bad input FAILED, with why
    runs = at.dataframe[1].value.set_index("name")
    outcome = runs[["outcome", "details"]].T.to_dict("list")
    main_run, partial, bad = pipeline.runs.campaign, pipeline.runs.partial, pipeline.runs.bad_input
    assert partial is not None and bad is not None
    assert main_run.output["status"] == "SUCCEEDED"
    assert outcome["demo-campaign-run"] == [
        "SUCCEEDED",
        f"{main_run.output['processed']} processed, 0 failed",
    ]
    assert runs.loc["demo-campaign-run", "campaign"] == "(configured)"
    assert (partial.status, partial.output["status"]) == ("SUCCEEDED", "PARTIAL")
    assert outcome["demo-partial-run"] == [
        "PARTIAL",
        f"{partial.output['processed']} processed, {partial.output['failed']} failed",
    ]
    assert partial.output["failed"] >= 1
    assert runs.loc["demo-partial-run", "campaign"] == "nature"
    assert bad.cause and ". " not in bad.cause  # one sentence, shown whole
    assert outcome["demo-bad-input"] == ["FAILED", f"{bad.error}: {bad.cause}"]
    assert pipeline.runs.upload is not None and pipeline.runs.upload.name in runs.index
    assert set(runs.columns) >= {"outcome", "details", "started", "stopped", "duration (s)"}
    assert "No failed assets in travel." in at.caption.values
    # And a gallery of the processed clips: each a presigned link to its poster frame
    images = at.image
    assert [key_of(img.value[0]) for img in images] == [a["thumbnail_key"] for a in travel]
    assert all("X-Amz-Signature=" in img.value[0] for img in images)
    assert all("/thumbnails/" in a["thumbnail_key"] for a in travel)
    assert [img.captions for img in images] == [[a["title"]] for a in travel]
    captions = [c.value for c in at.caption]
    assert sum(c.startswith("Clip · Labels: ") for c in captions) == len(travel)
    # And the player: the newest clip's MP4 proxy and its HLS ladder, where MediaConvert wrote them
    newest = travel[0]
    assert at.selectbox(key="player_asset").value == newest["asset_id"]
    # (the other <video> on the page is the Stories section's)
    (video,) = [v for v in at.get("video") if STORY_VIDEO not in v.proto.url]
    assert key_of(video.proto.url) == newest["mp4_key"]
    assert newest["mp4_key"].endswith("/mp4/proxy.mp4")
    # ... with the captions Transcribe wrote for it
    assert newest["speech_vtt_key"].endswith(".vtt")
    [track] = video.proto.subtitles
    assert track.label == f"Speech ({newest['speech_language']})" and track.url
    (frame,) = at.get("iframe")
    page = frame.proto.srcdoc
    assert frame.proto.alt == player.PLAYER_TITLE
    assert newest["hls_key"].endswith("/hls/index.m3u8")
    # ... every playlist and segment of the ladder signed (the bucket refuses unsigned reads)
    ladder = pipeline.world.keys(
        pipeline.world.processed_bucket, newest["hls_key"].rsplit("/", 1)[0]
    )
    assert any(not k.endswith(".m3u8") for k in ladder), ladder  # segments, not only playlists
    assert all(f"/{k}?X-Amz-Algorithm=" in page for k in ladder)
    # ... with hls.js inlined from the pinned package, nothing from a CDN
    assert player.hls_script() is not None and player.hls_script() in page
    assert "<script src=" not in page
    playlist = pipeline.world.client("s3").get_object(
        Bucket=pipeline.world.processed_bucket, Key=newest["hls_key"]
    )["Body"]
    rungs = data.parse_multivariant(playlist.read().decode())
    assert rungs
    assert any(c.startswith("Rungs: " + ", ".join(r.label for r in rungs)) for c in captions)
    # ... and its captions: the SUBTITLES rendition finalize added, signed with the rest (the
    # subtitle playlist and its VTT sit beside the rungs, so the listing above covers them)
    assert pipeline.labels(newest)["speech"]["captions"]["status"] == "REFERENCED"
    assert any(k.endswith(f"_captions_{newest['speech_language']}.vtt") for k in ladder), ladder
    assert any(f"Captions: {newest['speech_language']}" in c for c in captions)
    # And the latest labels.json summaries are the documents finalize wrote
    shown = [json.loads(document.value) for document in at.json]
    assert shown == [pipeline.labels(a) for a in travel[:3]]
    first = shown[0]
    assert f"source: {first['asset']['source']}" in " ".join(captions)
    assert f"license: {first['license']['name']}" in " ".join(captions)
    assert f"duration: {first['video']['duration_ms'] / 1000} s" in " ".join(captions)
    assert f"Credit: {first['attribution']['credit_line']}" in captions
    top = at.dataframe[2].value
    assert list(top["label"]) == [label["name"] for label in first["summary"]["top_labels"]]
    # And where the data comes from
    assert any("local world" in c for c in at.sidebar.caption.values)


def test_images_show_in_the_gallery_and_the_viewer_with_their_labels(pipeline, world_file, app):
    # Given the demo's nature run, which landed one image beside its clips
    [image] = [a for a in pipeline.assets("nature", "PROCESSED") if a.get("type") == "image"]
    activate(pipeline, "nature")

    # When the page renders
    at = app()

    # Then the gallery shows it as an image, its 320 px rendition as the thumbnail, its labels
    assert not errors(at)
    gallery = {key_of(img.value[0]): img for img in at.image}
    assert image["thumbnail_key"] in gallery
    assert image["thumbnail_key"].endswith("_small.jpg")
    captions = [c.value for c in at.caption]
    labels = ", ".join(image["top_labels"][:6])
    assert f"Image · Labels: {labels}" in captions
    assert "Tree" in image["top_labels"]
    # and the Images section opens it: its web rendition, format, size and labels
    assert at.selectbox(key="photo_asset").value == image["asset_id"]
    assert image["image_key"] in gallery
    assert gallery[image["image_key"]].captions == [image["title"]]
    [facts] = [c for c in captions if c.startswith("JPEG, ")]
    assert f"JPEG, {image['width']} x {image['height']} px" in facts
    assert f"Labels: {', '.join(image['top_labels'])}" in facts
    # and the player lists clips only
    # (its options read as titles, as the page shows them)
    player_options = at.selectbox(key="player_asset").options
    assert player_options and image["title"] not in player_options

    # When searching for one of its labels, Then the image is a hit, marked as an image
    at.text_input(key="label_search").input("tree").run()
    assert_label_search(at, pipeline.world.client("dynamodb"), pipeline.world.catalog_table, "Tree")
    hits = at.dataframe[-1].value.set_index("asset")
    assert hits.loc[image["asset_id"], "type"] == "image"


def test_a_rendered_story_plays_in_the_stories_section(pipeline, world_file, app):
    # Given the demo rendered a story from three photographs and a 6 s narration
    assert pipeline.runs.story is not None and pipeline.runs.story.status == "SUCCEEDED"

    # When the page renders
    at = app()

    # Then the Stories section offers it and plays its final video from the projects bucket
    assert not errors(at)
    assert at.selectbox(key="story_project").value == "demo-story"
    [video] = [v for v in at.get("video") if STORY_VIDEO in v.proto.url]
    assert key_of(video.proto.url) == "videos/demo-story_final_video.mp4"
    assert pipeline.world.projects_bucket in video.proto.url
    # and the link serves the rendered MP4: the narration's length, at the size asked for
    with urllib.request.urlopen(video.proto.url, timeout=10) as answer:  # noqa: S310 - loopback
        body = answer.read()
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        size = (stream.codec_context.width, stream.codec_context.height)
    assert size == (640, 360)
    assert abs(frames / 25 - 6.0) <= 1 / 25
    captions = " ".join(c.value for c in at.caption)
    assert "640x360 at 25 fps, 3 images" in captions


def test_failed_assets_show_the_reason_the_pipeline_recorded(pipeline, world_file, app):
    # Given nature active: its Pixabay clip's transcode failed in the demo
    activate(pipeline, "nature")
    failed = pipeline.assets("nature", "FAILED")
    assert [a["source"] for a in failed] == ["pixabay"]

    # When the page renders
    at = app()

    # Then the failed assets table lists it with the reason from the catalog
    assert not errors(at)
    assert metrics(at) == expected_metrics(pipeline, "nature")
    table = at.dataframe[2].value
    assert list(table["asset"]) == [a["asset_id"] for a in failed]
    assert list(table["reason"]) == [a["failure_reason"] for a in failed]
    assert "MediaConvert job" in table["reason"][0] and "1010" in table["reason"][0]


def test_a_campaign_without_assets_says_so_and_invites_a_run(pipeline, world_file, app):
    # Given tech active: the demo never ran it
    activate(pipeline, "tech")
    assert not pipeline.assets("tech")

    # When the page renders
    at = app()

    # Then the counters are zero and the page says the campaign is empty
    assert not errors(at)
    assert metrics(at)["Raw"] == "0"
    assert any("no assets for campaign tech" in i.value for i in at.info)
    assert "Nothing processed yet." in at.caption.values
    assert "Nothing to play yet." in at.caption.values
    assert not at.image


def test_search_by_label_uses_the_label_index(pipeline, world_file, app):
    # Given a label Rekognition found in a travel clip (its labels.json), and one nobody found
    travel = pipeline.assets("travel", "PROCESSED")[0]
    label = pipeline.labels(travel)["summary"]["top_labels"][0]["name"]
    at = app()

    # When searching for it in lower case
    at.text_input(key="label_search").input(label.lower()).run()

    # Then every hit is an asset the label index holds under it, with its catalog record
    assert_label_search(at, pipeline.world.client("dynamodb"), pipeline.world.catalog_table, label)
    hits = at.dataframe[-1].value
    assert travel["asset_id"] in set(hits["asset"])
    assert set(hits["status"]) == {"PROCESSED"}

    # When searching for a label no clip has, Then the page says so
    at.text_input(key="label_search").input("Submarine").run()
    assert any("No asset is labelled 'Submarine'" in i.value for i in at.info)


def word_hits(pipeline: Pipeline, word: str) -> set[str]:
    """Asset ids the catalog's word index holds under ``word`` (read here, not by the page)."""
    answer = pipeline.world.client("dynamodb").query(
        TableName=pipeline.world.catalog_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"WORD#{word}"}},
    )
    return {item["asset_id"]["S"] for item in answer["Items"]}


def test_search_by_spoken_word_uses_the_word_index(pipeline, world_file, app):
    # Given a travel clip with speech, and two words of its transcript (as labels.json has it)
    spoken = pipeline.assets("travel", "PROCESSED")[0]
    segments = pipeline.labels(spoken)["speech"]["segments"]
    first, second = words_of(segments[0]["text"])[:2]
    at = app()

    # When searching for the first, typed in capitals
    at.text_input(key="word_search").input(first.upper()).run()

    # Then the hits are exactly the assets the word index holds under it, with their records
    hits = at.dataframe[-1].value
    assert set(hits["asset"]) == word_hits(pipeline, first) and spoken["asset_id"] in set(
        hits["asset"]
    )
    row = hits[hits["asset"] == spoken["asset_id"]].iloc[0]
    said = [word for segment in segments for word in words_of(segment["text"])]
    assert row["said"] == f"{first} ×{said.count(first)}"
    assert row["first said at"] == page.clock(segments[0]["start_s"])
    assert row["language"] == spoken["speech_language"] and row["status"] == "PROCESSED"

    # When searching for two words, Then only assets saying both are listed
    at.text_input(key="word_search").input(f"{first} {second}").run()
    both = word_hits(pipeline, first) & word_hits(pipeline, second)
    assert set(at.dataframe[-1].value["asset"]) == both

    # When searching for a word no transcript has, Then the page says so
    at.text_input(key="word_search").input("submarine").run()
    assert any("No transcript says 'submarine'" in i.value for i in at.info)

    # When searching for more words than the page looks up, Then it says how many it takes
    at.text_input(key="word_search").input("one two three four five six").run()
    assert any(f"at most {data.MAX_QUERY_WORDS} words" in e.value for e in at.error)


# -- controls ------------------------------------------------------------------------------------
def test_choosing_a_campaign_changes_the_view_and_only_saving_changes_the_schedule(
    pipeline, world_file, app
):
    # Given the page with travel scheduled: chosen, marked as such, and its batch size set
    before = pipeline.stored_config()
    at = app()
    box = at.sidebar.selectbox(key="campaign")
    assert box.value == before["active_campaign"] == "travel"
    assert "travel (scheduled)" in box.options
    assert at.sidebar.slider(key="batch_size").value == before["batch_sizes"]["video"]
    scheduled = (
        f"Scheduled runs use **travel** with video batch size **{before['batch_sizes']['video']}**"
        " and image batch size **0**."
    )
    assert scheduled in at.sidebar.caption.values
    assert at.sidebar.button(key="save_schedule").disabled  # nothing to save yet

    # When the editor picks nature, then sets the batch size to 7
    at.sidebar.selectbox(key="campaign").select("nature").run()
    at.sidebar.slider(key="batch_size").set_value(7).run()

    # Then the page shows nature, but nothing stored changed: the schedule still runs travel
    assert metrics(at) == expected_metrics(pipeline, "nature")
    assert pipeline.stored_config() == before
    assert scheduled in at.sidebar.caption.values
    assert not at.sidebar.success

    # When the editor saves the choice as the scheduled campaign
    at.sidebar.button(key="save_schedule").click().run()

    # Then the parameter says so (the next scheduled run uses it) and the rest is intact
    assert pipeline.stored_config() == {
        **before,
        "active_campaign": "nature",
        # (a saved document names the image batch size, which an unsaved one reads as 0)
        "batch_sizes": {**before["batch_sizes"], "video": 7, "image": 0},
    }
    # And the page confirms what was saved and marks nature as the scheduled campaign
    assert [s.value for s in at.sidebar.success] == [
        "Saved: scheduled runs now use **nature** with video batch size **7** and image batch "
        "size **0**."
    ]
    assert (
        "Scheduled runs use **nature** with video batch size **7** and image batch size **0**."
        in at.sidebar.caption.values
    )
    assert "nature (scheduled)" in at.sidebar.selectbox(key="campaign").options
    assert at.sidebar.button(key="save_schedule").disabled
    # And a new session starts from the stored choices
    again = app()
    assert again.sidebar.selectbox(key="campaign").value == "nature"
    assert again.sidebar.slider(key="batch_size").value == 7


def test_run_now_runs_the_chosen_campaign_once_and_the_page_follows_the_run(
    pipeline, world_file, app, clean_env
):
    # Given the page open (2 s refresh period), its DescribeExecution calls recorded, and tech
    # (which the demo's scenarios and the other tests leave alone, so it has clips to ingest)
    # chosen with batch size 1, not saved
    clean_env.setenv("MEDIA_PIPELINE_REFRESH_S", "2")
    described = record_calls(clean_env, "stepfunctions", "DescribeExecution")
    sfn = pipeline.world.client("stepfunctions")
    before = pipeline.stored_config()
    at = app()
    listed = len(at.dataframe[1].value)
    assert len(described) == listed  # each listed run described once, then cached
    at.sidebar.selectbox(key="campaign").select("tech").run()
    at.sidebar.slider(key="batch_size").set_value(1).run()
    counted = metrics(at)
    assert counted == expected_metrics(pipeline, "tech")

    # When Run now is pressed
    at.sidebar.button(key="run_now").click().run()

    # Then one new execution runs tech with batch size 1, as its input, and the campaign
    # parameter (what the schedule runs) is untouched
    (ours,) = [
        e
        for e in sfn.list_executions(stateMachineArn=pipeline.world.state_machine_arn)["executions"]
        if e["name"].startswith("dashboard-tech-2")
    ]
    arn, name = ours["executionArn"], ours["name"]
    execution_input = sfn.describe_execution(executionArn=arn)["input"]
    assert json.loads(execution_input) == {"campaign": "tech", "batch_sizes": {"video": 1}}
    assert pipeline.stored_config() == before
    # And the page lists it at once (no cached listing), running, and links it in the console
    runs = at.dataframe[1].value.set_index("name")
    assert runs.loc[name, ["outcome", "details", "campaign"]].tolist() == [
        "RUNNING",
        "still running",
        "tech",
    ]
    (started,) = at.sidebar.success.values
    assert f"Started **{name}**" in started and "now **RUNNING**" in started
    assert f"#/v2/executions/details/{arn}" in started
    assert len(described) == listed + 1

    # When the run has finished (waited for, so no other test sees it half-done) and the
    # executions view's next refresh period begins (its timer reruns it; AppTest reruns all)
    finished = pipeline.world.wait(arn, timeout_s=300)
    time.sleep(2 - time.time() % 2 + 0.05)
    at.run()

    # Then the page shows what the run did: its outcome, and counters that include its clips
    # at once, not after the 15 s catalog cache
    assert finished.status == "SUCCEEDED", finished.cause
    summary = finished.output
    assert summary["processed"] >= 1
    runs = at.dataframe[1].value.set_index("name")
    assert runs.loc[name, ["outcome", "details"]].tolist() == [
        summary["status"],
        f"{summary['processed']} processed, {summary['failed']} failed",
    ]
    assert f"now **{summary['status']}**" in at.sidebar.success.values[0]
    assert metrics(at) == expected_metrics(pipeline, "tech")
    assert int(metrics(at)["Raw"]) == int(counted["Raw"]) + summary["processed"] + summary["failed"]
    # And only the run that changed was described again (the read budget: not a call per row)
    assert len(described) == listed + 2
    assert pipeline.stored_config() == before


def test_refresh_rereads_the_catalog(pipeline, world_file, app):
    table = pipeline.world.catalog_table
    dynamodb = pipeline.world.client("dynamodb")

    def count_failure(delta: int) -> None:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": "CAMPAIGN#nature"}, "sk": {"S": "STATUS#FAILED"}},
            UpdateExpression="ADD #n :d",
            ExpressionAttributeNames={"#n": "count"},
            ExpressionAttributeValues={":d": {"N": str(delta)}},
        )

    # Given the page rendered once for nature (counters cached)
    activate(pipeline, "nature")
    at = app()
    failed = int(metrics(at)["Failed"])
    assert failed == len(pipeline.assets("nature", "FAILED"))
    # And another failure recorded meanwhile
    count_failure(+1)
    try:
        # When the page reruns, the cached counters stay; when Refresh is pressed, they are read
        assert metrics(at.run())["Failed"] == str(failed)
        at.sidebar.button(key="refresh").click().run()

        # Then the new count shows
        assert metrics(at)["Failed"] == str(failed + 1)
    finally:
        count_failure(-1)


def test_executions_are_reread_each_refresh_period(pipeline, world_file, app, clean_env):
    # Given the page open with a 2 s refresh period (executions are cached for 15 s otherwise)
    clean_env.setenv("MEDIA_PIPELINE_REFRESH_S", "2")
    at = app()
    assert "Refreshed every 2 s while this page is open." in [c.value for c in at.caption]
    names = set(at.dataframe[1].value["name"])
    # And a run started elsewhere (the console, with input the pipeline refuses at once)
    name = f"console-{time.time_ns()}"
    pipeline.world.start({"campaign": "nope"}, name=name)
    assert name not in names

    # When the next period begins and the view reruns (the browser's timer does this; the
    # real timer is covered by the Chromium test)
    time.sleep(2 - time.time() % 2 + 0.05)
    at.run()

    # Then the new run is listed, well before the 15 s read cache would have expired
    assert name in set(at.dataframe[1].value["name"])


@pytest.mark.parametrize("value", ["0", "1.5", "soon", "86400", "²"])
def test_a_bad_refresh_interval_is_a_clear_message(pipeline, world_file, app, clean_env, value):
    # Given a refresh interval that is not whole seconds from 2 to 3600
    clean_env.setenv("MEDIA_PIPELINE_REFRESH_S", value)

    # When the page renders
    at = app()

    # Then the executions section, under its heading, names the variable and the value, and the
    # rest still renders
    assert not at.exception
    assert "Recent executions" in [h.value for h in at.subheader]
    assert errors(at) and f"MEDIA_PIPELINE_REFRESH_S={value!r}" in errors(at)[0]
    assert metrics(at) == expected_metrics(pipeline, "travel")


def test_run_now_is_disabled_without_a_state_machine(
    pipeline, world_file, tmp_path, clean_env, app
):
    # Given a world file without a state machine (Pipeline stack not deployed)
    path = write_world(pipeline, tmp_path / "no-sfn.json", state_machine_arn="")
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(path))

    # When the page renders
    at = app()

    # Then the data still shows, and Run now is disabled with the reason
    assert metrics(at) == expected_metrics(pipeline, "travel")
    assert at.sidebar.button(key="run_now").disabled
    assert any("Pipeline stack" in c for c in at.sidebar.caption.values)


# -- failures are messages, never stack traces -------------------------------------------------------
def test_missing_permission_on_the_catalog_is_a_clear_message(world_file, app, clean_env):
    # Given an identity that may not query the catalog
    deny(clean_env, "dynamodb", "Query")

    # When the page renders
    at = app()

    # Then it names the problem and the operation, without an exception
    assert not at.exception
    messages = errors(at)
    assert messages
    assert all("Permission denied" in m and "Query" in m for m in messages)
    # And sections that need other permissions still work
    assert len(at.dataframe[0].value) >= 4  # recent executions


def test_missing_permission_on_the_parameter_stops_the_page_with_a_message(
    world_file, app, clean_env
):
    deny(clean_env, "ssm", "GetParameter")
    at = app()
    assert not at.exception
    assert len(errors(at)) == 1
    assert "Permission denied" in errors(at)[0]
    assert "GetParameter" in errors(at)[0]
    assert not at.sidebar.selectbox


def test_saving_without_permission_keeps_the_page_and_says_why(
    pipeline, world_file, app, clean_env
):
    at = app()
    deny(clean_env, "ssm", "PutParameter")
    at.sidebar.selectbox(key="campaign").select("tech").run()
    at.sidebar.button(key="save_schedule").click().run()
    assert not at.exception
    assert any("Permission denied" in e.value for e in at.sidebar.error)
    assert pipeline.stored_config()["active_campaign"] == "travel"


def explicit(pipeline: Pipeline, env: pytest.MonkeyPatch) -> None:
    """The world's resource names as ``MEDIA_PIPELINE_*`` variables, its endpoint for boto3."""
    world = pipeline.world
    env.delenv("MEDIA_PIPELINE_WORLD")
    env.setenv("AWS_ENDPOINT_URL", pipeline.endpoint_url)
    env.setenv("MEDIA_PIPELINE_CATALOG_TABLE", world.catalog_table)
    env.setenv("MEDIA_PIPELINE_CONFIG_PARAMETER", world.config_parameter)
    env.setenv("MEDIA_PIPELINE_PROCESSED_BUCKET", world.processed_bucket)


def test_missing_credentials_is_a_clear_message(pipeline, world_file, app, clean_env, tmp_path):
    # Given explicit resource names, but no credentials anywhere
    explicit(pipeline, clean_env)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        clean_env.delenv(name, raising=False)
    clean_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    clean_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    clean_env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    data.clear_all()  # sessions resolve credentials once

    # When the page renders
    at = app()

    # Then it says credentials are missing and how to fix it
    assert not at.exception
    assert len(errors(at)) == 1
    assert "No AWS credentials" in errors(at)[0]
    assert "make dashboard" in errors(at)[0]


def test_explicit_variables_are_used_and_hls_waits_for_cloudfront(
    pipeline, world_file, app, clean_env
):
    # Given the resource names as MEDIA_PIPELINE_* variables and AWS_ENDPOINT_URL (no world file),
    # as for a deployment
    explicit(pipeline, clean_env)
    clean_env.setenv("MEDIA_PIPELINE_STATE_MACHINE_ARN", pipeline.world.state_machine_arn)

    at = app()

    assert not errors(at)
    assert metrics(at) == expected_metrics(pipeline, "travel")
    assert any("MEDIA_PIPELINE_* variables" in c for c in at.sidebar.caption.values)
    # And the player plays the MP4 proxy, and says why the HLS ladder does not play here yet
    newest = pipeline.assets("travel", "PROCESSED")[0]
    # (the other <video> on the page is the Stories section's)
    (video,) = [v for v in at.get("video") if STORY_VIDEO not in v.proto.url]
    assert key_of(video.proto.url) == newest["mp4_key"]
    assert not at.get("iframe")
    assert any(i.value == player.HLS_ON_AWS for i in at.info)
    assert "CloudFront" in player.HLS_ON_AWS


def test_a_deployment_with_cloudfront_plays_the_ladder_from_the_distribution(
    pipeline, world_file, app, clean_env
):
    # Given a deployment whose Stateful stack names its CloudFront distribution
    explicit(pipeline, clean_env)
    clean_env.setenv("MEDIA_PIPELINE_DELIVERY_DOMAIN", "d111111abcdef8.cloudfront.net")

    at = app()

    # Then the proxy, the posters and the HLS ladder load from it, unsigned
    assert not errors(at)
    newest = pipeline.assets("travel", "PROCESSED")[0]
    base = "https://d111111abcdef8.cloudfront.net/"
    (video,) = at.get("video")
    assert video.proto.url == base + newest["mp4_key"]
    assert all(img.value[0].startswith(base) for img in at.image)
    (frame,) = at.get("iframe")
    assert f'"{base}{newest["hls_key"]}"' in frame.proto.srcdoc
    assert "X-Amz-Signature" not in frame.proto.srcdoc
    assert not any(i.value == player.HLS_ON_AWS for i in at.info)


KEY_PAIR_ID = "K2JCJMDEHXQW5F"
DOMAIN = "media.example.com"


def signing_key() -> tuple[str, Any]:
    """A 2048-bit RSA key as the operator stores it (PEM), and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem.decode(), key.public_key()


def check_signed(url: str, public_key: Any) -> dict[str, Any]:
    """A CloudFront signed URL (custom policy) as the edge checks it; its policy statement."""
    query = dict(parse_qsl(urlsplit(url).query))
    assert set(query) == {"Policy", "Signature", "Key-Pair-Id"}, url
    assert query["Key-Pair-Id"] == KEY_PAIR_ID
    policy = from_url_safe_b64(query["Policy"])
    # (raises InvalidSignature unless the key group's public key verifies it; SHA-1 is what
    # CloudFront verifies)
    signature = from_url_safe_b64(query["Signature"])
    public_key.verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    [statement] = json.loads(policy)["Statement"]
    return dict(statement)


def test_a_private_library_plays_through_cloudfront_with_links_the_page_signs(
    pipeline, world_file, app, clean_env
):
    # Given a deployment serving a private library (a key group; the private key in the
    # Secrets Manager secret the Stateful stack names)
    pem, public_key = signing_key()
    secret = f"media-pipeline/dev/cookie-signing-key-{time.time_ns()}"
    pipeline.world.client("secretsmanager").create_secret(Name=secret, SecretString=pem)
    explicit(pipeline, clean_env)
    clean_env.setenv("MEDIA_PIPELINE_DELIVERY_DOMAIN", DOMAIN)
    clean_env.setenv("MEDIA_PIPELINE_DELIVERY_KEY_PAIR_ID", KEY_PAIR_ID)
    clean_env.setenv("MEDIA_PIPELINE_DELIVERY_SIGNING_KEY_SECRET", secret)

    # When the page renders
    started = time.time()
    at = app()

    # Then the proxy and the posters load from the distribution, signed with that key for
    # everything it serves (video/ and image/, by its bucket policy) for an hour
    assert not errors(at)
    newest = pipeline.assets("travel", "PROCESSED")[0]
    base = f"https://{DOMAIN}/"
    (video,) = at.get("video")
    assert video.proto.url.split("?")[0] == base + newest["mp4_key"]
    statement = check_signed(video.proto.url, public_key)
    assert statement["Resource"] == f"{base}*"
    expires = statement["Condition"]["DateLessThan"]["AWS:EpochTime"]
    assert started + data.URL_EXPIRY_S - 5 <= expires <= time.time() + data.URL_EXPIRY_S
    assert at.image and all(img.value[0].startswith(base) for img in at.image)
    for img in at.image:
        check_signed(img.value[0], public_key)
    # And the HLS ladder plays from it: every object the player may request has its signed URL
    (frame,) = at.get("iframe")
    srcdoc = frame.proto.srcdoc
    signed = json.loads(srcdoc.split("const signed = ", 1)[1].split(";\n", 1)[0])
    ladder = data.hls_ladder(data.resources(), newest["hls_key"])
    assert set(signed) == {base + key for key in ladder.keys}
    for plain, url in signed.items():
        assert url.startswith(plain + "?") and check_signed(url, public_key)
    assert "X-Amz-Signature" not in srcdoc
    assert not any(i.value == player.HLS_ON_AWS for i in at.info)


def test_a_signing_secret_that_is_not_a_key_is_a_clear_message(
    pipeline, world_file, app, clean_env
):
    # Given a private library whose secret holds something other than a PEM private key
    secret = f"media-pipeline/dev/not-a-key-{time.time_ns()}"
    pipeline.world.client("secretsmanager").create_secret(Name=secret, SecretString="hunter2")
    explicit(pipeline, clean_env)
    clean_env.setenv("MEDIA_PIPELINE_DELIVERY_DOMAIN", DOMAIN)
    clean_env.setenv("MEDIA_PIPELINE_DELIVERY_KEY_PAIR_ID", KEY_PAIR_ID)
    clean_env.setenv("MEDIA_PIPELINE_DELIVERY_SIGNING_KEY_SECRET", secret)

    at = app()

    # Then the page says which secret and what it must hold, and never shows its value
    assert not at.exception
    found = errors(at)
    assert found and all("Media links cannot be signed" in e for e in found)
    assert f"the secret {secret} cannot sign CloudFront links" in found[0]
    assert "PEM private key" in found[0] and "hunter2" not in " ".join(found)


def test_stack_not_found_is_a_clear_message(pipeline, app, clean_env):
    # Given no world and no variables: discovery by environment name, and nothing deployed
    # (the local world deploys without CloudFormation, so moto knows no Dev-* stack)
    clean_env.setenv("AWS_ENDPOINT_URL", pipeline.endpoint_url)
    clean_env.setenv("MEDIA_PIPELINE_ENV", "dev")

    at = app()

    assert not at.exception
    assert len(errors(at)) == 1
    assert "Stack not found" in errors(at)[0]
    assert "Dev-Stateful" in errors(at)[0]


def test_stack_outputs_are_discovered_by_environment_name(pipeline, world_file, app, clean_env):
    # Given Prod stacks whose outputs name the world's resources
    world = pipeline.world
    clean_env.delenv("MEDIA_PIPELINE_WORLD")
    clean_env.setenv("AWS_ENDPOINT_URL", pipeline.endpoint_url)
    clean_env.setenv("MEDIA_PIPELINE_ENV", "prod")
    cfn = world.client("cloudformation")
    outputs = {
        "Prod-Stateful": {
            "CatalogTableName": world.catalog_table,
            "CampaignParameterName": world.config_parameter,
            "ProcessedBucketName": world.processed_bucket,
            "RawBucketName": world.raw_bucket,
        },
        "Prod-Pipeline": {"StateMachineArn": world.state_machine_arn},
    }
    for name, values in outputs.items():
        template = {
            "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        with contextlib.suppress(cfn.exceptions.AlreadyExistsException):
            cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))

    # When the page renders
    at = app()

    # Then it found everything through the stack outputs
    assert not errors(at)
    assert metrics(at) == expected_metrics(pipeline, "travel")
    assert not at.sidebar.button(key="run_now").disabled
    assert any("Prod-Stateful, Prod-Pipeline" in c for c in at.sidebar.caption.values)


def test_unknown_environment_name_is_a_clear_message(app, clean_env):
    clean_env.setenv("MEDIA_PIPELINE_ENV", "staging")
    at = app()
    assert not at.exception
    assert "not a known environment" in errors(at)[0]


def test_missing_world_file_is_a_clear_message(app, clean_env, tmp_path):
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(tmp_path / "absent.json"))
    at = app()
    assert "make demo" in errors(at)[0]


# -- helpers -------------------------------------------------------------------------------------
LAMBDA_CAUSE = json.dumps(
    {
        "errorType": "SourceUnavailable",
        "errorMessage": "Pixabay answered 503. Retried 3 times.",
        "stackTrace": ['  File "/var/task/app.py", line 1'],
    }
)


@pytest.mark.parametrize(
    ("status", "output", "error", "cause", "shown"),
    [
        ("RUNNING", None, None, None, ("RUNNING", "still running")),
        (
            "SUCCEEDED",
            '{"processed": 2, "failed": 0, "status": "SUCCEEDED"}',
            None,
            None,
            ("SUCCEEDED", "2 processed, 0 failed"),
        ),
        (
            "SUCCEEDED",
            '{"processed": 1, "failed": 2, "status": "PARTIAL", "not_recorded": 1}',
            None,
            None,
            ("PARTIAL", "1 processed, 2 failed (1 not in the catalog)"),
        ),
        (
            "SUCCEEDED",
            '{"processed": 0, "failed": 0, "status": "EMPTY"}',
            None,
            None,
            ("EMPTY", "nothing new to process"),
        ),
        ("SUCCEEDED", '"not a summary"', None, None, ("SUCCEEDED", "")),
        (
            "FAILED",
            None,
            "SourceUnavailable",
            LAMBDA_CAUSE,
            ("FAILED", "SourceUnavailable: Pixabay answered 503."),
        ),
        (
            "FAILED",
            None,
            "States.Runtime",
            "The run failed. See the logs.",
            ("FAILED", "States.Runtime: The run failed."),
        ),
        ("TIMED_OUT", None, None, None, ("TIMED_OUT", "timed out")),
        ("ABORTED", None, None, None, ("ABORTED", "aborted")),
    ],
    ids=[
        "running",
        "succeeded",
        "partial",
        "empty",
        "no-summary",
        "lambda-error",
        "text-cause",
        "timed-out",
        "aborted",
    ],
)
def test_an_execution_reads_as_its_outcome(status, output, error, cause, shown):
    assert data.outcome_of(status, output, error, cause) == shown


def test_execution_names_are_unique_readable_and_short():
    names = {data.execution_name("a-very-long-campaign-name-of-forty-chars") for _ in range(50)}
    assert len(names) == 50
    assert all(len(n) <= 80 and n.startswith("dashboard-a-very-long") for n in names)
    # A campaign too long for the limit is cut; the time and the random part never are
    at = datetime(2026, 12, 4, 20, 14, 8, tzinfo=UTC)
    long = data.execution_name("c" * 80, now=at)
    assert len(long) == 80
    assert re.fullmatch(r"dashboard-c{44}-20261204T201408Z-[0-9a-f]{8}", long)


def test_the_ladder_is_read_from_a_multivariant_playlist():
    text = (
        "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360,CODECS="avc1.4d401f,mp4a.40.2"\n'
        "index_360p.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\nindex_720p.m3u8\n"
    )
    rungs = data.parse_multivariant(text)
    assert [(r.uri, r.bandwidth, r.resolution) for r in rungs] == [
        ("index_360p.m3u8", 1_000_000, "640x360"),
        ("index_720p.m3u8", 2_500_000, "1280x720"),
    ]
    assert [r.label for r in rungs] == ["360p (1.0 Mb/s)", "720p (2.5 Mb/s)"]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("AccessDeniedException", data.AccessDenied),
        ("UnrecognizedClientException", data.MissingCredentials),
        ("ResourceNotFoundException", data.ResourceMissing),
        ("ThrottlingException", data.DashboardError),
    ],
)
def test_client_errors_become_messages(code, kind):
    from botocore.exceptions import ClientError

    err = ClientError({"Error": {"Code": code, "Message": "m"}}, "Query")
    translated = data.translate(err, "reading")
    assert type(translated) is kind
    assert "Query" in str(translated) or "reading" in str(translated)


def test_a_dead_letter_queue_is_dry_run_then_redriven_from_the_page(pipeline, world_file, app):
    # Given an upload whose start failed after Lambda's retries (a Step Functions outage)
    world = pipeline.world
    event = world.upload("uploads/dashboard-redrive.mp4", b"\x00\x00\x00\x18ftypmp42 poisoned")
    with world.start_execution_outage():
        (answer,) = world.deliver_event(event)
    assert answer["dead_lettered"] is True
    name = "UndeliveredUploadStarts"
    sqs = world.client("sqs")
    url = world.dead_letter_registry[name]["url"]
    before = {e["name"] for e in world.executions()}

    # When the operator picks the queue and asks for a dry run
    at = app()
    assert not errors(at)
    at.selectbox(key="dead_letter_queue").select(name).run()
    at.button(key="dead_letter_dry_run").click().run()

    # Then the page lists the message and what a redrive would do, and nothing is sent yet
    assert not errors(at)
    (table,) = [t for t in at.dataframe if "about" in t.value.columns]
    rows = table.value.to_dict("records")
    (row,) = [r for r in rows if r["about"].endswith("uploads/dashboard-redrive.mp4")]
    assert row["action"] == "send" and row["error"] == "ServiceUnavailable"
    assert {e["name"] for e in world.executions()} == before
    sends = sum(r["action"] == "send" for r in rows)

    # When they press the redrive button
    at.button(key="dead_letter_redrive").click().run()

    # Then the upload starts one run, the queue is empty, and the page says what was sent
    assert not errors(at)
    started = {e["name"] for e in world.executions()} - before
    assert len(started) == 1 and next(iter(started)).startswith("upload-")
    assert "Messages" not in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    notices = " ".join(s.value for s in at.success)
    assert f"Redrive of {name}: {sends} sent" in notices
