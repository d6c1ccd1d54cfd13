"""The speech section: Transcribe's transcript JSON made bounded and readable for labels.json."""

from __future__ import annotations

from typing import Any

from lambdas.finalize import speech
from lambdas.shared.catalog import words_of


def _word(content: str, start: float, end: float, confidence: float = 0.98) -> dict[str, Any]:
    return {
        "type": "pronunciation",
        "start_time": f"{start:.3f}",
        "end_time": f"{end:.3f}",
        "alternatives": [{"confidence": f"{confidence}", "content": content}],
    }


def _mark(content: str) -> dict[str, Any]:
    return {"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": content}]}


def _transcript(items: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The document Transcribe writes for a job (``<job>.json``)."""
    return {
        "jobName": "media-pipeline-dev-upload-x",
        "accountId": "123456789012",
        "status": "COMPLETED",
        "results": {
            "transcripts": [{"transcript": text}],
            "items": items,
            "language_code": "pt-BR",
            "language_identification": [{"code": "pt-BR", "score": "0.93"}],
        },
    }


RESULT = {
    "feature": "speech",
    "job_name": "media-pipeline-dev-upload-x",
    "status": "COMPLETED",
    "language_code": "pt-BR",
    "language_score": 0.93,
    "transcript": {"bucket": "processed", "key": "video/x/speech/job.json"},
    "subtitles": {
        "vtt": {"bucket": "processed", "key": "video/x/speech/job.vtt"},
        "srt": {"bucket": "processed", "key": "video/x/speech/job.srt"},
    },
}


def test_words_are_grouped_into_segments_at_pauses_with_their_punctuation():
    items = [
        _word("Bom", 0.5, 0.8),
        _word("dia", 0.85, 1.1, 0.91),
        _mark(","),
        _word("Lisboa", 1.2, 1.7),
        _mark("."),
        # a pause of 1.5 s starts a new segment
        _word("Obrigado", 3.2, 3.8),
    ]
    found, truncated, words = speech.segments(items)
    assert words == 4 and truncated is False
    assert found == [
        {"start_s": 0.5, "end_s": 1.7, "text": "Bom dia, Lisboa.", "confidence": 0.91},
        {"start_s": 3.2, "end_s": 3.8, "text": "Obrigado", "confidence": 0.98},
    ]


def test_a_completed_job_becomes_a_section_with_the_files_keys():
    items = [_word("Bom", 0.5, 0.8), _word("dia", 0.85, 1.1)]
    section = speech.section(RESULT, _transcript(items, "Bom dia"))
    assert section["status"] == "COMPLETED"
    assert (section["language_code"], section["language_score"]) == ("pt-BR", 0.93)
    assert section["language_uncertain"] is False
    assert section["transcript"] == "Bom dia" and section["word_count"] == 2
    assert section["vtt_key"] == "video/x/speech/job.vtt"
    assert section["srt_key"] == "video/x/speech/job.srt"
    assert section["transcript_key"] == "video/x/speech/job.json"


def test_silence_is_an_empty_transcript_not_an_error():
    section = speech.section(RESULT, _transcript([], ""))
    assert section["status"] == "COMPLETED"
    assert (section["transcript"], section["segments"], section["word_count"]) == ("", [], 0)


def test_a_low_identification_score_marks_the_language_uncertain():
    section = speech.section({**RESULT, "language_score": 0.31}, _transcript([], ""))
    assert section["language_uncertain"] is True


def test_a_long_transcript_and_many_segments_are_bounded_and_say_so():
    items = [_word(f"w{i}", i * 2.0, i * 2.0 + 0.5) for i in range(speech.MAX_SEGMENTS + 50)]
    text = " ".join(f"word{i}" for i in range(2000))
    section = speech.section(RESULT, _transcript(items, text))
    assert len(section["transcript"]) <= speech.MAX_TRANSCRIPT_CHARS
    assert section["transcript_truncated"] is True and not section["transcript"].endswith(" ")
    assert text.startswith(section["transcript"])
    assert len(section["segments"]) == speech.MAX_SEGMENTS and section["segments_truncated"]
    assert section["word_count"] == speech.MAX_SEGMENTS + 50


def test_a_failed_or_skipped_transcription_keeps_its_reason():
    failed = {"feature": "speech", "job_name": "j", "status": "FAILED", "reason": "no audio"}
    assert speech.section(failed, None) == {
        "status": "FAILED",
        "reason": "no audio",
        "job_name": "j",
    }
    skipped = {"feature": "speech", "status": "SKIPPED", "reason": "the clip has no audio stream"}
    assert speech.section(skipped, None)["status"] == "SKIPPED"


# -- what the catalog's word index holds ----------------------------------------------------------
def test_words_are_folded_so_a_query_matches_however_either_was_typed():
    assert words_of("São Paulo's HARBOUR, don’t—ﬁne 42 a I") == [
        "são",
        "paulo's",
        "harbour",
        "don't",
        "fine",  # (the ﬁ ligature, NFKC)
        "42",
    ]
    assert words_of("Straße") == words_of("STRASSE")  # (case folding, not lower-casing)
    assert words_of("... !? a") == []


def test_indexed_words_count_each_word_and_keep_when_it_is_first_said():
    segments = [
        {"start_s": 0.5, "end_s": 3.0, "text": "The harbour, the tram."},
        {"start_s": 4.0, "end_s": 6.0, "text": "Tram to the harbour? Yes: the tram."},
    ]
    assert speech.indexed_words(segments) == {
        "the": (4, 0.5),
        "tram": (3, 0.5),
        "harbour": (2, 0.5),
        "to": (1, 4.0),
        "yes": (1, 4.0),
    }


def test_indexed_words_are_bounded_most_said_first():
    # Given a talk of many distinct words, a few said again and again
    segments = [
        {"start_s": float(i), "end_s": i + 0.9, "text": f"word{i} harbour tram"}
        for i in range(speech.MAX_INDEXED_WORDS * 2)
    ]
    words = speech.indexed_words(segments)
    # Then the index holds the bound, the repeated words first, then the earliest said
    assert len(words) == speech.MAX_INDEXED_WORDS
    assert list(words)[:4] == ["harbour", "tram", "word0", "word1"]
    assert words["harbour"] == (speech.MAX_INDEXED_WORDS * 2, 0.0)
    assert "word599" not in words
