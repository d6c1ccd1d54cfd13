"""AWS Backup for what cannot be rebuilt: the catalog table and the raw bucket.

Point-in-time recovery covers the table's last 35 days against a bad write; a backup plan adds
what PITR does not: copies kept a year, in a vault with its own access policy (recovery points
cannot be deleted, even by an administrator of the account), encrypted with the customer key,
optionally copied to a vault in a second region. The raw bucket is versioned, which AWS Backup
requires for S3; the processed zone is derived from it and is not backed up.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from constructs_lib.nag import acknowledge_rule
from constructs_lib.props import require

# AWS Backup's own policies for the services backed up here (S3 has separate ones).
SERVICE_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)


@dataclass(frozen=True)
class BackupConfig:
    """Configuration field ``backups``: on in production (the catalog and the raw bucket)."""

    enabled: bool = False
    daily_retention_days: int = 35
    monthly_retention_days: int = 365
    # UTC hour of the daily backup (after the weekly run's usual window).
    hour_utc: int = 3
    # A vault in another region to copy every recovery point to (it must exist there); None: no
    # copy. Cross-region copies double the backup storage and add inter-region transfer.
    copy_to_vault_arn: str | None = None

    def __post_init__(self) -> None:
        require(self.daily_retention_days >= 1, "backups.daily_retention_days", "must be >= 1")
        # AWS Backup refuses a rule that deletes a recovery point before its next one is made.
        require(
            self.monthly_retention_days >= 31,
            "backups.monthly_retention_days",
            "must be >= 31 (a monthly copy must outlive the next one)",
        )
        require(0 <= self.hour_utc <= 23, "backups.hour_utc", "must be 0..23")
        require(
            self.copy_to_vault_arn is None
            or (
                self.copy_to_vault_arn.startswith("arn:")
                and ":backup-vault:" in self.copy_to_vault_arn
            ),
            "backups.copy_to_vault_arn",
            f"must be a backup vault ARN, got {self.copy_to_vault_arn!r}",
        )


class DataBackups(Construct):
    """A vault encrypted with the data key, a daily and a monthly rule, one selection."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BackupConfig,
        key: kms.IKey,
        resources: list[backup.BackupResource],
    ) -> None:
        super().__init__(scope, construct_id)
        hour = str(config.hour_utc)
        self.vault = backup.BackupVault(
            self,
            "Vault",
            encryption_key=key,
            block_recovery_point_deletion=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        copies = (
            []
            if config.copy_to_vault_arn is None
            else [
                backup.BackupPlanCopyActionProps(
                    destination_backup_vault=backup.BackupVault.from_backup_vault_arn(
                        self, "CopyVault", config.copy_to_vault_arn
                    ),
                    delete_after=cdk.Duration.days(config.daily_retention_days),
                )
            ]
        )
        # CDK would name the plan "Plan"; plan names are unique per account and region.
        self.plan = backup.BackupPlan(
            self, "Plan", backup_vault=self.vault, backup_plan_name=cdk.Names.unique_id(self)
        )
        self.plan.add_rule(
            backup.BackupPlanRule(
                rule_name="Daily",
                schedule_expression=events.Schedule.cron(minute="0", hour=hour),
                delete_after=cdk.Duration.days(config.daily_retention_days),
                copy_actions=copies,
            )
        )
        self.plan.add_rule(
            backup.BackupPlanRule(
                rule_name="Monthly",
                schedule_expression=events.Schedule.cron(minute="0", hour=hour, day="1"),
                delete_after=cdk.Duration.days(config.monthly_retention_days),
                copy_actions=copies,
            )
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup backs up and restores the catalog and the raw bucket",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in SERVICE_POLICIES
            ],
        )
        # The table and the raw bucket are encrypted with the data key; so is the vault.
        key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
        self.selection = self.plan.add_selection(
            "CatalogAndRaw",
            resources=resources,
            role=self.role,
            disable_default_backup_policy=True,
        )
        for name in SERVICE_POLICIES:
            acknowledge_rule(
                self.role,
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{name}]",
                "AWS Backup's own service policies (backup and restore, and their S3 variants), "
                "which AWS keeps in step with what each service's backups need; AWS Backup "
                "documents them as the policies of its service role.",
            )
