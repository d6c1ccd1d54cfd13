"""The local world on real media: what the pipeline writes decodes, and its shots are the cuts.

Each fixture clip is real encoded video (``localworld.media``): MediaConvert's stand-in really
transcodes it and Rekognition's really looks at the proxy. These scenarios decode what landed
in the processed bucket and compare ``labels.json`` with the clips' ground truth.

Images too, so far without the workflow (it has no image branch yet; issue 19 goes on): the
deployed images function is invoked as Lambda would invoke it, with its synthesized environment
and role (``localworld.iam`` checks every call), and Rekognition's image APIs are answered by
the world's stand-in (``localworld/rekognition_image.py``) for the rendition it chose.
"""

from __future__ import annotations

import io
import json
from pathlib import PurePosixPath
from typing import Any

import av
import numpy as np
from PIL import Image

from lambdas.images.analysis import RekognitionImage
from localworld import World
from localworld.media import (
    SCENES,
    UPLOAD_ROTATED,
    ClipSpec,
    draw_frame,
    render,
    text_as_mp4,
    truncated_mp4,
    zero_length,
)
from localworld.sources import COMMONS, PIXABAY
from tests.lambdas.images import fixtures

FRAME_MS = 40.0  # every fixture is 25 fps: "within one frame"


def _played(asset: dict[str, Any]) -> ClipSpec:
    """The fixture spec whose pixels this asset's renditions were made from."""
    source_id = str(asset["source_id"])
    for clips in COMMONS.values():
        for commons in clips:
            if str(commons.page_id) == source_id:
                return commons.played
    for pixabay_clips in PIXABAY.values():
        for pixabay in pixabay_clips:
            if str(pixabay.video_id) == source_id:
                return pixabay.played
    raise KeyError(source_id)


def _decode(body: bytes) -> tuple[Any, int, float]:
    """(first video stream's codec context, frames decoded, seconds) of an encoded file."""
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        seconds = float(frames[-1].time - frames[0].time) + 1 / float(stream.average_rate)
        return stream.codec_context, len(frames), seconds


def _object(world: World, key: str) -> bytes:
    body: bytes = (
        world.client("s3").get_object(Bucket=world.processed_bucket, Key=key)["Body"].read()
    )
    return body


def test_a_campaign_run_lands_renditions_that_decode_and_shots_that_are_the_cuts(
    clean_world: World,
) -> None:
    world = clean_world
    # When the weekly schedule runs the active campaign (travel, batch of 2)
    run = world.run({}, name="real-media-travel", timeout_s=120)
    assert run.status == "SUCCEEDED", run.cause

    travel = [a for a in world.assets() if a["campaign"] == "travel" and a["source"] != "upload"]
    assert travel
    assert [(a["asset_id"], a["status"], a.get("failure_reason")) for a in travel] == [
        (a["asset_id"], "PROCESSED", None) for a in travel
    ]
    for asset in travel:
        spec = _played(asset)
        document = world.labels_document(asset["labels_key"])

        # Then labels.json says what the source file is, as the probe read it (the source, not
        # the proxy Rekognition saw)
        technical = document["technical"]
        [source_video] = technical["video"]
        assert technical["container"] == spec.container
        assert (source_video["codec"], source_video["height"]) == (spec.video_codec, spec.height)
        assert abs(technical["duration_s"] - spec.duration_s) <= 0.1
        assert technical["mediaconvert"]["ok"] is True
        # and the catalog keeps what people filter on
        assert (asset["source_codec"], asset["height"]) == (spec.video_codec, spec.height)
        assert asset["has_audio"] is (spec.audio_codec is not None)

        # and the MP4 proxy is H.264 at the source's height, as long as the clip
        codec, frames, seconds = _decode(_object(world, document["renditions"]["mp4_key"]))
        assert codec.name == "h264"
        assert codec.height == spec.height
        assert abs(seconds - spec.duration_s) <= FRAME_MS / 1000
        assert abs(frames - spec.frame_count) <= 1

        # and every HLS rung the multivariant playlist lists is real segments of the whole clip
        master_key = document["renditions"]["hls_manifest_key"]
        folder = str(PurePosixPath(master_key).parent)
        master = _object(world, master_key).decode()
        variants = [line for line in master.splitlines() if line and not line.startswith("#")]
        assert variants, master
        for variant in variants:
            playlist = _object(world, f"{folder}/{variant}").decode()
            assert "#EXT-X-ENDLIST" in playlist
            listed = sum(
                float(line.split(":", 1)[1].rstrip(","))
                for line in playlist.splitlines()
                if line.startswith("#EXTINF:")
            )
            assert abs(listed - spec.duration_s) <= 0.1, (variant, listed)
            segments = [line for line in playlist.splitlines() if line.endswith(".ts")]
            decoded = sum(_decode(_object(world, f"{folder}/{s}"))[1] for s in segments)
            assert abs(decoded - spec.frame_count) <= 1

        # and the thumbnails are real frames of the clip, not flat images
        thumbnails = document["thumbnails"]["keys"]
        assert thumbnails and document["thumbnails"]["poster_key"] in thumbnails
        for key in thumbnails:
            picture = np.asarray(Image.open(io.BytesIO(_object(world, key))).convert("RGB"))
            assert picture.shape[0] == min(spec.height, picture.shape[0])
            assert float(picture.std()) > 5.0, f"{key} is a uniform image"

        # and labels.json's shots start at the clip's hard cuts, within one frame
        shots = document["summary"]["shots"]
        starts = [shot["start_ms"] for shot in shots]
        assert starts[0] == 0
        expected = [cut * 1000 for cut in spec.cut_times_s]
        assert len(starts) - 1 == len(expected), (starts, expected)
        for found, cut in zip(starts[1:], expected, strict=True):
            assert abs(found - cut) <= FRAME_MS, (starts, expected)
        # and the black stretch is Rekognition's BlackFrames cue, within one frame
        cues = [c for c in document["summary"]["technical_cues"] if c["type"] == "BlackFrames"]
        assert len(cues) == len(spec.black_spans_s)
        for cue, (start, end) in zip(cues, spec.black_spans_s, strict=True):
            assert abs(cue["start_ms"] - start * 1000) <= FRAME_MS
            assert abs(cue["end_ms"] - end * 1000) <= FRAME_MS

        # and the labels are those of the scenes that were drawn, not random words
        drawn = {name for scene, _ in spec.scenes for name, *_ in SCENES[scene].labels}
        top = {label["name"] for label in document["summary"]["top_labels"]}
        assert top and top <= drawn, (top, drawn)
        # and each scene's drawn object comes with the box Rekognition measured around it
        boxed = [
            label for label in document["summary"]["top_labels"] if label["instances"]["count"]
        ]
        assert boxed, "no label carried an instance"
        for label in boxed:
            for kept in label["instances"]["top"]:
                box = kept["bounding_box"]
                assert 0 <= box["left"] < 1 and 0.4 <= box["top"] < 1, box
                assert 0.15 <= box["width"] <= 0.25 and 0.2 <= box["height"] <= 0.3, box
        # and what Rekognition saw is read from the file it analysed
        assert document["video"]["duration_ms"] == round(spec.duration_s * 1000)

        # and the analysis started as soon as Rekognition had something it reads: an H.264 MP4
        # source itself, beside its one transcode job; otherwise the proxy, made by its own job
        # first, beside the job making the HLS ladder and thumbnails
        _assert_analysed_as_soon_as_possible(world, asset, document, spec)


def _assert_analysed_as_soon_as_possible(
    world: World, asset: dict[str, Any], document: dict[str, Any], spec: ClipSpec
) -> None:
    assert world.mediaconvert is not None and world.rekognition is not None
    analysed = document["processing"]["analysed"]
    jobs = {
        world.mediaconvert.jobs[r.job_id].body["UserMetadata"]["job"]: r
        for r in world.mediaconvert.job_records()
        if world.mediaconvert.jobs[r.job_id].body["UserMetadata"]["asset_id"] == asset["asset_id"]
    }
    analyses = [
        r
        for r in world.rekognition.job_records()
        if (r.bucket, r.key) == (analysed["bucket"], analysed["key"])
    ]
    assert len(analyses) == 3, analyses
    started = min(r.started_s for r in analyses)
    if spec.container == "mp4":
        assert (analysed["input"], analysed["bucket"]) == ("source", world.raw_bucket)
        assert analysed["key"] == asset["key"]
        assert set(jobs) == {"full"}
        # in parallel: every analysis started before the transcode job ended
        assert all(r.started_s < (jobs["full"].finished_s or 0.0) for r in analyses), jobs
    else:
        assert (analysed["input"], analysed["bucket"]) == ("proxy", world.processed_bucket)
        assert analysed["key"] == document["renditions"]["mp4_key"]
        assert set(jobs) == {"proxy", "renditions"}
        proxy, renditions = jobs["proxy"], jobs["renditions"]
        assert proxy.output_groups == ("mp4-proxy",)
        # after the proxy existed, and before the ladder and thumbnails were done
        assert (proxy.finished_s or 0.0) <= started < (renditions.finished_s or 0.0), jobs
    assert document["processing"]["transcode_job_ids"] == [
        r.job_id for r in sorted(jobs.values(), key=lambda r: r.submitted_s)
    ]


def test_a_rotated_phone_upload_comes_out_upright(clean_world: World) -> None:
    world = clean_world
    # Given a phone clip stored landscape with a 90-degree display rotation
    event = world.upload("uploads/phone/harbour-portrait.mp4", render(UPLOAD_ROTATED))

    # When its upload event starts a run
    [answer] = world.deliver_event(event)
    run = world.wait(world.execution_arn(answer["payload"]["name"]), timeout_s=120)
    assert run.status == "SUCCEEDED", run.cause
    [asset] = [a for a in world.assets() if a["key"].endswith("/harbour-portrait.mp4")]
    assert asset["status"] == "PROCESSED", asset.get("failure_reason")

    # Then the proxy is portrait (MediaConvert rotates with Rotate AUTO)
    document = world.labels_document(asset["labels_key"])
    codec, _frames, seconds = _decode(_object(world, document["renditions"]["mp4_key"]))
    assert codec.width < codec.height
    assert abs(seconds - UPLOAD_ROTATED.duration_s) <= FRAME_MS / 1000


def test_broken_uploads_fail_alone_with_a_reason_and_leave_nothing_behind(
    clean_world: World,
) -> None:
    world = clean_world
    assert world.mediaconvert is not None and world.rekognition is not None
    broken = {
        "uploads/broken/truncated.mp4": truncated_mp4(),
        "uploads/broken/error-page.mp4": text_as_mp4(),
        "uploads/broken/empty.mp4": zero_length(),
    }
    jobs_before = len(world.mediaconvert.requests)
    rekognition_before = len(world.rekognition.jobs)

    # When each broken file is dropped under uploads/
    runs = []
    for key, body in broken.items():
        [answer] = world.deliver_event(world.upload(key, body))
        assert answer["error"] is None, answer["payload"]
        runs.append(world.wait(world.execution_arn(answer["payload"]["name"]), timeout_s=120))

    # Then the two files that became assets fail alone: their runs succeed with a summary
    truncated_run, error_page_run, empty_run = runs
    assert truncated_run.status == error_page_run.status == "SUCCEEDED"
    assert truncated_run.output["status"] == error_page_run.output["status"] == "PARTIAL"
    # (an upload's source id is the object version: "<key>?versionId=<id>")
    assets = {
        str(a["source_id"]).split("?", 1)[0].rsplit("/", 1)[-1]: a
        for a in world.assets()
        if str(a.get("source_id", "")).startswith("uploads/broken/")
    }
    assert set(assets) == {"truncated.mp4", "error-page.mp4"}, assets
    assert all(a["status"] == "FAILED" for a in assets.values()), assets
    # refused by the probe, which says what is wrong with each file
    reasons = {name: str(a["failure_reason"]) for name, a in assets.items()}
    assert reasons["truncated.mp4"].startswith("Unprocessable: "), reasons
    assert "truncated media file" in reasons["truncated.mp4"], reasons
    assert reasons["error-page.mp4"].startswith("Unprocessable: "), reasons
    assert "not a media file" in reasons["error-page.mp4"], reasons
    # and the empty file is refused by ingest: its run fails with a readable cause, and the
    # failed run's summary says why
    assert empty_run.status == "FAILED"
    assert empty_run.cause is not None and empty_run.cause.startswith("The run failed: ")
    assert "the file is empty" in empty_run.cause and len(empty_run.cause) <= 500
    summary = next(n for n in world.notifications() if empty_run.name in n["message"])
    assert "the file is empty" in summary["message"], summary["message"]

    # and nothing was written for them in the processed bucket
    for asset in assets.values():
        folder = str(PurePosixPath(asset["key"]).with_suffix(""))
        assert world.keys(world.processed_bucket, folder) == []

    # and nothing was paid for: the probe refused them before any MediaConvert or Rekognition
    # call
    assert len(world.mediaconvert.requests) == jobs_before
    assert len(world.rekognition.jobs) == rekognition_before


def test_an_ogg_original_is_ingested_as_its_webm_derivative(clean_world: World) -> None:
    world = clean_world
    # Given the travel campaign's Ogg original (MediaConvert cannot read Theora)
    ferry = next(c for c in COMMONS["travel"] if c.derivative is not None)

    # When a run for travel with a larger batch ingests it
    run = world.run({"campaign": "travel", "batch_sizes": {"video": 5}}, name="travel-ogv")
    assert run.status == "SUCCEEDED", run.cause

    # Then the raw object is Commons' WebM derivative and the asset was processed from it
    [asset] = [a for a in world.assets() if str(a["source_id"]) == str(ferry.page_id)]
    assert asset["key"].endswith(".webm")
    raw = world.client("s3").get_object(Bucket=world.raw_bucket, Key=asset["key"])["Body"].read()
    assert raw == ferry.derivative_body
    assert asset["status"] == "PROCESSED", asset.get("failure_reason")
    assert ferry.url not in world.fixtures.requests


# -- images (the deployed function, not yet the workflow) ---------------------------------------
IMAGE_KEY = "image/upload/uploads/20261203_070000/bar.jpg"
IMAGE_PREFIX = "image/upload/uploads/20261203_070000/bar/images/bar_"


def invoke_images(world: World, key: str) -> dict[str, Any]:
    answer = world.client("lambda").invoke(
        FunctionName=world.function_name("lambdas.images.handler.handler"),
        Payload=json.dumps(
            {"asset": {"bucket": world.raw_bucket, "key": key, "asset_id": "upload-e2e-images"}}
        ).encode(),
    )
    return {"error": answer.get("FunctionError"), **json.loads(answer["Payload"].read())}


def scene_photo(scene: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(draw_frame(SCENES[scene], 1600, 900, 0.0)).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_the_images_function_renders_an_image_as_its_role_allows_and_it_is_analysed(
    world: World,
) -> None:
    # Given a photo of the bar scene in the raw zone under image/
    s3 = world.client("s3")
    s3.put_object(Bucket=world.raw_bucket, Key=IMAGE_KEY, Body=scene_photo("bar"))

    # When the deployed images function runs on it
    result = invoke_images(world, IMAGE_KEY)

    # Then its renditions are in the processed zone (its role may write there), each size in
    # each format, and the record names the rendition Rekognition reads
    assert result["error"] is None, result
    written = sorted(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=world.processed_bucket, Prefix=IMAGE_PREFIX).get(
            "Contents", []
        )
    )
    assert written == sorted(r["key"] for r in result["renditions"])
    assert {(r["size"], r["format"]) for r in result["renditions"]} == {
        (size, fmt) for size in ("small", "medium", "large") for fmt in ("WEBP", "AVIF", "JPEG")
    }
    # (1600 px wide: "large", 2560 px, is the source's own size, never upscaled)
    chosen = result["analysis_input"]
    assert (chosen["key"], chosen["width"], chosen["height"]) == (
        f"{IMAGE_PREFIX}large.jpg",
        1600,
        900,
    )
    # And Rekognition's image APIs read that rendition: the scene's labels, its object's box
    found = RekognitionImage(world.client("rekognition")).analyze(chosen["bucket"], chosen["key"])
    assert found["labels"]["labels"][0]["name"] == "Person"
    assert found["labels"]["labels"][0]["instances"][0]["bounding_box"]["Top"] > 0.5
    assert found["moderation"]["flagged"] is True


def test_a_refused_image_fails_the_invocation_with_the_reason_and_leaves_nothing(
    world: World,
) -> None:
    # Given a file that is text named .png, and one no rendition of which Rekognition can read
    s3 = world.client("s3")
    cases = {
        "image/upload/uploads/20261203_070001/notes.png": (fixtures.text_as_png(), "not an image"),
        "image/upload/uploads/20261203_070001/sliver.png": (
            fixtures.sliver_png(),
            "at least 80 px on each side",
        ),
    }
    for key, (body, reason) in cases.items():
        s3.put_object(Bucket=world.raw_bucket, Key=key, Body=body)
        # When the function runs; Then it fails as Unprocessable with the reason (the workflow's
        # catch records it), and nothing it wrote stays in the processed zone
        result = invoke_images(world, key)
        assert result["error"] == "Unhandled" and result["errorType"] == "Unprocessable", result
        assert reason in result["errorMessage"]
        folder = key.rsplit(".", 1)[0] + "/"
        listed = s3.list_objects_v2(Bucket=world.processed_bucket, Prefix=folder)
        assert not listed.get("Contents"), listed
