"""torchvision (and so ultralytics' NMS) works after importing bienbao.trainer."""

from __future__ import annotations

import torch

import bienbao.trainer.ultralytics  # noqa: F401  (registers the fallback when needed)
from bienbao.trainer.ultralytics.torchvision_ops import nms_reference


def brute_force_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    def iou(a, b) -> float:
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union

    keep: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: -scores[k].item()):
        if all(iou(boxes[i].tolist(), boxes[j].tolist()) <= threshold for j in keep):
            keep.append(i)
    return keep


def random_boxes(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xy = torch.rand(n, 2) * 100
    wh = torch.rand(n, 2) * 30 + 1
    return torch.cat([xy, xy + wh], dim=1), torch.rand(n)


def test_reference_nms_matches_the_definition() -> None:
    torch.manual_seed(0)
    boxes, scores = random_boxes(60)
    for threshold in (0.3, 0.5, 0.7):
        assert nms_reference(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)
    assert nms_reference(torch.empty(0, 4), torch.empty(0), 0.5).shape == (0,)


def test_torchvision_imports_and_its_nms_agrees() -> None:
    import torchvision

    torch.manual_seed(1)
    boxes, scores = random_boxes(40)
    assert torchvision.ops.nms(boxes, scores, 0.5).tolist() == brute_force_nms(boxes, scores, 0.5)


def test_ultralytics_non_max_suppression_runs() -> None:
    from ultralytics.utils.nms import non_max_suppression

    prediction = torch.zeros(1, 4 + 3, 10)
    prediction[0, :4] = torch.tensor([50.0, 50.0, 20.0, 20.0])[:, None]  # xywh, all the same box
    prediction[0, 4 + 1] = torch.linspace(0.3, 0.9, 10)  # class 1 scores
    out = non_max_suppression(prediction, conf_thres=0.25, iou_thres=0.5)
    assert out[0].shape == (1, 6)
    assert out[0][0, 5].item() == 1 and abs(out[0][0, 4].item() - 0.9) < 1e-6
