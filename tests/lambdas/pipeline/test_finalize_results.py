"""Result aggregation: shots place labels, detections merge into ranges, flags find their roots."""

from __future__ import annotations

from lambdas.finalize.results import (
    MAX_RANGES_PER_LABEL,
    LabelSummary,
    ModerationSummary,
    SegmentSummary,
    consume,
)
from tests.lambdas.pipeline.builders import (
    label_detection,
    label_page,
    moderation_detection,
    moderation_page,
    segment_page,
    shot_segment,
)


def shots(*bounds: tuple[int, int]) -> SegmentSummary:
    summary = SegmentSummary()
    # Pages may list shots out of order; finish() sorts them.
    consume(
        [
            segment_page(
                [shot_segment(i, s, e) for i, (s, e) in reversed(list(enumerate(bounds)))],
                job_id="s",
            )
        ],
        summary,
    )
    summary.finish()
    return summary


def test_labels_are_placed_in_the_shot_that_contains_them():
    # Given two shots with a gap between them
    segments = shots((0, 999), (2000, 2999))
    labels = LabelSummary(min_confidence=50, shots=segments)
    # When labels arrive at a shot start, a shot end and inside the gap
    consume(
        [
            label_page(
                [
                    label_detection(0, "Dog", 90),
                    label_detection(999, "Cat", 80),
                    label_detection(1500, "Bird", 70),
                    label_detection(2000, "Dog", 95),
                ],
                job_id="l",
            )
        ],
        labels,
    )
    # Then each lands in its shot; the one in the gap in none, but still counts overall
    first, second = (shot.to_dict() for shot in segments.shots)
    assert [label["name"] for label in first["labels"]] == ["Dog", "Cat"]
    assert second["labels"] == [{"name": "Dog", "occurrences": 1, "max_confidence": 95.0}]
    assert labels.labels["Bird"].occurrences == 1


def test_close_detections_merge_into_one_range_and_ranges_are_capped():
    # Given a label seen every second for 10 s, then every 5 s for a long time
    labels = LabelSummary(min_confidence=0)
    steady = [label_detection(t, "Sea", 90) for t in range(0, 10_001, 1000)]
    sparse = [label_detection(20_000 + 5000 * i, "Sea", 90) for i in range(200)]
    # When aggregated
    consume([label_page(steady, job_id="l"), label_page(sparse, job_id="l")], labels)
    # Then the steady stretch is one range, and the list of ranges stops at its cap
    sea = labels.labels["Sea"]
    assert sea.ranges[0] == [0, 10_000]
    assert len(sea.ranges) == MAX_RANGES_PER_LABEL and sea.ranges_truncated
    assert (sea.first_ms, sea.last_ms, sea.occurrences) == (0, 20_000 + 5000 * 199, 211)


def test_moderation_flags_find_their_top_level_category():
    # Given a level-3 flag whose level-2 parent was also detected
    moderation = ModerationSummary()
    consume(
        [
            moderation_page(
                [
                    moderation_detection(1000, "Graphic Violence", 80, "Violence", 2),
                    moderation_detection(1000, "Weapon Violence", 75, "Graphic Violence", 3),
                    moderation_detection(3000, "Smoking", 60, "Drugs & Tobacco", 2),
                ],
                job_id="m",
            )
        ],
        moderation,
    )
    # When summarized
    summary = moderation.to_dict()
    # Then each flag names its root category as far as the detections tell
    roots = {flag["name"]: flag["top_level_category"] for flag in summary["flags"]}
    assert roots == {
        "Graphic Violence": "Violence",
        "Weapon Violence": "Violence",
        "Smoking": "Drugs & Tobacco",
    }
    assert summary["categories"] == ["Drugs & Tobacco", "Violence"]
    assert [flag["name"] for flag in summary["flags"]] == [
        "Graphic Violence",
        "Weapon Violence",
        "Smoking",
    ]


def test_clean_video_has_no_flags():
    moderation = ModerationSummary()
    consume([moderation_page([], job_id="m")], moderation)
    assert moderation.to_dict() == {
        "flagged": False,
        "categories": [],
        "content_types": [],
        "flags": [],
    }
