"""Frozen, validated configuration: what to quantize, how, and where.

- ``ObserverSpec``: an observer by its registered name plus its options.
- ``QuantizerConfig``: a scheme, an observer and whether the scale is learnable.
- ``LayerQConfig``: the quantizers one layer gets (``input``, ``weight``, ``output``; ``None``
  leaves that tensor in float).
- ``QuantPolicy``: a default ``LayerQConfig`` plus ordered ``Rule``s matched against module names.

Precedence of rules: **later rules override earlier ones**. Every rule whose pattern matches a
layer's name is applied in order: ``skip: true`` makes the layer entirely float, a rule that sets
``input``/``weight``/``output`` replaces just those fields of what came before. So a policy reads
top to bottom, general first, specific last.

Patterns are ``fnmatch`` globs over qualified module names (``model.22.*``, ``*.cv2.*``). A rule
that matches no quantizable layer is an error by default (``on_unmatched="error"``: a typo
would otherwise silently quantize what was meant to stay float); ``"warn"`` downgrades it to a
``UserWarning``.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from bienbao.core.errors import ConfigError  # one definition, shared with the trainer's configs

from .observers import OBSERVERS, Observer
from .scheme import PerChannel, PerTensor, QuantScheme

if TYPE_CHECKING:
    from .fake_quantize import FakeQuantize

__all__ = [
    "PRESETS",
    "ConfigError",
    "LayerQConfig",
    "ObserverSpec",
    "QuantPolicy",
    "QuantizerConfig",
    "Rule",
    "get_preset",
]


@dataclass(frozen=True)
class ObserverSpec:
    """An observer by registered name (``minmax``, ``moving_average``, ``histogram``) and options."""

    name: str = "minmax"
    #: Given as a mapping; kept as sorted ``(key, value)`` pairs so the spec is immutable,
    #: hashable and deep-copyable.
    options: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.name not in OBSERVERS:
            raise ConfigError(f"observer {self.name!r} is unknown: write one of {', '.join(sorted(OBSERVERS))}")
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))
        try:  # validate the options once, here, instead of at the first forward pass
            self.build(QuantScheme())
        except TypeError as exc:
            raise ConfigError(f"observer {self.name!r}: bad option in {dict(self.options)}: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"observer {self.name!r}: {exc}") from exc

    def build(self, scheme: QuantScheme) -> Observer:
        return OBSERVERS[self.name](scheme, **dict(self.options))

    def __str__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in dict(self.options).items())
        return f"{self.name}({opts})" if opts else self.name


@dataclass(frozen=True)
class QuantizerConfig:
    scheme: QuantScheme = field(default_factory=QuantScheme)
    observer: ObserverSpec = field(default_factory=ObserverSpec)
    learnable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.scheme, QuantScheme):
            raise ConfigError(f"QuantizerConfig.scheme must be a QuantScheme, got {self.scheme!r}")
        if not isinstance(self.observer, ObserverSpec):
            raise ConfigError(f"QuantizerConfig.observer must be an ObserverSpec, got {self.observer!r}")
        if not isinstance(self.learnable, bool):
            raise ConfigError(f"QuantizerConfig.learnable must be true or false, got {self.learnable!r}")

    def build(self) -> FakeQuantize:
        from .fake_quantize import FakeQuantize  # local: fake_quantize imports nothing from here

        return FakeQuantize(self.observer.build(self.scheme), learnable=self.learnable)

    def __str__(self) -> str:
        return f"{self.scheme} [{self.observer}{', learnable' if self.learnable else ''}]"


ROLES = ("input", "weight", "output")


@dataclass(frozen=True)
class LayerQConfig:
    """Quantizers for one layer; ``None`` keeps that tensor in float."""

    input: QuantizerConfig | None = None
    weight: QuantizerConfig | None = None
    output: QuantizerConfig | None = None

    def __post_init__(self) -> None:
        for role in ROLES:
            value = getattr(self, role)
            if value is not None and not isinstance(value, QuantizerConfig):
                raise ConfigError(f"LayerQConfig.{role} must be a QuantizerConfig or None, got {value!r}")
        if self.weight is not None and self.weight.scheme.per_channel and self.weight.scheme.axis != 0:
            raise ConfigError(
                f"weight quantizer on axis {self.weight.scheme.axis}: Conv2d/Linear weights are quantized "
                "per output channel, write axis 0"
            )
        for role in ("input", "output"):
            cfg = getattr(self, role)
            if cfg is not None and cfg.scheme.bits != 8:
                raise ConfigError(
                    f"{role} quantizer with {cfg.scheme.bits} bits: activations are quantized to 8 bits "
                    "(only weights take other widths); write bits: 8"
                )

    @property
    def is_float(self) -> bool:
        return all(getattr(self, role) is None for role in ROLES)


FLOAT = LayerQConfig()


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Rule:
    """``pattern`` plus either ``skip=True`` or the fields it replaces."""

    pattern: str
    skip: bool = False
    input: QuantizerConfig | None = UNSET
    weight: QuantizerConfig | None = UNSET
    output: QuantizerConfig | None = UNSET

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern:
            raise ConfigError(f"rule pattern must be a non-empty string, got {self.pattern!r}")
        changes = self.changes()
        if self.skip and changes:
            raise ConfigError(
                f"rule {self.pattern!r} says skip and also sets {', '.join(changes)}: a skipped layer stays "
                "float; write a separate, later rule to quantize part of it"
            )
        if not self.skip and not changes:
            raise ConfigError(f"rule {self.pattern!r} does nothing: set skip: true or one of {', '.join(ROLES)}")

    def changes(self) -> dict[str, QuantizerConfig | None]:
        return {role: getattr(self, role) for role in ROLES if getattr(self, role) is not UNSET}

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern)

    def apply(self, config: LayerQConfig) -> LayerQConfig:
        return FLOAT if self.skip else replace(config, **self.changes())


@dataclass(frozen=True)
class QuantPolicy:
    default: LayerQConfig
    rules: tuple[Rule, ...] = ()
    on_unmatched: Literal["error", "warn"] = "error"
    name: str = "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.default, LayerQConfig):
            raise ConfigError(f"QuantPolicy.default must be a LayerQConfig, got {self.default!r}")
        object.__setattr__(self, "rules", tuple(self.rules))
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise ConfigError(f"QuantPolicy.rules holds {rule!r}; each rule must be a Rule")
        if self.on_unmatched not in ("error", "warn"):
            raise ConfigError(f"on_unmatched={self.on_unmatched!r}: write 'error' or 'warn'")

    def with_rules(self, *rules: Rule) -> QuantPolicy:
        """A copy with ``rules`` appended (so they take precedence over the existing ones)."""
        return replace(self, rules=self.rules + tuple(rules))

    def resolve(self, name: str) -> LayerQConfig:
        config = self.default
        for rule in self.rules:
            if rule.matches(name):
                config = rule.apply(config)
        return config

    def resolve_all(self, names: Iterable[str]) -> dict[str, LayerQConfig]:
        """Resolve every name; complain (per ``on_unmatched``) about rules that matched none."""
        names = list(names)
        unmatched = [rule.pattern for rule in self.rules if not any(rule.matches(n) for n in names)]
        if unmatched:
            message = (
                f"quantization policy {self.name!r}: rule pattern(s) {', '.join(map(repr, unmatched))} "
                f"match no quantizable layer (there are {len(names)}, e.g. {', '.join(names[:3])})"
            )
            if self.on_unmatched == "error":
                raise ConfigError(message + "; fix the pattern or set on_unmatched: warn")
            warnings.warn(message, UserWarning, stacklevel=3)
        return {n: self.resolve(n) for n in names}


# -- presets ------------------------------------------------------------------------------------


def _weight_per_channel(bits: int = 8) -> QuantizerConfig:
    return QuantizerConfig(
        QuantScheme(bits, symmetric=True, signed=True, granularity=PerChannel(0)), ObserverSpec("minmax")
    )


def _activation(symmetric: bool, signed: bool) -> QuantizerConfig:
    return QuantizerConfig(
        QuantScheme(8, symmetric=symmetric, signed=signed, granularity=PerTensor()),
        ObserverSpec("moving_average", {"averaging_constant": 0.01}),
    )


#: Named presets.
#:
#: ``onnxruntime_cpu``: per-tensor asymmetric uint8 activations, on each layer's input *and
#: output*, and per-channel symmetric weights with 7-bit codes ([-64, 63], stored as int8).
#: ONNX Runtime fuses DequantizeLinear -> Conv -> QuantizeLinear into an integer QLinearConv only
#: when the conv's output is quantized; without output quantizers the convs run in float and the
#: INT8 file is slower than FP32. uint8 activations are its fast x86 path on CPUs without VNNI
#: (int8 activations there are slower than FP32), and its AVX2 u8s8 kernels add pairs of
#: uint8 x int8 products in int16 with saturation, so full 8-bit weights overflow (measured:
#: docs/results/design-measurements.md). This is ONNX Runtime's ``reduce_range``.
#: ``openvino_cpu``: per-tensor asymmetric uint8 activations and per-channel symmetric 8-bit
#: weights, for OpenVINO's FakeQuantize graph (the trainer's ``openvino`` layout puts each block's
#: output quantizer after its activation, as NNCF does): exact int8 products there (VNNI, AMX, ARM
#: dot product), so weights keep all 8 bits.
#: ``tensorrt``: per-channel symmetric int8 weights and per-tensor symmetric int8 activations,
#: what TensorRT's explicit quantization wants.
#: ``weight_only``: per-channel symmetric int8 weights, float activations.
PRESETS: Mapping[str, QuantPolicy] = MappingProxyType(
    {
        "onnxruntime_cpu": QuantPolicy(
            LayerQConfig(
                input=_activation(symmetric=False, signed=False),
                weight=_weight_per_channel(7),
                output=_activation(symmetric=False, signed=False),
            ),
            name="onnxruntime_cpu",
        ),
        "openvino_cpu": QuantPolicy(
            LayerQConfig(
                input=_activation(symmetric=False, signed=False),
                weight=_weight_per_channel(8),
                output=_activation(symmetric=False, signed=False),
            ),
            name="openvino_cpu",
        ),
        "tensorrt": QuantPolicy(
            LayerQConfig(input=_activation(symmetric=True, signed=True), weight=_weight_per_channel()), name="tensorrt"
        ),
        "weight_only": QuantPolicy(LayerQConfig(weight=_weight_per_channel()), name="weight_only"),
    }
)


def get_preset(name: str) -> QuantPolicy:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown quantization preset {name!r}: write one of {', '.join(PRESETS)}") from None
