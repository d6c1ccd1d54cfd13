"""The page with its catalog on dynalite: the backend ``benchmarks/dashboard.py`` measures.

The benchmark copies a pipeline world's catalog to dynalite (a DynamoDB emulator that reads only a
query's key range, as DynamoDB does) and keeps the rest of the world on moto, reached through
boto3's per-service endpoint variables. These tests prove that setup reads what it should, and
that the page's queries work on a second DynamoDB implementation, not only on moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localworld import dynalite
from localworld.dynalite import copy_catalog, dynalite_client, dynalite_server

from .conftest import assert_label_search, write_world

# Added to one counter in the copy only, so a figure read from moto instead would show.
MARK = 1000


@pytest.fixture(scope="module")
def dynalite_endpoint() -> Iterator[str]:
    with dynalite_server() as endpoint:
        yield endpoint


def test_page_reads_the_catalog_from_dynalite(
    pipeline, world_file, dynalite_endpoint, clean_env, tmp_path: Path, app
):
    # Given the pipeline world's catalog copied to dynalite, item for item
    world = pipeline.world
    target = dynalite_client(dynalite_endpoint)
    copied = copy_catalog(world.client("dynamodb"), target, world.catalog_table)
    in_moto = world.client("dynamodb").scan(TableName=world.catalog_table, Select="COUNT")
    assert copied == in_moto["Count"] > 0
    # ... and marked there only: travel's processed counter is higher by MARK
    target.update_item(
        TableName=world.catalog_table,
        Key={"pk": {"S": "CAMPAIGN#travel"}, "sk": {"S": "STATUS#PROCESSED"}},
        UpdateExpression="ADD #n :d",
        ExpressionAttributeNames={"#n": "count"},
        ExpressionAttributeValues={":d": {"N": str(MARK)}},
    )
    # ... and a world file without an endpoint, so boto3 takes them from the environment
    no_endpoint: dict[str, Any] = {"endpoint_url": None}
    clean_env.setenv(
        "MEDIA_PIPELINE_WORLD", str(write_world(pipeline, tmp_path / "w.json", **no_endpoint))
    )
    clean_env.setenv("AWS_ENDPOINT_URL", pipeline.endpoint_url)
    clean_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynalite_endpoint)
    travel = pipeline.assets("travel", "PROCESSED")
    label = pipeline.labels(travel[0])["summary"]["top_labels"][0]["name"]

    # When the page renders and a label is searched
    at = app()
    assert not at.exception and not at.error
    counters = {m.label: m.value for m in at.metric}
    at.text_input(key="label_search").input(label).run()

    # Then the counters, the gallery's records and the label search come from dynalite, and the
    # thumbnails and labels documents from moto's S3
    assert counters["Processed"] == str(len(travel) + MARK)
    assert len(at.image) == len(travel)
    assert all(pipeline.endpoint_url in image.value[0] for image in at.image)
    assert len(at.json) == len(travel[:3])
    assert_label_search(at, target, world.catalog_table, label)


def test_a_missing_dynalite_install_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # Given a checkout where `npm ci` has not run
    monkeypatch.setattr(dynalite, "DYNALITE", tmp_path / "node_modules" / "cli.js")

    # When the benchmark's backend is started, Then the error says what to run
    with (
        pytest.raises(RuntimeError, match=r"dynalite is not installed .* run `npm ci`"),
        dynalite_server(),
    ):
        pass


def test_a_dynalite_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # Given an install whose package is broken (the CLI file exists, the module does not)
    cli = tmp_path / "dynalite" / "cli.js"
    cli.parent.mkdir()
    cli.write_text("")
    monkeypatch.setattr(dynalite, "DYNALITE", cli)

    # When it is started, Then the error carries what Node said
    with (
        pytest.raises(RuntimeError, match=r"(?s)dynalite did not start .*Cannot find module"),
        dynalite_server(),
    ):
        pass
