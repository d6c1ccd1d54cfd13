"""``media-upload watch``: settling, skipping what was uploaded, patterns, ``--once``."""

from __future__ import annotations

import random
import shutil

from media_upload.cli import Runtime
from tests.uploader.conftest import FakeClock, run_cli, write_file
from tests.uploader.fake_api import MIB


def watch_args(world, folder, *extra: str) -> list[str]:
    return ["watch", str(folder), "--campaign", "travel", "--api", world.api_url, *extra]


def runtime(clock: FakeClock, **kwargs) -> Runtime:
    return Runtime(clock=clock, sleep=clock.sleep, rng=random.Random(5), **kwargs)  # noqa: S311 - jitter


def test_a_growing_file_is_uploaded_only_once_it_has_settled(world, tmp_path, clock):
    folder = tmp_path / "cam"
    clip = folder / "recording.mp4"
    write_file(clip, 100 * 1024)
    jobs_at: dict[int, int] = {}
    grown_until = 4

    def writer(poll: int) -> None:
        jobs_at[poll] = len(world.api.jobs)
        if poll <= grown_until:  # the camera is still writing
            with clip.open("ab") as handle:
                handle.write(b"x" * 50_000)

    done = run_cli(
        watch_args(world, folder, "--settle-s", "3", "--poll-s", "1"),
        runtime(clock, max_polls=12, on_poll=writer),
    )

    assert done.code == 0, done.err
    (job,) = world.api.jobs.values()
    assert job.size_bytes == 100 * 1024 + grown_until * 50_000  # the finished file
    # The hook runs after each poll. The last growth is first seen by poll 5 (t=4 s); poll 8
    # (t=7 s) finds it unchanged for 3 s and uploads it; poll 7 (2 s) was too early.
    assert jobs_at[7] == 0 and jobs_at[8] == 1
    assert (
        done.lines == [line for line in done.lines if line.startswith("uploaded ")]
        and len(done.lines) == 1
    )


def test_once_leaves_a_file_that_changes_during_the_settle_wait(world, tmp_path, clock):
    folder = tmp_path / "cam"
    steady = folder / "a.mp4"
    growing = folder / "b.mp4"
    write_file(steady, 64 * 1024)
    write_file(growing, 64 * 1024)

    def camera_writes(seconds: float) -> None:
        with growing.open("ab") as handle:
            handle.write(b"more")

    clock.on_sleep = camera_writes
    first = run_cli(watch_args(world, folder, "--once"), runtime(clock))

    assert first.code == 0, first.err
    assert first.lines[0].startswith(f"uploaded {steady} job=")
    assert first.lines[1] == f"waiting {growing} still changing; it goes on a later run"
    assert [j.filename for j in world.api.jobs.values()] == ["a.mp4"]

    clock.on_sleep = None
    second = run_cli(watch_args(world, folder, "--once"), runtime(clock))
    assert second.code == 0
    assert second.lines[0] == f"skipped {steady} already uploaded job={next(iter(world.api.jobs))}"
    assert second.lines[1].startswith(f"uploaded {growing} job=")
    assert len(second.lines) == 2


def test_files_uploaded_before_are_skipped_by_checksum(world, tmp_path, clock):
    folder = tmp_path / "cam"
    write_file(folder / "a.mp4", 64 * 1024)
    write_file(folder / "day2" / "b.MOV", 9 * MIB)  # multipart, in a subfolder
    (folder / "notes.txt").write_text("not media")
    write_file(folder / ".c.mp4.tmp", 1000)  # a recorder's temporary file
    write_file(folder / ".hidden" / "d.mp4", 1000)

    first = run_cli(watch_args(world, folder, "--once", "--settle-s", "0"), runtime(clock))
    assert first.code == 0, first.err
    assert [line.split()[0:2] for line in first.lines] == [
        ["uploaded", str(folder / "a.mp4")],
        ["uploaded", str(folder / "day2" / "b.MOV")],
    ]
    assert (folder / ".media-upload" / "uploaded").is_dir()  # the default state folder

    # Same content under a new name, and a restart: nothing is sent again.
    shutil.copy2(folder / "a.mp4", folder / "a-copy.mp4")
    requests_before = len(world.api.requests)
    second = run_cli(watch_args(world, folder, "--once", "--settle-s", "0"), runtime(clock))
    assert second.code == 0
    assert sorted(line.split()[1] for line in second.lines) == sorted(
        str(p) for p in (folder / "a.mp4", folder / "a-copy.mp4", folder / "day2" / "b.MOV")
    )
    assert all(
        line.startswith("skipped ") and " already uploaded job=" in line for line in second.lines
    )
    assert len(world.api.requests) == requests_before  # no API call at all


def test_patterns_choose_the_files(world, tmp_path, clock):
    folder = tmp_path / "cam"
    write_file(folder / "a.mp4", 1000)
    write_file(folder / "b.mxf", 1000)
    write_file(folder / "c.raw", 1000)

    done = run_cli(
        watch_args(world, folder, "--once", "--pattern", "*.raw", "--pattern", "*.MXF"),
        runtime(clock),
    )

    assert done.code == 0, done.err
    assert sorted(j.filename for j in world.api.jobs.values()) == ["b.mxf", "c.raw"]
    assert {j.content_type for j in world.api.jobs.values()} == {
        "application/mxf",
        "application/octet-stream",
    }


def test_a_refused_file_is_reported_once_while_watching(world, tmp_path, clock):
    folder = tmp_path / "cam"
    write_file(folder / "a.mp4", 1000)

    done = run_cli(
        ["watch", str(folder), "--campaign", "NO", "--api", world.api_url, "--settle-s", "1"],
        runtime(clock, max_polls=6),
    )

    assert done.code == 1
    assert len(done.lines) == 1 and done.lines[0].startswith(
        f"failed {folder / 'a.mp4'} campaign must be"
    )
    assert world.api.calls("POST", "/jobs") == 1
