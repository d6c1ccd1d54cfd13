"""Request and response bodies of the jobs API (pydantic models; the OpenAPI document's schemas).

The checks that need no configuration live here (shape, lengths, patterns); those that depend
on the deployment (allowed content types, the size limit, known campaigns) are the handler's.
A failed check says what is wrong in words; the handler prefixes the field's name.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from lambdas.shared.errors import shown
from lambdas.shared.keys import UnsafeKeyError, check_slug
from lambdas.shared.rekognition import rerun_features
from lambdas.shared.story_manifest import PROJECT_ID_RE, Manifest

MAX_FILENAME_LEN = 255
SHA256_HEX_LEN = 64
MAX_METADATA_KEYS = 10
MAX_METADATA_KEY_LEN = 64
MAX_METADATA_VALUE_LEN = 256
MAX_PART_NUMBER = 10_000
MAX_PARTS_PER_REQUEST = 1_000
_HEX_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_METADATA_KEY_RE = re.compile(r"^[a-z0-9-]{1,64}$")

Feature = Literal["labels", "moderation", "segments"]
JobStatus = Literal["WAITING_FOR_UPLOAD", "UPLOADED", "RUNNING", "PROCESSED", "FAILED"]


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateJobRequest(_Strict):
    """A file to upload: what it is, so S3 accepts exactly these bytes and nothing else."""

    filename: str = Field(
        description="The file's name, without folders (1-255 characters, no control characters)."
    )
    content_type: str = Field(description="The file's media type, e.g. video/mp4.")
    size_bytes: StrictInt = Field(gt=0, description="The file's exact size in bytes.")
    sha256: str = Field(description="SHA-256 of the whole file, 64 hexadecimal characters.")
    campaign: str | None = Field(
        default=None, description='A configured campaign; "uploads" when omitted.'
    )
    source: str | None = Field(
        default=None, description="Where the file comes from (1-40 lowercase letters, digits, -)."
    )
    captured_at: str | None = Field(
        default=None, description="When it was filmed: ISO-8601 with a UTC offset or Z."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="Up to 10 keys of [a-z0-9-] (64 characters at most), values of at most 256.",
    )

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        if not value or len(value) > MAX_FILENAME_LEN:
            raise ValueError(
                f"must be 1 to {MAX_FILENAME_LEN} characters, got {len(value)} characters"
            )
        if "/" in value or "\\" in value:
            raise ValueError(
                f"must be a file name without folders ('/' or '\\'), got {shown(value)}"
            )
        if _has_control(value):
            raise ValueError(f"must not contain control characters, got {shown(value)}")
        if value.strip() in ("", ".", ".."):
            raise ValueError(f"must name a file, got {shown(value)}")
        return value

    @field_validator("content_type")
    @classmethod
    def _content_type(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not _HEX_RE.match(value):
            raise ValueError(
                f"must be the file's SHA-256 as {SHA256_HEX_LEN} hexadecimal characters, "
                f"got {shown(value)}"
            )
        return value.lower()

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_slug("source", value)
        except UnsafeKeyError:
            raise ValueError(
                f"must be 1-40 lowercase letters, digits or '-', got {shown(value)}"
            ) from None

    @field_validator("captured_at")
    @classmethod
    def _captured_at(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                "must be an ISO-8601 date and time such as 2025-06-01T10:30:00Z, "
                f"got {shown(value)}"
            ) from None
        if moment.tzinfo is None:
            raise ValueError(f"must say its UTC offset (or Z), got {shown(value)}")
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"must have at most {MAX_METADATA_KEYS} keys, got {len(value)}")
        for key, item in value.items():
            if not _METADATA_KEY_RE.match(key):
                raise ValueError(
                    f"key {shown(key)} must be 1-{MAX_METADATA_KEY_LEN} characters of a-z, 0-9 "
                    "or '-'"
                )
            if len(item) > MAX_METADATA_VALUE_LEN:
                raise ValueError(
                    f"value of {key!r} must be at most {MAX_METADATA_VALUE_LEN} characters, "
                    f"got {len(item)}"
                )
            if _has_control(item):
                raise ValueError(f"value of {key!r} must not contain control characters")
        return value


class PartUrl(BaseModel):
    part_number: int = Field(description="1-based part number.")
    url: str = Field(description="Presigned UploadPart URL: PUT the part's bytes to it.")


class PutUpload(BaseModel):
    """One PUT of the whole file, with exactly these headers (S3 refuses anything else)."""

    method: Literal["PUT"]
    url: str
    headers: dict[str, str] = Field(
        description="Every header the PUT must carry, with these exact values."
    )


class MultipartUpload(BaseModel):
    """PUT each part (``part_size`` bytes, the last one the rest) to its URL, then complete."""

    method: Literal["MULTIPART"]
    upload_id: str
    part_size: int
    parts: list[PartUrl]


class CreateJobResponse(BaseModel):
    job_id: str
    status: Literal["WAITING_FOR_UPLOAD"]
    key: str = Field(description="The object the upload creates in the raw bucket.")
    expires_at: str = Field(description="When the upload URLs stop working (ISO-8601, UTC).")
    upload: Annotated[PutUpload | MultipartUpload, Field(discriminator="method")]


class PartsRequest(_Strict):
    part_numbers: list[Annotated[StrictInt, Field(ge=1, le=MAX_PART_NUMBER)]] = Field(
        min_length=1, max_length=MAX_PARTS_PER_REQUEST
    )


class UploadedPart(BaseModel):
    part_number: int
    etag: str
    size: int


class PartsResponse(BaseModel):
    parts: list[PartUrl] = Field(description="Fresh URLs for the parts asked for.")
    uploaded: list[UploadedPart] = Field(description="The parts S3 already has.")


class CompletedPart(_Strict):
    part_number: StrictInt = Field(ge=1, le=MAX_PART_NUMBER)
    etag: str = Field(
        min_length=1, max_length=200, description="The ETag S3 answered the PUT with."
    )


class CompleteRequest(_Strict):
    parts: list[CompletedPart] = Field(
        min_length=1, max_length=MAX_PART_NUMBER, description="Every part, in ascending order."
    )


class CompleteResponse(BaseModel):
    job_id: str
    status: Literal["UPLOADED"]


class JobView(BaseModel):
    job_id: str
    status: JobStatus
    reason: str | None = Field(description="Why the job failed (FAILED only), else null.")
    filename: str
    campaign: str
    source: str | None
    captured_at: str | None
    created_at: str
    size_bytes: int
    asset_id: str | None = Field(description="The catalog asset, once ingest registered it.")


class JobList(BaseModel):
    jobs: list[JobView]
    next: str | None = Field(
        description="Pass as ?next= for the following page; null on the last page."
    )


class JobResult(BaseModel):
    job_id: str
    asset_id: str
    top_labels: list[str]
    media_type: Literal["video", "image"] = Field(
        default="video", description="What the job's file turned out to be."
    )
    labels_json: str = Field(description="Presigned link to the labels document.")
    proxy: str = Field(description="Presigned link to the MP4 proxy (empty for an image).")
    image: str | None = Field(
        default=None, description="Presigned link to an image's web rendition (1280 px JPEG)."
    )
    thumbnail: str | None = Field(
        description="Presigned link to the poster frame (an image's 320 px JPEG), if any."
    )


class ErrorMessage(BaseModel):
    message: str


class ReprocessRequest(_Strict):
    """``POST /assets/{asset_id}/reprocess``: all fields optional (an empty object is fine)."""

    note: str | None = Field(
        default=None,
        max_length=200,
        description="Why the asset is reprocessed (kept with the run's input, for the history).",
    )
    features: list[Feature] | None = Field(
        default=None,
        description=(
            "The analyses to run again (all three when absent); the others keep the last "
            "run's results. Segments need labels too: each shot lists the labels seen in it."
        ),
    )

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[Feature] | None) -> list[Feature] | None:
        return None if value is None else list(rerun_features(value))  # type: ignore[arg-type]

    @field_validator("note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _has_control(value):
            raise ValueError("must not contain control characters")
        return value


class ReprocessResponse(BaseModel):
    asset_id: str
    run: str = Field(description="The reprocess run (the execution's name).")
    status: Literal["RUNNING"]
    execution_arn: str = Field(description="Follow it with GET /assets/{asset_id}/results.")


class ResultVersion(BaseModel):
    run: str
    kind: Literal["pipeline", "reprocess"]
    generated_at: str
    labels_json: str = Field(description="Presigned link to this version of labels.json.")
    top_labels: list[str]
    analysed_input: Literal["source", "proxy", "rendition"] | None
    label_count: int
    moderation_flagged: bool
    features: list[Feature] = Field(
        description="The analyses this run ran; the others were kept from the run before."
    )


class AssetResults(BaseModel):
    asset_id: str
    status: str = Field(description="The asset's catalog status (PROCESSED, FAILED, ...).")
    reprocess_run: str | None = Field(description="The reprocess run in flight, if any.")
    last_reprocess_error: str | None = Field(
        description="Why the last reprocess failed, if it did."
    )
    versions: list[ResultVersion] = Field(description="Every run's result, newest first.")


class CreateProjectRequest(_Strict):
    """A story project: its manifest now, its files next (presigned PUTs), the manifest last."""

    manifest: Manifest = Field(
        description="The story manifest (lambdas/shared/story_manifest.schema.json); PUT the "
        "same document to the manifest URL once the images and the narration are uploaded."
    )
    project_id: str | None = Field(
        default=None,
        description="3-63 lowercase letters, digits and dashes; a new one is made when absent.",
    )

    @field_validator("project_id")
    @classmethod
    def _project_id(cls, value: str | None) -> str | None:
        if value is not None and not PROJECT_ID_RE.match(value):
            raise ValueError("must be 3-63 lowercase letters, digits and dashes")
        return value


class ProjectUpload(BaseModel):
    name: str = Field(description="The file's name in the project (images/..., audio.<ext>).")
    key: str = Field(description="The object the upload creates in the projects bucket.")
    method: Literal["PUT"]
    url: str
    headers: dict[str, str] = Field(description="Send exactly these headers with the PUT.")


class CreateProjectResponse(BaseModel):
    project_id: str
    status: Literal["WAITING_FOR_UPLOADS"]
    expires_at: str = Field(description="When the upload URLs stop working (ISO-8601, UTC).")
    uploads: list[ProjectUpload] = Field(description="The images and the narration: PUT each.")
    manifest_upload: ProjectUpload = Field(
        description="PUT the manifest here last: its arrival starts the render."
    )


class ProjectView(BaseModel):
    project_id: str
    status: Literal["WAITING_FOR_UPLOADS", "RENDERING", "SUCCEEDED", "FAILED"]
    reason: str | None = Field(default=None, description="Why the render failed (FAILED only).")
    created_at: str | None = None
    updated_at: str | None = None
    duration_s: float | None = None
    video_url: str | None = Field(
        default=None, description="Presigned link to the final video (SUCCEEDED only)."
    )
    pipeline_upload: str | None = Field(
        default=None, description="The upload the story entered the pipeline as, when asked."
    )
