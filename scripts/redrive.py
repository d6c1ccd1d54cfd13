"""``make redrive ENV=dev QUEUE=UndeliveredUploadStarts [APPLY=1]``: a dead-letter queue's
messages back to where they were going.

Without ``--apply`` it is a dry run: every message of the queue, classified, with what a
redrive would do (send it, or keep it and why). With ``--apply`` it sends them, each at most
once (``lambdas/operations/redrive.py`` says how). The queues and their targets come from the
monitoring stack's ``DeadLetterQueues`` output (``<Stage>-Monitoring``), or from a local
world's file (``--world .demo/world.json``, written by ``make demo SERVE=1``); the ledger is the
processed bucket (``<Stage>-Stateful``'s ``ProcessedBucketName``).

Runs with the operator's credentials: the usual AWS variables or profile.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lambdas.operations.dead_letters import RegistryError, parse_registry
from lambdas.operations.redrive import Redrive, RedriveError

STAGES = {"dev": "Dev", "prod": "Prod"}


def outputs(cfn: Any, stack: str) -> dict[str, str]:
    answer = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in answer.get("Outputs", [])}


def build(args: argparse.Namespace) -> Redrive:
    """The redrive of the deployment ``args`` name, with clients of the operator's session."""
    endpoint: str | None = None
    if args.world:
        world = json.loads(Path(args.world).read_text())
        if "dead_letter_queues" not in world:
            raise RegistryError(
                f"{args.world} names no dead-letter queues: start the world with the monitoring "
                "stack (make demo SERVE=1 deploys it)"
            )
        registry, bucket = world["dead_letter_queues"], world["processed_bucket"]
        region, endpoint = world["region"], world["endpoint_url"]
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local world takes any key
            region_name=region,
        )
    else:
        stage = STAGES[args.env]
        session = boto3.session.Session(region_name=args.region)
        cfn = session.client("cloudformation")
        registry = outputs(cfn, f"{stage}-Monitoring").get("DeadLetterQueues")
        bucket = outputs(cfn, f"{stage}-Stateful").get("ProcessedBucketName", "")
        if not registry or not bucket:
            raise RegistryError(
                f"{stage}-Monitoring has no DeadLetterQueues output or {stage}-Stateful no "
                "ProcessedBucketName: deploy this version first (make deploy ENV=...)"
            )

    def client(service: str) -> Any:
        return cast(Any, session).client(service, endpoint_url=endpoint)

    return Redrive(
        parse_registry(registry),
        sqs=client("sqs"),
        s3=client("s3"),
        ledger_bucket=bucket,
        lambda_=client("lambda"),
        stepfunctions=client("stepfunctions"),
        sns=client("sns"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=sorted(STAGES), default="dev")
    parser.add_argument(
        "--queue", required=True, help="the queue's name, e.g. UndeliveredUploadStarts"
    )
    parser.add_argument("--apply", action="store_true", help="send (default: a dry run)")
    parser.add_argument("--world", help="a local world's file instead of the deployed stacks")
    parser.add_argument("--region", help="the deployment's region (default: your AWS config)")
    args = parser.parse_args(argv)
    try:
        redrive = build(args)
        if not args.apply:
            plan = redrive.plan(args.queue)
            print(f"Dry run of {args.queue}: {len(plan)} message(s)")
            for p in plan:
                what = f"send to {p.target.rsplit(':', 1)[-1]}" if p.action == "send" else "keep"
                print(
                    f"- {p.classified.message.message_id}: {p.classified.error_class} for "
                    f"{p.classified.subject} -> {what} ({p.reason})"
                )
            sends = sum(p.action == "send" for p in plan)
            print(f"{sends} would be sent. Run again with APPLY=1 (--apply) to send them.")
            return 0
        outcomes = redrive.apply(args.queue)
        print(f"Redrive of {args.queue}: {len(outcomes)} message(s)")
        for o in outcomes:
            print(f"- {o.message_id}: {o.result} ({o.subject}): {o.detail}")
        return 1 if any(o.result == "failed" for o in outcomes) else 0
    except (RedriveError, RegistryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print("error: no AWS credentials: set AWS_PROFILE or the AWS_* variables", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as err:
        print(f"error: AWS refused the call: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
