"""Bad configuration fails synthesis early, with the field named."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from constructs_lib.backup import BackupConfig
from constructs_lib.data_lake import LifecycleDays, LifecycleError, RawReplication
from constructs_lib.ingest import IngestLimits
from constructs_lib.macie import MacieConfig
from constructs_lib.props import ConfigError
from constructs_lib.transcribe import TranscribeConfig
from constructs_lib.trigger import WeeklySchedule
from lambdas.finalize.cost import UnitPrices
from lambdas.shared.settings import SettingsError
from stacks.config import (
    CampaignDefaults,
    EnvironmentConfig,
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
        (lambda: CampaignDefaults(batch_size_image=-1), "campaigns.batch_size_image"),
        (lambda: CampaignDefaults(batch_size_image=51), "campaigns.batch_size_image"),
        (lambda: CampaignDefaults(campaigns=("Travel",), active="Travel"), "campaigns.campaigns"),
        (lambda: IngestLimits(contact="nobody"), "ingest.contact"),
        (lambda: IngestLimits(max_duration_s=7 * 3600), "ingest.max_duration_s"),
        # The construct's own floor, named as the configuration field it comes from.
        (lambda: IngestLimits(timeout_s=60), "ingest.timeout_s"),
        (lambda: WeeklySchedule(hour="6 7"), "schedule.hour"),
        (lambda: WeeklySchedule(margin_hours=-1), "schedule.margin_hours"),
        (lambda: BackupConfig(monthly_retention_days=30), "backups.monthly_retention_days"),
        (lambda: BackupConfig(copy_to_vault_arn="vault-b"), "backups.copy_to_vault_arn"),
        (lambda: MacieConfig(severities=("Critical",)), "macie.severities"),
        (lambda: MacieConfig(day_of_week="Mon"), "macie.day_of_week"),
        (
            lambda: RawReplication(destination_bucket_arn="my-bucket"),
            "raw_replication.destination_bucket_arn",
        ),
        (
            lambda: EnvironmentConfig(
                name="dev",
                stage_id="Dev",
                retain_data=False,
                log_retention_days=14,
                bucket_encryption="aws:kms",
            ),
            "bucket_encryption",
        ),
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
        (
            lambda: EnvironmentConfig(
                name="dev",
                stage_id="Dev",
                retain_data=False,
                log_retention_days=14,
                transcribe=TranscribeConfig(campaigns=("travel", "dashcams")),
            ),
            "transcribe.campaigns",
        ),
        (lambda: TranscribeConfig(languages=("en-US", "xx-XX")), "transcribe.languages"),
        (lambda: TranscribeConfig(languages=()), "transcribe.languages"),
        (lambda: TranscribeConfig(campaigns=("*", "travel")), "transcribe.campaigns"),
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


@pytest.mark.parametrize("value", [-0.01, "0.1", True])
def test_a_bad_unit_price_names_its_field(value):
    # The configuration holds the finalize unit's own price type, so its check is the only one.
    with pytest.raises(SettingsError, match=r"^prices\.lambda_per_gb_second: must be a number"):
        UnitPrices(lambda_per_gb_second=value)


def test_synthesis_reports_a_bad_value_in_one_line(monkeypatch, capsys):
    # Given a configuration whose unit prices are wrong (checked by the finalize unit's type)
    import app

    def environments(**_kwargs: object) -> None:
        UnitPrices(stepfunctions_per_transition=-1)

    monkeypatch.setattr(app, "build_environments", environments)

    # When the app runs, it stops with the field named, not a traceback
    assert app.main() == 1
    assert capsys.readouterr().err == (
        "error: prices.stepfunctions_per_transition: must be a number >= 0, got -1\n"
    )


def test_an_image_batch_is_in_the_campaign_parameter_only_when_asked_for():
    # (a parameter without it reads as 0; leaving it out keeps existing templates unchanged)
    assert CampaignDefaults().as_parameter()["batch_sizes"] == {"video": 2}
    assert CampaignDefaults(batch_size_image=3).as_parameter()["batch_sizes"] == {
        "video": 2,
        "image": 3,
    }
