#!/usr/bin/env python3
"""CDK entry point: the only place that reads context and environment variables.

``cdk synth`` builds one Stage per environment (``Dev``, ``Prod``); ``-c env=dev`` limits it to one.
Account and region come from the standard ``CDK_DEFAULT_ACCOUNT``/``CDK_DEFAULT_REGION`` (or
``CDK_DEPLOY_*``) variables and are never looked up during synthesis.
"""

from __future__ import annotations

import json
import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from constructs_lib.props import ConfigError
from lambdas.shared.settings import SettingsError
from stacks.config import EnvironmentConfig, build_environments, select_environments
from stacks.stage import PipelineStage


def _alert_emails(app: cdk.App) -> dict[str, tuple[str, ...]]:
    """Context ``alertEmails``: ``{"dev": ["a@x.com"], "prod": [...]}`` (JSON on the CLI)."""
    raw = app.node.try_get_context("alertEmails")
    if raw in (None, ""):
        return {}
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, dict):
        raise ConfigError('alertEmails: expected {"dev": ["ops@example.com"], ...}')
    return {str(env): tuple(emails) for env, emails in data.items()}


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, list[PipelineStage]]:
    app = app or cdk.App()
    account = os.environ.get("CDK_DEPLOY_ACCOUNT") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEPLOY_REGION") or os.environ.get("CDK_DEFAULT_REGION")
    envs = build_environments(account=account, region=region, alert_emails=_alert_emails(app))
    selected: list[EnvironmentConfig] = select_environments(envs, app.node.try_get_context("env"))
    stages = [
        PipelineStage(
            app,
            config.stage_id,
            config=config,
            env=cdk.Environment(account=config.account, region=config.region),
        )
        for config in selected
    ]
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return app, stages


def main() -> int:
    """Synthesize; a configuration error is one line naming the field, not a traceback."""
    try:
        app, _stages = build_app()
    except (ConfigError, SettingsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
