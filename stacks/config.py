"""Per-environment configuration as typed, frozen dataclasses.

Every knob the stacks use lives here, side by side for dev and prod, so a reviewer sees the
difference between environments in one file. Values are validated when the object is built, so a
bad value fails synthesis with a message that names the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from constructs_lib.api import ApiConfig
from constructs_lib.backup import BackupConfig
from constructs_lib.data_lake import LifecycleDays, RawReplication
from constructs_lib.delivery import DeliveryConfig
from constructs_lib.discord import DiscordWebhook
from constructs_lib.ingest import IngestLimits
from constructs_lib.macie import MacieConfig
from constructs_lib.monitoring import SlackChannel
from constructs_lib.props import EMAIL_RE, require
from constructs_lib.reprocess import ReprocessConfig
from constructs_lib.slo import SloObjectives
from constructs_lib.stories import StoriesConfig
from constructs_lib.summarize import SummariesConfig
from constructs_lib.transcribe import TranscribeConfig
from constructs_lib.trigger import WeeklySchedule
from constructs_lib.units import EventConcurrency
from lambdas.finalize.cost import UnitPrices
from lambdas.shared.campaign_config import UPLOADS_CAMPAIGN

_CAMPAIGN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_CRON_FIELDS = ("minute", "hour", "day", "month", "week_day", "year")

# Rekognition Video allows 20 concurrent jobs per account by default and each asset runs three
# (labels, moderation, segments) in parallel, so at most 6 assets may be analysed at once.
REKOGNITION_CONCURRENT_JOBS = 20
ANALYSIS_FEATURES = 3
MAX_MAP_CONCURRENCY = REKOGNITION_CONCURRENT_JOBS // ANALYSIS_FEATURES
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)


@dataclass(frozen=True)
class CampaignDefaults:
    """Initial value of the campaign configuration parameter (the dashboard changes it later)."""

    active: str = "travel"
    campaigns: tuple[str, ...] = ("travel", "tech", "nature")
    batch_size_video: int = 2
    # Images per run (Commons bitmaps, Pixabay photos); 0 searches none.
    batch_size_image: int = 0

    def __post_init__(self) -> None:
        require(len(self.campaigns) > 0, "campaigns.campaigns", "at least one campaign is needed")
        for name in self.campaigns:
            require(
                bool(_CAMPAIGN_RE.match(name)),
                "campaigns.campaigns",
                f"{name!r} is not a lowercase slug of 1-40 letters, digits or '-'",
            )
        require(
            len(set(self.campaigns)) == len(self.campaigns),
            "campaigns.campaigns",
            "names must be unique",
        )
        require(
            self.active in self.campaigns,
            "campaigns.active",
            f"{self.active!r} is not in campaigns {self.campaigns}",
        )
        require(
            isinstance(self.batch_size_video, int) and 1 <= self.batch_size_video <= 50,
            "campaigns.batch_size_video",
            f"must be between 1 and 50, got {self.batch_size_video!r}",
        )
        require(
            isinstance(self.batch_size_image, int)
            and not isinstance(self.batch_size_image, bool)
            and 0 <= self.batch_size_image <= 50,
            "campaigns.batch_size_image",
            f"must be between 0 and 50, got {self.batch_size_image!r}",
        )

    def as_parameter(self) -> dict[str, Any]:
        """The JSON document stored in the SSM parameter."""
        return {
            "active_campaign": self.active,
            "campaigns": list(self.campaigns),
            # image only when asked for: a parameter without it reads as 0, and leaving it out
            # keeps the template (and so the value an operator set from the dashboard) as it
            # was for deployments that do not ask.
            "batch_sizes": {"video": self.batch_size_video}
            | ({"image": self.batch_size_image} if self.batch_size_image else {}),
        }


@dataclass(frozen=True)
class MonitoringConfig:
    """Alarm thresholds and cost controls; alarms notify the alerts topic."""

    failed_executions_threshold: int = 1
    lambda_errors_threshold: int = 1
    lambda_throttles_threshold: int = 1
    anomaly_threshold_usd: int = 10
    slack: SlackChannel | None = None
    discord: DiscordWebhook | None = None

    def __post_init__(self) -> None:
        for name in (
            "failed_executions_threshold",
            "lambda_errors_threshold",
            "lambda_throttles_threshold",
            "anomaly_threshold_usd",
        ):
            require(getattr(self, name) >= 1, f"monitoring.{name}", "must be >= 1")


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between deployments of the pipeline."""

    name: str
    stage_id: str
    retain_data: bool
    log_retention_days: int
    lifecycle: LifecycleDays = field(default_factory=LifecycleDays)
    schedule: WeeklySchedule = field(default_factory=WeeklySchedule)
    campaigns: CampaignDefaults = field(default_factory=CampaignDefaults)
    ingest: IngestLimits = field(default_factory=IngestLimits)
    prices: UnitPrices = field(default_factory=UnitPrices)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    map_concurrency: int = 2
    alert_emails: tuple[str, ...] = ()
    monthly_budget_usd: int = 50
    # "kms": the raw and processed buckets are SSE-KMS with the data key (Bucket Keys on);
    # "s3": SSE-S3, for an environment where something outside this app must read the buckets
    # without KMS access (README, "Security": what that gives up).
    bucket_encryption: str = "kms"
    backups: BackupConfig = field(default_factory=BackupConfig)
    raw_replication: RawReplication | None = None
    macie: MacieConfig = field(default_factory=MacieConfig)
    reserved_concurrency: EventConcurrency = field(default_factory=EventConcurrency)
    api: ApiConfig = field(default_factory=ApiConfig)
    reprocess: ReprocessConfig = field(default_factory=ReprocessConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    stories: StoriesConfig = field(default_factory=StoriesConfig)
    # Service-level objectives: time to labels and availability, with burn-rate alarms.
    slo: SloObjectives = field(default_factory=SloObjectives)
    # Bedrock editorial summaries in labels.json; off unless an environment turns them on.
    summaries: SummariesConfig = field(default_factory=SummariesConfig)
    account: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        require(
            self.api.max_upload_gib * 1024**3 <= self.ingest.max_file_bytes,
            "api.max_upload_gib",
            f"must not exceed what ingest accepts ({self.ingest.max_file_bytes} bytes): "
            "a larger upload would be refused after it was paid for",
        )
        unknown = sorted(
            set(self.transcribe.campaigns) - {"*", UPLOADS_CAMPAIGN, *self.campaigns.campaigns}
        )
        require(
            not unknown,
            "transcribe.campaigns",
            f"{unknown} are not campaigns of this environment "
            f"({[*self.campaigns.campaigns, UPLOADS_CAMPAIGN]})",
        )
        require(self.name in ENVIRONMENT_NAMES, "name", f"unknown environment {self.name!r}")
        require(
            self.stage_id[:1].isupper() and self.stage_id.isalnum(),
            "stage_id",
            f"must be PascalCase, got {self.stage_id!r}",
        )
        require(
            self.log_retention_days in LOG_RETENTION_DAYS,
            "log_retention_days",
            f"{self.log_retention_days} is not a CloudWatch retention; "
            f"use one of {LOG_RETENTION_DAYS}",
        )
        require(
            1 <= self.map_concurrency <= MAX_MAP_CONCURRENCY,
            "map_concurrency",
            f"must be 1..{MAX_MAP_CONCURRENCY} (Rekognition's {REKOGNITION_CONCURRENT_JOBS} "
            f"concurrent jobs / {ANALYSIS_FEATURES} per asset), got {self.map_concurrency}",
        )
        for email in self.alert_emails:
            require(bool(EMAIL_RE.match(email)), "alert_emails", f"{email!r} is not an e-mail")
        require(self.monthly_budget_usd > 0, "monthly_budget_usd", "must be > 0")
        require(
            self.bucket_encryption in BUCKET_ENCRYPTIONS,
            "bucket_encryption",
            f"one of {BUCKET_ENCRYPTIONS}, got {self.bucket_encryption!r}",
        )

    @property
    def deployment_tag(self) -> str:
        """Names this deployment in MediaConvert UserMetadata and resource tags."""
        return f"media-pipeline-{self.name}"


ENVIRONMENT_NAMES = ("dev", "prod")
BUCKET_ENCRYPTIONS = ("kms", "s3")


def build_environments(
    *,
    account: str | None = None,
    region: str | None = None,
    alert_emails: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, EnvironmentConfig]:
    """The two deployments, side by side. ``app.py`` passes what it read from env and context."""
    emails = alert_emails or {}
    unknown = set(emails) - set(ENVIRONMENT_NAMES)
    require(not unknown, "alert_emails", f"unknown environment(s) {sorted(unknown)}")
    return {
        "dev": EnvironmentConfig(
            name="dev",
            stage_id="Dev",
            retain_data=False,
            log_retention_days=14,
            lifecycle=LifecycleDays(
                raw_glacier_days=30,
                raw_deep_archive_days=120,
                renditions_instant_archive_days=30,
                access_log_expiry_days=90,
            ),
            schedule=WeeklySchedule(hour="7", week_day="MON"),
            map_concurrency=2,
            monitoring=MonitoringConfig(lambda_errors_threshold=3, anomaly_threshold_usd=10),
            alert_emails=emails.get("dev", ()),
            monthly_budget_usd=25,
            account=account,
            region=region,
        ),
        "prod": EnvironmentConfig(
            name="prod",
            stage_id="Prod",
            retain_data=True,
            log_retention_days=365,
            lifecycle=LifecycleDays(),
            schedule=WeeklySchedule(hour="6", week_day="MON"),
            map_concurrency=5,
            monitoring=MonitoringConfig(lambda_errors_threshold=1, anomaly_threshold_usd=25),
            alert_emails=emails.get("prod", ()),
            monthly_budget_usd=200,
            backups=BackupConfig(enabled=True),
            macie=MacieConfig(enabled=True),
            account=account,
            region=region,
        ),
    }


def select_environments(
    envs: dict[str, EnvironmentConfig], names: str | None
) -> list[EnvironmentConfig]:
    """Pick the environments named in context (comma separated); all when unset."""
    if not names:
        return list(envs.values())
    picked = []
    for raw in names.split(","):
        name = raw.strip()
        require(name in envs, "env", f"unknown environment {name!r}; known: {sorted(envs)}")
        picked.append(envs[name])
    return picked
