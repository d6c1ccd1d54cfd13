"""One local world per module: the synthesized Dev stacks deployed into moto, stand-ins active.

The app is synthesized once per session (``synthesized`` in ``tests/conftest.py``); deploying the
world costs a few seconds, so scenarios share it and keep apart by campaign or by upload key.
Failure injections are reset after every test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localworld import World, WorldOptions
from localworld.media import clip_bytes
from tests.conftest import SynthesizedApp


@pytest.fixture(scope="module")
def world(synthesized: SynthesizedApp) -> Iterator[World]:
    with World(synthesized.templates, WorldOptions(env="Dev")) as local:
        yield local


@pytest.fixture
def clean_world(world: World) -> Iterator[World]:
    yield world
    assert world.mediaconvert is not None
    world.mediaconvert.fail_inputs.clear()


@pytest.fixture
def upload_body() -> bytes:
    return clip_bytes("operator-upload", 40_000)
