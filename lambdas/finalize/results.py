"""Aggregate Rekognition Video results page by page into a small, readable summary (pure).

Why aggregation happens while paging: a long video yields many thousands of label detections
(one per label per sampled frame), far more than a Lambda should hold or a person should read.
Each aggregator keeps only per-label / per-flag / per-shot counters whose size is bounded by the
number of distinct labels and shots, never by the number of detections, and caps every list it
keeps (time ranges, timestamps).

Order matters: segments first (shots are needed to place labels), then labels, then moderation.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Detections of one label closer than this are one continuous appearance.
RANGE_GAP_MS = 2000
MAX_RANGES_PER_LABEL = 50
MAX_TIMESTAMPS_PER_FLAG = 100
LABELS_PER_SHOT = 10
# Per label: how many boxes (instances) Rekognition found, and the boxes of its clearest ones.
MAX_BOXES_PER_LABEL = 5
BOX_FIELDS = ("Width", "Height", "Left", "Top")


def _round(value: float) -> float:
    return round(float(value), 2)


def video_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Rekognition's VideoMetadata in the document's own, stable field names."""
    if not metadata:
        return None
    duration_ms = metadata.get("DurationMillis")
    return {
        "codec": metadata.get("Codec"),
        "format": metadata.get("Format"),
        "duration_ms": duration_ms,
        "duration_s": round(duration_ms / 1000, 3) if duration_ms is not None else None,
        "frame_rate": _round(metadata["FrameRate"]) if "FrameRate" in metadata else None,
        "width": metadata.get("FrameWidth"),
        "height": metadata.get("FrameHeight"),
        "color_range": metadata.get("ColorRange"),
    }


@dataclass
class Shot:
    index: int
    start_ms: int
    end_ms: int
    start_timecode: str | None
    end_timecode: str | None
    confidence: float | None
    # label name -> [occurrences, max confidence]
    labels: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        ranked = sorted(self.labels.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
        return {
            "index": self.index,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "start_timecode": self.start_timecode,
            "end_timecode": self.end_timecode,
            "confidence": _round(self.confidence) if self.confidence is not None else None,
            "labels": [
                {"name": name, "occurrences": int(count), "max_confidence": _round(conf)}
                for name, (count, conf) in ranked[:LABELS_PER_SHOT]
            ],
        }


class SegmentSummary:
    """Shots and technical cues from GetSegmentDetection pages."""

    def __init__(self) -> None:
        self.shots: list[Shot] = []
        self.technical_cues: list[dict[str, Any]] = []
        self.video: dict[str, Any] | None = None
        self.audio: list[dict[str, Any]] = []
        self.model_versions: dict[str, str] = {}
        self._starts: list[int] = []

    def add_page(self, page: Mapping[str, Any]) -> None:
        if self.video is None and page.get("VideoMetadata"):
            self.video = video_metadata(page["VideoMetadata"][0])
        if not self.audio and page.get("AudioMetadata"):
            self.audio = [
                {
                    "codec": audio.get("Codec"),
                    "duration_ms": audio.get("DurationMillis"),
                    "sample_rate": audio.get("SampleRate"),
                    "channels": audio.get("NumberOfChannels"),
                }
                for audio in page["AudioMetadata"]
            ]
        for selected in page.get("SelectedSegmentTypes", []):
            self.model_versions[selected["Type"]] = selected.get("ModelVersion", "")
        for segment in page.get("Segments", []):
            if segment["Type"] == "SHOT":
                shot = segment.get("ShotSegment", {})
                self.shots.append(
                    Shot(
                        index=int(shot.get("Index", len(self.shots))),
                        start_ms=int(segment["StartTimestampMillis"]),
                        end_ms=int(segment["EndTimestampMillis"]),
                        start_timecode=segment.get("StartTimecodeSMPTE"),
                        end_timecode=segment.get("EndTimecodeSMPTE"),
                        confidence=shot.get("Confidence"),
                    )
                )
            elif segment["Type"] == "TECHNICAL_CUE":
                cue = segment.get("TechnicalCueSegment", {})
                self.technical_cues.append(
                    {
                        "type": cue.get("Type"),
                        "start_ms": int(segment["StartTimestampMillis"]),
                        "end_ms": int(segment["EndTimestampMillis"]),
                        "duration_ms": segment.get("DurationMillis"),
                        "start_timecode": segment.get("StartTimecodeSMPTE"),
                        "end_timecode": segment.get("EndTimecodeSMPTE"),
                        "confidence": _round(cue["Confidence"]) if "Confidence" in cue else None,
                    }
                )

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, with_labels: bool) -> SegmentSummary:
        """The shots, cues and model versions a labels.json recorded, for a reprocess that does
        not run segment detection again. ``with_labels=False`` when labels run again: the new
        detections are placed into the kept shots instead of the old ones."""
        summary = cls()
        recorded = document.get("summary") or {}
        for shot in recorded.get("shots") or []:
            summary.shots.append(
                Shot(
                    index=int(shot["index"]),
                    start_ms=int(shot["start_ms"]),
                    end_ms=int(shot["end_ms"]),
                    start_timecode=shot.get("start_timecode"),
                    end_timecode=shot.get("end_timecode"),
                    confidence=shot.get("confidence"),
                    labels={
                        label["name"]: [label["occurrences"], label["max_confidence"]]
                        for label in shot.get("labels") or []
                    }
                    if with_labels
                    else {},
                )
            )
        summary.technical_cues = [dict(cue) for cue in recorded.get("technical_cues") or []]
        video = dict(document.get("video") or {})
        summary.audio = list(video.pop("audio", None) or [])
        summary.video = video or None
        processing = (document.get("processing") or {}).get("analysis") or {}
        summary.model_versions = dict(
            (processing.get("segments") or {}).get("model_versions") or {}
        )
        return summary

    def finish(self) -> None:
        """Sort shots by time so labels can be placed with a binary search."""
        self.shots.sort(key=lambda shot: shot.start_ms)
        self.technical_cues.sort(key=lambda cue: cue["start_ms"])
        self._starts = [shot.start_ms for shot in self.shots]

    def shot_at(self, timestamp_ms: int) -> Shot | None:
        i = bisect.bisect_right(self._starts, timestamp_ms) - 1
        if i >= 0 and self.shots[i].start_ms <= timestamp_ms <= self.shots[i].end_ms:
            return self.shots[i]
        return None


@dataclass
class LabelStats:
    occurrences: int = 0
    max_confidence: float = 0.0
    confidence_sum: float = 0.0
    first_ms: int | None = None
    last_ms: int | None = None
    ranges: list[list[int]] = field(default_factory=list)
    ranges_truncated: bool = False
    parents: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)
    instance_count: int = 0
    # (confidence, timestamp, box): a min-heap, so the weakest of the kept boxes leaves first.
    boxes: list[tuple[float, int, dict[str, float]]] = field(default_factory=list)

    def add(self, timestamp_ms: int, confidence: float, end_ms: int | None = None) -> None:
        """One detection; ``end_ms`` when Rekognition aggregated it over a segment."""
        end = max(timestamp_ms, end_ms if end_ms is not None else timestamp_ms)
        self.occurrences += 1
        self.max_confidence = max(self.max_confidence, confidence)
        self.confidence_sum += confidence
        self.first_ms = timestamp_ms if self.first_ms is None else min(self.first_ms, timestamp_ms)
        self.last_ms = end if self.last_ms is None else max(self.last_ms, end)
        # Pages come in time order (SortBy=TIMESTAMP), so only the last range can grow.
        if self.ranges:
            last = self.ranges[-1]
            if last[0] - RANGE_GAP_MS <= timestamp_ms <= last[1] + RANGE_GAP_MS:
                last[0], last[1] = min(last[0], timestamp_ms), max(last[1], end)
                return
        if len(self.ranges) < MAX_RANGES_PER_LABEL:
            self.ranges.append([timestamp_ms, end])
        else:
            self.ranges_truncated = True

    def add_instances(self, timestamp_ms: int, instances: Iterable[Mapping[str, Any]]) -> None:
        """Count every box; keep only the clearest few (bounded, however long the video)."""
        for instance in instances:
            box = instance.get("BoundingBox") or {}
            if not all(isinstance(box.get(name), int | float) for name in BOX_FIELDS):
                continue
            self.instance_count += 1
            kept = (
                float(instance.get("Confidence", 0.0)),
                timestamp_ms,
                {name.lower(): _round(box[name]) for name in BOX_FIELDS},
            )
            if len(self.boxes) < MAX_BOXES_PER_LABEL:
                heapq.heappush(self.boxes, kept)
            elif kept[0] > self.boxes[0][0]:
                heapq.heapreplace(self.boxes, kept)

    def instances(self) -> dict[str, Any]:
        clearest = sorted(self.boxes, key=lambda kept: (-kept[0], kept[1]))
        return {
            "count": self.instance_count,
            "top": [
                {"timestamp_ms": at, "confidence": _round(conf), "bounding_box": box}
                for conf, at, box in clearest
            ],
        }


def _timestamp_ms(detection: Mapping[str, Any]) -> int:
    """Detections aggregated by segment carry ``StartTimestampMillis`` instead of ``Timestamp``."""
    return int(detection.get("Timestamp", detection.get("StartTimestampMillis", 0)))


def _end_ms(detection: Mapping[str, Any]) -> int | None:
    """Where a segment-aggregated detection ends (None for a single-frame detection)."""
    end = detection.get("EndTimestampMillis")
    return int(end) if isinstance(end, int | float) and not isinstance(end, bool) else None


class _DetectionPages:
    """Labels and moderation pages both repeat the video's metadata and name the model version."""

    model_version_key: str

    def __init__(self) -> None:
        self.detections = 0
        self.video: dict[str, Any] | None = None
        self.model_version: str | None = None

    def _note_page(self, page: Mapping[str, Any]) -> None:
        if self.video is None and page.get("VideoMetadata"):
            self.video = video_metadata(page["VideoMetadata"])
        self.model_version = page.get(self.model_version_key, self.model_version)


class LabelSummary(_DetectionPages):
    """Per-label counters from GetLabelDetection pages, and labels per shot."""

    model_version_key = "LabelModelVersion"

    def __init__(self, *, min_confidence: float, shots: SegmentSummary | None = None) -> None:
        super().__init__()
        self.min_confidence = min_confidence
        self.shots = shots
        self.labels: dict[str, LabelStats] = {}

    def add_page(self, page: Mapping[str, Any]) -> None:
        self._note_page(page)
        for detection in page.get("Labels", []):
            label = detection.get("Label") or {}
            name, confidence = label.get("Name"), float(label.get("Confidence", 0.0))
            if not name or confidence < self.min_confidence:
                continue
            timestamp = _timestamp_ms(detection)
            self.detections += 1
            stats = self.labels.setdefault(name, LabelStats())
            stats.add(timestamp, confidence, _end_ms(detection))
            stats.add_instances(timestamp, label.get("Instances") or [])
            stats.parents.update(p["Name"] for p in label.get("Parents", []) if p.get("Name"))
            stats.categories.update(c["Name"] for c in label.get("Categories", []) if c.get("Name"))
            stats.aliases.update(a["Name"] for a in label.get("Aliases", []) if a.get("Name"))
            shot = self.shots.shot_at(timestamp) if self.shots else None
            if shot is not None:
                counter = shot.labels.setdefault(name, [0, 0.0])
                counter[0] += 1
                counter[1] = max(counter[1], confidence)

    def ranked(self) -> list[tuple[str, LabelStats]]:
        """Most frequent first; the clearest sighting breaks ties."""
        return sorted(
            self.labels.items(), key=lambda kv: (-kv[1].occurrences, -kv[1].max_confidence, kv[0])
        )

    def top(self, count: int) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "occurrences": stats.occurrences,
                "max_confidence": _round(stats.max_confidence),
                "mean_confidence": _round(stats.confidence_sum / stats.occurrences),
                "first_seen_ms": stats.first_ms,
                "last_seen_ms": stats.last_ms,
                "time_ranges_ms": [list(r) for r in stats.ranges],
                "time_ranges_truncated": stats.ranges_truncated,
                "parents": sorted(stats.parents),
                "categories": sorted(stats.categories),
                "aliases": sorted(stats.aliases),
                "instances": stats.instances(),
            }
            for name, stats in self.ranked()[:count]
        ]


@dataclass
class FlagStats:
    parent_name: str
    taxonomy_level: int | None
    occurrences: int = 0
    max_confidence: float = 0.0
    first_ms: int | None = None
    last_ms: int | None = None
    timestamps_ms: list[int] = field(default_factory=list)
    timestamps_truncated: bool = False


class ModerationSummary(_DetectionPages):
    """Moderation flags from GetContentModeration pages, grouped by label."""

    model_version_key = "ModerationModelVersion"

    def __init__(self) -> None:
        super().__init__()
        self.flags: dict[str, FlagStats] = {}
        self.content_types: set[str] = set()

    def add_page(self, page: Mapping[str, Any]) -> None:
        self._note_page(page)
        for detection in page.get("ModerationLabels", []):
            label = detection.get("ModerationLabel") or {}
            name = label.get("Name")
            if not name:
                continue
            timestamp = _timestamp_ms(detection)
            self.detections += 1
            flag = self.flags.setdefault(
                name, FlagStats(label.get("ParentName") or "", label.get("TaxonomyLevel"))
            )
            flag.occurrences += 1
            flag.max_confidence = max(flag.max_confidence, float(label.get("Confidence", 0.0)))
            end = max(timestamp, _end_ms(detection) or timestamp)
            flag.first_ms = timestamp if flag.first_ms is None else min(flag.first_ms, timestamp)
            flag.last_ms = end if flag.last_ms is None else max(flag.last_ms, end)
            if len(flag.timestamps_ms) < MAX_TIMESTAMPS_PER_FLAG:
                flag.timestamps_ms.append(timestamp)
            else:
                flag.timestamps_truncated = True
            self.content_types.update(
                c["Name"] for c in detection.get("ContentTypes", []) if c.get("Name")
            )

    def top_level_category(self, name: str) -> str:
        """Walk up ParentName links as far as the detections tell (the taxonomy has 3 levels)."""
        seen = {name}
        while True:
            flag = self.flags.get(name)
            parent = flag.parent_name if flag else ""
            if not parent or parent in seen:
                return name
            seen.add(parent)
            name = parent

    def to_dict(self) -> dict[str, Any]:
        ranked = sorted(self.flags.items(), key=lambda kv: (-kv[1].max_confidence, kv[0]))
        flags = [
            {
                "name": name,
                "parent_name": flag.parent_name or None,
                "top_level_category": self.top_level_category(name),
                "taxonomy_level": flag.taxonomy_level,
                "occurrences": flag.occurrences,
                "max_confidence": _round(flag.max_confidence),
                "first_seen_ms": flag.first_ms,
                "last_seen_ms": flag.last_ms,
                "timestamps_ms": flag.timestamps_ms,
                "timestamps_truncated": flag.timestamps_truncated,
            }
            for name, flag in ranked
        ]
        return {
            "flagged": bool(flags),
            "categories": sorted({flag["top_level_category"] for flag in flags}),
            "content_types": sorted(self.content_types),
            "flags": flags,
        }


class PageSink(Protocol):
    def add_page(self, page: Mapping[str, Any]) -> None: ...


def consume(pages: Iterable[Mapping[str, Any]], summary: PageSink) -> int:
    """Feed pages one by one into an aggregator; returns how many pages were read."""
    count = 0
    for page in pages:
        summary.add_page(page)
        count += 1
    return count
