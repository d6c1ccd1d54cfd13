"""The speech section of labels.json, from Amazon Transcribe's transcript (pure, bounded).

Transcribe writes one JSON document per job: the whole transcript as text, and one item per
word (``pronunciation``, with its time and confidence) or punctuation mark. A long clip has
tens of thousands of items, more than labels.json should carry, so the section keeps a bounded
transcript (cut at a word, marked as cut), timed segments (words grouped at pauses, bounded in
number) and the keys of the VTT and SRT files, which hold every cue.

``indexed_words`` chooses what the catalog's word index holds for the clip: the words of the
timed segments (so each has a time), the most said first, bounded so a long talk costs a few
hundred small writes rather than one per word. No stop-word list: the languages are the
deployment's choice, and a word said often is what the clip is about or a function word;
either way the bound, not a list, keeps the index small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lambdas.shared.catalog import words_of

MAX_TRANSCRIPT_CHARS = 5000
MAX_SEGMENTS = 200
# A pause this long, or this many words, ends a segment.
SEGMENT_PAUSE_S = 1.0
SEGMENT_MAX_WORDS = 20
# Below this identification score the language is a guess among the configured ones (the clip
# may be in a language that is not configured).
UNCERTAIN_LANGUAGE_SCORE = 0.5
# Words per clip in the catalog's word index (one item each).
MAX_INDEXED_WORDS = 300


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _bounded(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_TRANSCRIPT_CHARS:
        return text, False
    cut = text[:MAX_TRANSCRIPT_CHARS]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut), True


def segments(items: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], bool, int]:
    """Words grouped into timed segments at pauses; ``(segments, truncated, word count)``."""
    found: list[dict[str, Any]] = []
    words: list[str] = []
    start = end = None
    confidences: list[float] = []
    count = 0
    truncated = False

    def close() -> None:
        nonlocal words, start, end, confidences, truncated
        if words and start is not None and end is not None:
            if len(found) < MAX_SEGMENTS:
                found.append(
                    {
                        "start_s": round(start, 3),
                        "end_s": round(end, 3),
                        "text": " ".join(words).replace(" ,", ",").replace(" .", "."),
                        "confidence": round(min(confidences), 3) if confidences else None,
                    }
                )
            else:
                truncated = True
        words, start, end, confidences = [], None, None, []

    for item in items:
        alternatives = item.get("alternatives") or [{}]
        content = str(alternatives[0].get("content") or "")
        if item.get("type") == "punctuation":
            if words:
                words.append(content)
            continue
        begin, finish = _float(item.get("start_time")), _float(item.get("end_time"))
        if begin is None or finish is None or not content:
            continue
        count += 1
        if words and (
            (end is not None and begin - end >= SEGMENT_PAUSE_S)
            or sum(1 for w in words if w not in ",.?!") >= SEGMENT_MAX_WORDS
        ):
            close()
        start = begin if start is None else start
        end = finish
        words.append(content)
        confidence = _float(alternatives[0].get("confidence"))
        if confidence is not None:
            confidences.append(confidence)
    close()
    return found, truncated, count


def section(result: Mapping[str, Any], transcript: Mapping[str, Any] | None) -> dict[str, Any]:
    """The speech section from the task's result and (for a completed job) the transcript."""
    status = str(result.get("status") or "")
    if status != "COMPLETED":
        return {
            "status": status or "SKIPPED",
            "reason": str(result.get("reason") or "no reason given"),
            "job_name": result.get("job_name"),
        }
    results = (transcript or {}).get("results") or {}
    texts = results.get("transcripts") or [{}]
    text, cut = _bounded(str(texts[0].get("transcript") or ""))
    timed, timed_cut, words = segments(list(results.get("items") or []))
    language = result.get("language_code") or results.get("language_code")
    score = _float(result.get("language_score"))
    # Transcribe writes no subtitle files for a transcript without words, though it names them.
    subtitles = (result.get("subtitles") or {}) if words else {}
    return {
        "status": "COMPLETED",
        "job_name": result.get("job_name"),
        "language_code": language,
        "language_score": score,
        # Identified among the configured languages only: a low score means the clip is
        # probably in another one.
        "language_uncertain": score is not None and score < UNCERTAIN_LANGUAGE_SCORE,
        "word_count": words,
        "transcript": text,
        "transcript_truncated": cut,
        "segments": timed,
        "segments_truncated": timed_cut,
        "transcript_key": (result.get("transcript") or {}).get("key"),
        "vtt_key": (subtitles.get("vtt") or {}).get("key"),
        "srt_key": (subtitles.get("srt") or {}).get("key"),
    }


def indexed_words(
    timed: Sequence[Mapping[str, Any]], limit: int = MAX_INDEXED_WORDS
) -> dict[str, tuple[int, float]]:
    """Word -> (times said, start of the first segment saying it), the ``limit`` most said
    (ties: the earliest said), in that order."""
    found: dict[str, tuple[int, float]] = {}
    for segment in timed:
        start = _float(segment.get("start_s"))
        if start is None:
            continue
        for word in words_of(str(segment.get("text") or "")):
            count, first = found.get(word, (0, start))
            found[word] = (count + 1, first)
    ranked = sorted(found.items(), key=lambda item: (-item[1][0], item[1][1], item[0]))
    return dict(ranked[:limit])
