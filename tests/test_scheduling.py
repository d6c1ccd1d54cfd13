"""The suite's own scheduling: files sharing a world run on one worker, the rest file by file."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SHARED_WORLD_PACKAGES, work_unit

TESTS = Path(__file__).resolve().parent


def test_the_dashboards_files_are_one_unit_and_other_files_their_own():
    dashboard = sorted(
        p.relative_to(TESTS.parent).as_posix() for p in (TESTS / "dashboard").glob("test_*.py")
    )
    assert len(dashboard) > 1
    assert {work_unit(f"{path}::test_x") for path in dashboard} == {"tests/dashboard/"}
    e2e = sorted(p.relative_to(TESTS.parent).as_posix() for p in (TESTS / "e2e").glob("test_*.py"))
    assert [work_unit(f"{path}::test_x[Dev]") for path in e2e] == e2e


def test_every_shared_world_package_exists_and_builds_its_world_once_per_package():
    for package in SHARED_WORLD_PACKAGES:
        conftest = (TESTS.parent / package / "conftest.py").read_text()
        assert '@pytest.fixture(scope="package")' in conftest, package
