"""``media-upload status`` and ``ls``, signing, and configuration errors."""

from __future__ import annotations

import json

from media_upload.api import JobsApi, region_from_url
from tests.uploader.conftest import run_cli, write_file


def make_jobs(world, tmp_path, names_campaigns):
    ids: list[str] = []
    for name, campaign in names_campaigns:
        clip = tmp_path / name
        write_file(clip, 2000 + len(ids))
        done = run_cli(["upload", str(clip), "--campaign", campaign, "--api", world.api_url])
        assert done.code == 0, done.err
        ids.append(done.lines[0].split("job=")[1].split()[0])
    return ids


def test_status_prints_the_job(world, tmp_path):
    (job_id,) = make_jobs(world, tmp_path, [("a.mp4", "travel")])
    world.api.set_status(job_id, "PROCESSED", asset_id="asset-42")

    text = run_cli(["status", job_id, "--api", world.api_url])
    as_json = run_cli(["status", job_id, "--api", world.api_url, "--json"])

    assert text.code == 0, text.err
    assert text.lines[:2] == [f"job_id:     {job_id}", "status:     PROCESSED"]
    assert "filename:   a.mp4" in text.lines and "asset_id:   asset-42" in text.lines
    assert any(line.startswith("size:       0.0 MiB (2000 bytes)") for line in text.lines)
    assert json.loads(as_json.out) == world.api.jobs[job_id].public()


def test_status_of_a_failed_job_shows_the_reason_and_unknown_jobs_fail(world, tmp_path):
    (job_id,) = make_jobs(world, tmp_path, [("a.mp4", "travel")])
    world.api.set_status(job_id, "FAILED", reason="unreadable container")

    shown = run_cli(["status", job_id, "--api", world.api_url])
    missing = run_cli(["status", "nope", "--api", world.api_url])

    assert "reason:     unreadable container" in shown.lines
    assert missing.code == 1 and missing.out == ""
    assert missing.err.strip() == "media-upload: the API refused: no job nope (HTTP 404)"


def test_ls_prints_a_table_filters_and_pages(world, tmp_path):
    world.api.max_page = 2  # force the client to follow `next`
    ids = make_jobs(
        world,
        tmp_path,
        [
            ("a.mp4", "travel"),
            ("b.mp4", "travel"),
            ("c.mp4", "tech"),
            ("d.mp4", "travel"),
            ("e.mp4", "travel"),
        ],
    )
    world.api.set_status(ids[1], "PROCESSED")

    table = run_cli(["ls", "--campaign", "travel", "--api", world.api_url])
    limited = run_cli(
        ["ls", "--campaign", "travel", "--limit", "3", "--api", world.api_url, "--json"]
    )
    processed = run_cli(["ls", "--status", "PROCESSED", "--api", world.api_url, "--json"])
    nothing = run_cli(["ls", "--campaign", "none", "--api", world.api_url])

    assert table.code == 0, table.err
    assert table.lines[0].split() == [
        "JOB_ID",
        "STATUS",
        "CAMPAIGN",
        "MIB",
        "CREATED_AT",
        "FILENAME",
    ]
    assert [line.split()[0] for line in table.lines[1:]] == [
        ids[4],
        ids[3],
        ids[1],
        ids[0],
    ]  # newest first
    assert table.lines[3].split()[1:3] == ["PROCESSED", "travel"]
    assert world.api.calls("GET", "/jobs") >= 2 + 2  # table: 2 pages; limited: 2 pages
    limited_doc = json.loads(limited.out)
    assert [j["job_id"] for j in limited_doc["jobs"]] == [ids[4], ids[3], ids[1]] and limited_doc[
        "next"
    ]
    assert [j["job_id"] for j in json.loads(processed.out)["jobs"]] == [ids[1]]
    assert nothing.lines == ["no jobs"]


def test_requests_are_signed_with_the_default_chain(world, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    wrong = run_cli(["ls", "--api", world.api_url])
    assert wrong.code == 1
    assert "signature we calculated does not match" in wrong.err

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    signed = JobsApi(world.api_url)._signed_headers("GET", f"{world.api_url}/jobs?limit=1", None)
    assert signed["X-Amz-Security-Token"] == "session-token"
    assert signed["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/execute-api/aws4_request" in signed["Authorization"]


def test_configuration_errors_exit_2(world, monkeypatch, tmp_path):
    no_api = run_cli(["ls"])
    assert no_api.code == 2 and "pass --api URL or set MEDIA_UPLOAD_API" in no_api.err

    monkeypatch.setenv("MEDIA_UPLOAD_API", world.api_url)
    assert run_cli(["ls"]).code == 0  # the environment variable is enough

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    no_region = run_cli(["ls"])
    assert no_region.code == 2 and "no AWS region" in no_region.err
    assert run_cli(["ls", "--region", "us-east-1"]).code == 0

    not_there = run_cli(["upload", str(tmp_path / "missing.mp4"), "--campaign", "travel"])
    assert not_there.code == 2 and "not a file" in not_there.err


def test_region_is_read_from_an_execute_api_url():
    assert region_from_url("https://abc123.execute-api.eu-west-1.amazonaws.com/prod") == "eu-west-1"
    assert region_from_url("http://127.0.0.1:8080") is None
