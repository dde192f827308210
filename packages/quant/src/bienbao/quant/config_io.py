"""Reading a ``QuantPolicy`` from plain data (a parsed ``quantization.yaml``).

The shape::

    preset: onnxruntime_cpu        # optional base: its default and rules come first
    on_unmatched: error            # or warn
    default:                       # optional: replaces the preset's fields it names
      input:  {bits: 8, symmetric: false, signed: false, observer: {name: histogram, method: mse}}
      weight: {bits: 8, granularity: per_channel}
      output: null
      activations: {observer: {name: histogram, method: mse}}   # every activation role it has
    rules:                         # later rules override earlier ones
      - {pattern: "model.22.*", skip: true}
      - {pattern: "model.0.*", weight: {bits: 8, observer: minmax}}

A quantizer mapping only overrides what it names: unnamed keys come from the quantizer the policy
already has in that role (the default's), or, where that role was float, from plain defaults
(8 bits, symmetric, signed, min-max; per-channel on axis 0 for weights, per-tensor otherwise).
Every unknown key or bad value raises ``ConfigError`` naming the key and ``source``.

``activations`` is shorthand for the activation roles the layer already quantizes (``input`` and
``output``; a float role stays float): which of them a layout keeps is the layout's business (the
ONNX Runtime layout quantizes conv *outputs* and drops most inputs, TensorRT's the reverse), so an
observer choice written for "the activations" reaches them in either. ``activations: null`` makes
both float. A role named beside it (``input:``/``output:``) applies after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .config import (
    PRESETS,
    ROLES,
    ConfigError,
    LayerQConfig,
    ObserverSpec,
    QuantizerConfig,
    QuantPolicy,
    Rule,
    get_preset,
)
from .scheme import PerChannel, PerTensor, QuantScheme

__all__ = ["policy_from_dict", "quantizer_from_dict"]

_POLICY_KEYS = {"preset", "on_unmatched", "default", "rules", "name"}
_QUANTIZER_KEYS = {"bits", "symmetric", "signed", "granularity", "axis", "observer", "learnable"}
_GRANULARITIES = ("per_tensor", "per_channel")


def _check_keys(data: Any, allowed: set[str], where: str, source: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} in {where}; allowed: {', '.join(sorted(allowed))}"
        )
    return data


def _fallback(role: str) -> QuantizerConfig:
    granularity = PerChannel(0) if role == "weight" else PerTensor()
    return QuantizerConfig(QuantScheme(8, symmetric=True, signed=True, granularity=granularity))


def _observer_from(value: Any) -> ObserverSpec:
    if isinstance(value, str):
        return ObserverSpec(value)
    if isinstance(value, Mapping):
        if "name" not in value:
            raise ConfigError("observer needs a name (minmax, moving_average, histogram)")
        return ObserverSpec(value["name"], {k: v for k, v in value.items() if k != "name"})
    raise ConfigError(f"observer must be a name or a mapping with a name, got {value!r}")


def quantizer_from_dict(
    data: Any, base: QuantizerConfig | None, role: str, where: str, source: str = "<dict>"
) -> QuantizerConfig | None:
    """One quantizer; ``None``/``null`` means float, keys not given come from ``base``."""
    if data is None:
        return None
    data = _check_keys(data, _QUANTIZER_KEYS, where, source)
    base = base or _fallback(role)
    scheme = base.scheme
    try:
        granularity = scheme.granularity
        if "granularity" in data:
            if data["granularity"] not in _GRANULARITIES:
                raise ConfigError(f"granularity {data['granularity']!r}: write per_tensor or per_channel")
            granularity = PerChannel(0) if data["granularity"] == "per_channel" else PerTensor()
        if "axis" in data:
            if not isinstance(granularity, PerChannel):
                raise ConfigError("axis is only meaningful with granularity: per_channel")
            granularity = PerChannel(data["axis"])
        scheme = QuantScheme(
            bits=data.get("bits", scheme.bits),
            symmetric=data.get("symmetric", scheme.symmetric),
            signed=data.get("signed", scheme.signed),
            granularity=granularity,
        )
        observer = _observer_from(data["observer"]) if "observer" in data else base.observer
        return replace(base, scheme=scheme, observer=observer, learnable=data.get("learnable", base.learnable))
    except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
        raise ConfigError(f"{source}: {where}: {exc}") from exc


#: the activation roles ``activations`` stands for
ACTIVATION_ROLES = ("input", "output")
_LAYER_KEYS = {*ROLES, "activations"}


def _layer_fields(data: Any, base: LayerQConfig, where: str, source: str) -> dict[str, QuantizerConfig | None]:
    fields: dict[str, QuantizerConfig | None] = {}
    if "activations" in data:
        for role in ACTIVATION_ROLES:
            if data["activations"] is None or getattr(base, role) is not None:
                fields[role] = quantizer_from_dict(
                    data["activations"], getattr(base, role), role, f"{where}.activations", source
                )
    for role in ROLES:
        if role in data:
            fields[role] = quantizer_from_dict(
                data[role], fields.get(role, getattr(base, role)), role, f"{where}.{role}", source
            )
    return fields


def policy_from_dict(data: Any, source: str = "<dict>") -> QuantPolicy:
    """Build and validate a policy; ``source`` (a file name) is named in every error."""
    data = _check_keys(data, _POLICY_KEYS, "the policy", source)
    try:
        policy = get_preset(data["preset"]) if "preset" in data else None
    except ConfigError as exc:
        raise ConfigError(f"{source}: preset: {exc}") from exc
    if policy is None and "default" not in data:
        raise ConfigError(f"{source}: give a preset ({', '.join(PRESETS)}) or a default")
    default = policy.default if policy else LayerQConfig()
    if "default" in data:
        fields = _check_keys(data["default"], _LAYER_KEYS, "default", source)
        default = replace(default, **_layer_fields(fields, default, "default", source))
    rules = list(policy.rules) if policy else []
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{source}: rules must be a list of mappings, got {type(raw_rules).__name__}")
    for index, entry in enumerate(raw_rules):
        where = f"rules[{index}]"
        raw = _check_keys(entry, {"pattern", "skip", *_LAYER_KEYS}, where, source)
        if "pattern" not in raw:
            raise ConfigError(f"{source}: {where} needs a pattern (a glob over module names, e.g. 'model.22.*')")
        fields = _layer_fields(raw, default, where, source)
        try:
            rules.append(Rule(raw["pattern"], skip=bool(raw.get("skip", False)), **fields))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {where}: {exc}") from exc
    try:
        return QuantPolicy(
            default=default,
            rules=tuple(rules),
            on_unmatched=data.get("on_unmatched", policy.on_unmatched if policy else "error"),
            name=data.get("name", policy.name if policy else source),
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
