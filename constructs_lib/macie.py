"""Macie scans what people upload for personal data, and its findings reach the alerts topic.

Dash-cam and user uploads carry faces, plates, names and addresses in their metadata and
sidecars; the system this product grew from runs Macie on its raw bucket. Here a scheduled Macie
classification job covers the raw bucket's ``uploads/`` prefix (where people's files land) and
an EventBridge rule turns its findings of the configured severities into readable messages.

CloudFormation has a resource for the Macie session but none for classification jobs, so the job
is created by an ``AwsCustomResource`` (the Macie2 ``CreateClassificationJob`` call, with a
client token so a retried create makes no second job) and cancelled when the stack removes it
(jobs cannot be deleted, only cancelled). A changed job definition creates a new job and
cancels the old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_macie as macie
from aws_cdk import custom_resources as cr
from constructs import Construct

from constructs_lib.nag import acknowledge, acknowledge_sdk_provider, render
from constructs_lib.props import require

SEVERITIES = ("Low", "Medium", "High")
WEEK_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
UPLOADS_PREFIX = "uploads/"


@dataclass(frozen=True)
class MacieConfig:
    """Configuration field ``macie``: on in production, off in development."""

    enabled: bool = False
    # False for an account whose Macie is managed centrally (an administrator account enables
    # it for members): the stack then creates only the job and the findings rule.
    manage_session: bool = True
    day_of_week: str = "SUNDAY"
    severities: tuple[str, ...] = ("Medium", "High")
    # Share of the eligible objects each run samples (Macie bills per GB scanned).
    sampling_percentage: int = 100

    def __post_init__(self) -> None:
        require(self.day_of_week in WEEK_DAYS, "macie.day_of_week", f"one of {WEEK_DAYS}")
        require(
            bool(self.severities) and set(self.severities) <= set(SEVERITIES),
            "macie.severities",
            f"a non-empty subset of {SEVERITIES}, got {self.severities!r}",
        )
        require(1 <= self.sampling_percentage <= 100, "macie.sampling_percentage", "must be 1..100")


class UploadsScan(Construct):
    """The Macie session (unless managed centrally) and the weekly job over ``uploads/``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MacieConfig,
        bucket_name: str,
        log_group: logs.ILogGroup,
        deployment: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.session = (
            macie.CfnSession(
                self, "Session", status="ENABLED", finding_publishing_frequency="ONE_HOUR"
            )
            if config.manage_session
            else None
        )
        definition = {
            "bucketDefinitions": [{"accountId": stack.account, "buckets": [bucket_name]}],
            "scoping": {
                "includes": {
                    "and": [
                        {
                            "simpleScopeTerm": {
                                "comparator": "STARTS_WITH",
                                "key": "OBJECT_KEY",
                                "values": [UPLOADS_PREFIX],
                            }
                        }
                    ]
                }
            },
        }
        # A new token only when what the job does changes: CloudFormation then replaces it.
        token = hashlib.sha256(
            json.dumps([config.day_of_week, config.sampling_percentage], sort_keys=True).encode(),
            usedforsecurity=False,
        ).hexdigest()[:16]
        create = cr.AwsSdkCall(
            service="Macie2",
            action="createClassificationJob",
            parameters={
                "clientToken": f"{stack.stack_name}-uploads-{token}",
                "name": f"{deployment}-uploads-{token}",
                "description": "Personal data in files people uploaded to the raw bucket",
                "jobType": "SCHEDULED",
                "scheduleFrequency": {"weeklySchedule": {"dayOfWeek": config.day_of_week}},
                # Each run looks only at objects created or changed since the previous one.
                "initialRun": True,
                "samplingPercentage": config.sampling_percentage,
                "managedDataIdentifierSelector": "RECOMMENDED",
                "s3JobDefinition": definition,
            },
            physical_resource_id=cr.PhysicalResourceId.from_response("jobId"),
        )
        jobs = stack.format_arn(service="macie2", resource="classification-job", resource_name="*")
        self.job = cr.AwsCustomResource(
            self,
            "Job",
            on_create=create,
            on_delete=cr.AwsSdkCall(
                service="Macie2",
                action="updateClassificationJob",
                parameters={"jobId": cr.PhysicalResourceIdReference(), "jobStatus": "CANCELLED"},
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["macie2:CreateClassificationJob"],
                        # Macie also checks the caller may tag the job it creates.
                        resources=[jobs],
                    ),
                    iam.PolicyStatement(
                        actions=["macie2:UpdateClassificationJob"], resources=[jobs]
                    ),
                ]
            ),
            log_group=log_group,
            install_latest_aws_sdk=False,
        )
        if self.session is not None:
            self.job.node.add_dependency(self.session)
        acknowledge(
            self.job.node.find_child("CustomResourcePolicy"),
            [f"Resource::{render(self, jobs)}"],
            "Macie classification job ARNs carry an id Macie assigns on create, so the custom "
            "resource's two calls (create, and cancel on delete) name classification-job/*.",
        )
        acknowledge_sdk_provider(stack)
