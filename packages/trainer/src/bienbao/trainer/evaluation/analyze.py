"""``bienbao analyze``: where quantization hurts a QAT or PTQ checkpoint, and how a QAT run went.

- ``layer_error``: every conv block's output in the quantized model against a float reference on
  the same images (SQNR in dB, cosine similarity). The reference is an FP32 checkpoint if given,
  else the same checkpoint with its quantizers off, which isolates the quantization error from
  what training changed. Errors accumulate: a block's error includes its inputs'.
- ``layer_sensitivity``: ``bienbao.quant.sensitivity_analysis`` with mAP50 on a subset as the
  metric, a ranking, and a ready ``quantization.yaml`` keeping the top-k layers float (loadable
  by ``bienbao qat --quantization``).
- ``activation_histograms``: what each activation quantizer sees, with its representable range
  marked, and each quantized conv's weights in units of its channel's step with the code range
  marked: clipping and wasted range at a glance.
- ``drift_chart``: mAP of the fake-quant model per epoch against the FP32 checkpoint the run
  started from (validated once, by the same validator, after the first epoch), from a QAT
  run's ``drift.csv``, with the schedule's phases shaded.
"""

from __future__ import annotations

import csv
import fnmatch
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bienbao.quant import FakeQuantize, QATModule, enable_fake_quant, enable_observers, iter_quantizers
from bienbao.trainer.ultralytics.qat_model import is_quantized

__all__ = ["LayerError", "activation_histograms", "drift_chart", "layer_error", "layer_sensitivity", "sample_frames"]


def _load(checkpoint: str | Path) -> nn.Module:
    from bienbao.trainer.ultralytics.models import load_detection_model

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    model = load_detection_model(path)
    enable_observers(model, False)  # analysis looks at the saved ranges; it must not move them
    return model.float().eval()


def _require_quantized(model: nn.Module, checkpoint: str | Path) -> None:
    if not is_quantized(model):
        raise ValueError(f"{checkpoint} has no quantizers: analyze a QAT or PTQ checkpoint (bienbao qat / calibrate)")


def sample_frames(data: str | Path, split: str, count: int, imgsz: int) -> torch.Tensor:
    """``count`` frames spread over ``split``, letterboxed as the runtime does: (count, 3, imgsz, imgsz)."""
    import cv2

    from bienbao.runtime.preprocess import preprocess
    from bienbao.trainer.evaluation.evaluate import split_images

    images = split_images(Path(data), split)
    if not images:
        raise ValueError(f"{data}: no images in the {split} split")
    chosen = images[:: max(1, len(images) // count)][:count]
    return torch.from_numpy(np.concatenate([preprocess(cv2.imread(str(p)), (imgsz, imgsz))[0] for p in chosen]))


def _figure(**kwargs):
    """A matplotlib Figure outside pyplot: no global state, no backend switch (a notebook keeps its own)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


# -- error --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerError:
    """One conv block's quantization error on the sample frames.

    ``sqnr_db`` and ``cosine`` are *accumulated*: the block's output in the quantized network
    against the reference network's, so it includes every earlier block's error as the network
    amplifies it. ``local_sqnr_db`` is the block's *own* error: the quantized block fed the
    reference's input to that block. A per-channel 8-bit conv costs a block 30-40 dB locally; the
    accumulated figure deep in a YOLOv8 backbone can be single digits with every block healthy.
    """

    name: str
    sqnr_db: float
    cosine: float
    local_sqnr_db: float


def _run_with_hooks(model: nn.Module, frames: torch.Tensor, hooks: list) -> None:
    """Run ``frames`` one at a time through ``model``, then remove ``hooks`` (handles)."""
    try:
        with torch.no_grad():
            for frame in frames:
                model(frame[None])
    finally:
        for hook in hooks:
            hook.remove()


class _Sums:
    """Running signal/noise/dot sums over frames (SQNR and cosine without keeping the tensors)."""

    def __init__(self) -> None:
        self.signal = self.noise = self.local_noise = self.dot = self.got = 0.0

    def add(self, ref: torch.Tensor, got: torch.Tensor, local: torch.Tensor) -> None:
        ref, got, local = ref.double(), got.double(), local.double()
        self.signal += float((ref**2).sum())
        self.noise += float(((ref - got) ** 2).sum())
        self.local_noise += float(((ref - local) ** 2).sum())
        self.dot += float((ref * got).sum())
        self.got += float((got**2).sum())


def _sqnr_db(signal: float, noise: float) -> float:
    return math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)


def _conv_blocks(model: nn.Module) -> dict[str, nn.Module]:
    from bienbao.trainer.ultralytics.models import conv_blocks

    return conv_blocks(model)


def _block_io(blocks: dict[str, nn.Module], frame: torch.Tensor, run: nn.Module) -> dict[str, tuple]:
    """``{name: (input, output)}`` of every block for one frame."""
    seen: dict[str, tuple] = {}

    def keep(name: str):
        def hook(_module, args, out) -> None:  # a hook that returned a value would replace the output
            seen.setdefault(name, (args[0], out))

        return hook

    hooks = [module.register_forward_hook(keep(name)) for name, module in blocks.items()]
    try:
        with torch.no_grad():
            run(frame[None])
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def layer_error(checkpoint: str | Path, frames: torch.Tensor, reference: str | Path | None = None) -> list[LayerError]:
    """Accumulated SQNR and cosine similarity, and local SQNR, of each conv block, in network order.

    Blocks whose output equals the reference's exactly (float by policy and fed the same input, such
    as the packaged policy's model.0 and model.1) have no error to report and are left out."""
    model = _load(checkpoint)
    _require_quantized(model, checkpoint)
    float_model = None if reference is None else _load(reference)
    blocks = _conv_blocks(model)
    reference_blocks = blocks if float_model is None else _conv_blocks(float_model)
    switches = [(q, q.quantizing) for _, q in iter_quantizers(model)]
    sums: dict[str, _Sums] = {}
    for frame in frames:
        if float_model is None:
            enable_fake_quant(model, False)
        expected = _block_io(reference_blocks, frame, float_model or model)
        for quantizer, on in switches:
            quantizer.enable_fake_quant(on)
        quantized = _block_io(blocks, frame, model)
        for name, (ref_in, ref_out) in expected.items():
            if name not in quantized or quantized[name][1].shape != ref_out.shape:
                continue
            with torch.no_grad():
                local = blocks[name](ref_in)
            sums.setdefault(name, _Sums()).add(ref_out, quantized[name][1], local)
    if not sums:
        raise ValueError(f"{checkpoint} and its reference share no conv blocks: not the same architecture")
    return [
        LayerError(
            name,
            round(_sqnr_db(s.signal, s.noise), 2),
            round(s.dot / max(math.sqrt(s.signal * s.got), 1e-30), 5),
            round(_sqnr_db(s.signal, s.local_noise), 2),
        )
        for name, s in sums.items()
        if s.noise > 0 or s.local_noise > 0
    ]


def error_chart(errors: Sequence[LayerError], path: Path) -> Path:
    fig = _figure(figsize=(max(8.0, 0.18 * len(errors)), 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(errors))
    top.bar(x - 0.2, [min(e.sqnr_db, 60) for e in errors], width=0.4, color="tab:blue", label="accumulated")
    top.bar(
        x + 0.2,
        [min(e.local_sqnr_db, 60) for e in errors],
        width=0.4,
        color="tab:orange",
        label="local (the block alone)",
    )
    top.set_ylabel("SQNR (dB)")
    top.legend(fontsize=7)
    top.set_title("quantization error of each conv block's output (higher is better)")
    bottom.plot(x, [e.cosine for e in errors], marker=".", color="tab:red")
    bottom.set_ylabel("cosine similarity")
    bottom.set_xticks(x, [e.name.removeprefix("model.") for e in errors], rotation=90, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def error_table(errors: Sequence[LayerError]) -> str:
    lines = ["| layer | SQNR dB (accumulated) | cosine (accumulated) | SQNR dB (local) |", "|---|---|---|---|"]
    lines += [f"| {e.name} | {e.sqnr_db:.2f} | {e.cosine:.5f} | {e.local_sqnr_db:.2f} |" for e in errors]
    return "\n".join(lines)


# -- sensitivity ----------------------------------------------------------------------------------


def layer_sensitivity(
    checkpoint: str | Path,
    data: str | Path,
    split: str = "val",
    images: int = 32,
    imgsz: int = 640,
    layers: Sequence[str] = ("*",),
    progress=print,
):
    """``SensitivityReport`` of every QAT layer matching ``layers`` (globs), mAP50 on ``images`` frames."""
    from bienbao.quant import qat_layers, sensitivity_analysis
    from bienbao.trainer.evaluation.evaluate import evaluate_module

    model = _load(checkpoint)
    _require_quantized(model, checkpoint)
    names = [name for name, _ in qat_layers(model) if any(fnmatch.fnmatchcase(name, p) for p in layers)]
    if not names:
        raise ValueError(f"no quantized layer matches {', '.join(layers)}")
    calls = [0]
    total = 2 * len(names) + 2

    def metric(module: nn.Module) -> float:
        calls[0] += 1
        progress(f"sensitivity: evaluation {calls[0]}/{total}")
        return evaluate_module(module, data, split, imgsz, images=images).map50

    return sensitivity_analysis(model, metric, names)


def sensitivity_policy(base_policy: str | Path, report, top_k: int) -> dict:
    """The base ``quantization.yaml`` with rules keeping the ``top_k`` most sensitive layers
    float, appended last so they win. (Float, not wider integers: the runtimes execute 8-bit
    integer kernels, and the export refuses other widths.)"""
    from bienbao.trainer.config import load_yaml

    data = dict(load_yaml(base_policy))
    if "quantization" in data:  # an experiment file: its policy section
        data = dict(data["quantization"])
    ranked = [layer.name for layer in report.ranking()[:top_k]]
    data["rules"] = [*(data.get("rules") or []), *({"pattern": name, "skip": True} for name in ranked)]
    return data


# -- activations ----------------------------------------------------------------------------------


def _representable(quantizer: FakeQuantize) -> tuple[float, float]:
    low, high = quantizer.representable_range(quantizer.scale.detach().float())
    return float(low.min()), float(high.max())


def activation_histograms(
    checkpoint: str | Path, frames: torch.Tensor, path: Path, layers: Sequence[str] = ("*",), max_plots: int = 24
) -> Path:
    """A PNG grid: activation histograms with the quantizer's range, then weights in code units."""
    model = _load(checkpoint)
    _require_quantized(model, checkpoint)
    chosen = [
        (name, q)
        for name, q in iter_quantizers(model, roles=["input", "output"])
        if q.quantizing and any(fnmatch.fnmatchcase(name, p) for p in layers)
    ]
    weights = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, QATModule)
        and getattr(module, "weight_quantizer", None) is not None
        and any(fnmatch.fnmatchcase(name, p) for p in layers)
    ]
    if not chosen and not weights:
        raise ValueError(f"no quantizer matches {', '.join(layers)}")
    half = max(1, max_plots // 2)
    chosen = _spread(chosen, half if weights else max_plots)
    weights = _spread(weights, max_plots - len(chosen))
    seen: dict[str, list[torch.Tensor]] = {}  # what each quantizer is fed, subsampled to ~200k values a frame
    _run_with_hooks(
        model,
        frames,
        [
            q.register_forward_pre_hook(
                lambda _m, args, name=name: seen.setdefault(name, []).append(
                    args[0].detach().flatten()[:: max(1, args[0].numel() // 200_000)]
                )
            )
            for name, q in chosen
        ],
    )
    panels = len(chosen) + len(weights)
    cols = min(4, panels)
    rows = math.ceil(panels / cols)
    fig = _figure(figsize=(4 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, quantizer) in zip(axes.flat, chosen, strict=False):
        values = torch.cat(seen.get(name, [torch.zeros(1)])).numpy()
        low, high = _representable(quantizer)
        half_step = float(quantizer.scale.detach().float().min()) / 2  # within it, clipping is rounding
        clipped = float(((values < low - half_step) | (values > high + half_step)).mean() * 100)
        ax.hist(values, bins=120, color="tab:blue", log=True)
        for edge in (low, high):
            ax.axvline(edge, color="tab:red", lw=1)
        ax.set_title(f"{name.removeprefix('model.')}\nclipped {clipped:.2f}%", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax, (name, module) in zip(axes.flat[len(chosen) :], weights, strict=False):
        quantizer = module.weight_quantizer
        weight = module.float_weight().detach().float()
        scale = quantizer.scale.detach().float()
        if quantizer.scheme.axis is not None:
            shape = [1] * weight.dim()
            shape[quantizer.scheme.axis] = -1
            scale = scale.reshape(shape)
        codes = (weight / scale).flatten().numpy()
        ax.hist(codes, bins=120, color="tab:green", log=True)
        for edge in (quantizer.scheme.quant_min, quantizer.scheme.quant_max):
            ax.axvline(edge, color="tab:red", lw=1)
        used = float(np.abs(codes).max() / max(abs(quantizer.scheme.quant_min), quantizer.scheme.quant_max))
        ax.set_title(
            f"{name.removeprefix('model.')} weights (codes)\npeak uses {used * 100:.0f}% of the range", fontsize=7
        )
        ax.tick_params(labelsize=6)
    for ax in axes.flat[panels:]:
        ax.axis("off")
    fig.suptitle(
        "activations (blue, log counts) and weights in quantization steps (green); red: representable range", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _spread(items: list, count: int) -> list:
    if count <= 0 or not items:
        return []
    if len(items) <= count:
        return items
    return [items[round(i)] for i in np.linspace(0, len(items) - 1, count)]


# -- drift ----------------------------------------------------------------------------------------


def read_drift(run: str | Path) -> list[dict]:
    """Rows of a QAT run's ``drift.csv`` (``run`` is the file or the run's log folder)."""
    path = Path(run)
    path = path / "drift.csv" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no drift log at {path}: QAT runs write logs/<name>/drift.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} is empty: the run stopped before its first validation")
    return rows


def drift_chart(rows: Sequence[dict], path: Path) -> Path:
    epochs = [int(r["epoch"]) for r in rows]
    fig = _figure(figsize=(7, 4))
    ax = fig.subplots()
    for metric, color in (("mAP50", "tab:blue"), ("mAP50-95", "tab:orange")):
        ax.plot(
            epochs,
            [float(r[f"qat_{metric}"]) for r in rows],
            marker="o",
            color=color,
            label=f"QAT (fake-quant) {metric}",
        )
        ax.axhline(
            float(rows[0][f"fp32_{metric}"]), color=color, ls="--", lw=1, label=f"FP32 start checkpoint {metric}"
        )
    phases = (
        ("activations", "False", "activation quantizers off", "#dddddd"),
        ("observing", "False", "ranges frozen", "#d8ecff"),
        ("bn_frozen", "True", "BN statistics frozen", "#fff1cc"),
    )
    for key, shaded, label, color in phases:
        spans = [e for e, r in zip(epochs, rows, strict=True) if r.get(key) == shaded]
        if spans:
            ax.axvspan(min(spans) - 0.5, max(spans) + 0.5, color=color, alpha=0.5, label=label, zorder=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation mAP")
    ax.set_title("QAT accuracy drift")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def errors_to_dicts(errors: Sequence[LayerError]) -> list[dict]:
    return [asdict(e) for e in errors]
