"""The page with its catalog on dynalite: the backend ``benchmarks/dashboard.py`` measures.

The benchmark keeps the catalog in dynalite (a DynamoDB emulator that reads only a query's key
range, as DynamoDB does) and the rest of the world on moto, reached through boto3's per-service
endpoint variables. These tests prove that setup reads what it should, and that the page's queries
work on a second DynamoDB implementation, not only on moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard_app import world as dashboard_world

from .conftest import assert_label_search, write_world


@pytest.fixture(scope="module")
def dynalite_endpoint() -> Iterator[str]:
    with dashboard_world.dynalite_server() as endpoint:
        yield endpoint


def test_page_reads_the_catalog_from_dynalite(
    aws, moto_endpoint, dynalite_endpoint, clean_env, tmp_path: Path, app
):
    # Given a demo world whose catalog moved to dynalite: copied there, then deleted from moto,
    # so any catalog read that still went to moto would fail
    world = dashboard_world.build_world(moto_endpoint, name="dynalite-demo", executions=False)
    target = dashboard_world.clients(dynalite_endpoint)["dynamodb"]
    copied = dashboard_world.copy_catalog(aws["dynamodb"], target, world.catalog_table)
    in_moto = aws["dynamodb"].scan(TableName=world.catalog_table, Select="COUNT")["Count"]
    assert copied == in_moto > 0
    aws["dynamodb"].delete_table(TableName=world.catalog_table)
    # ... and a world file without an endpoint, so boto3 takes them from the environment
    no_endpoint: dict[str, Any] = {"endpoint_url": None}
    world_file = write_world(world, tmp_path / "w.json", **no_endpoint)
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(world_file))
    clean_env.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    clean_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynalite_endpoint)

    # When the page renders and a label is searched
    at = app()
    assert not at.exception and not at.error
    counters = {m.label: m.value for m in at.metric}
    at.text_input(key="label_search").input("beach").run()

    # Then the counters, the gallery's records and the label search come from dynalite, and the
    # thumbnails and labels documents from moto's S3
    assert counters == {"Raw": "12", "Processed": "9", "Failed": "2", "In progress": "1"}
    assert len(at.image) == 9
    assert all(moto_endpoint in image.value[0] for image in at.image)
    assert_label_search(at, target, world.catalog_table)


def test_a_missing_dynalite_install_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # Given a checkout where `npm ci` has not run
    monkeypatch.setattr(dashboard_world, "DYNALITE", tmp_path / "node_modules" / "cli.js")

    # When the benchmark's backend is started, Then the error says what to run
    with (
        pytest.raises(RuntimeError, match=r"dynalite is not installed .* run `npm ci`"),
        dashboard_world.dynalite_server(),
    ):
        pass


def test_a_dynalite_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # Given an install whose package is broken (the CLI file exists, the module does not)
    cli = tmp_path / "dynalite" / "cli.js"
    cli.parent.mkdir()
    cli.write_text("")
    monkeypatch.setattr(dashboard_world, "DYNALITE", cli)

    # When it is started, Then the error carries what Node said
    with (
        pytest.raises(RuntimeError, match=r"(?s)dynalite did not start .*Cannot find module"),
        dashboard_world.dynalite_server(),
    ):
        pass
