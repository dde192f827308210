"""Output-level distillation for QAT: the fake-quantized student matches its FP32 teacher's outputs.

YOLOv8's head gives, per anchor, one logit per class (trained with a per-class sigmoid, not a
softmax) and, per box side, a distribution over ``reg_max`` distance bins (DFL). The student is
pulled towards the teacher's *outputs* rather than its features (ultralytics' feature distillation,
``distillation.method: feature``):

- **class scores**: the binary KL divergence of every class's sigmoid, ``KL(p_t || p_s)`` summed
  over classes;
- **box distributions**: the KL divergence of each side's bin distribution, averaged over the four
  sides;

both at temperature ``T`` (scaled by ``T²``, Hinton et al.), each anchor weighted by the teacher's
highest class probability, so that the few anchors that see a sign count and the thousands of
background anchors do not drown them, normalised by the sum of those weights.

``distillation_loss`` is pure tensors (tested against a hand computation); ``DistilledCriterion``
wraps ultralytics' detection criterion and runs the teacher on the training batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DistillationTerms", "DistilledCriterion", "distillation_loss", "head_outputs"]

#: loss items this module adds to ultralytics' (the trainer prints and logs them by these names)
LOSS_NAMES = ("kd_cls", "kd_dfl")


@dataclass(frozen=True)
class DistillationTerms:
    """The two output-level terms, before the configured weight."""

    classes: torch.Tensor
    boxes: torch.Tensor

    def total(self) -> torch.Tensor:
        return self.classes + self.boxes


def _binary_kl(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(Bernoulli(p_t) || Bernoulli(sigmoid(z_s)))``: the soft-target BCE minus the
    teacher's own entropy, so that it is 0 where the student matches."""
    cross = F.binary_cross_entropy_with_logits(student_logits, teacher_probs, reduction="none")
    entropy = F.binary_cross_entropy(teacher_probs, teacher_probs, reduction="none")
    return cross - entropy


def distillation_loss(
    student: Mapping[str, torch.Tensor],
    teacher: Mapping[str, torch.Tensor],
    reg_max: int,
    temperature: float = 1.0,
) -> DistillationTerms:
    """The output-level distillation terms of one batch.

    ``student``/``teacher``: ultralytics' training outputs of the Detect head, ``scores``
    ``(batch, classes, anchors)`` logits and ``boxes`` ``(batch, 4 * reg_max, anchors)`` bin logits.
    """
    if student["scores"].shape != teacher["scores"].shape or student["boxes"].shape != teacher["boxes"].shape:
        raise ValueError(
            f"student and teacher heads differ: scores {tuple(student['scores'].shape)} vs "
            f"{tuple(teacher['scores'].shape)}, boxes {tuple(student['boxes'].shape)} vs "
            f"{tuple(teacher['boxes'].shape)}"
        )
    t = float(temperature)
    teacher_scores = teacher["scores"].detach().float()
    teacher_probs = (teacher_scores / t).sigmoid()
    weight = teacher_scores.sigmoid().amax(dim=1)  # (batch, anchors): the teacher's confidence
    norm = weight.sum().clamp(min=1.0)

    classes = _binary_kl(student["scores"].float() / t, teacher_probs).sum(dim=1)  # (batch, anchors)

    b, _, a = student["boxes"].shape
    student_bins = student["boxes"].float().view(b, 4, reg_max, a) / t
    teacher_bins = teacher["boxes"].detach().float().view(b, 4, reg_max, a) / t
    boxes = (
        F.kl_div(student_bins.log_softmax(dim=2), teacher_bins.log_softmax(dim=2), reduction="none", log_target=True)
        .sum(dim=2)
        .mean(dim=1)
    )  # (batch, anchors)

    scale = t * t
    return DistillationTerms(
        classes=(classes * weight).sum() / norm * scale,
        boxes=(boxes * weight).sum() / norm * scale,
    )


def head_outputs(preds: Any) -> Mapping[str, torch.Tensor]:
    """The training outputs dict of a Detect head: ultralytics returns ``(inference, dict)`` in eval
    mode and the dict itself in training."""
    return preds[1] if isinstance(preds, (tuple, list)) else preds


class DistilledCriterion:
    """Ultralytics' detection criterion plus the output-level distillation terms.

    Called like the criterion it wraps (``criterion(preds, batch)``): returns the wrapped loss
    (times ``labels``: 0 leaves the teacher as the only target) with the two distillation terms
    appended (each multiplied by the batch size, as ultralytics does with its own) and the loss
    items with ``kd_cls``/``kd_dfl`` added. The teacher runs on the batch's images without
    gradients. Under ``torch.no_grad`` (ultralytics' validation) the terms are zeros, so the
    validation loss keeps the same names.
    """

    def __init__(
        self,
        base: Callable[[Any, dict], tuple[torch.Tensor, dict]],
        teacher: nn.Module,
        reg_max: int,
        weight: float,
        temperature: float,
        labels: float = 1.0,
    ) -> None:
        self.base = base
        self.labels = float(labels)
        self.teacher = teacher.eval().requires_grad_(False)
        self.reg_max = reg_max
        self.weight = float(weight)
        self.temperature = float(temperature)

    def __getattr__(self, name: str) -> Any:  # ultralytics reads e.g. criterion.hyp, criterion.bbox_loss
        if name in {"base", "teacher"}:
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getstate__(self) -> dict:
        """A checkpoint never carries the teacher (ultralytics pickles the EMA, not the trained
        model, but a deep copy of the model must not double its size either)."""
        return {**self.__dict__, "teacher": None}

    def __call__(self, preds: Any, batch: dict) -> tuple[torch.Tensor, dict]:
        loss, items = self.base(preds, batch)  # its items stay unweighted: the progress bar shows them
        if self.labels != 1.0:
            loss = loss * self.labels
        images = batch["img"]
        if not torch.is_grad_enabled() or self.teacher is None:
            zero = torch.zeros((), device=loss.device)
            terms = DistillationTerms(zero, zero)
        else:
            with torch.no_grad():
                teacher_preds = self.teacher(images)
            terms = distillation_loss(head_outputs(preds), head_outputs(teacher_preds), self.reg_max, self.temperature)
        weighted = torch.stack([terms.classes, terms.boxes]) * self.weight
        items = {**items, **dict(zip(LOSS_NAMES, weighted.detach(), strict=True))}
        return torch.cat([loss.reshape(-1), weighted * images.shape[0]]), items
