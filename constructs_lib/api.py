"""The api unit: the jobs API, an API Gateway HTTP API in front of one Lambda.

Applications and the edge uploader ask for an upload (``POST /jobs``), follow it and fetch its
result; the upload itself goes straight to S3 through presigned URLs signed by the handler's role,
so that role, not the caller, holds the write right, and only under ``uploads/jobs/``. An object
landing there starts the pipeline through the existing upload trigger, exactly once.

Callers authenticate with SigV4 (IAM) by default: they need ``execute-api:Invoke`` on the API
(``grant_invoke``). With ``cognito`` on, routes take a Cognito user pool's JWT instead. The stage
throttles (rate and burst from config) and writes JSON access logs to an encrypted log group;
HTTP APIs accept at most 10 MB of payload, and the handler refuses bodies above its own limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.functions import log_group
from constructs_lib.nag import (
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    acknowledge_rule,
    arn_finding,
    render,
)
from constructs_lib.props import require
from constructs_lib.units import FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import machine_name_arn
from lambdas.api.settings import MAX_PARTS_PER_UPLOAD, ApiSettings

MIB = 1024 * 1024
ROUTES = (
    (apigw.HttpMethod.POST, "/jobs"),
    (apigw.HttpMethod.GET, "/jobs"),
    (apigw.HttpMethod.GET, "/jobs/{job_id}"),
    (apigw.HttpMethod.GET, "/jobs/{job_id}/result"),
    (apigw.HttpMethod.POST, "/jobs/{job_id}/parts"),
    (apigw.HttpMethod.POST, "/jobs/{job_id}/complete"),
    (apigw.HttpMethod.POST, "/assets/{asset_id}/reprocess"),
    (apigw.HttpMethod.GET, "/assets/{asset_id}/results"),
    (apigw.HttpMethod.POST, "/projects"),
    (apigw.HttpMethod.GET, "/projects/{project_id}"),
)
HANDLER = FunctionSpec(
    monitoring_name="JobsApi",
    construct_id="Handler",
    handler="lambdas.api.handler.handler",
    description="The jobs API: presigned uploads, job status, history and results",
    service="api",
    settings=ApiSettings,
)
# What the access log records per request (API Gateway's $context variables).
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.userArn",
        "time": "$context.requestTime",
        "method": "$context.httpMethod",
        "route": "$context.routeKey",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "error": "$context.error.message",
        "integrationError": "$context.integrationErrorMessage",
    }
)


@dataclass(frozen=True)
class ApiConfig:
    """The jobs API of one environment (configuration field ``api``)."""

    throttle_rate_per_s: int = 20
    throttle_burst: int = 40
    multipart_threshold_mib: int = 100
    part_size_mib: int = 16
    # At most what ingest accepts (``ingest.max_file_bytes``, checked by the environment).
    max_upload_gib: int = 2
    url_expiry_s: int = 3600
    # IAM principals (role or user ARNs) that may read and reprocess every caller's jobs.
    admin_principals: tuple[str, ...] = ()
    # A Cognito user pool (JWT) instead of IAM; members of admin_group see every job.
    cognito: bool = False
    admin_group: str = "media-admins"

    def __post_init__(self) -> None:
        require(self.throttle_rate_per_s >= 1, "api.throttle_rate_per_s", "must be >= 1")
        require(
            self.throttle_burst >= self.throttle_rate_per_s,
            "api.throttle_burst",
            f"must be >= throttle_rate_per_s ({self.throttle_rate_per_s})",
        )
        require(
            5 <= self.part_size_mib <= 5 * 1024,
            "api.part_size_mib",
            f"S3 parts are 5 MiB..5 GiB, got {self.part_size_mib}",
        )
        require(
            self.multipart_threshold_mib >= self.part_size_mib,
            "api.multipart_threshold_mib",
            f"must be >= part_size_mib ({self.part_size_mib})",
        )
        require(
            1 <= self.max_upload_gib <= 10,
            "api.max_upload_gib",
            f"must be 1..10 (Rekognition Video reads at most 10 GB), got {self.max_upload_gib}",
        )
        require(
            self.max_upload_gib * 1024 <= self.part_size_mib * MAX_PARTS_PER_UPLOAD,
            "api.part_size_mib",
            f"too small: max_upload_gib needs more than the {MAX_PARTS_PER_UPLOAD} part URLs "
            "one answer to POST /jobs may carry",
        )
        require(
            60 <= self.url_expiry_s <= 7 * 24 * 3600,
            "api.url_expiry_s",
            f"presigned URLs last 60 s..7 days, got {self.url_expiry_s}",
        )
        for arn in self.admin_principals:
            require(
                arn.startswith("arn:aws") and ":iam::" in arn,
                "api.admin_principals",
                f"must be IAM role or user ARNs, got {arn!r}",
            )


class Api(Unit):
    """The HTTP API, its stage, its handler and the handler's grants."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: UnitRuntime,
        config: ApiConfig,
        reprocess: sfn.IStateMachine,
        max_manifest_bytes: int = 256 * 1024,
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        data_lake, catalog = runtime.data_lake, runtime.catalog
        self.handler = self.add_function(
            HANDLER,
            self.settings(
                ApiSettings,
                multipart_threshold_bytes=config.multipart_threshold_mib * MIB,
                part_size_bytes=config.part_size_mib * MIB,
                max_upload_bytes=config.max_upload_gib * 1024 * MIB,
                url_expiry_s=config.url_expiry_s,
                admin_principals=json.dumps(list(config.admin_principals)),
                admin_group=config.admin_group if config.cognito else None,
                reprocess_state_machine_arn=reprocess.state_machine_arn,
                projects_bucket=data_lake.projects.bucket_name,
                # A POST /projects body carries the manifest.
                max_body_bytes=max(16 * 1024, max_manifest_bytes + 4096),
            ),
        )
        function = self.handler.function
        # POST /assets/{id}/reprocess starts a run; DescribeExecution tells a stale claim (a
        # run that ended without releasing it) from one still in flight.
        reprocess.grant_start_execution(function)
        # Scoped by the machine's name, CloudFormation's "<LogicalId>-<random>" (a Ref would
        # be split with Fn::Select, which IAM takes but a reviewer cannot read in a diff).
        runs = machine_name_arn(reprocess, executions=True)
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[runs])
        )
        catalog.grant_read_write(function)
        runtime.campaign_config.grant_read(function)
        # Presigned PUTs and multipart uploads are signed by this role: it may write (and abort,
        # and list the parts of) objects under uploads/jobs/ only, and read them back (status).
        data_lake.grant_job_uploads(function)
        # Results are presigned GETs of the processed renditions and labels.json.
        data_lake.grant_processed_video_read(function)
        data_lake.grant_processed_image_read(function)
        # Story projects: signs their uploads, writes and reads their status.json, and links
        # the final video.
        data_lake.grant_project_uploads(function)
        data_lake.grant_projects_read(function)
        data_lake.grant_story_videos_read(function)

        self.user_pool: cognito.UserPool | None = None
        authorizer: apigw.IHttpRouteAuthorizer
        if config.cognito:
            self.user_pool = cognito.UserPool(
                self,
                "Users",
                self_sign_up_enabled=False,
                sign_in_aliases=cognito.SignInAliases(email=True),
                password_policy=cognito.PasswordPolicy(
                    min_length=12,
                    require_digits=True,
                    require_lowercase=True,
                    require_uppercase=True,
                    require_symbols=True,
                ),
                mfa=cognito.Mfa.REQUIRED,
                mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
                account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            acknowledge_rule(
                self.user_pool,
                "AwsSolutions-COG8",
                "A few operator and device accounts, created by an administrator (no self "
                "sign-up), each with TOTP MFA and a 12-character password policy; the Plus "
                "plan's threat protection is billed per active user and adds little here.",
            )
            client = self.user_pool.add_client(
                "Clients", auth_flows=cognito.AuthFlow(user_srp=True)
            )
            cognito.CfnUserPoolGroup(
                self,
                "Admins",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=config.admin_group,
                description="May read every caller's jobs",
            )
            authorizer = authorizers.HttpUserPoolAuthorizer(
                "Users", self.user_pool, user_pool_clients=[client]
            )
        else:
            authorizer = authorizers.HttpIamAuthorizer()

        self.http_api = apigw.HttpApi(
            self,
            "Http",
            description="Media pipeline jobs API",
            create_default_stage=False,
            default_authorizer=authorizer,
        )
        integration = integrations.HttpLambdaIntegration("Handler", function)
        for method, path in ROUTES:
            self.http_api.add_routes(path=path, methods=[method], integration=integration)
        self.access_logs = log_group(self, runtime.log_retention_days, runtime.key.key)
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttle_rate_per_s, burst_limit=config.throttle_burst
            ),
        )
        stage = self.stage.node.default_child
        if not isinstance(stage, apigw.CfnStage):
            raise TypeError("HttpStage has no CfnStage")
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=ACCESS_LOG_FORMAT
        )
        cdk.CfnOutput(self, "Url", value=self.http_api.api_endpoint, description="Jobs API")

        raw = data_lake.raw.node.default_child
        processed = data_lake.processed.node.default_child
        projects = data_lake.projects.node.default_child
        policy = self.handler.default_policy
        acknowledge(
            policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                arn_finding(policy, raw, "/uploads/jobs/*"),  # type: ignore[arg-type]
                arn_finding(policy, processed, "/video/*"),  # type: ignore[arg-type]
                arn_finding(policy, processed, "/image/*"),  # type: ignore[arg-type]
                arn_finding(policy, projects, "/projects/*"),  # type: ignore[arg-type]
                arn_finding(policy, projects, "/videos/*"),  # type: ignore[arg-type]
            ],
            "Signs uploads under uploads/jobs/ of the raw bucket (one key per job) and result "
            "links under video/ and image/ of the processed bucket; keys are per job and asset. "
            "Signs a story project's uploads and reads its status under projects/ of the "
            "projects bucket, and links its final video under videos/; keys are per project.",
        )
        acknowledge(
            policy,
            [f"Resource::{render(policy, runs)}"],
            "states:DescribeExecution of the reprocess workflow's own runs only: it tells a "
            "reprocess claim whose run ended from one still running; run names are made per "
            "request.",
        )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """``execute-api:Invoke`` on every route of this API's stage (IAM callers)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=[self.http_api.arn_for_execute_api()],
        )
