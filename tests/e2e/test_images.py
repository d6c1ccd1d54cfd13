"""Images through the whole local world: a dropped photo and a campaign's images take the image
path of the synthesized state machine (render, analyse, finalize image) on real pixels, and land
with their labels.json (validated against its published schema), renditions and catalog record.
"""

from __future__ import annotations

import io

from PIL import Image

from lambdas.shared.catalog import label_key
from lambdas.shared.keys import AssetKeys
from localworld import World
from localworld.sources import COMMONS_IMAGES, PIXABAY_IMAGES


def _states(world: World, execution_arn: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in world.history(execution_arn)
        if e["type"].endswith("StateEntered")
    ]


def _decoded(world: World, key: str) -> Image.Image:
    body = world.client("s3").get_object(Bucket=world.processed_bucket, Key=key)["Body"].read()
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def test_a_dropped_photo_travels_the_image_path_and_lands_with_its_labels(
    clean_world: World,
) -> None:
    world = clean_world
    # Given an operator drops a photo of the tech desk scene under uploads/
    photo = COMMONS_IMAGES["tech"][0].body
    event = world.upload("uploads/studio/workbench.jpg", photo, content_type="image/jpeg")

    # When its event reaches the upload trigger and the run ends
    [started] = world.deliver_event(event)
    assert started["error"] is None, started
    execution = next(e for e in world.executions() if e["name"] == started["payload"]["name"])
    run = world.wait(execution["executionArn"])

    # Then the run succeeded through the image path, never the video one
    assert run.status == "SUCCEEDED", run.cause
    assert run.output == {"processed": 1, "failed": 0, "status": "SUCCEEDED"}
    states = _states(world, execution["executionArn"])
    assert {"Image or video?", "Render image", "Analyse image", "Finalize image"} <= set(states)
    assert "Probe" not in states and "Transcode" not in states

    # and the catalog records an image, processed, with its labels and what the page shows
    [asset] = [a for a in world.assets() if a["key"].endswith("/workbench.jpg")]
    assert asset["key"].startswith("image/upload/uploads/")
    assert (asset["status"], asset["type"]) == ("PROCESSED", "image")
    assert (int(asset["width"]), int(asset["height"])) == (1400, 1050)
    # (the desk scene's labels, as the Rekognition image stand-in reports them)
    assert asset["top_labels"] == ["Computer", "Electronics", "Keyboard"]

    # and its labels.json follows the image schema, with the scene's labels and their boxes
    document = world.labels_document(asset["labels_key"])
    assert asset["labels_key"] == AssetKeys(asset["key"]).labels
    assert document["media_type"] == "image"
    assert document["image"]["format"] == "JPEG"
    labels = document["summary"]["labels"]
    assert labels and labels[0]["instances"][0]["bounding_box"]["Width"] > 0
    assert document["summary"]["dominant_colors"]
    assert [label["name"] for label in document["summary"]["top_labels"]] == asset["top_labels"]
    assert document["license"]["name"] == "unspecified (uploaded by an operator)"

    # and every rendition it lists is a real image of the size it says
    items = document["renditions"]["items"]
    assert {(r["size"], r["format"]) for r in items} == {
        (size, fmt) for size in ("small", "medium", "large") for fmt in ("WEBP", "AVIF", "JPEG")
    }
    for rendition in items:
        decoded = _decoded(world, rendition["key"])
        assert decoded.size == (rendition["width"], rendition["height"]), rendition
        assert rendition["ssim"] >= 0.9, rendition
    assert document["renditions"]["thumbnail_key"] == asset["thumbnail_key"]
    assert _decoded(world, asset["thumbnail_key"]).size == (320, 240)
    # and Rekognition analysed a rendition it can read (JPEG), not the source
    assert document["processing"]["analysed"]["key"].endswith(".jpg")


def test_a_campaign_run_with_an_image_batch_processes_its_images_beside_its_clips(
    clean_world: World,
) -> None:
    world = clean_world
    # When the nature campaign runs with one clip and two images
    run = world.run(
        {"campaign": "nature", "batch_sizes": {"video": 1, "image": 2}}, name="nature-images"
    )

    # Then all three landed: the clip by the video path, the images by theirs
    assert run.status == "SUCCEEDED", run.cause
    assert run.output == {"processed": 3, "failed": 0, "status": "SUCCEEDED"}
    nature = [a for a in world.assets() if a["campaign"] == "nature" and a["source"] != "upload"]
    images = sorted((a for a in nature if a.get("type") == "image"), key=lambda a: a["source"])
    assert [(a["source"], a["status"]) for a in images] == [
        ("commons", "PROCESSED"),
        ("pixabay", "PROCESSED"),
    ]
    commons, pixabay = images
    assert commons["key"].endswith("/Laurel_forest_in_Madeira.jpg")
    assert commons["key"].startswith("image/commons/nature/")
    assert pixabay["key"].startswith("image/pixabay/nature/")
    # with the forest scene's labels, searchable by label like a clip's
    assert "Tree" in commons["top_labels"], commons["top_labels"]
    by_label = world.client("dynamodb").query(
        TableName=world.catalog_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": label_key("Tree")}},
    )["Items"]
    assert {item["asset_id"]["S"] for item in by_label} >= {commons["asset_id"]}
    # and the licence and credit of each source
    forest = world.labels_document(commons["labels_key"])
    assert forest["license"]["name"] == "CC BY-SA 4.0"
    assert forest["attribution"]["author"] == COMMONS_IMAGES["nature"][0].artist
    portrait = world.labels_document(pixabay["labels_key"])
    assert portrait["license"]["name"] == "Pixabay Content License"
    assert portrait["image"]["display_height"] == PIXABAY_IMAGES["nature"][0].still.height


def test_a_dropped_png_that_is_text_fails_alone_with_the_reason_and_leaves_nothing(
    clean_world: World,
) -> None:
    world = clean_world
    # Given an operator drops a text file named .png under uploads/
    event = world.upload(
        "uploads/studio/not-a-photo.png", b"meeting notes\n" * 40, content_type="image/png"
    )

    # When its run ends
    [started] = world.deliver_event(event)
    execution = next(e for e in world.executions() if e["name"] == started["payload"]["name"])
    run = world.wait(execution["executionArn"])

    # Then the asset is FAILED with a reason a person can act on, and the run says so
    assert run.status == "SUCCEEDED", run.cause
    assert run.output == {"processed": 0, "failed": 1, "status": "PARTIAL"}
    [asset] = [a for a in world.assets() if a["key"].endswith("/not-a-photo.png")]
    assert asset["status"] == "FAILED"
    assert "not an image Pillow can read" in asset["failure_reason"], asset["failure_reason"]
    # and nothing of it is in the processed zone: no rendition, no labels.json
    folder = AssetKeys(asset["key"]).folder
    assert [k for k in world.keys(world.processed_bucket) if k.startswith(folder)] == []
