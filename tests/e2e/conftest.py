"""One local world per module: the synthesized Dev stacks deployed into moto, stand-ins active.

The app is synthesized once per session (``synthesized`` in ``tests/conftest.py``); deploying the
world costs a few seconds, so scenarios share it and keep apart by campaign or by upload key.
Failure injections are reset after every test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from localworld import RunResult, World, WorldOptions
from localworld.media import PIXABAY_MP4_240, render
from localworld.sources import variant
from tests.conftest import SynthesizedApp

# moto's interpreter logs every failed execution (some scenarios fail on purpose) with a dump of
# its whole program; the scenarios assert on the outcome themselves.
logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


@pytest.fixture(scope="module")
def world(synthesized: SynthesizedApp) -> Iterator[World]:
    with World(synthesized.templates, WorldOptions(env="Dev")) as local:
        yield local
        # Every labels.json the scenarios made matches the published schema.
        for key in local.iter_labels_files():
            local.labels_document(key)


@pytest.fixture
def clean_world(world: World) -> Iterator[World]:
    yield world
    world.reset_faults()


@pytest.fixture
def upload_body() -> bytes:
    """A real clip an operator drops under uploads/ (H.264 + AAC MP4)."""
    return render(variant(PIXABAY_MP4_240, "operator-upload", 2, 330.0))


def run_nature_failing_pixabay_analysis(world: World, message: str, name: str) -> RunResult:
    """A nature run in which Rekognition ends the label job of the Pixabay clip FAILED.

    Its transcode succeeds, so the asset fails after renditions exist; the Commons clip lands.
    """
    assert world.rekognition is not None
    world.rekognition.fail_job("/pixabay/nature/", message)
    return world.run({"campaign": "nature"}, name=name)
