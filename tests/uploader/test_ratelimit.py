"""``--max-rate``: the token bucket bounds bytes over every interval, measured on a fake clock."""

from __future__ import annotations

import random
import re

from media_upload.cli import Runtime
from media_upload.ratelimit import TokenBucket
from tests.uploader.conftest import FakeClock, run_cli, write_file
from tests.uploader.fake_api import MIB


def test_bucket_bounds_every_interval():
    clock = FakeClock()
    rate = 2 * MIB
    bucket = TokenBucket(rate, burst_bytes=256 * 1024, clock=clock, sleep=clock.sleep)
    sent: list[tuple[float, int]] = [(clock.now, 0)]
    total = 0
    rng = random.Random(11)  # noqa: S311 - reproducible read sizes
    while total < 20 * MIB:
        chunk = rng.choice((1, 4096, 16384, 65536, 1024 * 1024))
        bucket.consume(chunk)
        total += chunk
        sent.append((clock.now, total))  # bytes allowed out by this time

    elapsed = clock.now - sent[0][0]
    assert elapsed >= (total - bucket.burst) / rate
    assert elapsed <= total / rate + 1e-6
    # Over any interval: bytes released <= burst + rate * interval (+ the chunk being released).
    for i in range(0, len(sent), 7):
        for j in range(i + 1, len(sent), 5):
            (t0, b0), (t1, b1) = sent[i], sent[j]
            assert b1 - b0 <= bucket.burst + rate * (t1 - t0) + 1024 * 1024 + 1e-6


def test_max_rate_bounds_an_upload(world, tmp_path):
    clock = FakeClock()
    clip = tmp_path / "clip.mp4"
    write_file(clip, 6 * MIB)  # one PUT

    done = run_cli(
        ["upload", str(clip), "--campaign", "travel", "--api", world.api_url, "--max-rate", "1.5"],
        Runtime(clock=clock, sleep=clock.sleep),
    )

    assert done.code == 0, done.err
    seconds = float(re.search(r" in ([\d.]+) s ", done.lines[0])[1])
    burst = 1.5 * MIB / 4
    assert seconds >= (6 * MIB - burst) / (1.5 * MIB) - 0.01  # 3.75 s of fake time at least
    assert seconds <= 6 / 1.5 + 0.01
    assert all(pause <= 1.0 for pause in clock.sleeps)  # paced in small steps, no long stalls


def test_without_max_rate_nothing_waits(world, tmp_path):
    clock = FakeClock()
    clip = tmp_path / "clip.mp4"
    write_file(clip, 2 * MIB)

    done = run_cli(
        ["upload", str(clip), "--campaign", "travel", "--api", world.api_url],
        Runtime(clock=clock, sleep=clock.sleep),
    )

    assert done.code == 0 and clock.sleeps == []
