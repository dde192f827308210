"""Output-level distillation: the loss against a hand computation (the tiny real QAT run with it is
in test_runs.py)."""

from __future__ import annotations

import math

import pytest
import torch

from bienbao.trainer.ultralytics.distill import DistilledCriterion, distillation_loss

REG_MAX = 4


def head(scores: torch.Tensor, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"scores": scores, "boxes": boxes}


def random_head(generator: torch.Generator, batch=2, classes=3, anchors=5) -> dict[str, torch.Tensor]:
    return head(
        torch.randn(batch, classes, anchors, generator=generator) * 3,
        torch.randn(batch, 4 * REG_MAX, anchors, generator=generator) * 2,
    )


def test_the_terms_vanish_where_the_student_matches_its_teacher() -> None:
    teacher = random_head(torch.Generator().manual_seed(0))
    terms = distillation_loss(teacher, teacher, REG_MAX, temperature=2.0)
    assert abs(float(terms.classes)) < 1e-5 and abs(float(terms.boxes)) < 1e-5


def test_the_terms_match_a_hand_computation() -> None:
    """One image, two classes, two anchors: binary KL per class, KL per box side, weighted by the
    teacher's top class probability, over the sum of those weights, times T squared."""
    t = 2.0
    teacher = head(torch.tensor([[[2.0, -1.0], [0.5, -3.0]]]), torch.zeros(1, 4 * REG_MAX, 2))
    teacher["boxes"][0, 0, 0] = 3.0  # side 0 of anchor 0 prefers bin 0
    student = head(torch.tensor([[[1.0, 0.0], [0.0, -2.0]]]), torch.zeros(1, 4 * REG_MAX, 2))

    def sig(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    def bkl(p: float, q: float) -> float:
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    z_t, z_s = teacher["scores"][0].tolist(), student["scores"][0].tolist()
    weights = [max(sig(z_t[0][a]), sig(z_t[1][a])) for a in range(2)]
    classes = [sum(bkl(sig(z_t[c][a] / t), sig(z_s[c][a] / t)) for c in range(2)) for a in range(2)]
    bins_t = torch.softmax(torch.tensor([3.0, 0, 0, 0]) / t, 0).tolist()
    side_kl = sum(p * math.log(p / 0.25) for p in bins_t)  # the student's bins are uniform
    boxes = [side_kl / 4, 0.0]  # only side 0 of anchor 0 differs; mean over four sides
    norm = max(sum(weights), 1.0)
    expected_classes = sum(w * c for w, c in zip(weights, classes, strict=True)) / norm * t * t
    expected_boxes = sum(w * b for w, b in zip(weights, boxes, strict=True)) / norm * t * t

    terms = distillation_loss(student, teacher, REG_MAX, temperature=t)
    assert float(terms.classes) == pytest.approx(expected_classes, rel=1e-5)
    assert float(terms.boxes) == pytest.approx(expected_boxes, rel=1e-5)


def test_the_gradient_pulls_the_student_towards_the_teacher() -> None:
    generator = torch.Generator().manual_seed(1)
    teacher = random_head(generator)
    student = {
        k: (v + torch.randn(v.shape, generator=generator)).requires_grad_(True)
        for k, v in random_head(generator).items()
    }
    before = distillation_loss(student, teacher, REG_MAX).total()
    before.backward()
    with torch.no_grad():
        stepped = {k: v - 0.05 * v.grad for k, v in student.items()}
    assert float(distillation_loss(stepped, teacher, REG_MAX).total()) < float(before.detach())
    assert teacher["scores"].grad is None  # the teacher is a target, never trained


def test_mismatched_heads_are_refused() -> None:
    generator = torch.Generator().manual_seed(2)
    with pytest.raises(ValueError, match="student and teacher heads differ"):
        distillation_loss(random_head(generator, classes=3), random_head(generator, classes=4), REG_MAX)


def test_validation_sees_zero_terms_under_the_same_names() -> None:
    generator = torch.Generator().manual_seed(3)
    outputs = random_head(generator)

    class Teacher(torch.nn.Module):
        def forward(self, images):
            return images, outputs  # ultralytics' eval-mode (inference, training outputs) pair

    def base(preds, batch):
        return torch.ones(3), {"box_loss": torch.tensor(1.0)}

    criterion = DistilledCriterion(base, Teacher(), REG_MAX, weight=2.0, temperature=1.0)
    student = {k: v + 1 for k, v in outputs.items()}
    batch = {"img": torch.zeros(2, 3, 8, 8)}
    loss, items = criterion(student, batch)
    assert loss.shape == (5,) and set(items) == {"box_loss", "kd_cls", "kd_dfl"}
    expected = distillation_loss(student, outputs, REG_MAX)
    assert float(items["kd_cls"]) == pytest.approx(2.0 * float(expected.classes), rel=1e-5)
    assert float(loss[3]) == pytest.approx(2 * 2.0 * float(expected.classes), rel=1e-5)  # times the batch size
    with torch.no_grad():
        loss, items = criterion(student, batch)
    assert set(items) == {"box_loss", "kd_cls", "kd_dfl"} and float(loss[3:].abs().sum()) == 0.0


def test_labels_zero_leaves_the_teacher_as_the_only_target() -> None:
    generator = torch.Generator().manual_seed(3)
    outputs = random_head(generator)

    class Teacher(torch.nn.Module):
        def forward(self, images):
            return images, outputs

    def base(preds, batch):
        return torch.full((3,), 5.0), {"box_loss": torch.tensor(5.0)}

    student = {k: v + 0.5 for k, v in outputs.items()}
    batch = {"img": torch.zeros(2, 3, 8, 8)}
    full, _ = DistilledCriterion(base, Teacher(), REG_MAX, weight=2.0, temperature=1.0)(student, batch)
    only, items = DistilledCriterion(base, Teacher(), REG_MAX, weight=2.0, temperature=1.0, labels=0.0)(student, batch)
    assert torch.equal(only[:3], torch.zeros(3)) and torch.equal(only[3:], full[3:])
    assert float(items["box_loss"]) == 5.0  # still shown, no longer trained on
    half, _ = DistilledCriterion(base, Teacher(), REG_MAX, weight=2.0, temperature=1.0, labels=0.5)(student, batch)
    assert torch.equal(half[:3], torch.full((3,), 2.5))


def test_the_labels_weight_is_checked() -> None:
    from bienbao.trainer.config import DistillationConfig

    with pytest.raises(ValueError, match="labels"):
        DistillationConfig(enabled=True, labels=-1.0)
    with pytest.raises(ValueError, match="output"):
        DistillationConfig(enabled=True, method="feature", labels=0.0)
    assert DistillationConfig(enabled=True, labels=0.0).labels == 0.0
