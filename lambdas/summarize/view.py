"""The compact view of one labels.json that the model is shown, cut to fit the token budget.

labels.json holds everything finalize found (every label's time ranges and boxes, every shot,
each moderation timestamp, a transcript of up to 5,000 characters). A summary needs a small part
of it, and every token sent is paid for, so the view keeps the ranked top labels, the shots with
the labels seen in each, the moderation flags and the speech (or, for an image, the text read in
it), each reduced to what a sentence about the asset could use.

When the view is still over its share of the budget it is cut, least useful first (``CUTS``):
the transcript (or an image's text) is halved down to a few sentences, every other shot is
dropped down to a handful, then the lower-ranked half of the labels down to five and the
moderation flags beyond five; only then are the transcript, the text and the shots dropped, and
the labels cut to the best one. What was cut is named in the view itself (the prompt tells the
model a list may be incomplete) and in the record written beside the summary.

Tokens are estimated, not counted: no tokenizer of the deployed model ships with the function,
and Converse reports the real count only after the call. ``CHARS_PER_TOKEN`` is deliberately
low (English prose runs at about four characters a token, minified JSON at about three), so an
estimate errs on the side of sending less; the record keeps the real count that was billed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

CHARS_PER_TOKEN = 3
MAX_TITLE_CHARS = 200
# Below these the cut moves on to the next part: a summary still needs a few of each.
MIN_TEXT_CHARS = 200
MIN_SHOTS = 4
MIN_LABELS = 5
MIN_FLAGS = 5
# Labels named per shot (finalize keeps at most 10).
SHOT_LABELS = 5


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def dumps(view: Mapping[str, Any]) -> str:
    """The view as sent: minified JSON, non-ASCII kept (escapes would cost tokens)."""
    return json.dumps(view, ensure_ascii=False, separators=(",", ":"))


def _round(value: object, digits: int = 1) -> float | None:
    return round(float(value), digits) if isinstance(value, int | float) else None


def _video(document: Mapping[str, Any]) -> dict[str, Any]:
    summary = document.get("summary") or {}
    video = document.get("video") or {}
    technical = document.get("technical") or {}
    moderation = summary.get("moderation") or {}
    view: dict[str, Any] = {
        "duration_s": _round(video.get("duration_s") or technical.get("duration_s")),
        "labels": [
            {
                "name": label["name"],
                "confidence": round(float(label["max_confidence"])),
                "detections": label.get("occurrences"),
            }
            for label in summary.get("top_labels") or []
        ],
        "shots": [
            {
                "start_s": round(shot["start_ms"] / 1000, 1),
                "end_s": round(shot["end_ms"] / 1000, 1),
                "labels": [label["name"] for label in shot.get("labels") or []][:SHOT_LABELS],
            }
            for shot in summary.get("shots") or []
        ],
        "moderation": {
            "flagged": bool(moderation.get("flagged")),
            "flags": [
                {"name": flag["name"], "confidence": round(float(flag["max_confidence"]))}
                for flag in moderation.get("flags") or []
            ],
        },
    }
    speech = document.get("speech") or {}
    if speech.get("status") == "COMPLETED" and speech.get("transcript"):
        view["language"] = speech.get("language_code")
        view["transcript"] = str(speech["transcript"])
    return view


def _image(document: Mapping[str, Any]) -> dict[str, Any]:
    summary = document.get("summary") or {}
    facts = document.get("image") or {}
    moderation = summary.get("moderation") or {}
    view: dict[str, Any] = {
        "size_px": f"{facts.get('display_width')}x{facts.get('display_height')}",
        "labels": [
            {"name": label["name"], "confidence": round(float(label["max_confidence"]))}
            for label in summary.get("top_labels") or []
        ],
        "moderation": {
            "flagged": bool(moderation.get("flagged")),
            "flags": [
                {"name": flag["name"], "confidence": round(float(flag["confidence"]))}
                for flag in moderation.get("labels") or []
            ],
        },
    }
    text = (summary.get("text") or {}).get("text")
    if text:
        view["text"] = str(text)
    return view


def compact_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the model is shown of ``document`` (a clip's or an image's labels.json)."""
    image = document.get("media_type") == "image"
    title = (document.get("asset") or {}).get("title")
    view: dict[str, Any] = {
        "media_type": "image" if image else "video",
        "title": str(title)[:MAX_TITLE_CHARS] if title else None,
        **(_image(document) if image else _video(document)),
    }
    return {name: value for name, value in view.items() if value is not None}


def _shorten(text: str) -> str:
    """About half of ``text``, ending at a word, marked as cut."""
    cut = text[: len(text) // 2].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + " …"


Cut = Callable[[dict[str, Any]], bool]


def _shorten_text(name: str) -> Cut:
    def cut(view: dict[str, Any]) -> bool:
        text = view.get(name)
        if not text or len(text) <= MIN_TEXT_CHARS:
            return False
        view[name] = _shorten(text)
        return True

    return cut


def _drop(name: str) -> Cut:
    def cut(view: dict[str, Any]) -> bool:
        return view.pop(name, None) is not None

    return cut


def _thin_shots(view: dict[str, Any]) -> bool:
    """Every other shot: the clip stays covered from start to end."""
    shots = view.get("shots") or []
    if len(shots) <= MIN_SHOTS:
        return False
    view["shots"] = shots[::2]
    return True


def _fewer_labels(floor: int) -> Cut:
    """The lower-ranked half of the labels, down to ``floor``."""

    def cut(view: dict[str, Any]) -> bool:
        labels = view.get("labels") or []
        if len(labels) <= floor:
            return False
        view["labels"] = labels[: max(floor, len(labels) // 2)]
        return True

    return cut


def _fewer_flags(view: dict[str, Any]) -> bool:
    flags = (view.get("moderation") or {}).get("flags") or []
    if len(flags) <= MIN_FLAGS:
        return False
    view["moderation"]["flags"] = flags[:MIN_FLAGS]
    return True


# Least useful first: shorten and thin everything to its floor, then drop the long parts, then
# keep only the best label.
CUTS: tuple[tuple[str, Cut], ...] = (
    ("transcript", _shorten_text("transcript")),
    ("text", _shorten_text("text")),
    ("shots", _thin_shots),
    ("labels", _fewer_labels(MIN_LABELS)),
    ("moderation", _fewer_flags),
    ("transcript", _drop("transcript")),
    ("text", _drop("text")),
    ("shots", _drop("shots")),
    ("labels", _fewer_labels(1)),
)
CUT_NAMES = tuple(dict.fromkeys(name for name, _ in CUTS))


def fit(view: Mapping[str, Any], max_tokens: int) -> tuple[dict[str, Any], int]:
    """``view`` cut until its estimate is at most ``max_tokens`` (or nothing more can be cut),
    with ``truncated`` naming what was cut; and its estimate."""
    fitted: dict[str, Any] = json.loads(json.dumps(view))
    cut: list[str] = []
    while estimate_tokens(dumps(fitted)) > max_tokens:
        name = next((name for name, step in CUTS if step(fitted)), None)
        if name is None:
            break
        if name not in cut:
            cut.append(name)
        fitted["truncated"] = cut
    return fitted, estimate_tokens(dumps(fitted))
