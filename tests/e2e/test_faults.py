"""Faults as the services raise them, and how the deployed workflow rides them out.

The stand-ins fail the way the real services do (HTTP status and error code, so the handlers'
boto3 clients raise a real ``ClientError``; jobs that end FAILED with a status message; an SNS
notice that never arrives), and these scenarios check the pipeline's answer to each.
"""

from __future__ import annotations

from localworld import World
from localworld.runtime import LOG
from tests.e2e.conftest import run_nature_failing_pixabay_analysis

ONE_EACH = {"video": 1}


def _assets(world: World, campaign: str) -> dict[str, dict]:
    return {a["asset_id"]: a for a in world.assets() if a["campaign"] == campaign}


def test_throttled_rekognition_starts_are_retried_and_the_asset_lands(clean_world: World) -> None:
    world = clean_world
    assert world.rekognition is not None
    # Given Rekognition refuses the next four label starts: the account is at its job quota
    world.rekognition.throttle("StartLabelDetection", 4, "LimitExceededException")
    before = set(_assets(world, "tech"))

    # When a run for tech starts
    run = world.run({"campaign": "tech", "batch_sizes": ONE_EACH}, name="throttled-rekognition")

    # Then each refusal reached the handler's client as a ClientError: the SDK retried the first
    # two itself (3 attempts), the third failed the invocation as RekognitionLimitExceeded, the
    # workflow retried that with backoff, and its second attempt got through after one more
    assert run.status == "SUCCEEDED", run.cause
    assert (
        world.rekognition.faults_raised == [("StartLabelDetection", "LimitExceededException")] * 4
    )
    starts = [c for c in LOG.of("analysis.start.handler") if c.event.get("feature") == "labels"]
    assert [c.error_type for c in starts[-2:]] == ["RekognitionLimitExceeded", None]
    new = {k: v for k, v in _assets(world, "tech").items() if k not in before}
    assert new and all(a["status"] == "PROCESSED" for a in new.values()), new


def _jobs_since(world: World, before: int) -> list[tuple[str, str]]:
    """(asset id, which planned job) of each MediaConvert job created since ``before`` jobs."""
    assert world.mediaconvert is not None
    return [
        (job.body["UserMetadata"]["asset_id"], job.body["UserMetadata"]["job"])
        for job in list(world.mediaconvert.jobs.values())[before:]
    ]


def test_a_throttled_create_job_is_retried_without_a_second_job(clean_world: World) -> None:
    world = clean_world
    assert world.mediaconvert is not None
    # Given MediaConvert answers 429 TooManyRequestsException to the next CreateJob
    world.mediaconvert.throttle(1, "TooManyRequestsException")
    jobs_before = len(world.mediaconvert.jobs)
    before = set(_assets(world, "tech"))

    # When a run for tech starts
    run = world.run({"campaign": "tech", "batch_sizes": ONE_EACH}, name="throttled-mediaconvert")

    # Then the transcode task was retried (MediaConvert.TooManyRequestsException) and each
    # planned job ran exactly once per new asset
    assert run.status == "SUCCEEDED", run.cause
    assert world.mediaconvert.faults_raised == ["TooManyRequestsException"]
    failed = [e for e in run.history if e["type"] == "TaskFailed"]
    assert any(
        e["taskFailedEventDetails"]["error"] == "MediaConvert.TooManyRequestsException"
        for e in failed
    ), failed
    new = {k: v for k, v in _assets(world, "tech").items() if k not in before}
    assert new and all(a["status"] == "PROCESSED" for a in new.values()), new
    created = _jobs_since(world, jobs_before)
    assert len(created) == len(set(created)), created
    assert {asset_id for asset_id, _ in created} == set(new)


def test_a_lost_completion_notice_is_recovered_by_the_heartbeat_sweep(clean_world: World) -> None:
    world = clean_world
    assert world.rekognition is not None
    # Given the SNS notices of tech's jobs never arrive (a broken subscription, say)
    world.rekognition.lose_notices.add("/tech/")
    sweeps_before = len(LOG.of("analysis.heartbeat.handler"))
    before = set(_assets(world, "tech"))

    # When a run for tech starts
    run = world.run({"campaign": "tech", "batch_sizes": ONE_EACH}, name="lost-notice")

    # Then the scheduled sweep (EventBridge rate rule, on the simulated clock) found the finished
    # jobs and resumed their tasks: the asset landed without any notice being delivered
    assert run.status == "SUCCEEDED", run.cause
    assert world.rekognition.lost, "the notices were dropped"
    lost_jobs = {n["JobId"] for n in world.rekognition.lost}
    assert not lost_jobs & {n["JobId"] for n in world.rekognition.notices}
    sweeps = LOG.of("analysis.heartbeat.handler")[sweeps_before:]
    # (each lost Rekognition job once; a Transcribe job the sweep saw end before its event
    # arrived counts apart, as recovered_speech_*)
    recovered = sum((c.result or {}).get("recovered_succeeded", 0) for c in sweeps)
    assert recovered == len(lost_jobs)
    new = {k: v for k, v in _assets(world, "tech").items() if k not in before}
    assert new and all(a["status"] == "PROCESSED" for a in new.values()), new


def test_a_failed_rekognition_job_fails_its_asset_with_the_status_message(
    clean_world: World,
) -> None:
    world = clean_world
    # Given Rekognition ends the label job of nature's Pixabay clip FAILED
    # When a run for nature starts
    message = "Internal error while reading frame 187 of the video."
    run = run_nature_failing_pixabay_analysis(world, message, "rekognition-job-failed")

    # Then that asset is FAILED with Rekognition's status message (the callback's SendTaskFailure
    # cause reached the workflow), and the other asset landed
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["status"] == "PARTIAL", run.output
    nature = {a["source"]: a for a in world.assets() if a["campaign"] == "nature"}
    assert nature["commons"]["status"] == "PROCESSED"
    assert nature["pixabay"]["status"] == "FAILED"
    assert message in nature["pixabay"]["failure_reason"], nature["pixabay"]["failure_reason"]


def test_a_lost_create_job_answer_does_not_start_a_second_paid_job(clean_world: World) -> None:
    world = clean_world
    assert world.mediaconvert is not None
    # Given MediaConvert creates the next job but its answer is lost on the way back (a 500)
    world.mediaconvert.lose_answers(1)
    jobs_before = len(world.mediaconvert.jobs)

    # When a run for travel starts (this module leaves travel's clips to this scenario)
    run = world.run({"campaign": "travel", "batch_sizes": ONE_EACH}, name="lost-create-answer")

    # Then the workflow retried CreateJob with the same ClientRequestToken, got the job it had
    # already created, and no second job ran
    assert run.status == "SUCCEEDED", run.cause
    assert world.mediaconvert.faults_raised[-1] == "lost answer"
    assert len(world.mediaconvert.repeated_tokens) == 1
    created = _jobs_since(world, jobs_before)
    assert len(created) == len(set(created)), created
    assert run.output["processed"] == 1, run.output
