"""Dead-letter queues in the synthesized templates: one kind of message per queue, the analyzer
that reads them all, the registry the redrive uses, and the service-level objectives' alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from constructs_lib.data_lake import DEAD_LETTER_REPORTS_PREFIX
from lambdas.operations.dead_letters import OPERATIONS_PREFIX
from stacks.config import build_environments

ENVS = ("Dev", "Prod")


def _ref(value: Any) -> str | None:
    """The logical id a ``Fn::GetAtt`` / ``Ref`` names, if it is one."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
        if "Ref" in value:
            return str(value["Ref"])
    return None


def _literal(joined: Any) -> dict[str, Any]:
    """A JSON value CDK rendered as ``Fn::Join``, its tokens replaced by ``X``."""
    parts = joined["Fn::Join"][1]
    return dict(json.loads("".join(p if isinstance(p, str) else "X" for p in parts)))


def senders(resources: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """Queue logical id -> the (sender, destination) pairs that dead-letter into it: a function's
    own asynchronous failures, an EventBridge target, an SNS subscription."""
    found: dict[str, set[tuple[str, str]]] = {}
    for logical_id, r in resources.items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::Lambda::Function":
            queue = _ref((props.get("DeadLetterConfig") or {}).get("TargetArn"))
            if queue:
                found.setdefault(queue, set()).add(("lambda", logical_id))
        elif r["Type"] == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                queue = _ref((target.get("DeadLetterConfig") or {}).get("Arn"))
                if queue:
                    found.setdefault(queue, set()).add(("events", json.dumps(target["Arn"])))
        elif r["Type"] == "AWS::SNS::Subscription":
            redrive = props.get("RedrivePolicy") or {}
            queue = _ref(redrive.get("deadLetterTargetArn"))
            if queue:
                found.setdefault(queue, set()).add(("sns", json.dumps(props["Endpoint"])))
    return found


def _destination(sender: tuple[str, str]) -> str:
    """Where the message was going: a function's own id, or the target a rule/topic named."""
    kind, what = sender
    if kind == "lambda":
        return what
    return str(_ref(json.loads(what)) or what)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("stack", ["Pipeline", "Monitoring"])
def test_each_dead_letter_queue_keeps_the_messages_of_one_destination(synthesized, env, stack):
    resources = synthesized.templates[f"{env}/{stack}"]["Resources"]
    queues = {k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    by_queue = senders(resources)
    assert set(by_queue) == queues, "a queue nobody sends to, or a sender without a queue"
    for queue, sent in by_queue.items():
        destinations = {_destination(s) for s in sent}
        assert len(destinations) == 1, (queue, sorted(sent))


@pytest.mark.parametrize("env", ENVS)
def test_the_registry_names_every_queue_once_with_its_route(synthesized, env):
    monitoring = synthesized.templates[f"{env}/Monitoring"]
    registry = _literal(monitoring["Outputs"]["DeadLetterQueues"]["Value"])
    pipeline = synthesized.templates[f"{env}/Pipeline"]["Resources"]
    queues = [
        k
        for stack in ("Pipeline", "Monitoring")
        for k, r in synthesized.templates[f"{env}/{stack}"]["Resources"].items()
        if r["Type"] == "AWS::SQS::Queue"
    ]
    assert len(registry) == len(queues)
    assert len({entry["kind"] for entry in registry.values()}) == len(registry)
    assert {entry["via"] for entry in registry.values()} == {"lambda", "states", "sns"}
    for name, entry in registry.items():
        assert name.startswith("Undelivered"), name
        assert set(entry) == {"url", "arn", "kind", "describes", "via", "target"}
    assert any(r["Type"] == "AWS::Lambda::Function" for r in pipeline.values())


@pytest.mark.parametrize("env", ENVS)
def test_the_analyzer_reads_every_queue_without_the_right_to_delete(synthesized, env):
    resources = synthesized.templates[f"{env}/Monitoring"]["Resources"]
    (analyzer,) = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("DeadLetterAnalysisAnalyzer")
    ]
    assert analyzer["Properties"]["Handler"] == "lambdas.operations.analyzer.handler"
    variables = analyzer["Properties"]["Environment"]["Variables"]
    read = _literal(variables["QUEUES"])
    assert set(read) == set(
        _literal(synthesized.templates[f"{env}/Monitoring"]["Outputs"]["DeadLetterQueues"]["Value"])
    )
    assert all(set(entry) == {"url", "kind", "describes"} for entry in read.values())
    (policy,) = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("DeadLetterAnalysisAnalyzerRole")
    ]
    actions = {
        a
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"} <= actions
    assert not {a for a in actions if a.startswith("sqs:Delete") or a == "sqs:*"}
    s3_resources = json.dumps(
        [
            s["Resource"]
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if any(
                str(a).startswith("s3:")
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            )
        ]
    )
    assert f"/{DEAD_LETTER_REPORTS_PREFIX}*" in s3_resources and "/video/" not in s3_resources
    (rule,) = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::Events::Rule" and k.startswith("DeadLetterAnalysisSchedule")
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(15 minutes)"
    assert DEAD_LETTER_REPORTS_PREFIX == OPERATIONS_PREFIX
    # and an analysis that fails (a tick has no dead-letter queue) or is throttled alarms
    (function_id,) = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("DeadLetterAnalysisAnalyzer")
    ]
    watching = {
        r["Properties"]["AlarmDescription"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and function_id in json.dumps(r["Properties"])
    }
    assert watching == {
        "The DeadLetterAnalyzer function reported errors",
        "The DeadLetterAnalyzer function was throttled",
    }


@pytest.mark.parametrize("env", ENVS)
def test_burn_rate_alarms_notify_and_follow_the_objectives(synthesized, env):
    objectives = build_environments()[env.lower()].slo
    resources = synthesized.templates[f"{env}/Monitoring"]["Resources"]
    composites = {
        k: r["Properties"]
        for k, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::CompositeAlarm"
    }
    burn = {k: p for k, p in composites.items() if p["AlarmDescription"].startswith("SLO burn")}
    assert len(burn) == 4  # fast and slow, for time to labels and availability
    for props in burn.values():
        assert props["AlarmActions"], props["AlarmDescription"]
        assert "ALARM(" in json.dumps(props["AlarmRule"]) and " AND " in json.dumps(
            props["AlarmRule"]
        )
    windows = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("AlarmDescription", "").startswith("SLO burn")
    ]
    assert len(windows) == 8
    rates = {p["Threshold"] for p in windows}
    assert rates == {objectives.fast.burn_rate, objectives.slow.burn_rate}
    stats = {
        m["MetricStat"]["Stat"]
        for p in windows
        for m in p["Metrics"]
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "TimeToLabelsSeconds"
    }
    assert stats == {f"PR(:{objectives.time_to_labels_minutes * 60})"}
    periods = {
        m["MetricStat"]["Period"] for p in windows for m in p["Metrics"] if "MetricStat" in m
    }
    assert periods == {
        60 * minutes
        for minutes in (
            objectives.fast.long_minutes,
            objectives.fast.short_minutes,
            objectives.slow.long_minutes,
            objectives.slow.short_minutes,
        )
    }
    outcomes = {
        tuple(
            d["Value"]
            for d in sorted(
                m["MetricStat"]["Metric"]["Dimensions"], key=lambda d: d["Name"] != "service"
            )
        )
        for p in windows
        for m in p["Metrics"]
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "AssetOutcome"
    }
    assert outcomes == {("slo", "processed"), ("slo", "refused"), ("slo", "failed")}
    for p in windows:
        assert p["TreatMissingData"] == "notBreaching"
