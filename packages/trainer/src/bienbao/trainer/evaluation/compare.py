"""``bienbao compare``: several models (FP32, PTQ, QAT; checkpoints or exported files) on one split.

Each model is scored by ``bienbao.evaluate`` (ultralytics' validator for a checkpoint, the deployed
runtime for an exported file). The first model is the reference the others are measured against.
Writes into the output folder:

- ``compare.json``: the label, path, file size and full evaluation of every model;
- ``compare.md`` and ``compare.html``: the summary table (mAP50, mAP50-95, precision, recall,
  latency per image, size, drop against the reference), the classes that lose most AP50, and the
  charts below;
- ``per_class_ap.png`` (AP50 per class, one bar per model), ``pr_curves.png`` (class-mean
  precision-recall at IoU 0.5), ``latency.png`` (pre-process, inference, post-process per image);
- ``examples/*.jpg``: a few frames of the split, each model's detections drawn side by side.

Latency here is what evaluation measured, one model after the other: ``bienbao bench`` is the
careful figure (interleaved runs, warm-up, memory).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bienbao.core.files import atomic_write_text
from bienbao.runtime.backends import is_model_path, model_size_bytes
from bienbao.trainer.evaluation.bootstrap import Difference, paired_difference
from bienbao.trainer.evaluation.evaluate import Evaluation, evaluate, split_images

__all__ = ["ComparedModel", "compare", "example_frames", "parse_model_spec"]


@dataclass(frozen=True)
class ComparedModel:
    label: str
    path: Path
    evaluation: Evaluation
    difference: Difference | None = None  # against the reference, paired bootstrap (exported files)

    @property
    def size_mb(self) -> float:
        return model_size_bytes(self.path) / 1e6

    @property
    def latency_ms(self) -> float:
        return float(sum(self.evaluation.speed_ms.values()))

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "path": str(self.path),
            "size_mb": round(self.size_mb, 3),
            "latency_ms": round(self.latency_ms, 2),
            "evaluation": self.evaluation.to_dict(),
            "difference_vs_reference": self.difference.to_dict() if self.difference else None,
        }


def parse_model_spec(spec: str) -> tuple[str, Path]:
    """``LABEL=PATH`` or ``PATH`` (labelled by its file name)."""
    label, sep, path = spec.partition("=")
    if not sep:
        label, path = Path(spec).stem, spec
    path = Path(path)
    if not is_model_path(path):
        raise FileNotFoundError(f"model not found: {path}")
    return label, path


def compare(
    models: Sequence[tuple[str, Path]],
    data: str | Path,
    split: str = "test",
    out: str | Path = "compare",
    imgsz: int = 640,
    examples: int = 4,
    progress=print,
    bootstrap: int = 1000,
) -> list[ComparedModel]:
    """Evaluate every ``(label, path)`` on ``split`` and write the report into ``out``; each
    model's difference from the first gets a paired bootstrap 95% interval over ``bootstrap``
    resamples of the images (exported files; 0: none)."""
    if len(models) < 2:
        raise ValueError("compare needs at least two models (the first is the reference)")
    labels = [label for label, _ in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must differ: {labels} (write LABEL=PATH)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    compared = []
    for index, (label, path) in enumerate(models, 1):
        progress(f"[{index}/{len(models)}] evaluating {label} ({path}) on {split}")
        evaluation = evaluate(path, data, split, imgsz)
        difference = None
        if compared and bootstrap and evaluation.per_image is not None and compared[0].evaluation.per_image:
            progress(f"      paired bootstrap against {compared[0].label} ({bootstrap} resamples of the images)")
            difference = paired_difference(compared[0].evaluation, evaluation, bootstrap)
        compared.append(ComparedModel(label, Path(path), evaluation, difference))
    atomic_write_text(
        out / "compare.json",
        json.dumps(
            {"data": str(data), "split": split, "reference": labels[0], "models": [m.to_dict() for m in compared]},
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
    )
    charts = _charts(compared, out)
    frames = (
        example_frames([(m.label, m.path) for m in compared], Path(data), split, out / "examples", examples, imgsz)
        if examples
        else []
    )
    atomic_write_text(out / "compare.md", _markdown(compared, split, charts, frames, out))
    atomic_write_text(out / "compare.html", _html(compared, split, charts, frames, out))
    return compared


# -- tables -------------------------------------------------------------------------------------


def _summary_rows(models: Sequence[ComparedModel]) -> list[list[str]]:
    ref = models[0].evaluation
    rows = []
    for m in models:
        e = m.evaluation
        drop = (
            "reference"
            if m is models[0]
            else f"{(e.map50 - ref.map50) * 100:+.2f} / {(e.map50_95 - ref.map50_95) * 100:+.2f}"
        )
        if m.difference is not None:
            lo, hi = m.difference.map50_95_ci
            drop += f" (95% CI of mAP50-95: {lo * 100:+.2f} to {hi * 100:+.2f})"
        rows.append(
            [
                m.label,
                _file_name(m.path),
                f"{m.size_mb:.2f}",
                f"{e.map50:.4f}",
                f"{e.map50_95:.4f}",
                f"{e.precision:.3f}",
                f"{e.recall:.3f}",
                f"{m.latency_ms:.1f}",
                e.evaluator,
                drop,
            ]
        )
    return rows


def _file_name(path: Path) -> str:
    """The file's name, with its run folder when the name alone says nothing (``qat_grid/best.pt``)."""
    return f"{path.parent.name}/{path.name}" if path.stem in ("best", "last") else path.name


SUMMARY_HEADER = [
    "model",
    "file",
    "MB",
    "mAP50",
    "mAP50-95",
    "P",
    "R",
    "ms/img",
    "evaluated by",
    "Δ mAP50 / mAP50-95 (points)",
]


def _class_drops(models: Sequence[ComparedModel], top: int = 10) -> tuple[list[str], list[list[str]]]:
    ref = models[0].evaluation.per_class
    names = sorted(ref, key=lambda n: -ref[n]["instances"])
    drops = {
        n: min((m.evaluation.per_class.get(n, {"ap50": 0.0})["ap50"] - ref[n]["ap50"]) for m in models[1:])
        for n in names
    }
    worst = sorted(names, key=lambda n: drops[n])[:top]
    header = ["class", "signs", *(f"{m.label} AP50" for m in models)]
    rows = [
        [n, str(ref[n]["instances"]), *(f"{m.evaluation.per_class.get(n, {'ap50': 0.0})['ap50']:.3f}" for m in models)]
        for n in worst
    ]
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def _markdown(models, split, charts, frames, out) -> str:
    e = models[0].evaluation
    parts = [
        f"# bienbao compare: {', '.join(m.label for m in models)}",
        "",
        f"Split `{split}` of `{e.data}`: {e.images} images, {e.instances} signs. Reference: "
        f"**{models[0].label}**. Latency is per image as evaluation measured it (see `bienbao bench` for "
        "interleaved timings).",
        "",
        _md_table(SUMMARY_HEADER, _summary_rows(models)),
        "",
        "## Classes losing most AP50",
        "",
        _md_table(*_class_drops(models)),
        "",
        "## Charts",
        "",
    ]
    parts += [f"![{name}]({path.relative_to(out).as_posix()})" for name, path in charts.items()]
    if frames:
        parts += ["", "## Example frames", "", *(f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in frames)]
    return "\n".join(parts) + "\n"


def _html(models, split, charts, frames, out) -> str:
    def table(header, rows):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    e = models[0].evaluation
    images = [*charts.values(), *frames]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>bienbao compare</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%;margin:1em 0}"
        "</style></head><body>"
        f"<h1>bienbao compare</h1><p>Split <code>{html.escape(split)}</code> of "
        f"<code>{html.escape(e.data)}</code>: "
        f"{e.images} images, {e.instances} signs. Reference: <b>{html.escape(models[0].label)}</b>.</p>"
        + table(SUMMARY_HEADER, _summary_rows(models))
        + "<h2>Classes losing most AP50</h2>"
        + table(*_class_drops(models))
        + "".join(f"<img src='{html.escape(p.relative_to(out).as_posix())}'>" for p in images)
        + "</body></html>\n"
    )


# -- charts -------------------------------------------------------------------------------------


def _charts(models: Sequence[ComparedModel], out: Path) -> dict[str, Path]:
    from matplotlib.figure import Figure  # outside pyplot: no global state, no backend switch

    paths = {}
    ref = models[0].evaluation.per_class
    names = sorted(ref, key=lambda n: -ref[n]["instances"])
    width = 0.8 / len(models)
    fig = Figure(figsize=(max(8.0, 0.45 * len(names)), 4.5))
    ax = fig.subplots()
    for i, m in enumerate(models):
        values = [m.evaluation.per_class.get(n, {"ap50": 0.0})["ap50"] for n in names]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=m.label)
    ax.set_xticks(
        np.arange(len(names)) + 0.4 - width / 2,
        [f"{n} ({ref[n]['instances']})" for n in names],
        rotation=75,
        ha="right",
        fontsize=7,
    )
    ax.set_ylabel("AP50")
    ax.set_title("AP50 per class (signs in the split)")
    ax.legend()
    paths["per-class AP50"] = _save(fig, out / "per_class_ap.png")

    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    for m in models:
        curve = m.evaluation.pr_curve
        if curve:
            ax.plot(curve["recall"], curve["precision"], label=f"{m.label} (mAP50 {m.evaluation.map50:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("precision-recall, class mean, IoU 0.5")
    ax.legend()
    paths["precision-recall"] = _save(fig, out / "pr_curves.png")

    fig = Figure(figsize=(6, 0.6 * len(models) + 1.5))
    ax = fig.subplots()
    left = np.zeros(len(models))
    for stage in ("preprocess", "inference", "postprocess"):
        values = np.array([m.evaluation.speed_ms.get(stage, 0.0) for m in models])
        ax.barh([m.label for m in models], values, left=left, label=stage)
        left += values
    ax.set_xlabel("ms per image")
    ax.set_title("latency during evaluation")
    ax.invert_yaxis()
    ax.legend()
    paths["latency"] = _save(fig, out / "latency.png")
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


# -- example frames -------------------------------------------------------------------------------


def example_frames(
    models: Sequence[tuple[str, Path]], data: Path, split: str, out: Path, count: int, imgsz: int = 640
) -> list[Path]:
    """The ``count`` frames of ``split`` with the most labelled signs, each ``(label, path)``
    model's detections (conf 0.25) drawn one above the other; JPEG files in ``out``."""
    import cv2

    from bienbao.runtime.draw import Annotator
    from bienbao.trainer.dataset import label_path

    def signs(path: Path) -> int:
        label = label_path(path)
        return len(label.read_text().splitlines()) if label.is_file() else 0

    frames = sorted(split_images(data, split), key=lambda p: (-signs(p), p.name))[:count]
    detect = [_detector(Path(path), imgsz) for _, path in models]
    annotator = Annotator()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in frames:
        frame = cv2.imread(str(path))
        panels = []
        for (label, _), run in zip(models, detect, strict=True):
            panel = annotator.draw(frame.copy(), run(frame))
            cv2.putText(panel, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 3)
            cv2.putText(panel, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 1)
            panels.append(panel)
        target = out / f"{path.stem}.jpg"  # photos: JPEG is a tenth of the PNG
        cv2.imwrite(
            str(target),
            np.vstack(panels) if frame.shape[1] > frame.shape[0] else np.hstack(panels),
            [cv2.IMWRITE_JPEG_QUALITY, 88],
        )
        written.append(target)
    return written


def _detector(path: Path, imgsz: int, conf: float = 0.25):
    """frame (BGR) -> ``Detections``: the runtime for exported files, ultralytics for checkpoints."""
    from bienbao.runtime import Detector
    from bienbao.runtime.postprocess import Detections

    if path.suffix != ".pt":
        return Detector(path, conf=conf).detect
    from bienbao.trainer.ultralytics.models import checkpoint_predictor

    names, predict = checkpoint_predictor(path, imgsz, conf)

    def run(frame: np.ndarray) -> Detections:
        return Detections(*predict(frame), names)

    return run
