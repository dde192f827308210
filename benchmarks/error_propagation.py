"""How far one block's quantization error travels: only that block's quantizers on, SQNR downstream.

    python benchmarks/error_propagation.py --checkpoint PTQ_OR_QAT.pt --data DATASET.yaml \
        --blocks model.0 model.1 model.2 model.5 model.7 [--frames 2]

For each ``--blocks`` prefix, every quantizer under it quantizes and every other one passes float
through; the table gives the SQNR (dB, against the same checkpoint with all quantizers off) at a
few blocks along the network. A block whose own error is 20-30 dB but which leaves the backbone's
end at single digits is a block the network amplifies: the place for wider ranges, a better
observer or a float island, not a sign of a broken quantizer.
"""

from __future__ import annotations

import argparse
import math

import torch

from bienbao.quant import enable_fake_quant, enable_observers, iter_quantizers
from bienbao.trainer.evaluation.analyze import sample_frames
from bienbao.trainer.ultralytics.models import load_detection_model

WATCH = (
    "model.0",
    "model.2.cv2",
    "model.4.cv2",
    "model.6.cv2",
    "model.8.cv2",
    "model.15.cv2",
    "model.21.cv2",
    "model.22.cv3.0.1",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--blocks", nargs="+", required=True, help="module-name prefixes, e.g. model.1")
    parser.add_argument("--frames", type=int, default=2, help="train frames (default 2)")
    parser.add_argument(
        "--ranges",
        nargs="*",
        default=[],
        metavar="QUANTIZER",
        help="also print these quantizers' ranges against the |values| they see (quantiles)",
    )
    args = parser.parse_args()

    frames = sample_frames(args.data, "train", args.frames, 640)
    model = load_detection_model(args.checkpoint).float().eval()
    enable_observers(model, False)
    modules = dict(model.named_modules())

    def outputs() -> dict[str, torch.Tensor]:
        seen: dict[str, list[torch.Tensor]] = {}

        def keep(name: str):
            def hook(_module, _args, out) -> None:
                seen.setdefault(name, []).append(out.clone())

            return hook

        hooks = [modules[name].register_forward_hook(keep(name)) for name in WATCH]
        with torch.no_grad():
            for frame in frames:
                model(frame[None])
        for hook in hooks:
            hook.remove()
        return {name: torch.cat(values) for name, values in seen.items()}

    def sqnr(ref: torch.Tensor, got: torch.Tensor) -> float:
        noise = float(((ref - got) ** 2).sum())
        return math.inf if noise == 0 else 10 * math.log10(float((ref**2).sum()) / noise)

    enable_fake_quant(model, False)
    reference = outputs()
    print("| only these quantizers on | " + " | ".join(WATCH) + " |")
    print("| --- " * (len(WATCH) + 1) + "|")
    for prefix in args.blocks:
        enable_fake_quant(model, False)
        for name, quantizer in iter_quantizers(model):
            if name.startswith(prefix + "."):
                quantizer.enable_fake_quant(True)
        got = outputs()
        cells = [("-" if math.isinf(v := sqnr(reference[n], got[n])) else f"{v:.1f}") for n in WATCH]
        print(f"| {prefix} | " + " | ".join(cells) + " |")
    if args.ranges:
        ranges(model, frames, args.ranges)


def ranges(model: torch.nn.Module, frames: torch.Tensor, names: list[str]) -> None:
    """Each quantizer's grid against the magnitudes it is fed (quantizers off: the float values)."""
    quantizers = dict(iter_quantizers(model))
    seen: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name in names:
        if name not in quantizers:
            raise SystemExit(f"no quantizer {name!r}; e.g. model.1.conv.output_quantizer")
        hooks.append(
            quantizers[name].register_forward_pre_hook(
                lambda _m, args, name=name: seen.setdefault(name, []).append(args[0].detach().flatten())
            )
        )
    enable_fake_quant(model, False)
    with torch.no_grad():
        for frame in frames:
            model(frame[None])
    for hook in hooks:
        hook.remove()
    levels = torch.tensor([0.5, 0.9, 0.99, 0.999, 0.9999])
    print()
    print("| quantizer | grid low, high | step | abs quantiles 50 / 90 / 99 / 99.9 / 99.99 % | max |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        values = torch.cat(seen[name]).abs()
        sample = values[torch.randperm(values.numel())[:2_000_000]]
        q = torch.quantile(sample, levels)
        low, high = quantizers[name].representable_range()
        print(
            f"| {name} | {float(low):.2f}, {float(high):.2f} | {float(quantizers[name].scale):.3f} | "
            + " / ".join(f"{float(v):.2f}" for v in q)
            + f" | {float(values.max()):.2f} |"
        )


if __name__ == "__main__":
    main()
