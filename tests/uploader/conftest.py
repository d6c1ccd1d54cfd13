"""Fixtures for the uploader tests: one fake world per test file, reset for every test; a
fake clock; the AWS environment pinned to the fake's test credentials (nothing may reach AWS)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from media_upload.cli import Runtime, main
from tests.uploader.fake_api import MIB, FakeWorld, fake_world

PART = 5 * MIB


@pytest.fixture(scope="module")
def world() -> Iterator[FakeWorld]:
    # 5 MiB parts (S3's smallest) above an 8 MiB threshold: a 12 MiB file goes in 3 parts.
    with fake_world(part_size=PART, multipart_threshold=8 * MIB) as started:
        yield started


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default credential chain finds the fake's key in the environment and nothing else."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "MEDIA_UPLOAD_API",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def clean_world(request: pytest.FixtureRequest) -> Iterator[None]:
    if "world" in request.fixturenames:
        request.getfixturevalue("world").reset()
    yield


@dataclass
class FakeClock:
    """Monotonic time that only moves when something sleeps; ``on_sleep`` runs at each sleep."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        if self.on_sleep is not None:
            self.on_sleep(seconds)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_cli(argv: list[str], runtime: Runtime | None = None) -> Run:
    runtime = runtime or Runtime()
    runtime.stdout, runtime.stderr = io.StringIO(), io.StringIO()
    code = main(argv, runtime)
    return Run(code, runtime.stdout.getvalue(), runtime.stderr.getvalue())


def write_file(path: Path, size: int, *, seed: int = 0) -> bytes:
    """Incompressible bytes (one random block repeated with a counter, cheap to make)."""
    block = (
        os.urandom(64 * 1024)
        if seed == 0
        else bytes((seed * 7 + i) % 251 for i in range(64 * 1024))
    )
    data = bytearray()
    counter = 0
    while len(data) < size:
        data += counter.to_bytes(8, "big") + block[8:]
        counter += 1
    payload = bytes(data[:size])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return payload


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
