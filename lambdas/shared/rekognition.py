"""Rekognition Video behind one small adapter: the three analyses the pipeline runs.

Both the analysis unit (which starts jobs) and the finalize unit (which pages through results)
need the same table of operations and the same error translation, and units are bundled with
``lambdas/shared`` only, so this lives here.

Error classes are part of the state machine contract (Step Functions matches ``Error`` on the
class name): ``RekognitionLimitExceeded`` is retried with backoff, ``RekognitionUnavailable`` is
retried as a transient service fault, ``RekognitionRequestRejected`` and
``AnalysisResultsUnavailable`` are permanent for the asset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

FEATURES = ("labels", "moderation", "segments")
SEGMENT_TYPES = ("TECHNICAL_CUE", "SHOT")
# Each shot lists the labels seen in it, placed from the label detections by time: new shots
# cannot carry the labels of a run whose detections are gone, so segments never rerun alone.
FEATURE_NEEDS = {"segments": ("labels",)}


def rerun_features(value: object) -> tuple[str, ...]:
    """The analyses a reprocess runs again, in ``FEATURES`` order (all when ``value`` is None);
    ``ValueError`` names what is wrong with any other list (the jobs API answers it as a 400,
    the reprocess workflow fails its run with it)."""
    if value is None:
        return FEATURES
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"features: must be a non-empty list of {list(FEATURES)}, got {value!r}")
    unknown = [item for item in value if item not in FEATURES]
    if unknown:
        raise ValueError(f"features: {unknown!r} not among {list(FEATURES)}")
    if len(set(value)) != len(value):
        raise ValueError(f"features: {list(value)!r} names a feature twice")
    for feature, needs in FEATURE_NEEDS.items():
        missing = [need for need in needs if feature in value and need not in value]
        if missing:
            raise ValueError(
                f"features: {feature} cannot be rerun without {', '.join(missing)} (each shot "
                f"lists the labels seen in it); ask for {[*missing, feature]!r}"
            )
    return tuple(feature for feature in FEATURES if feature in value)


# The largest page every Get* operation accepts; fewer round trips for long videos.
MAX_PAGE_SIZE = 1000

LIMIT_CODES = frozenset(
    {"LimitExceededException", "ProvisionedThroughputExceededException", "ThrottlingException"}
)
UNAVAILABLE_CODES = frozenset({"InternalServerError", "ServiceUnavailableException"})
GONE_CODES = frozenset({"ResourceNotFoundException", "InvalidParameterException"})


class RekognitionError(RuntimeError):
    """Any failure of a Rekognition call; the subclass says whether retrying can help."""


class RekognitionLimitExceeded(RekognitionError):
    """Rekognition refused the call for a quota or rate (20 concurrent jobs, TPS); retry later."""


class RekognitionUnavailable(RekognitionError):
    """Rekognition had an internal fault; the same call may succeed when retried."""


class RekognitionRequestRejected(RekognitionError):
    """Rekognition rejected the request itself (bad video, access, token reuse); do not retry."""


class AnalysisResultsUnavailable(RuntimeError):
    """The job did not succeed, or its results are gone (Rekognition keeps them 7 days)."""


@dataclass(frozen=True)
class FeatureApi:
    """How one analysis maps onto Rekognition's operations and responses."""

    feature: str
    start_operation: str
    get_operation: str
    api_name: str
    results_key: str
    model_version_key: str | None
    get_params: tuple[tuple[str, str], ...] = ()

    @property
    def get_api_name(self) -> str:
        """``GetLabelDetection`` for ``get_label_detection``: the name people see in docs."""
        return "".join(part.title() for part in self.get_operation.split("_"))


APIS: dict[str, FeatureApi] = {
    "labels": FeatureApi(
        "labels",
        "start_label_detection",
        "get_label_detection",
        "StartLabelDetection",
        "Labels",
        "LabelModelVersion",
        # Time order lets callers merge detections into ranges while paging.
        (("SortBy", "TIMESTAMP"), ("AggregateBy", "TIMESTAMPS")),
    ),
    "moderation": FeatureApi(
        "moderation",
        "start_content_moderation",
        "get_content_moderation",
        "StartContentModeration",
        "ModerationLabels",
        "ModerationModelVersion",
        (("SortBy", "TIMESTAMP"),),
    ),
    "segments": FeatureApi(
        "segments",
        "start_segment_detection",
        "get_segment_detection",
        "StartSegmentDetection",
        "Segments",
        None,
    ),
}


def feature_api(feature: str) -> FeatureApi:
    try:
        return APIS[feature]
    except KeyError:
        raise ValueError(
            f"unknown analysis feature {feature!r}; expected one of {FEATURES}"
        ) from None


def translate(err: ClientError, action: str) -> Exception:
    """Turn a botocore error into the typed error the state machine retries or catches."""
    code = err.response.get("Error", {}).get("Code", "Unknown")
    message = err.response.get("Error", {}).get("Message", "")
    text = f"{action} failed with {code}: {message}".rstrip(": ")
    if code in LIMIT_CODES:
        return RekognitionLimitExceeded(text)
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in UNAVAILABLE_CODES or status >= 500:
        return RekognitionUnavailable(text)
    return RekognitionRequestRejected(text)


class RekognitionVideo:
    """Start jobs and read their results; every botocore error leaves as a typed error."""

    def __init__(self, client: BaseClient | None = None) -> None:
        # Few SDK retries: the state machine owns backoff for quota errors, with jitter.
        self._client: Any = client or boto3.client(
            "rekognition", config=Config(retries={"mode": "standard", "max_attempts": 3})
        )

    def start(
        self,
        feature: str,
        *,
        bucket: str,
        key: str,
        client_request_token: str,
        job_tag: str,
        topic_arn: str,
        role_arn: str,
        min_confidence: float | None = None,
    ) -> str:
        """Start one analysis; the same token returns the same JobId instead of a second job."""
        api = feature_api(feature)
        params: dict[str, Any] = {
            "Video": {"S3Object": {"Bucket": bucket, "Name": key}},
            "ClientRequestToken": client_request_token,
            "JobTag": job_tag,
            "NotificationChannel": {"SNSTopicArn": topic_arn, "RoleArn": role_arn},
        }
        if feature == "segments":
            params["SegmentTypes"] = list(SEGMENT_TYPES)
        elif min_confidence is not None:
            params["MinConfidence"] = float(min_confidence)
        try:
            response = getattr(self._client, api.start_operation)(**params)
        except ClientError as err:
            raise translate(err, api.api_name) from err
        except BotoCoreError as err:
            # Timeouts and dropped connections: the ClientRequestToken makes a retry safe.
            raise RekognitionUnavailable(f"{api.api_name} failed: {err}") from err
        return str(response["JobId"])

    def job_status(self, feature: str, job_id: str) -> tuple[str, str]:
        """(JobStatus, StatusMessage) of a job, reading a single result."""
        api = feature_api(feature)
        try:
            response = getattr(self._client, api.get_operation)(JobId=job_id, MaxResults=1)
        except ClientError as err:
            raise translate(err, api.get_api_name) from err
        except BotoCoreError as err:
            raise RekognitionUnavailable(f"{api.get_api_name} failed: {err}") from err
        return str(response.get("JobStatus", "")), str(response.get("StatusMessage", ""))

    def pages(
        self, feature: str, job_id: str, *, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Yield every result page of a succeeded job, following NextToken to the end.

        Pages are yielded one at a time so callers aggregate as they go and never hold a whole
        result set (long videos produce many thousands of detections).
        """
        api = feature_api(feature)
        params: dict[str, Any] = {"JobId": job_id, "MaxResults": page_size, **dict(api.get_params)}
        seen_tokens: set[str] = set()
        while True:
            try:
                page = getattr(self._client, api.get_operation)(**params)
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code", "")
                if code in GONE_CODES:
                    raise AnalysisResultsUnavailable(
                        f"{api.get_api_name} for job {job_id} failed with {code}: "
                        f"{err.response.get('Error', {}).get('Message', '')} "
                        "(results are kept for 7 days)"
                    ) from err
                raise translate(err, api.get_api_name) from err
            except BotoCoreError as err:
                raise RekognitionUnavailable(f"{api.get_api_name} failed: {err}") from err
            status = page.get("JobStatus")
            if status != "SUCCEEDED":
                detail = page.get("StatusMessage") or "no status message"
                raise AnalysisResultsUnavailable(
                    f"{api.api_name} job {job_id} is {status}, not SUCCEEDED: {detail}"
                )
            yield page
            token = page.get("NextToken")
            if not token:
                return
            if token in seen_tokens:
                raise AnalysisResultsUnavailable(
                    f"{api.get_api_name} for job {job_id} returned the same NextToken twice"
                )
            seen_tokens.add(token)
            params["NextToken"] = token
