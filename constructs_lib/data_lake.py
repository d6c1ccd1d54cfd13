"""The media data lake: raw, processed and access-log buckets with lifecycle tiers.

Raw video is large and rarely read after analysis, so it tiers down to Glacier and Deep Archive;
renditions stay instantly readable (Glacier Instant Retrieval) so previews keep working; the small
``*_labels.json`` documents stay in Standard because editors and agents read them all the time.

A failed asset's renditions are deleted by mark-failed (``lambdas/finalize/cleanup.py``); the
few it cannot delete it tags ``orphaned=true``, and ``ExpireOrphanedRenditions`` expires those.
Deletes in these versioned buckets leave noncurrent versions, which ``Housekeeping`` expires.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.nag import acknowledge, arn_finding
from constructs_lib.props import ConfigError, require

VIDEO_PREFIX = "video/"
IMAGE_PREFIX = "image/"
# Where assets' keys live, clips and images.
ASSET_PREFIXES = (VIDEO_PREFIX, IMAGE_PREFIX)
UPLOADS_PREFIX = "uploads/"
# Where the jobs API's presigned uploads land (still under uploads/, so they start a run).
JOB_UPLOADS_PREFIX = f"{UPLOADS_PREFIX}jobs/"
SCRATCH_PREFIX = "scratch/"
# The projects bucket (stories): a project's images, narration and manifest, and the videos
# rendered from them (``lambdas/stories/manifest.py`` names the same prefixes).
PROJECTS_PREFIX = "projects/"
STORY_VIDEOS_PREFIX = "videos/"
# What operations write to the processed bucket: dead-letter summaries and the redrive ledger
# (lambdas/operations/dead_letters.py OPERATIONS_PREFIX, checked equal by a test).
DEAD_LETTER_REPORTS_PREFIX = "operations/dead-letters/"
# Where a rendered story is dropped when its manifest asks for labels (the upload trigger
# starts the pipeline for anything under uploads/).
STORY_UPLOADS_PREFIX = f"{UPLOADS_PREFIX}stories/"
# Lifecycle transitions skip objects below 128 KiB anyway; 1 MiB keeps every labels document
# (JSON, usually tens of KiB) in Standard while video renditions and HLS segments tier down.
RENDITION_MIN_BYTES = 1024 * 1024
# The tag mark-failed puts on a failed asset's renditions that S3 would not delete
# (lambdas/finalize/cleanup.py: ORPHAN_TAG_KEY/ORPHAN_TAG_VALUE; a test keeps them equal).
ORPHAN_TAG = {"orphaned": "true"}


class LifecycleError(ConfigError):
    """Lifecycle days are inconsistent; the message names the field."""


@dataclass(frozen=True)
class LifecycleDays:
    """Days after creation for each storage transition, validated against S3's own rules."""

    raw_intelligent_tiering_days: int = 0
    raw_glacier_days: int = 90
    raw_deep_archive_days: int = 365
    renditions_instant_archive_days: int = 90
    # Renditions of failed assets that mark-failed could not delete (tagged orphaned=true).
    orphaned_renditions_expiry_days: int = 7
    noncurrent_version_expiry_days: int = 30
    abort_incomplete_multipart_days: int = 1
    scratch_expiry_days: int = 14
    uploads_expiry_days: int = 30
    access_log_expiry_days: int = 365
    # Story projects (their files and rendered videos) are working material, not the library:
    # a rendered story that should stay is sent through the pipeline (``send_to_pipeline``).
    project_expiry_days: int = 14

    def __post_init__(self) -> None:
        def fail(name: str, message: str) -> None:
            raise LifecycleError(f"lifecycle.{name}: {message}")

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                fail(f.name, f"must be a whole number of days >= 0, got {value!r}")
        for name in (
            "noncurrent_version_expiry_days",
            "abort_incomplete_multipart_days",
            "scratch_expiry_days",
            "uploads_expiry_days",
            "access_log_expiry_days",
            "orphaned_renditions_expiry_days",
            "project_expiry_days",
        ):
            if getattr(self, name) < 1:
                fail(name, f"must be at least 1 day, got {getattr(self, name)}")
        if self.raw_glacier_days <= self.raw_intelligent_tiering_days:
            fail(
                "raw_glacier_days",
                f"Glacier ({self.raw_glacier_days}) must come after Intelligent-Tiering "
                f"({self.raw_intelligent_tiering_days})",
            )
        if self.raw_deep_archive_days < self.raw_glacier_days + 90:
            fail(
                "raw_deep_archive_days",
                f"Deep Archive ({self.raw_deep_archive_days}) must come at least 90 days after "
                f"Glacier ({self.raw_glacier_days}): S3's minimum storage duration in Glacier",
            )
        if self.renditions_instant_archive_days < 30:
            fail(
                "renditions_instant_archive_days",
                f"must be at least 30 days, got {self.renditions_instant_archive_days}",
            )


REPLICA_STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR")


@dataclass(frozen=True)
class RawReplication:
    """Configuration field ``raw_replication``: copy the raw bucket to a bucket in another region.

    Off by default. The destination (versioned, in the other region, with its own key when the
    source is SSE-KMS) is created outside this app. Cost: S3 replication requests, inter-region
    transfer (about USD 0.02/GB) and the destination's storage, that is roughly the raw bucket's
    storage bill a second time.
    """

    destination_bucket_arn: str
    # The destination region's key for SSE-KMS replicas; None when the destination uses SSE-S3.
    destination_key_arn: str | None = None
    storage_class: str = "STANDARD_IA"

    def __post_init__(self) -> None:
        require(
            self.destination_bucket_arn.startswith("arn:")
            and ":s3:::" in self.destination_bucket_arn,
            "raw_replication.destination_bucket_arn",
            f"must be an S3 bucket ARN, got {self.destination_bucket_arn!r}",
        )
        require(
            self.storage_class in REPLICA_STORAGE_CLASSES,
            "raw_replication.storage_class",
            f"one of {REPLICA_STORAGE_CLASSES}",
        )


def _after(days: int, storage_class: s3.StorageClass) -> s3.Transition:
    return s3.Transition(storage_class=storage_class, transition_after=cdk.Duration.days(days))


class DataLake(Construct):
    """Three buckets hardened the same way; callers get access through ``grant_*`` only.

    Every bucket blocks public access, enforces TLS and is versioned. The raw and processed
    buckets are encrypted with the customer-managed data key (SSE-KMS, with S3 Bucket Keys so
    KMS is called per bucket key, not per object) when ``key`` is given, or with S3-managed keys
    when the environment chooses SSE-S3 (``bucket_encryption="s3"``: see the README's security
    section for when that is the better choice). Every ``grant_*`` then includes the key use it
    needs. The access-log bucket is always SSE-S3: S3 server access logging cannot deliver to a
    bucket whose default encryption is SSE-KMS. The raw bucket sends its events to EventBridge,
    which is how uploads start the pipeline.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lifecycle: LifecycleDays,
        retain_data: bool,
        key: kms.IKey | None = None,
        replication: RawReplication | None = None,
        project_upload_origins: tuple[str, ...] = ("*",),
    ) -> None:
        super().__init__(scope, construct_id)
        self.lifecycle = lifecycle
        self.key = key
        removal = cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY
        auto_delete = not retain_data

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=removal,
            auto_delete_objects=auto_delete,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=cdk.Duration.days(lifecycle.access_log_expiry_days),
                    noncurrent_version_expiration=cdk.Duration.days(
                        lifecycle.noncurrent_version_expiry_days
                    ),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(
                        lifecycle.abort_incomplete_multipart_days
                    ),
                )
            ],
        )
        cdk.Validations.of(self.access_logs).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the server access log bucket; logging it into itself would loop.",
            )
        )

        self.raw = self._bucket(
            "Raw",
            removal=removal,
            auto_delete=auto_delete,
            event_bridge=True,
            replication=replication,
            rules=[
                s3.LifecycleRule(
                    id="RawVideoTiers",
                    prefix=VIDEO_PREFIX,
                    transitions=[
                        _after(
                            lifecycle.raw_intelligent_tiering_days,
                            s3.StorageClass.INTELLIGENT_TIERING,
                        ),
                        _after(lifecycle.raw_glacier_days, s3.StorageClass.GLACIER),
                        _after(lifecycle.raw_deep_archive_days, s3.StorageClass.DEEP_ARCHIVE),
                    ],
                ),
                s3.LifecycleRule(
                    id="ExpireUploadedOriginals",
                    prefix=UPLOADS_PREFIX,
                    expiration=cdk.Duration.days(lifecycle.uploads_expiry_days),
                ),
                self._scratch_rule(),
                self._housekeeping_rule(),
            ],
        )
        self.processed = self._bucket(
            "Processed",
            removal=removal,
            auto_delete=auto_delete,
            event_bridge=False,
            rules=[
                s3.LifecycleRule(
                    id="RenditionTiers",
                    prefix=VIDEO_PREFIX,
                    object_size_greater_than=RENDITION_MIN_BYTES,
                    transitions=[
                        _after(
                            lifecycle.renditions_instant_archive_days,
                            s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                        )
                    ],
                ),
                s3.LifecycleRule(
                    id="ExpireOrphanedRenditions",
                    prefix=VIDEO_PREFIX,
                    tag_filters=dict(ORPHAN_TAG),
                    expiration=cdk.Duration.days(lifecycle.orphaned_renditions_expiry_days),
                ),
                self._scratch_rule(),
                self._housekeeping_rule(),
            ],
        )
        # CloudFormation types ObjectSizeGreaterThan as a string; the L2 emits a number.
        cfn_processed = self.processed.node.default_child
        if not isinstance(cfn_processed, s3.CfnBucket):  # pragma: no cover - CDK invariant
            raise TypeError("processed bucket has no CfnBucket")
        cfn_processed.add_property_override(
            "LifecycleConfiguration.Rules.0.ObjectSizeGreaterThan", str(RENDITION_MIN_BYTES)
        )
        self.projects = self._projects_bucket(removal, auto_delete, project_upload_origins)
        self._acknowledge_notifications_handler()
        if replication is not None:
            self._acknowledge_replication(replication)

    def _projects_bucket(
        self, removal: cdk.RemovalPolicy, auto_delete: bool, origins: tuple[str, ...]
    ) -> s3.Bucket:
        """Story projects: browsers upload a project's files to it with presigned PUTs (CORS
        for ``origins``; the signature, not the origin, is what authorizes a PUT), EventBridge
        hears the manifest arrive, and everything expires after ``project_expiry_days``."""
        bucket = s3.Bucket(
            self,
            "Projects",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            bucket_key_enabled=True if self.key else None,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="projects/",
            event_bridge_enabled=True,
            removal_policy=removal,
            auto_delete_objects=auto_delete,
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=list(origins),
                    allowed_headers=["*"],
                    exposed_headers=["ETag", "x-amz-version-id"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireProjects",
                    expiration=cdk.Duration.days(self.lifecycle.project_expiry_days),
                    # A replaced or deleted file (a run's work files) is gone a day later.
                    noncurrent_version_expiration=cdk.Duration.days(1),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(
                        self.lifecycle.abort_incomplete_multipart_days
                    ),
                )
            ],
        )
        return bucket

    def _acknowledge_replication(self, replication: RawReplication) -> None:
        """The role CDK makes for replication reads every object version of the raw bucket and
        writes every replica: whole-bucket object ARNs, and the keys' write actions."""
        policy = self.raw.node.find_child("ReplicationRole").node.find_child("DefaultPolicy")
        raw = self.raw.node.default_child
        if not isinstance(raw, cdk.CfnResource):  # pragma: no cover - CDK invariant
            raise TypeError("raw bucket has no CfnBucket")
        acknowledge(
            policy,
            [
                arn_finding(policy, raw, "/*"),
                f"Resource::{replication.destination_bucket_arn}/*",
                "Action::kms:GenerateDataKey*",
                "Action::kms:ReEncrypt*",
            ],
            "S3 replication of the whole raw bucket: its role reads every object version and "
            "writes each replica (and re-encrypts it under the destination's key), which is "
            "what CDK's replication grant names.",
        )

    def _acknowledge_notifications_handler(self) -> None:
        """EventBridge delivery is switched on by CDK's own singleton custom resource."""
        stack = cdk.Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                cdk.Validations.of(child).acknowledge(
                    cdk.Acknowledgment(
                        id=(
                            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                            "service-role/AWSLambdaBasicExecutionRole]"
                        ),
                        reason=(
                            "CDK's built-in handler that turns on EventBridge delivery for the "
                            "raw bucket; the managed policy only lets it write its own logs."
                        ),
                    )
                )

    def _bucket(
        self,
        construct_id: str,
        *,
        removal: cdk.RemovalPolicy,
        auto_delete: bool,
        event_bridge: bool,
        rules: list[s3.LifecycleRule],
        replication: RawReplication | None = None,
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            bucket_key_enabled=True if self.key else None,
            replication_rules=None if replication is None else [self._replica(replication)],
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{construct_id.lower()}/",
            event_bridge_enabled=event_bridge,
            removal_policy=removal,
            auto_delete_objects=auto_delete,
            lifecycle_rules=rules,
        )

    def _replica(self, replication: RawReplication) -> s3.ReplicationRule:
        """Everything, delete markers included, to the other region's bucket."""
        destination = s3.Bucket.from_bucket_arn(
            self, "ReplicaBucket", replication.destination_bucket_arn
        )
        replica_key = (
            None
            if replication.destination_key_arn is None
            else kms.Key.from_key_arn(self, "ReplicaKey", replication.destination_key_arn)
        )
        return s3.ReplicationRule(
            destination=destination,
            priority=0,
            delete_marker_replication=True,
            kms_key=replica_key,
            sse_kms_encrypted_objects=self.key is not None,
            storage_class=s3.StorageClass(replication.storage_class),
        )

    def _scratch_rule(self) -> s3.LifecycleRule:
        return s3.LifecycleRule(
            id="ExpireScratch",
            prefix=SCRATCH_PREFIX,
            expiration=cdk.Duration.days(self.lifecycle.scratch_expiry_days),
        )

    def _housekeeping_rule(self) -> s3.LifecycleRule:
        return s3.LifecycleRule(
            id="Housekeeping",
            noncurrent_version_expiration=cdk.Duration.days(
                self.lifecycle.noncurrent_version_expiry_days
            ),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(
                self.lifecycle.abort_incomplete_multipart_days
            ),
            expired_object_delete_marker=True,
        )

    # -- metrics ---------------------------------------------------------------------------
    def metric_size_bytes(self, bucket: s3.IBucket, storage_type: str) -> cloudwatch.Metric:
        """Daily S3 storage metric; one line per storage class shows where the bytes sit."""
        return cloudwatch.Metric(
            namespace="AWS/S3",
            metric_name="BucketSizeBytes",
            dimensions_map={"BucketName": bucket.bucket_name, "StorageType": storage_type},
            statistic="Average",
            period=cdk.Duration.days(1),
        )

    # -- grants: the only way other units get access ---------------------------------------------
    def grant_raw_video_read_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Ingest writes new video, checks for existing keys, and removes its own half-done work
        (aborted multipart uploads, objects whose catalog commit failed) under ``video/``."""
        return self._key_writes(grantee, self.raw.grant_read_write(grantee, f"{VIDEO_PREFIX}*"))

    def grant_raw_image_read_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Ingest writes new images under ``image/`` as it writes clips under ``video/``."""
        return self._key_writes(grantee, self.raw.grant_read_write(grantee, f"{IMAGE_PREFIX}*"))

    def grant_raw_video_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read registered clips and their attribution sidecars (``video/`` only)."""
        return self.raw.grant_read(grantee, f"{VIDEO_PREFIX}*")

    def grant_raw_video_restore(self, grantee: iam.IGrantable) -> iam.Grant:
        """Ask S3 for a temporary copy of an archived clip under ``video/`` (a reprocess of an
        asset whose raw object tiered to Glacier Flexible Retrieval or Deep Archive); nothing
        else of the objects."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:RestoreObject"],
            resource_arns=[self.raw.arn_for_objects(f"{VIDEO_PREFIX}*")],
        )

    def grant_uploads_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Ingest reads files people dropped under ``uploads/`` to register them as assets."""
        return self.raw.grant_read(grantee, f"{UPLOADS_PREFIX}*")

    def grant_projects_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read a project's files (``projects/``: images, narration, manifest, work files)."""
        return self.projects.grant_read(grantee, f"{PROJECTS_PREFIX}*")

    def grant_project_work(self, grantee: iam.IGrantable, *, delete: bool = False) -> None:
        """Write a render's work files (``projects/<id>/work/``: plan, focus copies, chunks)
        and the project's ``status.json``; ``delete``: also remove work files."""
        self._key_writes(grantee, self.projects.grant_put(grantee, f"{PROJECTS_PREFIX}*/work/*"))
        self.projects.grant_put(grantee, f"{PROJECTS_PREFIX}*/status.json")
        if delete:
            self.projects.grant_delete(grantee, f"{PROJECTS_PREFIX}*/work/*")

    def grant_story_cleanup(self, grantee: iam.IGrantable) -> None:
        """What a failed render's clean-up needs and nothing it does not: delete the run's work
        files and a video version it wrote under ``videos/``, and write the failure into
        ``status.json`` (the data key for that write)."""
        self._key_writes(
            grantee, self.projects.grant_put(grantee, f"{PROJECTS_PREFIX}*/status.json")
        )
        self.projects.grant_delete(grantee, f"{PROJECTS_PREFIX}*/work/*")
        self.projects.grant_delete(grantee, f"{STORY_VIDEOS_PREFIX}*")

    def grant_story_videos_read(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.projects.grant_read(grantee, f"{STORY_VIDEOS_PREFIX}*")

    def grant_story_videos_write(self, grantee: iam.IGrantable) -> None:
        """Publish (and take back, by version) a rendered story under ``videos/``."""
        self._key_writes(grantee, self.projects.grant_put(grantee, f"{STORY_VIDEOS_PREFIX}*"))
        self.projects.grant_delete(grantee, f"{STORY_VIDEOS_PREFIX}*")

    def grant_story_uploads(self, grantee: iam.IGrantable) -> iam.Grant:
        """Drop a rendered story under ``uploads/stories/`` of the raw bucket (put only)."""
        return self._key_writes(grantee, self.raw.grant_put(grantee, f"{STORY_UPLOADS_PREFIX}*"))

    def grant_project_uploads(self, grantee: iam.IGrantable) -> iam.Grant:
        """The jobs API signs a project's uploads (images, narration, manifest) and writes its
        first ``status.json``: put under ``projects/`` only."""
        return self._key_writes(grantee, self.projects.grant_put(grantee, f"{PROJECTS_PREFIX}*"))

    def grant_job_uploads(self, grantee: iam.IGrantable) -> iam.Grant:
        """The jobs API signs uploads under ``uploads/jobs/``: put (one PUT or a multipart upload,
        which ``grant_put`` covers with abort), list a multipart upload's parts, and read the
        object back to tell whether it arrived. Nothing else of the bucket."""
        prefix = f"{JOB_UPLOADS_PREFIX}*"
        self.raw.grant_read(grantee, prefix)
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListMultipartUploadParts"],
            resource_arns=[self.raw.arn_for_objects(prefix)],
        )
        return self._key_writes(grantee, self.raw.grant_put(grantee, prefix))

    def grant_scratch_read_write(self, grantee: iam.IGrantable) -> iam.Grant:
        return self._key_writes(grantee, self.raw.grant_read_write(grantee, f"{SCRATCH_PREFIX}*"))

    def grant_dead_letter_reports(self, grantee: iam.IGrantable) -> iam.Grant:
        """The dead-letter analyzer reads its last summary and writes the next one (and its
        history) under ``operations/dead-letters/``; nothing else of the processed zone."""
        self.processed.grant_read(grantee, f"{DEAD_LETTER_REPORTS_PREFIX}*")
        return self._key_writes(
            grantee, self.processed.grant_put(grantee, f"{DEAD_LETTER_REPORTS_PREFIX}*")
        )

    def grant_processed_video_read(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.processed.grant_read(grantee, f"{VIDEO_PREFIX}*")

    def grant_processed_write(self, grantee: iam.IGrantable) -> iam.Grant:
        return self._key_writes(grantee, self.processed.grant_put(grantee, f"{VIDEO_PREFIX}*"))

    def grant_processed_cleanup(self, grantee: iam.IGrantable) -> iam.Grant:
        """Remove a failed asset's renditions: list, delete and tag objects under ``video/`` and
        ``image/`` (where the asset's keys live, clip or image).

        Exactly ``s3:DeleteObject``, which in this versioned bucket adds a delete marker (the
        bytes stay recoverable until ``Housekeeping`` expires them), rather than
        ``grant_delete``'s ``s3:DeleteObject*``: that also allows ``s3:DeleteObjectVersion``,
        permanent deletion that would defeat the recovery window. ``s3:PutObjectTagging``
        (tagging only, not ``grant_put``'s ``s3:PutObject``) marks what S3 would not delete for
        ``ExpireOrphanedRenditions``. Listing is limited to keys under those prefixes.
        """
        objects = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:DeleteObject", "s3:PutObjectTagging"],
            resource_arns=[
                self.processed.arn_for_objects(f"{prefix}*") for prefix in ASSET_PREFIXES
            ],
        )
        return objects.combine(self._grant_asset_list(self.processed, grantee))

    def grant_speech_output_delete(self, grantee: iam.IGrantable) -> iam.Grant:
        """Remove what a transcription wrote (``video/.../speech/``) when its asset's run is
        over: exactly ``s3:DeleteObject`` (a delete marker, as the cleanup's), nothing else."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:DeleteObject"],
            resource_arns=[self.processed.arn_for_objects(f"{VIDEO_PREFIX}*/speech/*")],
        )

    def grant_raw_image_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read registered images (``image/`` only)."""
        return self.raw.grant_read(grantee, f"{IMAGE_PREFIX}*")

    def grant_processed_image_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read image renditions (Rekognition reads them with the caller's permissions)."""
        return self.processed.grant_read(grantee, f"{IMAGE_PREFIX}*")

    def grant_processed_image_put(self, grantee: iam.IGrantable) -> iam.Grant:
        """Write an image's labels document under ``image/``; nothing else."""
        return self._key_writes(grantee, self.processed.grant_put(grantee, f"{IMAGE_PREFIX}*"))

    def grant_processed_image_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Write an image's renditions under ``image/`` and take back what a refused image's
        step wrote: ``s3:DeleteObject`` exactly (a delete marker, as the video cleanup's), not
        ``s3:DeleteObjectVersion``."""
        put = self.grant_processed_image_put(grantee)
        return put.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["s3:DeleteObject"],
                resource_arns=[self.processed.arn_for_objects(f"{IMAGE_PREFIX}*")],
            )
        )

    def grant_raw_asset_list(self, grantee: iam.IGrantable) -> iam.Grant:
        """List (not read) raw keys under ``video/`` and ``image/``: mark-failed checks that no
        other asset shares a failed asset's renditions folder before deleting it."""
        return self._grant_asset_list(self.raw, grantee)

    def _key_writes(self, grantee: iam.IGrantable, grant: iam.Grant) -> iam.Grant:
        """A write grant on an SSE-KMS bucket includes the data key's write actions, two of which
        cdk-nag reports as wildcards; acknowledged here, once, for every grantee."""
        principal = grantee.grant_principal
        if self.key is not None and isinstance(principal, iam.Role):
            acknowledge(
                principal.node.find_child("DefaultPolicy"),
                ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
                "Added by the bucket grant for the data key only: S3 calls GenerateDataKey for "
                "SSE-KMS writes (Bucket Keys on) and ReEncrypt when a copy changes the key.",
            )
        return grant

    @staticmethod
    def _grant_asset_list(bucket: s3.IBucket, grantee: iam.IGrantable) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in ASSET_PREFIXES]}},
        )
