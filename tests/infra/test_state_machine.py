"""The synthesized state machine definition, parsed out of the template and checked as a graph."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from stacks.config import build_environments
from tests.conftest import pipeline_state_machine

RESTORED = ["Object Restore Completed"]


def _definition(synthesized, env: str) -> dict:
    """Rebuild the ASL from the template's Fn::Join, with tokens replaced by placeholders."""
    resources = synthesized.templates[f"{env}/Pipeline"]["Resources"]
    _, machine = pipeline_state_machine(resources)
    body = machine["Properties"]["DefinitionString"]
    if isinstance(body, dict) and "Fn::Join" in body:
        parts = body["Fn::Join"][1]
        body = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return json.loads(body)


def _walk(states: dict, prefix: str = "") -> Iterator[tuple[str, dict, dict]]:
    """Every state with its containing ``States`` map, recursing into Parallel and Map."""
    for name, state in states.items():
        yield prefix + name, state, states
        for branch in state.get("Branches", []):
            yield from _walk(branch["States"], f"{prefix}{name}/")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _walk(processor["States"], f"{prefix}{name}/")


def _graphs(definition: dict) -> Iterator[dict]:
    yield definition
    for _, state, _ in _walk(definition["States"]):
        yield from state.get("Branches", [])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield processor


@pytest.fixture(scope="module", params=["Dev", "Prod"])
def definition(request, synthesized):
    return _definition(synthesized, request.param)


def test_every_state_is_reachable(definition):
    for graph in _graphs(definition):
        states = graph["States"]
        seen, todo = set(), [graph["StartAt"]]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            state = states[name]
            todo += [state["Next"]] if "Next" in state else []
            todo += [c["Next"] for c in state.get("Catch", [])]
            todo += [c["Next"] for c in state.get("Choices", [])]
            todo += [state["Default"]] if "Default" in state else []
        assert seen == set(states), f"unreachable: {set(states) - seen}"


def test_every_path_ends_in_succeed_or_fail(definition):
    for graph in _graphs(definition):
        for name, state in graph["States"].items():
            terminal = state["Type"] in ("Succeed", "Fail") or state.get("End") is True
            chooses = state["Type"] == "Choice" and "Default" in state
            assert terminal or chooses or "Next" in state, f"{name} neither ends nor continues"
    top_types = {s["Type"] for s in definition["States"].values()}
    assert {"Succeed", "Fail"} <= top_types


def test_every_task_retries_transient_errors_with_jitter(definition):
    tasks = [(n, s) for n, s, _ in _walk(definition["States"]) if s["Type"] == "Task"]
    assert len(tasks) >= 10
    lambda_transient = {
        "Lambda.ServiceException",
        "Lambda.TooManyRequestsException",
        "Lambda.SdkClientException",
    }
    for name, state in tasks:
        retries = state.get("Retry", [])
        errors = {e for r in retries for e in r["ErrorEquals"]}
        if ":lambda:invoke" in state["Resource"]:
            assert lambda_transient <= errors, f"{name} misses Lambda throttling/service errors"
        elif "mediaconvert" in state["Resource"]:
            assert "MediaConvert.TooManyRequestsException" in errors, name
        else:
            pytest.fail(f"unexpected task {name}: {state['Resource']}")
        if name.endswith("Finalize") or name.rsplit("/", 1)[-1].startswith("Analyze "):
            assert {"RekognitionLimitExceeded", "RekognitionUnavailable"} <= errors, name
        for retry in retries:
            assert retry.get("JitterStrategy") == "FULL", name
            assert retry["BackoffRate"] >= 2, name


def test_map_concurrency_follows_config_and_rekognition_quota(definition, synthesized):
    maps = [s for _, s, _ in _walk(definition["States"]) if s["Type"] == "Map"]
    assert len(maps) == 1
    concurrency = maps[0]["MaxConcurrency"]
    assert 1 <= concurrency <= 6  # 3 Rekognition jobs per asset, 20 per account
    assert concurrency in {c.map_concurrency for c in build_environments().values()}


def test_analysis_waits_by_callback_with_a_timeout_and_limit_retry(definition):
    callbacks = [
        (n, s)
        for n, s, _ in _walk(definition["States"])
        if s["Type"] == "Task" and s["Resource"].endswith("waitForTaskToken")
    ]
    assert sorted(n.rsplit("/", 1)[-1] for n, _ in callbacks) == sorted(
        [
            f"Analyze {feature} ({on})"
            for feature in ("labels", "moderation", "segments")
            for on in ("proxy", "source")
        ]
        + [f"Transcribe speech ({on})" for on in ("proxy", "source")]
    )
    for name, state in callbacks:
        assert 0 < state["TimeoutSeconds"] <= 24 * 3600, name
        # The heartbeat sweep beats every 10 minutes; three missed beats fail the task early.
        assert 3 * 600 <= state["HeartbeatSeconds"] < state["TimeoutSeconds"], name
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
        service = "Transcribe" if "Transcribe speech" in name else "Rekognition"
        limit = [r for r in state["Retry"] if f"{service}LimitExceeded" in r["ErrorEquals"]]
        assert limit and limit[0]["MaxAttempts"] >= 5, name
        assert f"{service}Unavailable" in limit[0]["ErrorEquals"], name


def _successors(state: dict) -> list[str]:
    return (
        ([state["Next"]] if "Next" in state else [])
        + [c["Next"] for c in state.get("Catch", [])]
        + [c["Next"] for c in state.get("Choices", [])]
        + ([state["Default"]] if "Default" in state else [])
    )


def test_no_polling_loops(definition):
    # Waiting is done by .sync and callbacks: no Wait state, and no state can be entered twice
    # (a Choice that looped back would poll and bill a transition per look).
    kinds = {s["Type"] for _, s, _ in _walk(definition["States"])}
    assert "Wait" not in kinds
    for graph in _graphs(definition):
        states = graph["States"]
        for name in states:
            seen, todo = set(), list(_successors(states[name]))
            while todo:
                nxt = todo.pop()
                assert nxt != name, f"{name} can be entered again: a loop"
                if nxt not in seen:
                    seen.add(nxt)
                    todo += _successors(states[nxt])


def _inner(definition: dict) -> dict:
    (mapped,) = [s for _, s, _ in _walk(definition["States"]) if s["Type"] == "Map"]
    return mapped["ItemProcessor"]["States"]


def test_transcode_jobs_are_sync_mediaconvert_jobs_of_the_plan(definition):
    jobs = {
        n.rsplit("/", 1)[-1]: s
        for n, s, _ in _walk(definition["States"])
        if "mediaconvert" in s.get("Resource", "")
    }
    planned = {
        "Transcode": "full",
        "Transcode proxy": "proxy",
        "Transcode renditions": "renditions",
    }
    assert set(jobs) == set(planned)
    for name, job in jobs.items():
        assert job["Resource"].endswith(":states:::mediaconvert:createJob.sync"), name
        params = job["Parameters"]
        assert params["Settings.$"] == f"$.plan.jobs.{planned[name]}.settings", name
        assert params["UserMetadata.$"] == f"$.plan.jobs.{planned[name]}.user_metadata", name
        # Only the job id is kept: the job description repeats the settings (payload size)
        assert list(job["ResultSelector"].values()) == ["$.Job.Id"], name


def test_analysis_starts_as_soon_as_rekognition_can_read_something(definition):
    inner = _inner(definition)
    # Given the plan's decision, the Choice follows it
    assert inner["Plan transcode"]["Next"] == "Rekognition reads the source?"
    choice = inner["Rekognition reads the source?"]
    assert choice["Choices"] == [
        {
            "Variable": "$.plan.analysis.input",
            "StringEquals": "source",
            "Next": "Transcode and analyze source",
        }
    ]
    # A readable source: the whole transcode beside the three analyses of the source
    source = inner["Transcode and analyze source"]
    assert [b["StartAt"] for b in source["Branches"]] == [
        "Transcode",
        "Analyze labels (source)",
        "Analyze moderation (source)",
        "Analyze segments (source)",
        "Speech to transcribe? (source)",
    ]
    # Otherwise: the proxy-only job first, then the renditions beside the proxy's analyses
    assert choice["Default"] == "Transcode proxy"
    assert inner["Transcode proxy"]["Next"] == "Renditions and analyze proxy"
    proxy = inner["Renditions and analyze proxy"]
    assert [b["StartAt"] for b in proxy["Branches"]] == [
        "Transcode renditions",
        "Analyze labels (proxy)",
        "Analyze moderation (proxy)",
        "Analyze segments (proxy)",
        "Speech to transcribe? (proxy)",
    ]
    # Each analysis reads the video the plan chose; both paths meet in one Finalize that reads
    # the same shape
    for both, on in ((source, "source"), (proxy, "proxy")):
        for branch in both["Branches"][1:4]:
            start = branch["States"][branch["StartAt"]]
            assert start["Parameters"]["Payload"]["video.$"] == "$.plan.analysis.video"
        # Speech: only when the probe found audio (every campaign, by default config)
        speech = both["Branches"][4]["States"]
        choice = speech[f"Speech to transcribe? ({on})"]
        assert choice["Choices"] == [
            {
                "Variable": "$.probe.technical.audio[0]",
                "IsPresent": True,
                "Next": f"Transcribe speech ({on})",
            }
        ]
        assert speech[choice["Default"]]["Result"] == {
            "feature": "speech",
            "status": "SKIPPED",
            "reason": "the clip has no audio stream",
        }
        task = speech[f"Transcribe speech ({on})"]
        assert task["Parameters"]["Payload"]["media.$"] == "$.plan.analysis.video"
        # Whatever fails in speech is the speech section's failure, never the asset's
        [catch] = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        assert speech[catch["Next"]]["Parameters"]["status"] == "FAILED"
        assert "End" in speech[catch["Next"]]
        assert both["Next"] == "Finalize"
        assert both["ResultPath"] == "$.work"
        assert both["ResultSelector"]["analysis.$"] == "States.Array($[1], $[2], $[3], $[4])"
    assert source["ResultSelector"]["transcode_job_ids.$"] == "States.Array($[0].job_id)"
    assert proxy["ResultSelector"]["transcode_job_ids.$"] == (
        "States.Array($[0].proxy_job_id, $[0].renditions.job_id)"
    )
    finalize = inner["Finalize"]["Parameters"]["Payload"]
    assert finalize["analysis.$"] == "$.work.analysis"
    assert finalize["transcode"]["job_ids.$"] == "$.work.transcode_job_ids"
    assert finalize["analysed.$"] == "$.plan.analysis"


def test_asset_failures_are_caught_and_recorded(definition):
    inner = _inner(definition)
    for name in (
        "Probe",
        "Plan transcode",
        "Transcode proxy",
        "Transcode and analyze source",
        "Renditions and analyze proxy",
        "Finalize",
    ):
        catches = inner[name]["Catch"]
        assert catches == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Mark failed"}
        ], name


def test_invalid_input_fails_at_once_with_the_message(definition):
    resolve = definition["States"]["Resolve input"]
    assert resolve["Catch"][0]["ErrorEquals"] == ["InvalidInput"]
    assert resolve["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    fail = definition["States"]["Invalid input"]
    assert fail == {"Type": "Fail", "Error": "InvalidInput", "CausePath": "$.detail.errorMessage"}


def test_state_machine_logs_everything_and_traces(synthesized):
    for env in ("Dev", "Prod"):
        resources = synthesized.templates[f"{env}/Pipeline"]["Resources"]
        machines = [
            r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"
        ]
        assert len(machines) == 3  # the pipeline's, the reprocess one and the stories one
        for machine in machines:
            props = machine["Properties"]
            assert props["StateMachineType"] == "STANDARD"
            assert props["TracingConfiguration"] == {"Enabled": True}
            assert props["LoggingConfiguration"]["Level"] == "ALL"
            assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
        _, machine = pipeline_state_machine(resources)
        props = machine["Properties"]
        assert props["StateMachineType"] == "STANDARD"
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is True


def test_weekly_schedule_and_upload_rule(synthesized):
    resources = synthesized.templates["Dev/Pipeline"]["Resources"]
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    schedules = sorted(
        (r for r in rules if "ScheduleExpression" in r), key=lambda r: r["ScheduleExpression"]
    )
    assert [r["ScheduleExpression"] for r in schedules] == [
        "cron(0 7 ? * MON *)",
        "rate(10 minutes)",  # the analysis heartbeat sweep
    ]
    assert schedules[0]["Targets"][0]["Input"] == "{}"
    uploads = [
        r
        for r in rules
        if "EventPattern" in r
        and r["EventPattern"]["detail-type"] not in (RESTORED, ["Transcribe Job State Change"])
        and r["Description"] != "A story project's manifest arrived: render it"
    ]
    assert len(uploads) == 1
    pattern = uploads[0]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "uploads/"}]}


def test_start_function_may_resume_only_the_two_state_machines(synthesized):
    # The start function resumes tasks of already finished jobs; its grant is scoped by each
    # state machine's logical id (CloudFormation names it "<LogicalId>-<random>").
    resources = synthesized.templates["Dev/Pipeline"]["Resources"]
    machine_ids = sorted(
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and not k.startswith("Stories")
    )
    statements = [
        st
        for k, r in resources.items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("AnalysisStartRole")
        for st in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    send = [st for st in statements if "states:SendTaskSuccess" in st["Action"]]
    (statement,) = send  # one statement naming both machines
    assert sorted(statement["Resource"]) == [
        f"arn:aws:states:eu-west-1:123456789012:stateMachine:{machine_id}-*"
        for machine_id in machine_ids
    ]


def _lambda_of(state: dict) -> str:
    """The function a LambdaInvoke task calls, as its logical id (from the tokenized ARN)."""
    return json.dumps(state["Parameters"].get("FunctionName"))


def test_any_input_shape_reaches_the_invalid_input_message(definition):
    # The execution input may be any JSON (an array, a string, a number). A Catch that puts its
    # error at "$.error" needs an object to put it in, and fails with States.Runtime otherwise,
    # losing the handler's InvalidInput message. So Resolve's catches replace the input ("$").
    resolve = definition["States"]["Resolve input"]
    assert [c.get("ResultPath", "$") for c in resolve["Catch"]] == ["$", "$"]
    read = definition["States"]["Read input error"]
    assert read["Parameters"] == {"detail.$": "States.StringToJson($.Cause)"}
    assert read["Next"] == "Invalid input"
    fail = definition["States"]["Invalid input"]
    assert fail == {"Type": "Fail", "Error": "InvalidInput", "CausePath": "$.detail.errorMessage"}


def test_a_run_that_fails_after_resolve_is_summarized_with_a_readable_cause(definition):
    states = definition["States"]
    # Given the two ways a run fails after Resolve started: Resolve itself (not bad input) and
    # anything inside Run
    resolve_failed = next(
        c for c in states["Resolve input"]["Catch"] if c["ErrorEquals"] == ["States.ALL"]
    )
    (run_failed,) = states["Run"]["Catch"]
    assert states[resolve_failed["Next"]] == {
        "Type": "Pass",
        "Parameters": {"error.$": "$"},
        "Next": "Summarize failed run",
    }
    assert run_failed == {
        "ErrorEquals": ["States.ALL"],
        "ResultPath": "$.error",
        "Next": "Summarize failed run",
    }
    # Then both publish the run summary first (the summary function, in its failed-run form)
    summarize = states["Summarize failed run"]
    assert _lambda_of(summarize) == _lambda_of(states["Run"]["Branches"][0]["States"]["Summary"])
    assert summarize["Parameters"]["Payload"] == {"execution.$": "$$.Execution.Id", "run.$": "$"}
    # and fail with the short Error and readable Cause it returns
    assert summarize["Next"] == "Run failed"
    assert states["Run failed"] == {"Type": "Fail", "ErrorPath": "$.error", "CausePath": "$.cause"}
    # and if even that step fails, the run still fails with a readable sentence, never raw JSON
    (fallback,) = summarize["Catch"]
    last = states[fallback["Next"]]
    assert last["Type"] == "Fail" and last["ErrorPath"] == "$.error.Error"
    assert last["Cause"].startswith("The run failed and its summary could not be published")
    # and no Fail state anywhere passes on a raw Cause
    for name, state, _ in _walk(states):
        if state["Type"] == "Fail":
            assert state.get("CausePath") in (None, "$.cause", "$.detail.errorMessage"), name


def test_a_mark_failed_step_that_fails_still_gives_the_asset_a_result(definition):
    maps = [s for _, s, _ in _walk(definition["States"]) if s["Type"] == "Map"]
    inner = maps[0]["ItemProcessor"]["States"]
    (catch,) = inner["Mark failed"]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["ResultPath"] == "$.mark_error"
    fallback = inner[catch["Next"]]
    assert fallback["Type"] == "Pass" and fallback.get("End") is True
    assert fallback["Parameters"]["status"] == "FAILED"
    assert fallback["Parameters"]["recorded"] is False
    assert fallback["Parameters"]["asset_id.$"] == "$.asset.asset_id"


def test_create_job_carries_the_plans_idempotency_token(definition):
    inner = _inner(definition)
    plan = inner["Plan transcode"]
    assert plan["Parameters"]["Payload"] == {
        "asset.$": "$.asset",
        "execution.$": "$$.Execution.Name",
        "probe.$": "$.probe.technical",
    }
    assert plan["ResultSelector"]["jobs.$"] == "$.Payload.jobs"
    jobs = {
        n.rsplit("/", 1)[-1]: s
        for n, s, _ in _walk(definition["States"])
        if "mediaconvert" in s.get("Resource", "")
    }
    for name, job in jobs.items():
        settings = job["Parameters"]["Settings.$"]
        assert job["Parameters"]["ClientRequestToken.$"] == settings.replace(
            ".settings", ".client_request_token"
        ), name
