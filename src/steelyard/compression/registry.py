"""The method registry: name → config class (+ preset) → transform, all lazy ("module:attr").

Adding a method is one new file (config + transform) and one line in :data:`METHODS`.
Nothing here imports torch: configs live in light ``config.py`` modules, transforms are
imported only when :func:`steelyard.compression.compress` runs one.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import Any, Literal

from steelyard.errors import ConfigError

_P = "steelyard.compression.pruning"
_Q = "steelyard.compression.quantization"
_L = "steelyard.compression.low_rank"

#: Model kinds a method can apply to (used by error messages and the conformance test).
TRANSFORMER, CNN = "transformer", "cnn"


@dataclass(frozen=True)
class MethodEntry:
    name: str
    config: str  # "module:Class"
    transform: str  # "module:function"
    summary: str
    preset: dict[str, Any] = field(default_factory=dict)
    applies_to: tuple[str, ...] = (TRANSFORMER, CNN)
    #: Defaults of this method that differ from the config's own; unlike a preset, the user may set them.
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Modules of an optional extra the transform imports (conformance tests skip the method without them).
    requires: tuple[str, ...] = ()


def _low_bit(method: str, config: str, module: str, how: str, requires: tuple[str, ...] = ()) -> list[MethodEntry]:
    """The int8 / int4 pair of a weight-only method: the same config and transform, ``bits`` preset, int4 groups
    of 32 by default; ``how`` says how the codes are chosen (they always run on torch's low-bit kernels)."""
    return [
        MethodEntry(f"quantize:int8-{method}", f"{_Q}.config:{config}", f"{_Q}.{module}:apply",
                    f"{how}: int8 codes + row scales, run by torch's int8 weight-only kernel",
                    preset={"bits": 8}, applies_to=(TRANSFORMER,), requires=requires),
        MethodEntry(f"quantize:int4-{method}", f"{_Q}.config:{config}", f"{_Q}.{module}:apply",
                    f"{how}: int4 codes + group scales (group_size=32/64/128/256), run by torch's int4 CPU kernel",
                    preset={"bits": 4}, applies_to=(TRANSFORMER,), defaults={"group_size": 32}, requires=requires),
    ]


METHODS: dict[str, MethodEntry] = {
    e.name: e
    for e in (
        MethodEntry(
            "prune:unstructured",
            f"{_P}.config:UnstructuredPruneConfig",
            f"{_P}.unstructured:apply",
            "zero the smallest weights (sparse, not smaller or faster)",
        ),
        MethodEntry(
            "prune:structured",
            f"{_P}.config:StructuredPruneConfig",
            f"{_P}.structured:apply",
            "remove FFN neurons and attention heads, or CNN channels (smaller and faster)",
        ),
        MethodEntry(
            "prune:layers",
            f"{_P}.config:LayerPruneConfig",
            f"{_P}.layers:apply",
            "drop whole transformer layers",
            applies_to=(TRANSFORMER,),
        ),
        MethodEntry(
            "prune:wanda",
            f"{_P}.config:WandaConfig",
            f"{_P}.wanda:apply",
            "zero weights by |W|·‖X‖ per row, unstructured or 2:4 (calibrated; sparse, not faster)",
            applies_to=(TRANSFORMER,),
        ),
        MethodEntry(
            "prune:layers-angular",
            f"{_P}.config:AngularLayerConfig",
            f"{_P}.layer_importance:apply",
            "drop the blocks whose output is closest in angle to their input (calibrated)",
            applies_to=(TRANSFORMER,),
        ),
        MethodEntry(
            "quantize:int8-dynamic",
            f"{_Q}.config:DynamicQuantConfig",
            f"{_Q}.dispatch:apply_dynamic",
            "int8 weights, activations quantized at run time (Linear layers)",
        ),
        MethodEntry(
            "quantize:int8-static",
            f"{_Q}.config:StaticQuantConfig",
            f"{_Q}.dispatch:apply_static",
            "int8 weights and activations, ranges calibrated on data",
        ),
        MethodEntry(
            "quantize:fp16",
            f"{_Q}.config:CastConfig",
            f"{_Q}.cast:apply",
            "cast to float16",
            preset={"dtype": "float16"},
        ),
        MethodEntry(
            "quantize:bf16",
            f"{_Q}.config:CastConfig",
            f"{_Q}.cast:apply",
            "cast to bfloat16",
            preset={"dtype": "bfloat16"},
        ),
        *_low_bit("weight-only", "WeightOnlyConfig", "weight_only", "round-to-nearest"),
        *_low_bit("awq", "AWQConfig", "awq", "AWQ (torchao's scale search on calibration data)", ("torchao",)),
        *_low_bit("gptq", "GPTQConfig", "gptq", "GPTQ (llm-compressor's, on calibration data)", ("llmcompressor",)),
        MethodEntry(
            "quantize:w8a8",
            f"{_Q}.config:SmoothQuantConfig",
            f"{_Q}.smoothquant:apply",
            "int8 weights and activations after SmoothQuant outlier migration (decoders; needs calibration data)",
            applies_to=(TRANSFORMER,),
        ),
        MethodEntry(
            "low-rank:svd",
            f"{_L}.config:LowRankConfig",
            f"{_L}.svd:apply",
            "factorize Linear / Conv2d weights into two thinner layers by truncated SVD",
        ),
    )
}


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    default: Any
    choices: tuple[Any, ...] | None
    help: str


@dataclass(frozen=True)
class MethodInfo:
    name: str
    summary: str
    config: str
    parameters: tuple[ParamInfo, ...]
    applies_to: tuple[str, ...]

    def describe(self) -> str:
        params = ", ".join(
            f"{p.name}={'|'.join(map(str, p.choices)) if p.choices else p.type} (default {p.default})"
            for p in self.parameters
        )
        return f"{self.name}: {self.summary}" + (f" [{params}]" if params else "")


def _resolve(spec: str) -> Any:
    module, attr = spec.split(":")
    return getattr(import_module(module), attr)


def config_class(name: str) -> type:
    return _resolve(_entry(name).config)


def _entry(name: str) -> MethodEntry:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown compression method '{name}'; valid methods: {', '.join(METHODS)}") from None


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_info(hint: Any) -> tuple[str, tuple[Any, ...] | None, bool]:
    """(type name, Literal choices or None, optional?) of a field's annotation."""
    optional = False
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        rest = [a for a in args if a is not type(None)]
        hint = rest[0]
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        return type(choices[0]).__name__, choices, optional
    return getattr(hint, "__name__", str(hint)), None, optional


def method_info(name: str) -> MethodInfo:
    entry = _entry(name)
    cls = _resolve(entry.config)
    params = []
    for f in dataclasses.fields(cls):
        if f.name in entry.preset:
            continue
        tname, choices, optional = _type_info(_hints(cls)[f.name])
        params.append(
            ParamInfo(f.name, tname + (" or none" if optional else ""), entry.defaults.get(f.name, f.default), choices,
                      f.metadata.get("help", ""))
        )
    return MethodInfo(entry.name, entry.summary, entry.config, tuple(params), entry.applies_to)


def list_methods() -> list[MethodInfo]:
    """Every registered method with its parameters and their valid values."""
    return [method_info(name) for name in METHODS]


def _parse_value(method: str, key: str, raw: str, hint: Any) -> Any:
    tname, choices, optional = _type_info(hint)
    text = raw.strip()
    if optional and text.lower() in ("none", "null", ""):
        return None
    try:
        if tname == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            value: Any = lowered in ("true", "1", "yes", "on")
        elif tname == "int":
            value = int(text)
        elif tname == "float":
            value = float(text)
        else:
            value = text
    except ValueError:
        raise ConfigError(f"{method}: {key} must be a {tname}, got '{raw}'") from None
    if choices is not None and value not in choices:
        raise ConfigError(f"{method}: {key} must be one of {', '.join(map(str, choices))}; got '{raw}'")
    return value


def make_config(name: str, **params: Any) -> Any:
    """The config of method ``name`` with its preset and ``params`` (unknown keys: clear error)."""
    entry = _entry(name)
    cls = _resolve(entry.config)
    valid = [f.name for f in dataclasses.fields(cls) if f.name not in entry.preset]
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise ConfigError(f"{name}: unknown parameter '{unknown[0]}'; valid parameters: {', '.join(valid) or '(none)'}")
    return cls(**entry.preset, **{**entry.defaults, **params})


def parse_assignments(name: str, cls: type, items: list[str], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """``["amount=0.3", "heads=0.25"]`` → typed keyword arguments of the dataclass ``cls``.

    Unknown keys and values of the wrong type are ConfigErrors that list the valid choices.
    ``exclude`` names fields fixed by a preset, which the user may not set.
    """
    hints = _hints(cls)
    valid = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    params: dict[str, Any] = {}
    for item in items:
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ConfigError(f"{name}: expected key=value, got '{item.strip()}'; valid parameters: {', '.join(valid)}")
        if key not in valid:
            raise ConfigError(f"{name}: unknown parameter '{key}'; valid parameters: {', '.join(valid) or '(none)'}")
        params[key] = _parse_value(name, key, raw, hints[key])
    return params


def parse_method(text: str) -> Any:
    """``"prune:structured,amount=0.3,heads=0.25"`` → ``StructuredPruneConfig(amount=0.3, heads=0.25)``."""
    parts = [p.strip() for p in text.strip().split(",")]
    name, assignments = parts[0], parts[1:]
    entry = _entry(name)
    params = parse_assignments(name, _resolve(entry.config), assignments, tuple(entry.preset))
    return make_config(name, **params)


def method_name(config: Any) -> str:
    """The registered name of a config instance; presets decide between names sharing a class."""
    best, best_score = None, -1
    for entry in METHODS.values():
        if type(config) is not _resolve(entry.config):
            continue
        score = sum(getattr(config, k) == v for k, v in entry.preset.items())
        if score > best_score:
            best, best_score = entry.name, score
    if best is None:
        raise ConfigError(
            f"{type(config).__name__} is not a compression config; build one with parse_method(), e.g. "
            f"parse_method('prune:structured,amount=0.3'); methods: {', '.join(METHODS)}"
        )
    return best


def transform_for(config: Any) -> tuple[str, Any]:
    """(method name, transform function) for a config: dispatch on its type."""
    name = method_name(config)
    return name, _resolve(METHODS[name].transform)
