"""A real crash: the uploader process is SIGKILLed mid-part, then started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.uploader.conftest import PART, write_file
from tests.uploader.fake_api import MIB

ROOT = Path(__file__).resolve().parents[2]


def command(world, clip: Path, state: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "media_upload", "upload", str(clip), "--campaign", "travel",
        "--api", world.api_url, "--state-dir", str(state), *extra,
    ]  # fmt: skip


def test_sigkill_mid_part_then_restart_resends_at_most_one_part(world, tmp_path):
    clip = tmp_path / "long.mov"
    data = write_file(clip, 12 * MIB)
    state = tmp_path / "state"
    # Paced at 8 MiB/s so the kill lands inside part 2 (bytes 5-10 MiB), not between parts.
    child = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        command(world, clip, state, "--max-rate", "8"),
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while world.guard.bytes_received() < PART + 2 * MIB:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the upload never got into part 2"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    (job,) = world.api.jobs.values()
    assert job.status == "WAITING_FOR_UPLOAD"
    assert list((state / "inflight").iterdir())  # the record survived the kill

    restarted = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        command(world, clip, state),
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.startswith(f"uploaded {clip} job={job.job_id} ")
    assert "resumed: 5.00 MiB were already in S3" in restarted.stdout
    assert job.status == "UPLOADED"
    resent = world.guard.bytes_received(job.key) - len(data)
    assert 0 < resent <= PART  # only the part partly sent at the kill goes twice
    numbers = [p.part_number for p in world.guard.puts(job.key)]
    assert sorted(set(numbers)) == [1, 2, 3] and len(numbers) - len(set(numbers)) == 1
    assert world.object_bytes(job.key) == data
