"""One JSON snapshot per stack: any unintended template change shows up as a reviewed diff."""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.infra.normalize import normalize

STACKS = [
    "Dev/Stateful",
    "Dev/Pipeline",
    "Dev/Monitoring",
    "Prod/Stateful",
    "Prod/Pipeline",
    "Prod/Monitoring",
]


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack_path", STACKS, ids=lambda p: p.replace("/", "-"))
def test_stack_template_matches_snapshot(synthesized, snapshot_json, stack_path):
    # Given the synthesized app, When a stack's template is normalized,
    # Then it equals the reviewed snapshot.
    assert normalize(synthesized.templates[stack_path]) == snapshot_json


def test_every_stack_has_a_snapshot(synthesized):
    # Given the stacks the app synthesizes, Then each one is covered by a snapshot test.
    assert sorted(synthesized.templates) == sorted(STACKS)


def test_normalization_hides_hashes_only():
    # Given a value with an asset hash and a hashed logical id, When normalized,
    # Then the hashes are replaced and everything else is kept.
    digest = "a" * 64
    value = {f"FnCurrentVersion{'B' * 8}{'c' * 32}": {"S3Key": f"{digest}.zip", "Keep": "x"}}
    assert normalize(value) == {
        "FnCurrentVersion<hash>": {"S3Key": "<asset-hash>.zip", "Keep": "x"}
    }
