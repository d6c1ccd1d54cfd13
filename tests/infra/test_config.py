"""Bad configuration fails synthesis early, with the field named."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from constructs_lib.data_lake import LifecycleDays, LifecycleError
from stacks.config import (
    CampaignDefaults,
    ConfigError,
    EnvironmentConfig,
    IngestConfig,
    build_environments,
    select_environments,
)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"raw_glacier_days": -1}, "lifecycle.raw_glacier_days"),
        (
            {"raw_intelligent_tiering_days": 100, "raw_glacier_days": 90},
            "lifecycle.raw_glacier_days",
        ),
        ({"raw_glacier_days": 90, "raw_deep_archive_days": 100}, "lifecycle.raw_deep_archive_days"),
        ({"scratch_expiry_days": 0}, "lifecycle.scratch_expiry_days"),
        ({"renditions_instant_archive_days": 10}, "lifecycle.renditions_instant_archive_days"),
        ({"noncurrent_version_expiry_days": 1.5}, "lifecycle.noncurrent_version_expiry_days"),
        ({"orphaned_renditions_expiry_days": 0}, "lifecycle.orphaned_renditions_expiry_days"),
    ],
)
def test_bad_lifecycle_days_name_the_field(kwargs, field):
    with pytest.raises(LifecycleError, match=rf"^{field}:"):
        LifecycleDays(**kwargs)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: CampaignDefaults(active="music"), "campaigns.active"),
        (lambda: CampaignDefaults(batch_size_video=0), "campaigns.batch_size_video"),
        (lambda: CampaignDefaults(batch_size_video=51), "campaigns.batch_size_video"),
        (lambda: CampaignDefaults(campaigns=("Travel",), active="Travel"), "campaigns.campaigns"),
        (lambda: IngestConfig(contact="nobody"), "ingest.contact"),
        (lambda: IngestConfig(max_duration_s=7 * 3600), "ingest.max_duration_s"),
        (
            lambda: EnvironmentConfig(
                name="qa", stage_id="Qa", retain_data=False, log_retention_days=14
            ),
            "name",
        ),
        (
            lambda: EnvironmentConfig(
                name="dev", stage_id="Dev", retain_data=False, log_retention_days=15
            ),
            "log_retention_days",
        ),
        (
            lambda: EnvironmentConfig(
                name="dev",
                stage_id="Dev",
                retain_data=False,
                log_retention_days=14,
                map_concurrency=7,
            ),
            "map_concurrency",
        ),
    ],
)
def test_bad_values_name_the_field(factory, field):
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        factory()


def test_unknown_environment_name_is_rejected():
    with pytest.raises(ConfigError, match=r"^env: unknown environment 'staging'"):
        select_environments(build_environments(), "dev,staging")


def test_unknown_environment_in_context_fails_synthesis():
    from app import build_app

    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        build_app(cdk.App(context={"env": "qa"}))


def test_dev_and_prod_differ_where_it_matters():
    envs = build_environments()
    assert (envs["dev"].retain_data, envs["prod"].retain_data) == (False, True)
    assert envs["prod"].lifecycle.raw_glacier_days > envs["dev"].lifecycle.raw_glacier_days
    assert envs["prod"].log_retention_days > envs["dev"].log_retention_days


def test_alert_emails_from_context_reach_the_config():
    envs = build_environments(alert_emails={"prod": ("ops@example.com",)})
    assert envs["prod"].alert_emails == ("ops@example.com",)
    assert envs["dev"].alert_emails == ()
    with pytest.raises(ConfigError, match="alert_emails"):
        build_environments(alert_emails={"qa": ("ops@example.com",)})
