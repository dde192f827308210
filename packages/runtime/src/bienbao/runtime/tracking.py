"""Confirmed sign events: a small IoU/motion tracker over per-frame detections (numpy only).

A sign passes through 10 to 40 frames of a dashcam recording, flickers near the confidence
threshold and is sometimes taken for its mirror class in one frame. ``SignTracker`` follows each
sign across frames and turns the per-frame detections into one event per physical sign:

    tracker = SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), names)
    update = tracker.update(detections, timestamp, frame_index)   # every processed frame
    update.track_ids                                               # per detection (-1: none)
    update.events                                                  # "confirmed" / "ended" dicts
    tracker.flush()                                                # end of stream: the last "ended"

Matching is greedy and class-aware. A detection of the track's class joins the track whose
predicted box (the last box moved by the track's centre velocity) it overlaps best (IoU >=
``match_iou``), or, for tiny boxes that moved further than their own size, whose centre lies
within ``match_distance`` box sizes. A detection of another class joins a track only when it
covers the same place (IoU >= ``cross_class_iou``: a one-frame mirror-class error), never by
distance: two signs on one pole (no entry above keep right, 10 px apart) keep their own tracks
even in a frame where one of them is not detected. A track is **confirmed** once it was matched
in ``confirm_hits`` of its last ``confirm_window`` frames; its class is the majority over all its
frames (ties: the higher summed score). A track not matched for ``max_missed`` frames ends; an
unconfirmed one ends without an event (counted in ``discarded``).

Events per confirmed sign: ``confirmed`` when it is confirmed (a live alert), ``update`` if its
majority class changes afterwards (``reason: class``, with ``previous_class_id``/``previous_name``:
the class of every event stays the one the last event said) or its best score rises by
``update_score`` (``reason: score``: a clearer view, with its box), ``ended`` with the final
figures when the track ends. Counting signs = counting ``confirmed`` events.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .postprocess import Detections, box_iou

__all__ = ["SignTracker", "Track", "TrackUpdate", "TrackerConfig"]

# a confirmed "maximum speed N" sign sets the limit in force; the "end of speed limit" sign clears it
SPEED_LIMIT = re.compile(r"^toc-do-toi-da-(\d+)$")
SPEED_LIMIT_END = "het-han-che-toc-do-toi-da"


@dataclass(frozen=True)
class TrackerConfig:
    confirm_hits: int = 3  # k: matched in k ...
    confirm_window: int = 5  # ... of the last n processed frames
    max_missed: int = 10  # processed frames without a match before a track ends
    match_iou: float = 0.2  # least IoU with the predicted box to continue a track
    match_distance: float = 1.5  # or: centre within this many box sizes (tiny, fast-moving signs; same class)
    cross_class_iou: float = 0.5  # least IoU for a detection of another class (a mirror-class error)
    update_score: float = 0.15  # an "update" when a confirmed sign's best score rises this much (a clearer view)

    def __post_init__(self) -> None:
        if not 1 <= self.confirm_hits <= self.confirm_window:
            raise ValueError(
                f"tracker: need 1 <= confirm_hits <= confirm_window, got k={self.confirm_hits} of "
                f"n={self.confirm_window}"
            )
        if self.max_missed < 0:
            raise ValueError(f"tracker: max_missed must be >= 0, got {self.max_missed}")
        if not 0.0 < self.match_iou <= 1.0:
            raise ValueError(f"tracker: match_iou must be in (0, 1], got {self.match_iou}")
        if self.match_distance < 0:
            raise ValueError(f"tracker: match_distance must be >= 0, got {self.match_distance}")
        if not 0.0 < self.cross_class_iou <= 1.0:
            raise ValueError(f"tracker: cross_class_iou must be in (0, 1], got {self.cross_class_iou}")


def _centre_size(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return centre, np.maximum(size, 1.0)


@dataclass
class Track:
    id: int
    box: np.ndarray  # last matched box (xyxy, frame pixels)
    first_time: float
    first_frame: int
    window: int
    last_time: float = 0.0
    last_frame: int = 0
    hits: int = 0
    missed: int = 0
    confirmed: bool = False
    reported_class: int = -1  # the class the last event said (-1: none yet)
    reported_score: float = 0.0  # the best score the last event said
    best_score: float = 0.0
    best_box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # centre px per frame
    votes: dict[int, list[float]] = field(default_factory=dict)  # class id -> [frames, summed score]
    history: deque[Any] = field(default_factory=deque[Any])

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.window)

    @property
    def class_id(self) -> int:
        """The majority class over the track's frames (ties: the higher summed score)."""
        return max(self.votes.items(), key=lambda item: (item[1][0], item[1][1]))[0]

    def predicted(self) -> np.ndarray:
        shift = self.velocity * (self.missed + 1)
        return self.box + np.concatenate([shift, shift])

    def observe(self, box: np.ndarray, score: float, class_id: int, timestamp: float, frame: int) -> None:
        if self.hits:
            steps = self.missed + 1
            moved = ((box[:2] + box[2:]) - (self.box[:2] + self.box[2:])) / 2 / steps
            self.velocity = moved if self.hits == 1 else 0.5 * self.velocity + 0.5 * moved
        self.box = box.astype(np.float32)
        self.hits += 1
        self.missed = 0
        self.last_time, self.last_frame = timestamp, frame
        vote = self.votes.setdefault(class_id, [0, 0.0])
        vote[0] += 1
        vote[1] += score
        if score > self.best_score:
            self.best_score, self.best_box = score, self.box.copy()
        self.history.append(True)

    def event(
        self, kind: str, names: tuple[str, ...], previous: int | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        class_id = self.class_id
        self.reported_class, self.reported_score = class_id, self.best_score
        changed: dict[str, Any] = {"reason": reason} if reason else {}
        if previous is not None:
            changed.update(previous_class_id=previous, previous_name=_name(names, previous))
        return {
            "event": kind,
            "track": self.id,
            "class_id": class_id,
            "name": _name(names, class_id),
            "first_time": round(self.first_time, 3),
            "last_time": round(self.last_time, 3),
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames": self.hits,
            "best_score": round(self.best_score, 4),
            "box": [round(float(v), 1) for v in self.best_box],
            **changed,
        }


def _name(names: tuple[str, ...], class_id: int) -> str:
    return names[class_id] if 0 <= class_id < len(names) else str(class_id)


@dataclass(frozen=True)
class TrackUpdate:
    track_ids: np.ndarray  # (N,) the track of each detection of the frame, -1 for none
    confirmed: np.ndarray  # (N,) bool: that track is confirmed
    events: list[dict[str, Any]]


class SignTracker:
    def __init__(self, config: TrackerConfig | None = None, names: tuple[str, ...] = ()) -> None:
        self.config = config or TrackerConfig()
        self.names = tuple(names)
        self.tracks: list[Track] = []
        self.next_id = 1
        self.discarded = 0  # tracks that ended unconfirmed (flicker, one-off false positives)
        self.confirmed_count = 0
        self.speed_limit: str | None = None  # the slug of the speed limit in force, if one was confirmed

    # -- matching ------------------------------------------------------------------------------
    def _match(self, boxes: np.ndarray, class_ids: np.ndarray) -> list[tuple[int, int]]:
        """Greedy (track index, detection index) pairs, best overlap first, then nearest centre:
        same class by overlap or centre distance, another class only by a large overlap."""
        if not self.tracks or not len(boxes):
            return []
        config = self.config
        predicted = np.stack([track.predicted() for track in self.tracks])
        iou = box_iou(predicted, boxes)
        (tc, ts), (dc, ds) = _centre_size(predicted), _centre_size(boxes)
        distance = np.linalg.norm(tc[:, None] - dc[None], axis=2) / np.maximum(ts[:, None], ds[None])
        same = np.array([track.class_id for track in self.tracks])[:, None] == np.asarray(class_ids)[None]
        eligible = np.where(
            same, (iou >= config.match_iou) | (distance <= config.match_distance), iou >= config.cross_class_iou
        )
        pairs = np.argwhere(eligible)
        order = np.lexsort((distance[eligible], -iou[eligible]))  # IoU descending, then distance
        used_t, used_d, matches = set(), set(), []
        for t, d in pairs[order]:
            if t not in used_t and d not in used_d:
                used_t.add(int(t))
                used_d.add(int(d))
                matches.append((int(t), int(d)))
        return matches

    # -- lifecycle -----------------------------------------------------------------------------
    def update(self, detections: Detections, timestamp: float, frame_index: int) -> TrackUpdate:
        config, events = self.config, []
        boxes = np.asarray(detections.boxes, np.float32).reshape(-1, 4)
        track_ids = np.full(len(boxes), -1, np.int64)
        matches = self._match(boxes, np.asarray(detections.class_ids).reshape(-1))
        matched_tracks = {t for t, _ in matches}
        for t, d in matches:
            self.tracks[t].observe(
                boxes[d], float(detections.scores[d]), int(detections.class_ids[d]), timestamp, frame_index
            )
        for t, track in enumerate(self.tracks):
            if t not in matched_tracks:
                track.missed += 1
                track.history.append(False)
        for d in sorted(set(range(len(boxes))) - {d for _, d in matches}):
            track = Track(self.next_id, boxes[d], timestamp, frame_index, config.confirm_window)
            track.observe(boxes[d], float(detections.scores[d]), int(detections.class_ids[d]), timestamp, frame_index)
            self.next_id += 1
            self.tracks.append(track)
            matches.append((len(self.tracks) - 1, d))
        for track in self.tracks:
            if not track.confirmed and sum(track.history) >= config.confirm_hits:
                track.confirmed = True
                self.confirmed_count += 1
                events.append(track.event("confirmed", self.names))
                self._note_limit(track)
            elif track.confirmed and track.class_id != track.reported_class:  # the majority changed
                events.append(track.event("update", self.names, previous=track.reported_class, reason="class"))
                self._note_limit(track)
            elif track.confirmed and track.best_score >= track.reported_score + config.update_score:
                events.append(track.event("update", self.names, reason="score"))  # a clearer view of it
        confirmed = np.zeros(len(boxes), bool)
        for t, d in matches:
            track_ids[d], confirmed[d] = self.tracks[t].id, self.tracks[t].confirmed
        events += self._end([track for track in self.tracks if track.missed > config.max_missed])
        return TrackUpdate(track_ids, confirmed, events)

    def flush(self) -> list[dict[str, Any]]:
        """End every track (end of stream): the ``ended`` events of the confirmed ones."""
        return self._end(list(self.tracks))

    def _end(self, ending: list[Track]) -> list[dict[str, Any]]:
        events = []
        for track in ending:
            self.tracks.remove(track)
            if track.confirmed:
                events.append(track.event("ended", self.names))
            else:
                self.discarded += 1
        return events

    def _note_limit(self, track: Track) -> None:
        name = _name(self.names, track.class_id)
        if SPEED_LIMIT.match(name):
            self.speed_limit = name
        elif name == SPEED_LIMIT_END:
            self.speed_limit = None

    # -- what the overlay and the live view show -----------------------------------------------
    def current(self) -> list[dict[str, Any]]:
        """The confirmed signs in view now (matched in the current frame or missed only briefly)."""
        return [
            {
                "track": t.id,
                "name": _name(self.names, t.class_id),
                "frames": t.hits,
                "best_score": round(t.best_score, 4),
            }
            for t in self.tracks
            if t.confirmed and t.missed <= self.config.confirm_window
        ]
