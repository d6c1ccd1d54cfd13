"""labels.json documents as finalize writes them (a clip's and an image's), valid against their
published schemas, for the summarize step to read."""

from __future__ import annotations

from typing import Any

PROCESSED = "media-processed-test"
VIDEO_KEY = "video/wikimedia/travel/20260105_060000/Lisbon_tram_28_labels.json"
IMAGE_KEY = "image/commons/nature/20260105_060000/Harbour_labels.json"
VIDEO_ASSET = "wikimedia-3f2a9c1e8b7d6a5f4e3d"
IMAGE_ASSET = "commons-0123456789abcdef0123"
GENERATED_AT = "2026-01-05T06:10:00Z"


def _asset(asset_id: str, campaign: str, raw_key: str, title: str) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "source": raw_key.split("/")[1],
        "source_id": f"File:{title}",
        "campaign": campaign,
        "title": title,
        "raw_bucket": "media-raw-test",
        "raw_key": raw_key,
        "source_url": "https://commons.wikimedia.org/wiki/File:x",
    }


def _label(name: str, confidence: float, index: int) -> dict[str, Any]:
    return {
        "name": name,
        "occurrences": 10 - index,
        "max_confidence": confidence,
        "mean_confidence": confidence - 2,
        "first_seen_ms": 1000 * index,
        "last_seen_ms": 1000 * index + 5000,
        "time_ranges_ms": [[1000 * index, 1000 * index + 5000]],
        "time_ranges_truncated": False,
        "parents": [],
        "categories": ["Travel"],
        "aliases": [],
        "instances": {"count": 0, "top": []},
    }


LABELS = ("Tram", "Street", "Building", "Person", "River", "Sky", "Road", "Car", "Tree", "City")


def video_document(
    *, shots: int = 3, transcript: str | None = "Next stop, Largo do Chiado.", flagged: bool = False
) -> dict[str, Any]:
    """A 93.5 s clip of a tram in Lisbon: ten labels, ``shots`` shots, speech (when
    ``transcript``), a moderation flag when ``flagged``."""
    raw_key = VIDEO_KEY.replace("_labels.json", ".webm")
    flags = (
        [
            {
                "name": "Weapons",
                "parent_name": "Violence",
                "top_level_category": "Violence",
                "taxonomy_level": 2,
                "occurrences": 2,
                "max_confidence": 71.0,
                "first_seen_ms": 45_000,
                "last_seen_ms": 47_000,
                "timestamps_ms": [45_000, 47_000],
                "timestamps_truncated": False,
            }
        ]
        if flagged
        else []
    )
    length = 93_500 // max(shots, 1)
    speech: dict[str, Any] = (
        {
            "status": "COMPLETED",
            "job_name": "speech-job-1",
            "language_code": "pt-PT",
            "language_score": 0.97,
            "language_uncertain": False,
            "word_count": len(transcript.split()),
            "transcript": transcript,
            "transcript_truncated": False,
            "segments": [{"start_s": 1.0, "end_s": 3.0, "text": transcript, "confidence": 0.9}],
            "segments_truncated": False,
            "transcript_key": "video/x/speech/t.json",
            "vtt_key": "video/x/speech/t.vtt",
            "srt_key": "video/x/speech/t.srt",
            "captions": {"status": "NOT_REFERENCED", "reason": "test"},
        }
        if transcript
        else {"status": "SKIPPED", "job_name": None, "reason": "the clip has no audio"}
    )
    return {
        "schema_version": "2.6",
        "generated_at": GENERATED_AT,
        "asset": _asset(VIDEO_ASSET, "travel", raw_key, "Lisbon tram 28"),
        "license": {"name": "CC BY-SA 4.0", "url": "https://creativecommons.org/licenses/by-sa/4.0"},
        "attribution": {"title": "Lisbon tram 28", "author": "Jane Doe"},
        "video": {"codec": "h264", "format": "mp4", "duration_s": 93.5, "width": 1280},
        "technical": None,
        "speech": speech,
        "summary": {
            "label_count": len(LABELS),
            "label_detections": 55,
            "min_label_confidence": 70.0,
            "top_labels": [_label(n, 98.0 - 2 * i, i) for i, n in enumerate(LABELS)],
            "shots": [
                {
                    "index": i,
                    "start_ms": i * length,
                    "end_ms": (i + 1) * length - 1,
                    "start_timecode": None,
                    "end_timecode": None,
                    "confidence": 99.0,
                    "labels": [
                        {"name": LABELS[(i + j) % len(LABELS)], "occurrences": 3, "max_confidence": 90.0}
                        for j in range(3)
                    ],
                }
                for i in range(shots)
            ],
            "technical_cues": [],
            "moderation": {
                "flagged": flagged,
                "categories": ["Violence"] if flagged else [],
                "content_types": [],
                "flags": flags,
            },
        },
        "delivery": None,
        "renditions": {
            "bucket": PROCESSED,
            "mp4_key": "video/x/mp4/a.mp4",
            "hls_manifest_key": "video/x/hls/a.m3u8",
        },
        "thumbnails": {"bucket": PROCESSED, "prefix": "video/x/thumbnails/", "poster_key": None, "keys": []},
        "processing": {
            "transcode_job_id": "job-1",
            "transcode_job_ids": ["job-1"],
            "analysed": None,
            "run": {"name": "run-1", "kind": "pipeline"},
            "analysis": {
                "labels": {"job_id": "l-1", "model_version": "3.0"},
                "moderation": {"job_id": "m-1", "model_version": "7.0"},
                "segments": {"job_id": "s-1", "model_versions": {}},
            },
        },
    }  # fmt: skip


def image_document(*, text: str = "") -> dict[str, Any]:
    """A harbour photo (the images unit's document) with three labels."""
    raw_key = IMAGE_KEY.replace("_labels.json", ".jpg")
    names = ("Harbor", "Boat", "Water")
    quality = {"brightness": 61.2, "sharpness": 80.1, "contrast": 70.0}
    return {
        "schema_version": "image-1.0",
        "media_type": "image",
        "generated_at": GENERATED_AT,
        "asset": _asset(IMAGE_ASSET, "nature", raw_key, "Harbour"),
        "license": {"name": "CC0", "url": None},
        "attribution": {},
        "image": {
            "format": "JPEG", "mime_type": "image/jpeg", "width": 4000, "height": 3000,
            "display_width": 4000, "display_height": 3000, "mode": "RGB", "bit_depth": 8,
            "has_alpha": False, "frames": 1, "animated": False, "source_bytes": 1234,
        },
        "summary": {
            "top_labels": [{"name": n, "max_confidence": 95.0 - i} for i, n in enumerate(names)],
            "label_count": 3,
            "min_label_confidence": 70.0,
            "labels": [
                {"name": n, "confidence": 95.0 - i, "categories": [], "parents": [], "aliases": [],
                 "instances": [], "instances_truncated": False}
                for i, n in enumerate(names)
            ],
            "labels_truncated": False,
            "dominant_colors": [{"hex": "#1E1EDC", "pixel_percent": 42.5}],
            "quality": quality,
            "foreground": {},
            "background": {},
            "moderation": {"model_version": "7.0", "flagged": False, "labels": []},
            "text": {"model_version": "3.0", "text": text, "lines": [], "line_count": 0,
                     "word_count": len(text.split()), "lines_truncated": False},
        },
        "delivery": None,
        "renditions": {
            "bucket": PROCESSED, "thumbnail_key": "image/x_small.jpg", "view_key": None,
            "items": [{"size": "small", "format": "JPEG", "mime_type": "image/jpeg", "width": 320,
                       "height": 240, "bytes": 9000, "ssim": 0.98, "psnr_db": 40.0,
                       "key": "image/x_small.jpg"}],
        },
        "processing": {
            "analysed": {"bucket": PROCESSED, "key": "image/x.jpg"},
            "models": {"labels": "3.0", "moderation": "7.0", "text": "3.0"},
            "run": {"name": "run-1", "kind": "pipeline"},
        },
    }  # fmt: skip
