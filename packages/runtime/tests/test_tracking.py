"""SignTracker: one event per physical sign, majority class, k-of-n confirmation, motion, ends."""

from __future__ import annotations

import numpy as np
import pytest

from bienbao.runtime import Detections
from bienbao.runtime.tracking import SignTracker, TrackerConfig

NAMES = ("cam-dung-xe-va-do-xe", "toc-do-toi-da-60", "toc-do-toi-da-50", "het-han-che-toc-do-toi-da")


def frame(*signs: tuple[list[float], float, int]) -> Detections:
    """Detections from (box, score, class) tuples."""
    if not signs:
        return Detections.empty(NAMES)
    boxes, scores, classes = zip(*signs, strict=True)
    return Detections(np.array(boxes, np.float32), np.array(scores, np.float32), np.array(classes, np.int64), NAMES)


def run(tracker: SignTracker, frames: list[Detections]) -> list[dict]:
    events = []
    for index, detections in enumerate(frames):
        events += tracker.update(detections, 100.0 + index / 30, index).events
    return events + tracker.flush()


def moving(start: float, step: float, count: int, size: float = 12.0) -> list[list[float]]:
    """A sign's box moving right by ``step`` pixels a frame."""
    return [[start + i * step, 200.0, start + i * step + size, 200.0 + size] for i in range(count)]


def test_one_sign_one_event_with_the_majority_class_despite_a_mirror_class_frame() -> None:
    boxes = moving(300, 2, 12)
    classes = [1] * 12
    classes[5] = 2  # one frame taken for the neighbouring class
    scores = [0.5 + 0.03 * i for i in range(12)]
    tracker = SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), NAMES)
    events = run(tracker, [frame((b, s, c)) for b, s, c in zip(boxes, scores, classes, strict=True)])
    events = [e for e in events if e.get("reason") != "score"]  # its rising score: updates of their own
    assert [e["event"] for e in events] == ["confirmed", "ended"]
    confirmed, ended = events
    assert confirmed["track"] == ended["track"] == 1 and confirmed["name"] == ended["name"] == "toc-do-toi-da-60"
    assert confirmed["frames"] == 3 and confirmed["first_frame"] == 0 and confirmed["last_frame"] == 2
    assert ended["frames"] == 12 and ended["last_frame"] == 11
    assert ended["best_score"] == pytest.approx(scores[-1], abs=1e-4) and ended["box"] == boxes[-1]
    assert ended["first_time"] == pytest.approx(100.0) and ended["last_time"] == pytest.approx(100 + 11 / 30, abs=1e-3)
    assert tracker.discarded == 0 and tracker.speed_limit == "toc-do-toi-da-60"


def test_a_flicker_below_k_of_n_gives_no_event_and_is_counted_as_discarded() -> None:
    box = [100.0, 100.0, 120.0, 120.0]
    seen = [True, False, False, True, False, False, False]  # 2 of any 5: never 3
    tracker = SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5, max_missed=3), NAMES)
    events = run(tracker, [frame((box, 0.3, 0)) if s else frame() for s in seen])
    assert events == [] and tracker.discarded == 1 and tracker.confirmed_count == 0


def test_k_of_n_counts_within_the_window() -> None:
    box = [100.0, 100.0, 120.0, 120.0]
    tracker = SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), NAMES)
    seen = [True, False, True, False, True]  # the 3rd hit in a window of 5: confirmed on frame 4
    confirmed_at = [
        i
        for i, s in enumerate(seen)
        if any(
            e["event"] == "confirmed"
            for e in tracker.update(frame((box, 0.9, 0)) if s else frame(), float(i), i).events
        )
    ]
    assert confirmed_at == [4]


def test_two_signs_side_by_side_keep_their_own_tracks() -> None:
    left, right = moving(100, 1, 8), moving(140, 1, 8)
    tracker = SignTracker(TrackerConfig(confirm_hits=2, confirm_window=3), NAMES)
    ids = set()
    for i in range(8):
        update = tracker.update(frame((left[i], 0.9, 0), (right[i], 0.8, 1)), float(i), i)
        ids.add(tuple(update.track_ids.tolist()))
    assert ids == {(1, 2)}
    events = tracker.flush()
    assert sorted((e["track"], e["name"], e["frames"]) for e in events) == [
        (1, "cam-dung-xe-va-do-xe", 8),
        (2, "toc-do-toi-da-60", 8),
    ]


def test_a_tiny_fast_sign_is_followed_by_its_motion() -> None:
    # a 10 px sign speeding up as the car nears it: 14 px between the first frames (within the
    # 1.5 box-size gate), then 4 px more each frame, up to 46 px: far outside the gate and with no
    # overlap, but the predicted box (the last one moved by the track's velocity) lands next to it
    x, steps, boxes = 50.0, [14.0 + 4 * i for i in range(9)], []
    for step in [0.0, *steps]:
        x += step
        boxes.append([x, 200.0, x + 10, 210.0])
    assert steps[-1] / 10 > 3 * TrackerConfig().match_distance
    tracker = SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), NAMES)
    ids = [int(tracker.update(frame((b, 0.8, 1)), float(i), i).track_ids[0]) for i, b in enumerate(boxes)]
    assert ids == [1] * len(boxes) and tracker.discarded == 0


def test_a_track_ends_after_max_missed_and_the_sign_coming_back_is_a_new_track() -> None:
    box = [100.0, 100.0, 120.0, 120.0]
    tracker = SignTracker(TrackerConfig(confirm_hits=2, confirm_window=3, max_missed=2), NAMES)
    sequence = [True, True, False, False, False, True, True]
    ended_at, ids = [], []
    for i, s in enumerate(sequence):
        update = tracker.update(frame((box, 0.9, 0)) if s else frame(), float(i), i)
        ended_at += [i for e in update.events if e["event"] == "ended"]
        ids += update.track_ids.tolist()
    assert ended_at == [4] and ids == [1, 1, 2, 2]


def test_speed_limit_in_force_follows_confirmed_signs_and_is_cleared_by_the_end_sign() -> None:
    tracker = SignTracker(TrackerConfig(confirm_hits=1, confirm_window=1, max_missed=0), NAMES)
    for i, class_id in enumerate([2, 1, 3]):  # 50, then 60, then the end-of-limit sign
        tracker.update(frame(([100.0 * i, 0, 100.0 * i + 20, 20], 0.9, class_id)), float(i), i)
        assert tracker.speed_limit == ("toc-do-toi-da-50", "toc-do-toi-da-60", None)[i]


def test_current_lists_confirmed_signs_in_view() -> None:
    tracker = SignTracker(TrackerConfig(confirm_hits=2, confirm_window=2), NAMES)
    tracker.update(frame(([0, 0, 20, 20], 0.9, 1)), 0.0, 0)
    assert tracker.current() == []
    update = tracker.update(frame(([1, 0, 21, 20], 0.7, 1)), 0.1, 1)
    assert update.confirmed.tolist() == [True]
    assert tracker.current() == [{"track": 1, "name": "toc-do-toi-da-60", "frames": 2, "best_score": 0.9}]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"confirm_hits": 4, "confirm_window": 3}, "confirm_hits <= confirm_window"),
        ({"confirm_hits": 0}, "confirm_hits"),
        ({"max_missed": -1}, "max_missed"),
        ({"match_iou": 0.0}, "match_iou"),
        ({"match_distance": -1.0}, "match_distance"),
    ],
)
def test_bad_tracker_settings_are_refused_with_the_setting_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**kwargs)


def stacked(index: int, upper: bool, lower: bool) -> Detections:
    """Two 12 px signs on one pole, centres 10 px apart (no parking above, a speed limit below),
    moving right 2 px a frame; each present in a frame or not."""
    x = 300.0 + 2 * index
    signs = []
    if upper:
        signs.append(([x, 200.0, x + 12, 212.0], 0.6, 0))
    if lower:
        signs.append(([x, 210.0, x + 12, 222.0], 0.6, 1))
    return frame(*signs)


def test_stacked_signs_keep_their_own_tracks_when_the_detector_sees_one_then_the_other() -> None:
    # the detector sees the upper sign for 6 frames, then only the lower one for 10: a class-
    # agnostic centre gate (10 px < 1.5 box sizes) made them one track confirmed as the upper sign
    # and ended as the lower one, and the lower sign never had its own event
    frames = [stacked(i, upper=i < 6, lower=i >= 6) for i in range(16)]
    events = run(SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), NAMES), frames)
    confirmed = [e for e in events if e["event"] == "confirmed"]
    assert [e["name"] for e in confirmed] == ["cam-dung-xe-va-do-xe", "toc-do-toi-da-60"]
    assert len({e["track"] for e in confirmed}) == 2 and not [e for e in events if e["event"] == "update"]
    for event in (e for e in events if e["event"] == "ended"):  # each ends under the class it was confirmed as
        assert event["name"] == next(c["name"] for c in confirmed if c["track"] == event["track"])


def test_stacked_signs_seen_together_with_flicker_never_swap() -> None:
    frames = [stacked(i, upper=i % 3 != 2, lower=i % 4 != 1) for i in range(24)]
    events = run(SignTracker(TrackerConfig(confirm_hits=2, confirm_window=3), NAMES), frames)
    by_track: dict[int, set[str]] = {}
    for event in events:
        by_track.setdefault(event["track"], set()).add(event["name"])
    assert sorted(map(sorted, by_track.values())) == [["cam-dung-xe-va-do-xe"], ["toc-do-toi-da-60"]]


def test_a_class_that_changes_after_confirmation_is_an_update_with_both_classes() -> None:
    boxes = moving(300, 1, 12)
    classes = [1, 1, 1] + [2] * 9  # confirmed as 60 after 3 frames; the close-up says 50
    events = run(
        SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), NAMES),
        [frame((b, 0.7, c)) for b, c in zip(boxes, classes, strict=True)],
    )
    kinds = [(e["event"], e["name"]) for e in events]
    assert kinds == [("confirmed", "toc-do-toi-da-60"), ("update", "toc-do-toi-da-50"), ("ended", "toc-do-toi-da-50")]
    update = events[1]
    assert update["previous_name"] == "toc-do-toi-da-60" and update["previous_class_id"] == 1
    assert update["track"] == events[0]["track"] == events[2]["track"]


def test_a_clearer_view_of_a_confirmed_sign_is_an_update_with_its_reason() -> None:
    boxes = moving(300, 1, 10)
    scores = [0.4, 0.4, 0.4, 0.45, 0.5, 0.6, 0.62, 0.64, 0.8, 0.8]
    events = run(
        SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), NAMES),
        [frame((b, s, 1)) for b, s in zip(boxes, scores, strict=True)],
    )
    kinds = [(e["event"], e.get("reason"), e["best_score"]) for e in events]
    # confirmed at 0.4; updates when the best score has risen by 0.15 since the last event
    assert kinds == [("confirmed", None, 0.4), ("update", "score", 0.6), ("update", "score", 0.8), ("ended", None, 0.8)]
    assert "previous_name" not in events[1]
