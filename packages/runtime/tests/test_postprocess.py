"""Decoding and class-aware NMS against a brute-force reference; empty results of stable shape."""

from __future__ import annotations

import numpy as np

from bienbao.runtime import Detections, Letterbox, postprocess
from bienbao.runtime.postprocess import nms

IDENTITY = Letterbox.fit((640, 640), (640, 640))


def raw_output(boxes_xywh: list, scores: list[list[float]]) -> np.ndarray:
    """A (1, 4 + nc, A) output with the given anchors."""
    return np.concatenate([np.array(boxes_xywh, np.float32).T, np.array(scores, np.float32).T])[None]


def brute_force_nms(boxes, scores, threshold):
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    keep = []
    for i in sorted(range(len(scores)), key=lambda k: -scores[k]):
        if all(iou(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


def test_nms_matches_its_definition() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (80, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (80, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, 80).astype(np.float32)
    for threshold in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)


def test_overlapping_boxes_of_different_classes_both_survive() -> None:
    output = raw_output(
        [[100, 100, 20, 20], [101, 100, 20, 20], [300, 300, 10, 10]], [[0.9, 0.0], [0.0, 0.8], [0.1, 0.0]]
    )
    found = postprocess(output, IDENTITY, conf=0.25, iou=0.45, names=("a", "b"))
    assert found.class_ids.tolist() == [0, 1] and found.labels == ["a", "b"]
    assert np.allclose(found.boxes[0], [90, 90, 110, 110])
    same_class = postprocess(raw_output([[100, 100, 20, 20], [101, 100, 20, 20]], [[0.9], [0.8]]), IDENTITY)
    assert len(same_class) == 1 and same_class.scores.tolist() == [np.float32(0.9)]


def test_boxes_come_back_in_frame_pixels() -> None:
    box = Letterbox.fit((360, 640), (640, 640))  # 140 px of padding on top
    found = postprocess(raw_output([[320, 320, 40, 20]], [[0.9]]), box)
    assert np.allclose(found.boxes, [[300, 170, 340, 190]])


def test_max_det_and_empty_results_keep_their_shapes() -> None:
    many = raw_output([[10 + 30 * i, 10, 10, 10] for i in range(20)], [[0.5 + i / 100] for i in range(20)])
    assert len(postprocess(many, IDENTITY, max_det=5)) == 5
    empty = postprocess(many, IDENTITY, conf=0.99)
    assert isinstance(empty, Detections) and len(empty) == 0
    assert empty.boxes.shape == (0, 4) and empty.scores.shape == (0,) and empty.class_ids.shape == (0,)
    assert empty.to_records() == []


def test_box_iou_by_hand() -> None:
    from bienbao.runtime.postprocess import box_iou

    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    assert np.allclose(box_iou(a, b), [[50 / 150, 1.0, 0.0]])


def test_multi_label_keeps_every_class_above_conf_as_ultralytics_val_does() -> None:
    output = raw_output([[100, 100, 20, 20], [300, 300, 10, 10]], [[0.6, 0.3, 0.01], [0.2, 0.0, 0.0]])
    single = postprocess(output, IDENTITY, conf=0.05)
    assert single.class_ids.tolist() == [0, 0]  # one label per anchor: its best class
    multi = postprocess(output, IDENTITY, conf=0.05, multi_label=True)
    found = sorted((c, round(float(p), 2)) for c, p in zip(multi.class_ids, multi.scores, strict=True))
    assert found == [(0, 0.2), (0, 0.6), (1, 0.3)]
    assert np.allclose(multi.boxes[multi.class_ids == 1], [[90, 90, 110, 110]])  # the same box, second class
    capped = postprocess(output, IDENTITY, conf=0.05, multi_label=True, max_candidates=2)
    assert sorted(round(float(p), 2) for p in capped.scores) == [0.3, 0.6]  # only the highest scores enter NMS


def test_one_label_per_anchor_is_the_argmax_class_above_conf() -> None:
    """The fast path (max over classes, argmax only above conf) keeps exactly what the plain
    argmax-everywhere rule keeps, ties included (the first class wins)."""
    rng = np.random.default_rng(3)
    nc, anchors = 33, 8400
    scores = rng.random((nc, anchors), dtype=np.float32) ** 8
    scores[5, 10] = scores[7, 10] = 0.9  # a tie: class 5 must win
    prediction = np.concatenate([rng.uniform(50, 590, (2, anchors)), rng.uniform(4, 30, (2, anchors)), scores])
    prediction = prediction.astype(np.float32)[None]
    box = Letterbox.fit((640, 640), (640, 640))
    got = postprocess(prediction, box, conf=0.3, iou=1.0, max_det=100_000)
    plain_ids = scores.argmax(0)
    plain_scores = scores[plain_ids, np.arange(anchors)]
    keep = np.flatnonzero(plain_scores > 0.3)
    assert len(got) == len(keep)
    order = np.argsort(-plain_scores[keep], kind="stable")
    assert np.array_equal(got.class_ids, plain_ids[keep][order])
    assert 5 in got.class_ids[np.isclose(got.scores, 0.9)]
